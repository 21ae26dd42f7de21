"""Size and speed of every model: parameters, analytic FLOPs, graph compile time, training
ms/step and samples/s, achieved GFLOP/s against a numpy float32 matmul peak measured in the
same run, eval/inference latency per sequence (GRAPH-mode eval, MINDIR through GraphCell,
ONNX Runtime from Python, and the same ONNX file in ascend310_infer's C++ program on ONNX
Runtime, built when missing), MindRecord pipeline throughput against what training consumes, peak RSS,
and optionally the same train step and no_grad inference in PyTorch eager. Written as JSON and a
markdown table.

    python benchmark.py --models=all --size=small,mmnist --out=bench/
    python benchmark.py --models=predrnn_pp --size=mmnist --batch_size=2 --steps=5
    python benchmark.py --models=convlstm --size=small --rss_steps=50,500   # RSS over a long run
    python benchmark.py ... --torch=/tmp/torchvenv/bin/python              # PyTorch eager columns
    python benchmark.py ... --torch=... --openstl=/path/to/OpenSTL          # and for MIM, MAU, PhyDNet
    python benchmark.py ... --formats=mindir,onnx                           # without the C++ runner

Sizes: 'mmnist' is each model's Moving MNIST config (configs/<model>_mmnist.yaml; PredRNN++
is the model zoo's default_config.yaml values) at --batch_size (default 2: the CPU's memory,
see docs/performance.md); 'small' is two layers of 32 channels, 3x3 kernels, 5 -> 5 frames, patch 4,
batch 4; 'rgb128x160' is each model's config on RGB 128x160 frames, 10 -> 1, patch 4, batch 4
(KITTI -> Caltech Pedestrian's shape, for the pipeline's colour case). Any other option, e.g.
--num_hidden=..., overrides every size.

Every model and part runs in a process of its own (training; inference; the long-run RSS
probe), so peak RSS is that part's own. Timed steps are medians of --steps repeats after a
first call that includes the graph compile ("compile s" = first call - median).

FLOPs are analytic: 2 * multiply-adds of every convolution, counted per call at the
patch-reshaped frame size, times the calls one sequence makes in an inference forward pass
(elementwise gate arithmetic is left out: under 2% for these models; so is E3D-LSTM's
recall attention, whose matmuls grow with the square of the sequence length). A training
step costs about 3x the forward pass (forward + two backward GEMMs per convolution);
reverse_input, which doubles the steps of some configs, is off while timing.
Speeds depend on the machine: compare them as ratios taken in one run.
"""
import glob
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
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
    "simvp": "configs/simvp_mmnist.yaml",
    "tau": "configs/tau_mmnist.yaml",
    "mim": "configs/mim_mmnist.yaml",
    "mau": "configs/mau_mmnist.yaml",
    "phydnet": "configs/phydnet_mmnist.yaml",
}
SIZES = {
    "mmnist": {"overrides": [], "batch_size": 2},
    "small": {"overrides": ["--num_hidden=32,32", "--filter_size=3", "--seq_length=10", "--input_length=5",
                            "--patch_size=4", "--img_width=64", "--img_height=0"], "batch_size": 4},
    # RGB 128x160, 10 -> 1 (KITTI / Caltech Pedestrian's shape): the pipeline's colour case
    "rgb128x160": {"overrides": ["--img_height=128", "--img_width=160", "--img_channel=3", "--seq_length=11",
                                 "--input_length=10", "--patch_size=4"], "batch_size": 4},
}
# tools/torch_step.py (SimVP: gSTA); for OPENSTL_MODELS it runs OpenSTL's own model classes
# from a checkout given as --openstl: without one those models are not paired
TORCH_MODELS = ("convlstm", "predrnn", "predrnn_pp", "simvp", "tau", "mim", "mau", "phydnet")
OPENSTL_MODELS = ("mim", "mau", "phydnet")
PIPELINE_SAMPLES = 256


def conv_calls(name, cfg):
    """How often the convolution `name` runs in one inference pass over a sequence."""
    future = cfg.seq_length - cfg.input_length
    if cfg.model_name == "convlstm_ef":
        return cfg.input_length if name.startswith("encoder.") else future
    if name.startswith("adapter"):  # PredRNN-V2's adapter only runs for the training loss
        return 0
    return cfg.seq_length - 1


def simvp_conv_site(name, cfg):
    """(downsampling factor of the conv's output grid, calls per sequence) for SimVP: the
    encoder and decoder run on every input frame, the translator once per clip, each clip
    application repeated by the rolling scheme when more frames are predicted than read."""
    from layers.simvp_blocks import sampling_pattern
    future = cfg.seq_length - cfg.input_length
    clips = -(-future // cfg.input_length)
    parts = name.split(".")
    if parts[0] == "enc":  # enc.enc.i...: after block i's own stride
        return 2 ** sum(sampling_pattern(cfg.N_S)[:int(parts[2]) + 1]), clips * cfg.input_length
    if parts[0] == "dec":
        if parts[1] == "readout":
            return 1, clips * cfg.input_length
        up = sampling_pattern(cfg.N_S, reverse=True)  # dec.dec.i: before block i's PixelShuffle
        return 2 ** (cfg.N_S // 2 - sum(up[:int(parts[2])])), clips * cfg.input_length
    return 2 ** (cfg.N_S // 2), clips  # the translator


def grid_site(name, cfg):
    """(area of the conv's output grid relative to the patch-reshaped frame, calls per sequence)
    for the frame-by-frame models whose convolutions run at several resolutions: MAU (encoder
    strides, cells at 1 / sr_size, decoder back up) and PhyDNet (whole frames encoded down to
    1 / patch_size and decoded back)."""
    calls = cfg.seq_length - 1
    parts = name.split(".")
    if cfg.model_name == "mau":
        sr = cfg.sr_size
        if parts[0] == "encoders":
            return 1.0 / 4 ** int(parts[1]), calls
        if parts[0] == "decoders":  # decoder i doubles to 1 / (sr / 2^(i+1))
            return (2 ** (int(parts[1]) + 1) / sr) ** 2, calls
        if parts[0] == "cell_list":
            return 1.0 / sr ** 2, calls
        return 1.0, calls
    p = cfg.patch_size  # phydnet: the latent grid is the patch-reshaped frame
    if parts[0] == "encoder_E":
        return (1.0 if parts[1] == "c3" else (p / 2) ** 2), calls
    if parts[0] == "decoder_D":
        return (float(p * p) if parts[1] == "upc3" else 4.0), calls
    return 1.0, calls


def conv_flops_per_sequence(net, cfg):
    from mindspore import nn
    from nets.base import frame_dims
    _, height, width = frame_dims(cfg)
    total = 0
    for name, cell in net.cells_and_names():
        if isinstance(cell, nn.Conv2d) and cfg.model_name in ("simvp", "tau"):
            cout, cin_per_group, kh, kw = cell.weight.shape
            factor, calls = simvp_conv_site(name, cfg)
            total += 2 * cout * cin_per_group * kh * kw * (height // factor) * (width // factor) * calls
        elif isinstance(cell, nn.Conv2d) and cfg.model_name in ("mau", "phydnet"):
            cout, cin_per_group, kh, kw = cell.weight.shape
            area, calls = grid_site(name, cfg)
            total += int(2 * cout * cin_per_group * kh * kw * height * width * area) * calls
        elif isinstance(cell, nn.Conv2d):
            cout, cin_per_group, kh, kw = cell.weight.shape
            total += 2 * cout * cin_per_group * kh * kw * height * width * conv_calls(name, cfg)
        elif isinstance(cell, nn.Conv3d):  # E3D-LSTM: 'same' over the window, or a stride that folds it
            cout, cin_per_group, kt, kh, kw = cell.weight.shape
            out_t = cfg.window_length // cell.stride[0]
            total += 2 * cout * cin_per_group * kt * kh * kw * out_t * height * width * conv_calls(name, cfg)
    return total


def peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB -> GiB


def current_rss_gib():
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2 ** 20
    return float("nan")


def timed(fn, repeats, serve=False):
    """(first call s, median of the further calls s, all further times): `repeats` further
    calls, or with serve one per 'step' line from the driver (serve_steps)."""
    began = time.perf_counter()
    fn()
    first = time.perf_counter() - began
    if serve:
        times = serve_steps(fn)
    else:
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            fn()
            times.append(time.perf_counter() - began)
    return first, statistics.median(times), times


def timed_alternately(fns, repeats):
    """[(first call s, median s)] per function, the functions called in turn (A, B, A, B, ...)
    so that a comparison between them sees the same machine load."""
    firsts = []
    for fn in fns:
        began = time.perf_counter()
        fn()
        firsts.append(time.perf_counter() - began)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            began = time.perf_counter()
            fn()
            out.append(time.perf_counter() - began)
    return [(first, statistics.median(t)) for first, t in zip(firsts, times)]


def model_config(model_name, size, batch_size, extra):
    from engine.config import load_config
    return load_config([f"--config_path={MODEL_CONFIGS[model_name]}", *SIZES[size]["overrides"],
                        f"--batch_size={batch_size}", "--reverse_input=false", *extra])


def build_train_step(model_name, size, batch_size, extra):
    """(cfg, net, the GRAPH-mode train step, frame shape [B, T, H, W, C]) for one model."""
    from mindspore import nn
    from engine.device import init_context
    from engine.trainer import NetWithLoss, TrainStep
    from nets.base import frame_dims
    from nets.registry import build_model
    cfg = model_config(model_name, size, batch_size, extra)
    init_context(cfg)
    net = build_model(cfg)
    channel, height, width = frame_dims(cfg)
    step = TrainStep(NetWithLoss(net, cfg.seq_length), nn.Adam(net.trainable_params(), cfg.lr))
    step.set_train()
    return cfg, net, step, (batch_size, cfg.seq_length, height, width, channel)


def serve_steps(fn):
    """Lock-step mode (see lockstep_train): run fn once per 'step' line read from stdin,
    answering 'TIME <s>', until any other line; returns the step times."""
    print("READY", flush=True)
    times = []
    while sys.stdin.readline().strip() == "step":
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
        print(f"TIME {times[-1]}", flush=True)
    return times


def native_conv_description():
    """'isa=0x..; threads=N; forward jit:avx512_core; ...' of the native convolutions, or None
    where MindSpore's own convolutions ran."""
    from layers import native
    return native.conv_describe() if native._built.get(("conv", native.cache_dir())) else None


def measure_train(model_name, size, batch_size, steps, extra, serve=False):
    import numpy as np
    import mindspore as ms
    from data_provider.sampling import train_mask
    from engine.trainer import param_count
    cfg, net, step, shape = build_train_step(model_name, size, batch_size, extra)
    rng = np.random.default_rng(0)
    frames = ms.Tensor(rng.random(shape).astype(np.float32))
    masks = [ms.Tensor(train_mask(i, batch_size, cfg)[0]) for i in range(steps + 1)]
    calls = iter(masks)
    first, median, times = timed(lambda: step(frames, next(calls)).asnumpy(), steps, serve)
    flops = conv_flops_per_sequence(net, cfg)
    return {
        "model": model_name, "size": size, "config": MODEL_CONFIGS[model_name], "num_hidden": (f"S{cfg.hid_S},T{cfg.hid_T}" if model_name in ("simvp", "tau") else
                                   "fixed" if model_name == "phydnet" else cfg.num_hidden),
        "filter_size": cfg.filter_size, "patch_size": cfg.patch_size, "img_height": cfg.img_height,
        "img_width": cfg.img_width,
        "layer_norm": bool(cfg.layer_norm), "frames": f"{cfg.input_length}->{cfg.seq_length - cfg.input_length}",
        "seq_length": cfg.seq_length, "parameters": param_count(net), "forward_gflop_per_sequence": flops / 1e9,
        "train_gflop_per_step": 3 * flops * batch_size / 1e9,
        "batch_size": batch_size, "compile_s": first - median, "train_ms_per_step": 1000 * median,
        "train_step_ms": [1000 * t for t in times], "train_samples_per_s": batch_size / median,
        "train_gflop_per_s": 3 * flops * batch_size / median / 1e9, "train_peak_rss_gib": peak_rss_gib(),
        "native_conv": native_conv_description(),
    }


def cpp_runner():
    """ascend310_infer's program on ONNX Runtime (ascend310_infer/out_onnxruntime/main),
    built when missing or older than its sources, as run_infer_310.sh does."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ascend310_infer")
    app = os.path.join(here, "out_onnxruntime", "main")
    sources = glob.glob(os.path.join(here, "src", "*")) + glob.glob(os.path.join(here, "inc", "*")) \
        + [os.path.join(here, "CMakeLists.txt")]
    if not os.path.exists(app) or os.path.getmtime(app) < max(os.path.getmtime(p) for p in sources):
        env = dict(os.environ, BACKEND="onnxruntime", BUILD_DIR=os.path.dirname(app))
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        proc = subprocess.run(["bash", os.path.join(here, "build.sh")], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError("building the C++ runner failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1])
    return app


def measure_cpp_runner(model, inputs, reference, repeats, batch_size, tmp):
    """Per-sequence latency of the C++ runner on the same ONNX file and input: it times each
    sample's Predict; the first of repeats + 1 samples (session warm-up) is left out."""
    import numpy as np
    folder, results = os.path.join(tmp, "cpp_in"), os.path.join(tmp, "cpp_out")
    os.makedirs(folder, exist_ok=True)
    for i in range(repeats + 1):
        inputs.tofile(os.path.join(folder, f"seq_{i:05d}.bin"))
    proc = subprocess.run([cpp_runner(), f"--model_path={model}", f"--input0_path={folder}",
                           f"--output_dir={results}", "--device_type=CPU"], cwd=tmp, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or ["(no output)"])[0])
    times = [float(t) for t in re.findall(r"^seq_\d+\.bin: ([0-9.]+) ms", proc.stdout, re.M)]
    got = np.fromfile(os.path.join(results, "seq_00000_0.bin"), np.float32).reshape(reference.shape)
    return {"ms_per_sequence": statistics.median(times[1:]) / batch_size, "first_ms": times[0],
            "max_abs_diff": float(np.abs(got - reference).max())}


def measure_inference(model_name, size, batch_size, repeats, extra, formats):
    """Latency per sequence of the exported inference graph (inputs -> future) run three ways."""
    import numpy as np
    import mindspore as ms
    from mindspore import nn
    from engine.device import init_context
    from engine.inference import InferenceNet, export_graph, input_shape
    from nets.registry import build_model
    cfg = model_config(model_name, size, batch_size, extra)
    init_context(cfg)
    infer = InferenceNet(build_model(cfg), cfg, batch_size)  # set_train(False): inference mode
    inputs = np.random.default_rng(0).random(input_shape(cfg, batch_size)).astype(np.float32)
    x = ms.Tensor(inputs)
    out = {}
    run_graph = lambda: infer(x).asnumpy()  # noqa: E731
    began = time.perf_counter()
    reference = run_graph()
    graph_first = time.perf_counter() - began
    tmp = tempfile.mkdtemp(prefix="bench-")
    try:
        mindir = None
        if "mindir" in formats:
            try:
                began = time.perf_counter()
                export_graph(infer, x, file_name=os.path.join(tmp, "net"), file_format="MINDIR")
                export_s = time.perf_counter() - began
                mindir = nn.GraphCell(ms.load(os.path.join(tmp, "net.mindir")))
                began = time.perf_counter()
                diff = float(np.abs(mindir(x).asnumpy() - reference).max())
                out["mindir"] = {"export_s": export_s, "compile_s": time.perf_counter() - began, "max_abs_diff": diff}
            except Exception as e:  # report, do not hide: the table shows the reason
                out["mindir"] = {"error": str(e).strip().splitlines()[0][:200]}
                mindir = None
        if mindir is not None:
            # GRAPH eval and the MINDIR called in turn: timed one after the other they
            # differed by 11-15% on a shared machine, alternately by under 2% either way
            (_, median), (_, mindir_median) = timed_alternately([run_graph, lambda: mindir(x).asnumpy()], repeats)
            out["mindir"]["compile_s"] -= mindir_median
            out["mindir"]["ms_per_sequence"] = 1000 * mindir_median / batch_size
        else:
            _, median, _ = timed(run_graph, repeats)
        out["graph"] = {"compile_s": graph_first - median, "ms_per_sequence": 1000 * median / batch_size}
        if "onnx" in formats:
            try:
                import onnxruntime as ort
                from engine.inference import session_options
                if hasattr(infer.net, "use_exportable_ops"):  # as export.py: ops ONNX export knows
                    infer.net.use_exportable_ops()
                began = time.perf_counter()
                export_graph(infer, x, file_name=os.path.join(tmp, "net"), file_format="ONNX")
                export_s = time.perf_counter() - began
                ort.set_default_logger_severity(4)
                # the session OnnxPredictor (eval_onnx.py, infer.py) makes: threads that do not
                # spin while waiting
                session = ort.InferenceSession(os.path.join(tmp, "net.onnx"), session_options(ort),
                                               providers=["CPUExecutionProvider"])
                # ONNX Runtime's default, spinning threads, for comparison: on a busy 2-core
                # machine spinning cost ~30% (small ConvLSTM: 21-24 vs 14-17 ms/sequence);
                # the two sessions run alternately so that both see the same load
                spinning = ort.InferenceSession(os.path.join(tmp, "net.onnx"), providers=["CPUExecutionProvider"])
                name = session.get_inputs()[0].name
                (first, median), (_, spin_median) = timed_alternately(
                    [lambda: session.run(None, {name: inputs}), lambda: spinning.run(None, {name: inputs})], repeats)
                diff = float(np.abs(session.run(None, {name: inputs})[0] - reference).max())
                out["onnx"] = {"export_s": export_s, "session_s": first - median,
                               "ms_per_sequence": 1000 * median / batch_size, "max_abs_diff": diff,
                               "spinning_ms_per_sequence": 1000 * spin_median / batch_size,
                               "onnxruntime": ort.__version__}
            except Exception as e:
                out["onnx"] = {"error": str(e).strip().splitlines()[0][:200]}
            if "cpp" in formats and "error" not in out["onnx"]:
                try:
                    out["cpp"] = measure_cpp_runner(os.path.join(tmp, "net.onnx"), inputs, reference, repeats,
                                                    batch_size, tmp)
                except Exception as e:
                    out["cpp"] = {"error": str(e).strip().splitlines()[0][:200]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["infer_peak_rss_gib"] = peak_rss_gib()
    return out


def measure_rss(model_name, size, batch_size, checkpoints, extra):
    """Resident memory after given numbers of train steps (a leak shows as growth)."""
    import numpy as np
    import mindspore as ms
    from data_provider.sampling import train_mask
    cfg, _, step, shape = build_train_step(model_name, size, batch_size, extra)
    rng = np.random.default_rng(0)
    out = {}
    for i in range(1, max(checkpoints) + 1):
        # fresh host tensors every step, as the training loop makes them
        frames = ms.Tensor(rng.random(shape).astype(np.float32))
        step(frames, ms.Tensor(train_mask(i, batch_size, cfg)[0])).asnumpy()
        if i in checkpoints:
            out[str(i)] = current_rss_gib()
    return {"rss_gib_at_step": out}


def measure_pipeline(size, batch_size, extra, samples=PIPELINE_SAMPLES):
    """Samples/s of the training input pipeline (MindRecord -> decode -> /255 -> patches ->
    batch, data_provider.mindrecord.iter_batches) over a file of random uint8 clips."""
    import numpy as np
    from data_provider.mindrecord import iter_batches, write_mindrecord
    cfg = model_config("convlstm", size, batch_size, extra)
    tmp = tempfile.mkdtemp(prefix="bench-data-")
    try:
        path = os.path.join(tmp, "clips.mindrecord")
        rng = np.random.default_rng(0)
        clips = rng.integers(0, 256, (samples, cfg.seq_length, cfg.img_height, cfg.img_width, cfg.img_channel),
                             dtype=np.uint8)
        write_mindrecord(path, [clips])
        indices = rng.permutation(samples)
        began = time.perf_counter()
        n = 0
        for frames in iter_batches(path, batch_size, cfg.patch_size, indices, seq_length=cfg.seq_length,
                                   num_parallel_workers=cfg.num_parallel_workers):
            n += len(frames)
        seconds = time.perf_counter() - began
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"samples": n, "seconds": seconds, "samples_per_s": n / seconds}


def torch_command(python, model_name, size, batch_size, steps, extra, openstl="", evaluate=False):
    """(command, environment) of tools/torch_step.py for the same network and step (evaluate:
    its no_grad inference, steps timed calls after a warm-up); openstl: the OpenSTL checkout
    OPENSTL_MODELS need."""
    from engine.errors import UserError
    if model_name in OPENSTL_MODELS and not openstl:
        raise UserError(f"--torch: the PyTorch side of {model_name} runs OpenSTL's own model: give --openstl=PATH")
    cfg = model_config(model_name, size, batch_size, extra)
    cmd = [python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools", "torch_step.py"),
           f"--model={model_name}", f"--num_hidden={cfg.num_hidden}", f"--filter_size={cfg.filter_size}",
           f"--patch_size={cfg.patch_size}", f"--img_width={cfg.img_width}", f"--img_height={cfg.img_height}", f"--img_channel={cfg.img_channel}",
           f"--seq_length={cfg.seq_length}", f"--input_length={cfg.input_length}", f"--batch_size={batch_size}",
           f"--layer_norm={int(bool(cfg.layer_norm))}", f"--steps={steps}", f"--threads={os.cpu_count()}"]
    if model_name == "simvp" and cfg.simvp_model_type != "gsta":
        raise UserError("--torch: the PyTorch side times SimVP's gSTA translator only (simvp_model_type=gsta)")
    if model_name in ("simvp", "tau"):
        cmd += [f"--hid_S={cfg.hid_S}", f"--hid_T={cfg.hid_T}", f"--N_S={cfg.N_S}", f"--N_T={cfg.N_T}",
                f"--mlp_ratio={cfg.mlp_ratio}", f"--alpha={cfg.alpha}"]
    if model_name == "mau":
        cmd += [f"--mau_tau={cfg.mau_tau}", f"--sr_size={cfg.sr_size}", f"--cell_mode={cfg.cell_mode}",
                f"--model_mode={cfg.model_mode}"]
    if model_name in OPENSTL_MODELS:  # MIM's layer_norm and every width travel in the options above
        cmd.append(f"--openstl={os.path.abspath(openstl)}")
    if evaluate:
        cmd.append("--eval")
    env = user_environment()
    # The one setting PyTorch gets, for the lock-step protocol rather than for speed: beside
    # the idle MindSpore process on 2 cores, its spinning OpenMP barriers made a small
    # ConvLSTM step 30x slower (4800 ms/step vs ~150, 2026-12-05); alone it would not wait.
    # The eval column's child runs alone, after ours: PyTorch's own defaults there.
    if not evaluate:
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return cmd, env


def torch_pairing(names, torch_python, openstl):
    """(models whose rows get PyTorch columns, a note naming those left out for want of
    --openstl or None): a missing checkout leaves MIM, MAU and PhyDNet unpaired, not failed."""
    if not torch_python:
        return [], None
    unpaired = [n for n in names if n in OPENSTL_MODELS and not openstl]
    note = (f"--torch: {', '.join(unpaired)} not paired with PyTorch (its side runs OpenSTL's own model "
            f"classes: give --openstl=PATH, a checkout of chengtan9907/OpenSTL)") if unpaired else None
    return [n for n in names if n in TORCH_MODELS and n not in unpaired], note


def measure_torch_eval(torch_python, name, size, batch_size, repeats, extra, openstl):
    """PyTorch eager's no_grad inference at the same config and batch (tools/torch_step.py
    --eval in a process of its own: repeats timed calls after a warm-up; its peak RSS its own).
    Timed after ours rather than call for call in turn with it: compare with care on a busy
    machine. {'error': ...} when the child fails, as the other inference columns report."""
    cmd, env = torch_command(torch_python, name, size, batch_size, repeats, extra, openstl, evaluate=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    result = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not result:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:300]}"}
    return json.loads(result[-1][len("RESULT "):])


def user_environment():
    """The environment a user's own PyTorch (or numpy) run would have: none of this project's
    workarounds. Dropped: OMP_NUM_THREADS (importing mindspore sets it to 1 in the process's
    C environment), LD_LIBRARY_PATH, the oneDNN ISA cap when engine/__init__.py set it (with
    it PyTorch's convolutions fall from AVX-512 to AVX2: 14.1 instead of 9.0 s/step for
    PredRNN++ on a Zen 5 EPYC), OpenBLAS's core-type override (it capped numpy's sgemm at
    ~250 of ~440 GFLOP/s there). The thread count is set on the command line (ours)."""
    import engine
    drop = {"OMP_NUM_THREADS", "LD_LIBRARY_PATH", "OPENBLAS_CORETYPE"}
    if engine.ISA_CAP_SET_HERE:
        drop.add("ONEDNN_MAX_CPU_ISA")
    return {k: v for k, v in os.environ.items() if k not in drop}


def matmul_ceiling():
    """The matmul ceiling of this CPU: the best of numpy's float32 sgemm in a process of its own
    with the user's environment (no OpenBLAS core-type override), in this process, and
    oneDNN's sgemm at the full ISA; returns (ceiling, numpy here, numpy clean, oneDNN)."""
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            "from benchmark import numpy_matmul_gflops; print(numpy_matmul_gflops())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=user_environment())
    try:
        clean = float(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        clean = None
    here = numpy_matmul_gflops()
    onednn = onednn_sgemm_gflops()
    return max(here, clean or 0.0, onednn or 0.0), here, clean, onednn


def onednn_sgemm_gflops(n=2048, repeats=10):
    """oneDNN's float32 sgemm at the CPU's full ISA (the wheel the native convolutions run
    on, uncapped the way they uncap it): numpy's OpenBLAS does not know every CPU (on an
    unrecognised model it falls back to a generic SSE3 kernel), so it alone understates the
    ceiling. None without that oneDNN."""
    import ctypes
    import numpy as np
    from layers import native
    paths = native.dnnl_paths()
    if paths is None:
        return None
    lib = ctypes.CDLL(paths[1], mode=os.RTLD_LOCAL | getattr(os, "RTLD_DEEPBIND", 0))
    lib.dnnl_set_max_cpu_isa(0)  # dnnl_cpu_isa_default: no cap
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    c = np.empty((n, n), np.float32)
    ptr = lambda x: x.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    args = (ctypes.c_char(b"N"), ctypes.c_char(b"N"), ctypes.c_int64(n), ctypes.c_int64(n), ctypes.c_int64(n),
            ctypes.c_float(1.0), ptr(a), ctypes.c_int64(n), ptr(b), ctypes.c_int64(n), ctypes.c_float(0.0), ptr(c),
            ctypes.c_int64(n))
    if lib.dnnl_sgemm(*args) != 0:
        return None
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        lib.dnnl_sgemm(*args)
        times.append(time.perf_counter() - began)
    return 2 * n ** 3 / min(times) / 1e9


def numpy_matmul_gflops(n=2048, repeats=10):
    import numpy as np
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    a @ b
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - began)
    # a ceiling: the fastest repeat (on a shared machine the median caught other load and
    # came out below what the models themselves reached)
    return 2 * n ** 3 / min(times) / 1e9


def cpu_isa():
    """The widest x86 vector ISA /proc/cpuinfo lists (what an uncapped library may use)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")):
        if flag in flags:
            return name
    return platform.machine()


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def torch_eval_cell(inf):
    """The PyTorch eager eval cell: its ms per sequence (GRAPH eval's over it; its peak RSS)."""
    entry = inf.get("torch")
    if not entry:
        return "-"
    if "error" in entry or entry.get("ms_per_sequence") is None:
        return "n/a"
    value = entry["ms_per_sequence"]
    text = format(value, ".1f" if value < 10 else ".0f")
    graph = (inf.get("graph") or {}).get("ms_per_sequence")
    ratio = f"{graph / value:.2f}x; " if graph is not None and value > 0 else ""
    return f"{text} ({ratio}{_fmt(entry.get('peak_rss_gib'), '.1f')} GiB)"


def markdown(report):
    peak = report["numpy_matmul_gflops"]
    lines = [] if not report["rows"] else ["| model | size | hidden | params | batch | train GFLOP / step | train ms/step | samples/s | "
             "GFLOP/s (% of matmul peak) | compile s | eval ms/seq GRAPH | MINDIR | ONNX RT (spinning) | C++ ONNX RT | "
             "PyTorch eager eval ms/seq (GRAPH / PT; RSS) | "
             "pipeline / training samples/s | PyTorch eager ms/step (MS / PT) | peak RSS GiB train / infer |",
             "|" + "---|" * 18]
    for r in report["rows"]:
        inf = r.get("inference", {})

        def latency(kind):
            entry = inf.get(kind) or {}
            if "error" in entry:
                return "n/a"
            value = entry.get("ms_per_sequence")
            spec = ".1f" if value is not None and value < 10 else ".0f"  # tiny models: keep a decimal
            text = _fmt(value, spec)
            if "spinning_ms_per_sequence" in entry:
                text += f" ({entry['spinning_ms_per_sequence']:{spec}})"
            return text
        torch = r.get("torch") or {}
        if "train_ms_per_step" in torch:
            torch_cell = f"{torch['train_ms_per_step']:.0f} ({r['train_ms_per_step'] / torch['train_ms_per_step']:.2f}x)"
        else:
            torch_cell = "-"
        pipe = r.get("pipeline_ratio")
        lines.append(
            f"| {r['model']} | {r['size']} | {r['num_hidden']} | {r['parameters'] / 1e6:.2f} M | {r['batch_size']} | "
            f"{r['train_gflop_per_step']:.1f} | {r['train_ms_per_step']:.0f} | {r['train_samples_per_s']:.2f} | "
            f"{r['train_gflop_per_s']:.1f} ({100 * r['train_gflop_per_s'] / peak:.0f}%) | {r['compile_s']:.0f} | "
            f"{latency('graph')} | {latency('mindir')} | {latency('onnx')} | {latency('cpp')} | "
            f"{torch_eval_cell(inf)} | {_fmt(pipe, '.0f')}x | {torch_cell} | "
            f"{r['train_peak_rss_gib']:.1f} / {_fmt(inf.get('infer_peak_rss_gib'), '.1f')} |")
    onednn = report.get("onednn_sgemm_gflops")
    lines.append(f"\n{report['date']}, {report['machine']} ({report['cpus']} CPUs, up to "
                 f"{report.get('cpu_isa', '?')}), MindSpore {report['mindspore']} with its oneDNN capped at "
                 f"{report.get('onednn_max_cpu_isa') or 'none'}; convolutions: "
                 f"{'native (layers/native/conv.cc on oneDNN: ' + report['native_conv'] + ')' if report.get('native_conv') else 'MindSpore' + chr(39) + 's'}; "
                 f"matmul ceiling in the same run: {peak:.0f} GFLOP/s (the best of oneDNN's sgemm at the full "
                 f"ISA{f' ({onednn:.0f})' if onednn else ': not installed'} and numpy's, in this process"
                 f"{' with OPENBLAS_CORETYPE=' + report['openblas_coretype'] if report.get('openblas_coretype') else ''}"
                 f" ({report.get('numpy_matmul_gflops_as_configured') or 0:.0f}) and in a child without the project's "
                 f"settings ({report.get('numpy_matmul_gflops_user_env') or 0:.0f})).")
    torch_rows = [r["torch"] for r in report.get("rows", []) if isinstance(r.get("torch"), dict)]
    evals = [(r.get("inference") or {}).get("torch") for r in report.get("rows", [])]
    torch_rows += [t for t in evals if isinstance(t, dict) and "error" not in t]
    if torch_rows:
        t = torch_rows[0]
        lines.append(f"PyTorch {t.get('torch', '?')}: {t.get('threads', '?')} threads, CPU kernels "
                     f"{t.get('cpu_capability', '?')}, oneDNN cap {t.get('onednn_max_cpu_isa') or 'none'} "
                     f"(its own defaults; in training only OMP_WAIT_POLICY=PASSIVE, for the lock-step protocol); "
                     f"its eval is no_grad at its defaults in a process of its own, timed after ours.")
    for size, pipe in report.get("pipelines", {}).items():
        lines.append(f"MindRecord pipeline ({size}): {pipe['samples_per_s']:.0f} samples/s.")
    if report.get("rss"):
        lines.append("\n| model | size | batch | RSS GiB at step " + " | ".join(report["rss_steps"]) + " |")
        lines.append("|---|---|---|" + "---|" * len(report["rss_steps"]))
        for r in report["rss"]:
            values = " | ".join(f"{r['rss_gib_at_step'][s]:.3f}" for s in report["rss_steps"])
            lines.append(f"| {r['model']} | {r['size']} | {r['batch_size']} | {values} |")
    return "\n".join(lines)


class _Server:
    """A child in lock-step mode: started, then driven one 'step' line at a time."""

    def __init__(self, cmd, env=None):
        self.log = tempfile.TemporaryFile(mode="w+")  # stderr: MindSpore's warnings must not fill a pipe
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env=env)

    def expect(self, prefix):
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        self.proc.wait()
        self.log.seek(0)
        tail = (self.log.read().strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"exit {self.proc.returncode}: {tail[:300]}")

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self):
        self.send("done")
        result = json.loads(self.expect("RESULT "))
        self.proc.wait()
        self.log.close()
        return result


def lockstep_train(ms_args, torch_cmd, torch_env, steps):
    """MindSpore's and PyTorch's train steps timed in turn (MS, PT, MS, PT, ...) in two live
    processes, so that both see the same machine load: timed one process after the other
    on this shared machine, the same MindSpore step came out 77-118 ms minutes apart.
    Returns (MindSpore row, PyTorch result), each with its own medians and peak RSS. The
    PyTorch process starts after MindSpore's compile, so the compile time is its own."""
    servers = []
    try:
        servers.append(_Server([sys.executable, os.path.abspath(__file__)] + ms_args + ["--serve=1"]))
        servers[0].expect("READY")
        servers.append(_Server(torch_cmd + ["--serve"], torch_env))
        servers[1].expect("READY")
        for _ in range(steps):
            for server in servers:
                server.send("step")
                server.expect("TIME ")
        return servers[0].finish(), servers[1].finish()
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.proc.kill()


def run_child(args):
    cmd = [sys.executable, os.path.abspath(__file__)] + args
    proc = subprocess.run(cmd, capture_output=True, text=True)
    result = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not result:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:300]}"}
    return json.loads(result[-1][len("RESULT "):])


def main(argv):
    from engine.config import parse_cli
    from engine.errors import UserError
    args = parse_cli(argv)
    models = args.pop("models", "all")
    sizes = args.pop("size", "small,mmnist").split(",")
    batch_arg = args.pop("batch_size", "")
    steps = int(args.pop("steps", 3))
    repeats = int(args.pop("eval_repeats", 3))
    out = args.pop("out", "bench")
    parts = args.pop("parts", "train,infer,pipeline").split(",")
    formats = args.pop("formats", "mindir,onnx,cpp").split(",")
    torch_python = args.pop("torch", "")
    openstl = args.pop("openstl", "")
    rss_steps = [int(v) for v in args.pop("rss_steps", "").split(",") if v]
    one = args.pop("one", "")
    serve = args.pop("serve", "0") in ("1", "true")
    part = args.pop("part", "train")
    extra = [f"--{k}={v}" for k, v in args.items()]
    names = list(MODEL_CONFIGS) if models == "all" else models.split(",")
    unknown = sorted(set(parts) - {"train", "infer", "pipeline"})
    if unknown:
        raise UserError(f"--parts: unknown part {unknown[0]!r} (train, infer, pipeline)")
    if "infer" in parts and "train" not in parts:
        # a table row is a training run with its inference columns beside it
        raise UserError("--parts=infer needs train as well: use --parts=train,infer")
    for name in names:
        if name not in MODEL_CONFIGS:
            raise UserError(f"--models: unknown model {name!r}; known: {', '.join(MODEL_CONFIGS)}")
    for size in sizes:
        if size not in SIZES:
            raise UserError(f"--size: unknown size {size!r}; known: {', '.join(SIZES)}")
    if one:  # child mode: one model and part per process, so that peak RSS is that part's own
        size, batch_size = sizes[0], int(batch_arg or SIZES[sizes[0]]["batch_size"])
        if part == "train":
            result = measure_train(one, size, batch_size, steps, extra, serve)
        elif part == "infer":
            result = measure_inference(one, size, batch_size, repeats, extra, formats)
        elif part == "rss":
            result = measure_rss(one, size, batch_size, rss_steps, extra)
        else:
            result = measure_pipeline(size, batch_size, extra)
        print("RESULT " + json.dumps(result), flush=True)
        return
    if torch_python == "auto":
        import importlib.util
        torch_python = sys.executable if importlib.util.find_spec("torch") else ""
    paired_models, unpaired_note = torch_pairing(names, torch_python, openstl)
    if unpaired_note:
        print(unpaired_note, flush=True)
    if openstl and any(n in OPENSTL_MODELS for n in paired_models) \
            and not os.path.isdir(os.path.join(openstl, "openstl", "models")):
        raise UserError(f"--openstl={openstl}: not a checkout of chengtan9907/OpenSTL (no openstl/models/)")
    import mindspore
    peak, peak_here, peak_clean, peak_onednn = matmul_ceiling()
    rows, rss_rows, pipelines = [], [], {}
    for size in sizes:
        batch_size = int(batch_arg or SIZES[size]["batch_size"])
        common = [f"--size={size}", f"--batch_size={batch_size}", f"--steps={steps}",
                  f"--eval_repeats={repeats}", f"--formats={','.join(formats)}"] + extra
        if "pipeline" in parts:
            print(f"benchmarking the data pipeline ({size}) ...", flush=True)
            pipelines[size] = run_child(["--one=pipeline", "--part=pipeline"] + common)
            if "error" in pipelines[size]:
                raise UserError(f"pipeline benchmark failed: {pipelines[size]['error']}")
        for name in names:
            if "train" in parts:
                paired = name in paired_models
                print(f"benchmarking {name} ({size}): train{' alternately with PyTorch eager' if paired else ''} ...",
                      flush=True)
                if paired:
                    try:
                        row, row_torch = lockstep_train([f"--one={name}", "--part=train"] + common,
                                                        *torch_command(torch_python, name, size, batch_size, steps,
                                                                       extra, openstl), steps)
                    except RuntimeError as e:
                        raise UserError(f"benchmark of {name} ({size}) failed: {e}") from None
                    row["torch"] = row_torch
                    if row_torch.get("parameters") not in (None, row.get("parameters")):
                        # the two sides should be the same network: say so where they are not
                        print(f"note: {name} ({size}): {row.get('parameters')} parameters here, "
                              f"{row_torch['parameters']} in PyTorch", flush=True)
                else:
                    row = run_child([f"--one={name}", "--part=train"] + common)
                if "error" in row:
                    raise UserError(f"benchmark of {name} ({size}) failed: {row['error']}")
                if "infer" in parts:
                    print(f"benchmarking {name} ({size}): inference ...", flush=True)
                    row["inference"] = run_child([f"--one={name}", "--part=infer"] + common)
                    if paired:
                        print(f"benchmarking {name} ({size}): inference in PyTorch eager ...", flush=True)
                        row["inference"]["torch"] = measure_torch_eval(torch_python, name, size, batch_size, repeats,
                                                                       extra, openstl)
                if size in pipelines:
                    row["pipeline_ratio"] = pipelines[size]["samples_per_s"] / row["train_samples_per_s"]
                rows.append(row)
                print(json.dumps(row), flush=True)
            if rss_steps:
                print(f"RSS over {max(rss_steps)} steps: {name} ({size}) ...", flush=True)
                probe = run_child([f"--one={name}", "--part=rss", f"--rss_steps={','.join(map(str, rss_steps))}"]
                                  + common)
                if "error" in probe:
                    raise UserError(f"RSS probe of {name} ({size}) failed: {probe['error']}")
                rss_rows.append({"model": name, "size": size, "batch_size": batch_size, **probe})
                print(json.dumps(rss_rows[-1]), flush=True)
    report = {"date": time.strftime("%Y-%m-%d"), "machine": cpu_model(), "cpus": os.cpu_count(),
              "python": sys.version.split()[0], "mindspore": mindspore.__version__,
              "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
              "cpu_isa": cpu_isa(), "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
              "numpy_matmul_gflops": peak, "numpy_matmul_gflops_as_configured": peak_here,
              "numpy_matmul_gflops_user_env": peak_clean, "onednn_sgemm_gflops": peak_onednn,
              "native_conv": next((r["native_conv"] for r in rows if r.get("native_conv")), None),
              "pipelines": pipelines, "rows": rows,
              "rss_steps": [str(s) for s in rss_steps], "rss": rss_rows}
    os.makedirs(out, exist_ok=True)
    for name, text in (("benchmark.json", json.dumps(report, indent=2)), ("benchmark.md", None)):
        text = text if text is not None else markdown(report) + "\n"
        tmp = os.path.join(out, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, os.path.join(out, name))
    print(markdown(report))


if __name__ == "__main__":
    run_cli(main)
