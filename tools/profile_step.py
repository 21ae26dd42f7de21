"""Where a train step's time goes: runs mindspore.Profiler over a few GRAPH-mode train steps
of one model and prints the operator time per step by group (convolution forward /
backward, tensor LayerNorm, optimizer, the rest by operator type).

    python tools/profile_step.py --config_path=configs/predrnn_pp_mmnist.yaml \
        --batch_size=2 --seq_length=8 --input_length=4 [--steps=3] [--profile_dir=/tmp/prof]

Any config key may be overridden as in train.py; reverse_input is off. The first step
(graph compile) is not profiled.
"""
import collections
import csv
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import engine  # noqa: E402,F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli  # noqa: E402


def group(row):
    name, kind = row["full_op_name"], row["op_type"]
    side = "backward" if name.startswith("Gradients") else "forward"
    if kind.startswith("Conv2D") or kind.startswith("Conv3D"):
        return f"convolution {side}"
    if "AffineNorm" in name:  # its written backward runs under Default/, not Gradients/
        return "layer norm forward + backward"
    if "TensorLayerNorm" in name or "LayerNorm" in name:
        return f"layer norm {side}"
    if "optimizer" in name:
        return "optimizer"
    return f"{kind} {side}"


def main(argv):
    import numpy as np
    import mindspore as ms
    from mindspore import nn
    from data_provider.sampling import train_mask
    from engine.config import load_config, parse_cli
    from engine.device import init_context
    from engine.trainer import NetWithLoss, TrainStep
    from nets.base import frame_dims
    from nets.registry import build_model
    args = parse_cli(argv)
    steps = int(args.pop("steps", 3))
    out = args.pop("profile_dir", "/tmp/profile_step")
    cfg = load_config([f"--{k}={v}" for k, v in args.items()] + ["--reverse_input=false"])
    init_context(cfg)
    net = build_model(cfg)
    channel, height, width = frame_dims(cfg)
    step = TrainStep(NetWithLoss(net, cfg.seq_length), nn.Adam(net.trainable_params(), cfg.lr))
    step.set_train()
    frames = ms.Tensor(np.random.default_rng(0).random((cfg.batch_size, cfg.seq_length, height, width, channel))
                       .astype(np.float32))
    mask = ms.Tensor(train_mask(0, cfg.batch_size, cfg)[0])
    began = time.perf_counter()
    step(frames, mask).asnumpy()
    print(f"compile + first step: {time.perf_counter() - began:.1f} s", flush=True)
    profiler = ms.Profiler(output_path=out)
    wall = []
    for _ in range(steps):
        began = time.perf_counter()
        step(frames, mask).asnumpy()
        wall.append(time.perf_counter() - began)
    profiler.analyse()
    files = sorted(glob.glob(os.path.join(out, "**", "cpu_op_detail_info_*.csv"), recursive=True),
                   key=os.path.getmtime)
    if not files:
        print(f"no cpu_op_detail_info csv under {out}")
        return
    with open(files[-1], encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    per_group = collections.Counter()
    for row in rows:
        per_group[group(row)] += float(row["op_total_time(ms)"]) / steps
    total = sum(per_group.values())
    print(f"wall ms/step: {', '.join(f'{1000 * w:.0f}' for w in wall)}; operator time {total:.0f} ms/step")
    for name, ms_per_step in per_group.most_common(15):
        print(f"  {name:32s} {ms_per_step:9.0f} ms  {100 * ms_per_step / total:5.1f}%")


if __name__ == "__main__":
    run_cli(main)
