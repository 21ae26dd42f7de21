"""Evaluation: per-frame metrics of a model on a test MindRecord, beside two trivial
baselines (copy the last input frame; predict all black), with pictures on request."""
import json
import os
import time

import numpy as np

from data_provider.mindrecord import create_dataset
from data_provider.patch import reshape_patch_back
from engine.checkpoint import checkpoint_name_step, latest_checkpoint
from engine.config import make_output_dir, require_file
from engine.device import init_context
from engine.errors import UserError
from engine.log import RunLog, format_duration, timestamp
from engine.inference import make_predictor, sequence_noise
from engine.colormaps import colour_bar, displayable, stack_vertically
from engine.data_units import units_for
from engine.metrics import (DataMetrics, FrameMetrics, SampleMetrics, all_black_baseline, copy_last_baseline,
                            format_comparison, format_data_comparison, format_report, format_sample_report)
from engine.trainer import check_data_fits
from engine.visualize import save_gif, save_strip_png


def predict_batches(predictor, cfg, dataset_path, max_sequences=0, num_samples=1):
    """Yield (inputs+truth frames [B,T,H,W,C], predicted future [B,T-input,H,W,C]) in [0,1];
    for a stochastic model with num_samples > 1 the prediction is [N, B, T-input, H, W, C],
    sample k of test sequence i drawn with the noise sequence_noise(cfg, [i], k)."""
    info = check_data_fits(cfg, dataset_path, "test_mindrecord")
    total = info["num_samples"] if max_sequences <= 0 else min(max_sequences, info["num_samples"])
    dataset = create_dataset(dataset_path, cfg.eval_batch_size, cfg.patch_size, indices=np.arange(total),
                             drop_remainder=False, seq_length=cfg.seq_length,
                             num_parallel_workers=cfg.num_parallel_workers)
    seen = 0
    for (frames,) in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True):
        inputs = frames[:, :cfg.input_length]
        if not predictor.stochastic:
            pred = reshape_patch_back(predictor.predict(inputs), cfg.patch_size)
        else:
            index = range(seen, seen + len(frames))
            draws = [predictor.predict(inputs, sequence_noise(cfg, index, k, predictor.noise_dim))
                     for k in range(num_samples)]
            pred = np.stack([reshape_patch_back(d, cfg.patch_size) for d in draws])
            if num_samples == 1:
                pred = pred[0]
        seen += len(frames)
        yield reshape_patch_back(frames, cfg.patch_size), pred


class Scorer:
    """The model's predictions and the two trivial baselines (copy the last input frame;
    all black), scored per frame; shared by eval.py and the 310 protocol's postprocess.

    With units (engine.data_units.DataUnits, non-8-bit data), predictions are limited to
    the training data's range, the [0, 1] metrics (SSIM, PSNR, MSE, MAE) see frames scaled
    to that range, and MSE / MAE / RMSE are also taken in the data's own units; 'all
    black' is then the low end of the range."""

    NAMES = ("model", "copy-last", "all-black")

    def __init__(self, units=None):
        self.units = units
        self.metrics = {name: FrameMetrics() for name in self.NAMES}
        self.data_metrics = None if units is None else {name: DataMetrics() for name in self.NAMES}

    def view(self, x):
        """What the [0, 1] metrics and the pictures see."""
        return x if self.units is None else self.units.to_unit(x)

    def limit(self, pred):
        return pred if self.units is None else self.units.clip_model(pred)

    def update(self, inputs, truth, pred):
        """inputs [B, T_in, H, W, C], truth and the (limited) prediction [B, T_out, H, W, C]."""
        black = all_black_baseline(truth.shape)
        if self.units is not None:
            black = black + self.units.to_model(self.units.low)
        predictions = {"model": pred, "copy-last": copy_last_baseline(inputs, truth.shape[1]), "all-black": black}
        for name, p in predictions.items():
            self.metrics[name].update(self.view(p), self.view(truth))
            if self.data_metrics is not None:
                self.data_metrics[name].update(self.units.to_data(p), self.units.to_data(truth))

    def summaries(self):
        """({name: summary} of the [0, 1] metrics, the same in the data's units or None)."""
        data = None if self.data_metrics is None else {n: m.summary() for n, m in self.data_metrics.items()}
        return {n: m.summary() for n, m in self.metrics.items()}, data

    def report(self, log):
        summaries, data = self.summaries()
        log(format_report(summaries["model"]))
        log("")
        log(format_comparison(summaries))
        if data is not None:
            log("")
            log(format_data_comparison(data))
        return summaries, data


def save_pictures(inputs, truth, pred, stem, colormap=None):
    """stem.png (rows: inputs, truth, prediction) and stem.gif of frames in [0, 1]: grey or RGB
    as they are; one channel of non-8-bit data through `colormap`; other channel counts as
    one block of rows per channel (the GIF shows the first)."""
    parts = [displayable(x, colormap) for x in (inputs, truth, pred)]
    if len(parts[0]) == 1:
        save_strip_png(parts[0][0], parts[1][0], parts[2][0], stem + ".png")
    else:
        pieces = [save_strip_png(a, b, c, f"{stem}.c{k}.png") for k, (a, b, c) in enumerate(zip(*parts))]
        stack_vertically(pieces, stem + ".png")
        for piece in pieces:
            os.remove(piece)
    save_gif(parts[0][0], parts[1][0], parts[2][0], stem + ".gif")


def resolve_latest(cfg, log=print):
    """--pretrained_model=latest: the newest checkpoint of this model in save_dir (training
    keeps one run per save_dir, so it is the newest of the last run); says which it took."""
    if cfg.pretrained_model == "latest":
        found = latest_checkpoint(cfg.save_dir, cfg.model_name)
        if not found:
            raise UserError(f"config key 'pretrained_model': no {cfg.model_name}-*.ckpt in save_dir {cfg.save_dir}")
        cfg.pretrained_model = found
        log(f"pretrained_model=latest: {describe_model_file(found)}")


def describe_model_file(path):
    """'PATH (step N)' for a training checkpoint named MODEL-STEP.ckpt, else the path."""
    step = checkpoint_name_step(path)
    return f"{path} (step {step})" if step is not None else path


def batch_size_alias(cfg, log=print):
    """eval.py reads eval_batch_size; a --batch_size on its command line (and no
    --eval_batch_size) is taken for it, and said so."""
    keys = getattr(cfg, "cli_keys", frozenset())
    if "batch_size" in keys and "eval_batch_size" not in keys and cfg.eval_batch_size != cfg.batch_size:
        log(f"notice: eval uses --batch_size={cfg.batch_size} as eval_batch_size (the key it reads)")
        cfg.eval_batch_size = cfg.batch_size


def evaluate(cfg, log=None, model_key="pretrained_model", log_name="log.txt"):
    """Evaluate the checkpoint, MINDIR or ONNX file in cfg[model_key] on cfg.test_mindrecord;
    returns the summaries by name (model, copy-last, all-black)."""
    require_file(cfg, "test_mindrecord")
    if model_key == "pretrained_model":
        resolve_latest(cfg)
    source = require_file(cfg, model_key)
    target = init_context(cfg)
    make_output_dir(cfg, "eval_dir")
    log = log or RunLog(os.path.join(cfg.eval_dir, log_name), mode="w")
    predictor = make_predictor(cfg, source, cfg.eval_batch_size, notice=log)
    log(f"[{timestamp()}] eval {cfg.model_name} ({predictor.kind}, batch {predictor.batch_size}) on {target}: "
        f"{describe_model_file(source)}, data {cfg.test_mindrecord}")
    # pictures go to a folder per model file, so evaluating another checkpoint (or an
    # export) into the same eval_dir keeps the earlier pictures
    picture_dir = os.path.join(cfg.eval_dir, "predictions", os.path.splitext(os.path.basename(source))[0])
    num_samples = cfg.num_samples
    if num_samples > 1 and not predictor.stochastic:
        log(f"notice: {cfg.model_name} is deterministic; num_samples={num_samples} ignored")
        num_samples = 1
    if predictor.stochastic:
        log(f"stochastic model: {num_samples} sampled future(s) per sequence"
            + ("; the table's 'model' column scores the mean of the samples" if num_samples > 1 else ""))

    # non-8-bit data: SSIM, PSNR and the pictures work on frames scaled to [0, 1] over the
    # training data's range; MSE / MAE / RMSE are also reported in the data's own units
    units = units_for(cfg, keys=("test_mindrecord",))
    if units is not None:
        log(f"data: {units.describe()}")
    scorer = Scorer(units)
    view = scorer.view
    samples = SampleMetrics() if num_samples > 1 else None
    saved = 0
    began = time.perf_counter()
    last_report = began
    seen = 0
    for frames, pred in predict_batches(predictor, cfg, cfg.test_mindrecord, cfg.eval_max_sequences, num_samples):
        inputs, truth = frames[:, :cfg.input_length], frames[:, cfg.input_length:cfg.seq_length]
        pred = scorer.limit(pred)  # normalized data: to the data range, as to_uint8 clips to [0, 1]
        if samples is not None:
            samples.update(view(pred), view(truth))
            pred = pred.mean(axis=0)  # the mean prediction: comparable with deterministic models' MSE
        scorer.update(inputs, truth, pred)
        while saved < cfg.save_predictions and saved - seen < len(frames):
            i = saved - seen
            save_pictures(view(inputs[i]), view(truth[i]), view(pred[i]),
                          os.path.join(picture_dir, f"seq_{saved:04d}"), None if units is None else cfg.colormap)
            saved += 1
        seen += len(frames)
        now = time.perf_counter()
        if now - last_report > 10:
            log(f"  {seen} sequences, {seen / (now - began):.1f}/s, {format_duration(now - began)} elapsed")
            last_report = now

    log(f"{seen} sequences evaluated in {format_duration(time.perf_counter() - began)}")
    summaries, data_summaries = scorer.report(log)
    if samples is not None:
        log("")
        log(format_sample_report(samples.summary()))
    if saved:
        log(f"prediction pictures (inputs / truth / prediction): {picture_dir}")
        if units is not None and units.channels == 1 and cfg.colormap != "grey":
            bar = colour_bar(os.path.join(picture_dir, "colour_bar.png"), cfg.colormap, float(units.low[0]),
                             float(units.high[0]), label="data units")
            log(f"colour bar ({cfg.colormap}, data units): {bar}")
    out = {"model_name": cfg.model_name, "model_file": source, "step": checkpoint_name_step(source),
           "backend": predictor.kind,
           "test_mindrecord": cfg.test_mindrecord, "num_sequences": seen, "metrics": summaries}
    if data_summaries is not None:
        out["data_units"] = {"method": units.method, "description": units.source,
                             "min": units.low.tolist(), "max": units.high.tolist()}
        out["metrics_data_units"] = data_summaries
    if samples is not None:
        out["num_samples"] = num_samples
        out["samples"] = samples.summary()
    path = os.path.join(cfg.eval_dir, os.path.splitext(log_name)[0].replace("log", "metrics", 1) + ".json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, path)
    log(f"metrics written to {path} and {os.path.join(cfg.eval_dir, log_name)}")
    return summaries
