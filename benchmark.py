"""Model statistics and training speed: parameters, analytic FLOPs, graph compile time and
train ms/step per model, written as JSON and a markdown table.

    python benchmark.py --models=all --batch_size=2 --steps=3 --out=bench/

Each model runs at its Moving MNIST config (configs/<model>_mmnist.yaml; PredRNN++ is
default_config.yaml). FLOPs are analytic: 2 * multiply-adds of every convolution, counted
per call at the patch-reshaped frame size, times the calls one sequence makes in an
inference forward pass (elementwise gate arithmetic is left out: under 2% for these
models; so is E3D-LSTM's recall attention, whose matmuls grow with the square of the
sequence length). A training step costs about 3x the forward pass (forward + two backward GEMMs
per convolution), doubled by reverse_input, which is off while timing.
Speeds depend on the machine: compare them as ratios taken in one run.
"""
import json
import os
import platform
import subprocess
import sys
import time

import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli

MODEL_CONFIGS = {
    "convlstm": "configs/convlstm_mmnist.yaml",
    "convlstm_ef": "configs/convlstm_ef_mmnist.yaml",
    "predrnn": "configs/predrnn_mmnist.yaml",
    "predrnn_v2": "configs/predrnn_v2_mmnist.yaml",
    "predrnn_pp": "configs/predrnn_pp_mmnist.yaml",
    "e3d_lstm": "configs/e3d_lstm_mmnist.yaml",
}


def conv_calls(name, cfg):
    """How often the convolution `name` runs in one inference pass over a sequence."""
    future = cfg.seq_length - cfg.input_length
    if cfg.model_name == "convlstm_ef":
        return cfg.input_length if name.startswith("encoder.") else future
    if name.startswith("adapter"):  # PredRNN-V2's adapter only runs for the training loss
        return 0
    return cfg.seq_length - 1


def conv_flops_per_sequence(net, cfg):
    from mindspore import nn
    from nets.base import frame_dims
    _, height, width = frame_dims(cfg)
    total = 0
    for name, cell in net.cells_and_names():
        if isinstance(cell, nn.Conv2d):
            cout, cin_per_group, kh, kw = cell.weight.shape
            total += 2 * cout * cin_per_group * kh * kw * height * width * conv_calls(name, cfg)
        elif isinstance(cell, nn.Conv3d):  # E3D-LSTM: 'same' over the window, or a stride that folds it
            cout, cin_per_group, kt, kh, kw = cell.weight.shape
            out_t = cfg.window_length // cell.stride[0]
            total += 2 * cout * cin_per_group * kt * kh * kw * out_t * height * width * conv_calls(name, cfg)
    return total


def measure(model_name, config_path, batch_size, steps, extra):
    import numpy as np
    import mindspore as ms
    from mindspore import nn
    from data_provider.sampling import train_mask
    from engine.config import load_config
    from engine.device import init_context
    from engine.trainer import NetWithLoss, TrainStep, param_count
    from nets.base import frame_dims
    from nets.registry import build_model
    cfg = load_config([f"--config_path={config_path}", f"--batch_size={batch_size}", *extra])
    init_context(cfg)
    net = build_model(cfg)
    channel, height, width = frame_dims(cfg)
    step = TrainStep(NetWithLoss(net, cfg.seq_length), nn.Adam(net.trainable_params(), cfg.lr))
    step.set_train()
    rng = np.random.default_rng(0)
    frames = ms.Tensor(rng.random((batch_size, cfg.seq_length, height, width, channel)).astype(np.float32))
    began = time.perf_counter()
    step(frames, ms.Tensor(train_mask(0, batch_size, cfg)[0])).asnumpy()
    first = time.perf_counter() - began
    times = []
    for i in range(steps):
        mask = ms.Tensor(train_mask(i + 1, batch_size, cfg)[0])
        began = time.perf_counter()
        step(frames, mask).asnumpy()
        times.append(time.perf_counter() - began)
    median = float(np.median(times))
    flops = conv_flops_per_sequence(net, cfg)
    import resource
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB -> GiB
    return {
        "model": model_name, "config": config_path, "num_hidden": cfg.num_hidden,
        "filter_size": cfg.filter_size, "patch_size": cfg.patch_size, "img_width": cfg.img_width,
        "frames": f"{cfg.input_length}->{cfg.seq_length - cfg.input_length}",
        "parameters": param_count(net), "forward_gflop_per_sequence": flops / 1e9,
        "batch_size": batch_size, "compile_and_first_step_s": first - median,
        "train_ms_per_step": 1000 * median,
        "train_gflop_per_s": 3 * flops * batch_size / median / 1e9,
        "peak_rss_gib": peak_rss,
    }


def numpy_matmul_gflops(n=2048, repeats=5):
    import numpy as np
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    a @ b
    began = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - began) / 1e9


def markdown(rows, peak):
    lines = ["| model | hidden | params | forward GFLOP / sequence | train ms/step (batch {}) | achieved GFLOP/s "
             "| compile s | peak RSS GiB |".format(rows[0]["batch_size"]),
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['num_hidden']} | {r['parameters'] / 1e6:.2f} M | "
                     f"{r['forward_gflop_per_sequence']:.1f} | {r['train_ms_per_step']:.0f} | "
                     f"{r['train_gflop_per_s']:.1f} | {r['compile_and_first_step_s']:.0f} | {r['peak_rss_gib']:.1f} |")
    lines.append(f"\nnumpy float32 matmul peak in the same run: {peak:.0f} GFLOP/s.")
    return "\n".join(lines)


def main(argv):
    from engine.config import parse_cli
    from engine.errors import UserError
    args = parse_cli(argv)
    models = args.pop("models", "all")
    batch_size = int(args.pop("batch_size", 2))
    steps = int(args.pop("steps", 3))
    out = args.pop("out", "bench")
    one = args.pop("one", "")
    extra = [f"--{k}={v}" for k, v in args.items()] + ["--reverse_input=false"]
    names = list(MODEL_CONFIGS) if models == "all" else models.split(",")
    for name in names:
        if name not in MODEL_CONFIGS:
            raise UserError(f"--models: unknown model {name!r}; known: {', '.join(MODEL_CONFIGS)}")
    if one:  # child mode: one model per process, so that peak RSS is that model's own
        print("RESULT " + json.dumps(measure(one, MODEL_CONFIGS[one], batch_size, steps, extra)), flush=True)
        return
    rows = []
    for name in names:
        print(f"benchmarking {name} ...", flush=True)
        cmd = [sys.executable, os.path.abspath(__file__), f"--one={name}", f"--batch_size={batch_size}",
               f"--steps={steps}"] + [f"--{k}={v}" for k, v in args.items()]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        result = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not result:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise UserError(f"benchmark of {name} failed (exit {proc.returncode}): {tail}")
        rows.append(json.loads(result[-1][len("RESULT "):]))
        print(json.dumps(rows[-1]), flush=True)
    peak = numpy_matmul_gflops()
    os.makedirs(out, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "python": sys.version.split()[0], "numpy_matmul_gflops": peak, "rows": rows}
    with open(os.path.join(out, "benchmark.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    table = markdown(rows, peak)
    with open(os.path.join(out, "benchmark.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    run_cli(main)
