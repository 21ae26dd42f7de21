"""Evaluation: per-frame metrics of a model on a test MindRecord, beside two trivial
baselines (copy the last input frame; predict all black), with pictures on request."""
import json
import os
import time

import numpy as np
import mindspore as ms

from data_provider.mindrecord import create_dataset
from data_provider.patch import reshape_patch_back
from data_provider.sampling import test_mask
from engine.checkpoint import latest_checkpoint, load_weights
from engine.config import require_file
from engine.errors import UserError
from engine.device import init_context
from engine.log import RunLog, format_duration, timestamp
from engine.metrics import FrameMetrics, all_black_baseline, copy_last_baseline, format_comparison, format_report
from engine.trainer import check_data_fits
from engine.visualize import save_gif, save_strip_png
from nets.registry import build_model


def predict_batches(net, cfg, dataset_path, max_sequences=0):
    """Yield (inputs+truth frames [B,T,H,W,C], predicted future [B,T-input,H,W,C]) in [0,1].

    The last partial batch is padded to eval_batch_size so that one compiled graph serves
    every batch; the padding is dropped from what is yielded.
    """
    bs = cfg.eval_batch_size
    info = check_data_fits(cfg, dataset_path, "test_mindrecord")
    total = info["num_samples"] if max_sequences <= 0 else min(max_sequences, info["num_samples"])
    dataset = create_dataset(dataset_path, bs, cfg.patch_size, indices=np.arange(total),
                             drop_remainder=False, seq_length=cfg.seq_length,
                             num_parallel_workers=cfg.num_parallel_workers)
    mask = ms.Tensor(test_mask(bs, cfg.seq_length, cfg.input_length))
    future = cfg.seq_length - cfg.input_length
    for (frames,) in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True):
        n = frames.shape[0]
        if n < bs:
            frames = np.concatenate([frames, np.zeros((bs - n,) + frames.shape[1:], frames.dtype)])
        pred = net(ms.Tensor(frames), mask).asnumpy()[:n, -future:]
        yield reshape_patch_back(frames[:n], cfg.patch_size), reshape_patch_back(pred, cfg.patch_size)


def resolve_latest(cfg):
    """--pretrained_model=latest: the newest checkpoint of this model in save_dir."""
    if cfg.pretrained_model == "latest":
        found = latest_checkpoint(cfg.save_dir, cfg.model_name)
        if not found:
            raise UserError(f"config key 'pretrained_model': no {cfg.model_name}-*.ckpt in save_dir {cfg.save_dir}")
        cfg.pretrained_model = found


def evaluate(cfg, log=None):
    """Evaluate cfg.pretrained_model on cfg.test_mindrecord; returns the summaries by name."""
    require_file(cfg, "test_mindrecord")
    resolve_latest(cfg)
    require_file(cfg, "pretrained_model")
    target = init_context(cfg)
    os.makedirs(cfg.eval_dir, exist_ok=True)
    log = log or RunLog(os.path.join(cfg.eval_dir, "log.txt"), mode="w")
    net = build_model(cfg)
    step = load_weights(net, cfg.pretrained_model)
    net.set_train(False)
    log(f"[{timestamp()}] eval {cfg.model_name} on {target}: {cfg.pretrained_model}"
        f"{f' (step {step})' if step is not None else ''}, data {cfg.test_mindrecord}")

    metrics = {"model": FrameMetrics(), "copy-last": FrameMetrics(), "all-black": FrameMetrics()}
    future = cfg.seq_length - cfg.input_length
    saved = 0
    began = time.perf_counter()
    last_report = began
    seen = 0
    for frames, pred in predict_batches(net, cfg, cfg.test_mindrecord, cfg.eval_max_sequences):
        inputs, truth = frames[:, :cfg.input_length], frames[:, cfg.input_length:cfg.seq_length]
        metrics["model"].update(pred, truth)
        metrics["copy-last"].update(copy_last_baseline(inputs, future), truth)
        metrics["all-black"].update(all_black_baseline(truth.shape), truth)
        while saved < cfg.save_predictions and saved - seen < len(frames):
            i = saved - seen
            stem = os.path.join(cfg.eval_dir, "predictions", f"seq_{saved:04d}")
            save_strip_png(inputs[i], truth[i], pred[i], stem + ".png")
            save_gif(inputs[i], truth[i], pred[i], stem + ".gif")
            saved += 1
        seen += len(frames)
        now = time.perf_counter()
        if now - last_report > 10:
            log(f"  {seen} sequences, {seen / (now - began):.1f}/s, {format_duration(now - began)} elapsed")
            last_report = now

    summaries = {name: m.summary() for name, m in metrics.items()}
    log(f"{seen} sequences evaluated in {format_duration(time.perf_counter() - began)}")
    log(format_report(summaries["model"]))
    log("")
    log(format_comparison(summaries))
    if saved:
        log(f"prediction pictures (inputs / truth / prediction): {os.path.join(cfg.eval_dir, 'predictions')}")
    out = {"model_name": cfg.model_name, "checkpoint": cfg.pretrained_model, "step": step,
           "test_mindrecord": cfg.test_mindrecord, "num_sequences": seen, "metrics": summaries}
    path = os.path.join(cfg.eval_dir, "metrics.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, path)
    log(f"metrics written to {path} and {os.path.join(cfg.eval_dir, 'log.txt')}")
    return summaries
