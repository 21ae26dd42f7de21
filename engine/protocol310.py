"""The model zoo's 310 inference protocol, runnable end to end on any machine.

preprocess  -> RESULT_PATH/00_data/seq_NNNNN.bin   model input, float32 [1, input_length, H/p, W/p, p*p*C]
               RESULT_PATH/02_noise/seq_NNNNN.bin  stochastic models only: their second input, the noise
                                                   float32 [1, seq_length, noise_dim] of draw 0, as
                                                   eval.py draws it (engine.inference.sequence_noise)
               RESULT_PATH/01_label/seq_NNNNN.bin  ground truth, float32 [seq_length, H, W, C] in [0, 1]
                                                   (normalized data: in model units, the manifest
                                                   holding the normalization)
                                                   (the whole clip: the baselines need the inputs)
               RESULT_PATH/manifest.json           shapes, config values and the sample list
runner      -> RESULT_DIR/seq_NNNNN_0.bin          model output, float32 [1, future, H/p, W/p, p*p*C]
               (ascend310_infer/out/main in C++, or infer_mindir.py with MindSpore; input k of
               the model is read from --input{k}_path, 02_noise being input 1)
postprocess -> acc.log                             per-frame MSE / MAE / SSIM / PSNR, as eval.py
"""
import json
import os
import time

import numpy as np

from data_provider.mindrecord import create_dataset
from data_provider.patch import reshape_patch_back
from engine.errors import UserError

DATA_DIR = "00_data"
LABEL_DIR = "01_label"
NOISE_DIR = "02_noise"
MANIFEST = "manifest.json"


def _write_bin(path, array):
    tmp = path + ".tmp"
    np.ascontiguousarray(array, np.float32).tofile(tmp)
    os.replace(tmp, path)


def preprocess(cfg, test_mindrecord, result_path, max_sequences=0, log=print):
    """Write the per-sample input and label files and the manifest; returns the sample count."""
    from engine.data_units import read_description, units_from_file
    from engine.inference import sequence_noise
    from engine.trainer import check_data_fits
    from nets.registry import noise_dim
    info = check_data_fits(cfg, test_mindrecord, "test_mindrecord")
    width = noise_dim(cfg)
    noise_dir = os.path.join(result_path, NOISE_DIR)
    if width:
        os.makedirs(noise_dir, exist_ok=True)
    total = info["num_samples"] if max_sequences <= 0 else min(max_sequences, info["num_samples"])
    data_dir = os.path.join(result_path, DATA_DIR)
    label_dir = os.path.join(result_path, LABEL_DIR)
    os.makedirs(data_dir, exist_ok=True)
    os.makedirs(label_dir, exist_ok=True)
    dataset = create_dataset(test_mindrecord, 1, cfg.patch_size, indices=np.arange(total), drop_remainder=False,
                             seq_length=cfg.seq_length, num_parallel_workers=cfg.num_parallel_workers)
    names = []
    for i, (frames,) in enumerate(dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)):
        stem = f"seq_{i:05d}"
        _write_bin(os.path.join(data_dir, stem + ".bin"), frames[:, :cfg.input_length])
        _write_bin(os.path.join(label_dir, stem + ".bin"), reshape_patch_back(frames[0], cfg.patch_size))
        if width:
            _write_bin(os.path.join(noise_dir, stem + ".bin"), sequence_noise(cfg, [i], 0, width))
        names.append(stem)
    p = cfg.patch_size
    hp, wp = cfg.img_height // p, cfg.img_width // p
    manifest = {
        "model_name": cfg.model_name, "input_length": cfg.input_length, "seq_length": cfg.seq_length,
        "img_height": cfg.img_height, "img_width": cfg.img_width, "img_channel": cfg.img_channel, "patch_size": p,
        "input_shape": [1, cfg.input_length, hp, wp, p * p * cfg.img_channel],
        "output_shape": [1, cfg.seq_length - cfg.input_length, hp, wp, p * p * cfg.img_channel],
        "label_shape": [cfg.seq_length, cfg.img_height, cfg.img_width, cfg.img_channel],
        "dtype": "float32", "test_mindrecord": os.path.abspath(test_mindrecord), "samples": names,
    }
    units = units_from_file(test_mindrecord)
    if units is not None:  # normalized data: inputs and labels are in model units
        manifest["normalize"] = read_description(test_mindrecord)["normalize"]
    if width:
        manifest.update(noise_shape=[1, cfg.seq_length, width], seed=int(cfg.seed))
    with open(os.path.join(result_path, MANIFEST + ".tmp"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    os.replace(os.path.join(result_path, MANIFEST + ".tmp"), os.path.join(result_path, MANIFEST))
    log(f"wrote {len(names)} samples to {data_dir} (inputs) and {label_dir} (ground truth)"
        + (f", their noise to {noise_dir}" if width else ""))
    return len(names)


def read_manifest(folder):
    """The manifest of a preprocess folder (given the folder itself or its 00_data/01_label)."""
    for candidate in (folder, os.path.dirname(os.path.normpath(folder))):
        path = os.path.join(candidate, MANIFEST)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return json.load(f)
    raise UserError(f"no {MANIFEST} in {folder} or its parent: run preprocess.py first")


def read_bin(path, shape):
    if not os.path.isfile(path):
        raise UserError(f"file not found: {path}")
    data = np.fromfile(path, np.float32)
    if data.size != int(np.prod(shape)):
        raise UserError(f"{path} holds {data.size} float32 values, expected {int(np.prod(shape))} for shape {tuple(shape)}")
    return data.reshape(shape)


def run_python(mindir_path, input_dir, output_dir, noise_dir="", log=print):
    """The Python runner over the same folders the C++ program reads (noise_dir: a
    stochastic model's second input, input1_path): MindSpore's GraphCell for a MINDIR, ONNX
    Runtime (CPU) for an .onnx file."""
    from engine.inference import MindIRPredictor, OnnxPredictor
    manifest = read_manifest(input_dir)
    if mindir_path.lower().endswith(".onnx"):
        predictor = OnnxPredictor(None, mindir_path, providers=["CPUExecutionProvider"])
    else:
        predictor = MindIRPredictor(None, mindir_path, batch_size=1)
    if predictor.stochastic and not noise_dir:
        raise UserError(f"{mindir_path} is a stochastic model: give its noise folder as --input1_path "
                        f"(preprocess.py writes RESULT_PATH/{NOISE_DIR})")
    if noise_dir and not predictor.stochastic:
        raise UserError(f"--input1_path={noise_dir} given, but {mindir_path} takes one input")
    if noise_dir and not os.path.isdir(noise_dir):
        raise UserError(f"noise folder not found: {noise_dir} (--input1_path)")
    os.makedirs(output_dir, exist_ok=True)
    files = sorted(f for f in os.listdir(input_dir) if f.endswith(".bin"))
    if not files:
        raise UserError(f"no .bin files in {input_dir}")
    times = []
    for name in files:
        inputs = read_bin(os.path.join(input_dir, name), manifest["input_shape"])
        noise = None
        if noise_dir:
            noise = read_bin(os.path.join(noise_dir, name), [1, manifest["seq_length"], predictor.noise_dim])
        began = time.perf_counter()
        out = predictor._run(inputs, noise)
        times.append(time.perf_counter() - began)
        _write_bin(os.path.join(output_dir, name[:-4] + "_0.bin"), out)
    log(f"NN inference cost average time: {1000 * float(np.mean(times)):.3f} ms of infer_count {len(files)}")
    return len(files)


def postprocess(result_dir, label_dir, log=print):
    """Per-frame metrics of the runner's outputs against the labels, as eval.py computes them;
    returns the summaries. For normalized data (the manifest holds the normalization) the
    predictions are also written in the data's own units, RESULT_DIR/seq_NNNNN_0.npy
    (float32 [future, H, W, C]), and the metrics include eval.py's data-unit table."""
    from engine.data_units import DataUnits
    from engine.evaluator import Scorer
    manifest = read_manifest(label_dir)
    p, inp = manifest["patch_size"], manifest["input_length"]
    units = DataUnits(manifest["normalize"], os.path.join(label_dir, MANIFEST)) if manifest.get("normalize") else None
    if units is not None:
        log(f"data: {units.describe()}; predictions in the data's units: {result_dir}/seq_NNNNN_0.npy")
    scorer = Scorer(units)
    for stem in manifest["samples"]:
        truth_all = read_bin(os.path.join(label_dir, stem + ".bin"), manifest["label_shape"])[None]
        out = read_bin(os.path.join(result_dir, stem + "_0.bin"), manifest["output_shape"])
        pred = scorer.limit(reshape_patch_back(out, p))
        scorer.update(truth_all[:, :inp], truth_all[:, inp:], pred)
        if units is not None:
            values = units.to_data(pred[0]).astype(np.float32)
            _save_npy(os.path.join(result_dir, stem + "_0.npy"), values)
    summaries, _ = scorer.report(log)
    return summaries


def _save_npy(path, array):
    tmp = path + ".tmp.npy"
    np.save(tmp, array)
    os.replace(tmp, path)
