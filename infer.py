"""Predict the future of your own clip (no ground truth needed):

    python infer.py --input_clip=PATH --pretrained_model=CKPT|MODEL.mindir|MODEL.onnx
                    [--config_path=configs/X.yaml] [--infer_dir=DIR] [--resize=true]

PATH is a .npy of [T, H, W] or [T, H, W, C] (uint8, or float in [0, 1]), a folder of PNG/JPG
frames (natural name order) or a GIF. The last input_length frames are the model's input;
frames must be img_height x img_width unless --resize=true. The config must describe the
model (model_name, num_hidden, patch_size, input_length, seq_length, ...): pass the
--config_path it was trained or exported with.

Writes to --infer_dir (default ./infer_output/): pred_00.png ... (one per
predicted frame), prediction.gif (inputs, then predictions) and prediction.npy
(float32 [seq_length - input_length, H, W, C] in [0, 1]).

A model trained on normalized data (16-bit or float, generate_mindrecord.py --dataset=custom)
takes the clip as a .npy in the data's own units and writes prediction.npy in them: the
normalization is read from the NAME.mindrecord.json beside --train_mindrecord (or
--test_mindrecord), so pass the data keys the model was trained with.

Stochastic models (SRVP) draw --num_samples futures (noise from --seed): the PNGs and the
GIF show them side by side, prediction.npy is [num_samples, future, H, W, C].
"""
import os

import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli


def _file_input_shape(predictor, source):
    """The input shape an exported file was made for (None for a checkpoint)."""
    if predictor.kind == "onnx":
        return tuple(predictor.session.get_inputs()[0].shape)
    if predictor.kind == "mindir":
        from engine.inference import mindir_input_shape
        return mindir_input_shape(source)
    return None


def predict_clip(cfg, source, frames, notice=print, units=None):
    """frames float32 [input_length, H, W, C] in [0, 1] -> (the predicted future,
    float32 [seq_length - input_length, H, W, C] clipped to [0, 1], or [num_samples, ...]
    for a stochastic model with num_samples > 1; the Predictor used)."""
    import numpy as np
    from data_provider.patch import reshape_patch, reshape_patch_back
    from engine.errors import UserError
    from engine.inference import input_shape, make_predictor, sequence_noise
    # one clip: batch 1 builds the smallest graph; exported files keep their own batch
    predictor = make_predictor(cfg, source, 1, notice=notice)
    wanted = input_shape(cfg, 1)[1:]
    found = _file_input_shape(predictor, source)
    if found is not None and len(found) == len(wanted) + 1 and tuple(found[1:]) != wanted:
        raise UserError(f"{source} takes inputs of {list(found[1:])} per sample but the config gives {list(wanted)} "
                        f"(input_length, H/p, W/p, p*p*C); pass the --config_path it was exported with")
    patched = reshape_patch(frames[None], cfg.patch_size)
    if not predictor.stochastic:
        out = reshape_patch_back(predictor.predict(patched)[0], cfg.patch_size)
    else:
        draws = [predictor.predict(patched, sequence_noise(cfg, [0], k, predictor.noise_dim))[0]
                 for k in range(cfg.num_samples)]
        out = np.stack([reshape_patch_back(d, cfg.patch_size) for d in draws])
        out = out if cfg.num_samples > 1 else out[0]
    if units is not None:  # normalized data: limited to the training data's range
        return units.clip_model(out), predictor
    return np.clip(out, 0.0, 1.0).astype(np.float32), predictor


def infer(cfg, output_dir, log=print):
    """Run infer.py on a loaded config; returns the inputs, the predictions and the paths."""
    from engine.clip_io import input_frames, save_outputs
    from engine.config import require_file
    from engine.device import init_context
    from engine.data_units import units_for
    from engine.evaluator import resolve_latest
    resolve_latest(cfg, log=log)
    source = require_file(cfg, "pretrained_model")
    # the clip first: its mistakes should not wait for a graph compile
    units = units_for(cfg, keys=("train_mindrecord", "test_mindrecord"))
    if units is not None:
        log(f"data: {units.describe()}; the clip is read and the predictions written in the data's units")
    frames = input_frames(cfg.input_clip, cfg, resize=cfg.resize, notice=log, units=units)
    target = init_context(cfg)
    pred, predictor = predict_clip(cfg, source, frames, notice=log, units=units)
    log(f"model {cfg.model_name} ({predictor.kind}, batch {predictor.batch_size}) on {target}: {source}")
    scale = max(1, 128 // max(cfg.img_height, cfg.img_width))
    if units is None:
        paths = save_outputs(frames, pred, output_dir, scale=scale)
    else:  # pictures over the data range, numbers in the data's units
        paths = save_outputs(units.to_unit(frames), units.to_unit(pred), output_dir, scale=scale,
                             values=units.to_data(pred))
    future, h, w, c = pred.shape[-4:]
    lead = f"{pred.shape[0]}, " if pred.ndim == 5 else ""
    names = [os.path.basename(p) for p in paths["png"]]
    log(f"predicted {future} frames" + (f" x {pred.shape[0]} sampled futures (side by side)" if lead else "")
        + f"; written to {output_dir}:")
    log(f"  {names[0]} .. {names[-1]}" if len(names) > 1 else f"  {names[0]}")
    log(f"  {paths['gif']} ({len(frames)} input + {future} predicted frames)")
    log(f"  {paths['npy']} (float32 [{lead}{future}, {h}, {w}, {c}] "
        f"{'in [0, 1]' if units is None else 'in the data units'})")
    return {"inputs": frames, "pred": pred, "paths": paths}


def main(argv):
    from engine.config import load_config
    cfg = load_config(argv)
    infer(cfg, cfg.infer_dir)


if __name__ == "__main__":
    run_cli(main)
