"""Export for every model in the registry: ONNX Runtime and the reloaded MINDIR reproduce
MindSpore's predictions; AIR off Ascend is one clear error; eval_onnx and the 310 protocol
give eval.py's numbers."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from engine.config import load_config
from engine.errors import UserError
from nets.registry import is_stochastic, model_names
from tests.conftest import ROOT, TINY

SHORT = TINY + ["--seq_length=6", "--input_length=3", "--batch_size=2"]
# non-square frames (48x64, patch 8: 6x8 patches) through export, ONNX Runtime and the 310 protocol
WIDE = ["--img_height=48"]
EXTRA = {"predrnn_pp": ["--layer_norm=true"], "predrnn": ["--layer_norm=true"], "predrnn_v2": ["--num_hidden=16,8"],
         # one downsampling (6x8 -> 3x4), a small translator
         "simvp": ["--N_S=2", "--hid_S=8", "--hid_T=16", "--N_T=2", "--mlp_ratio=2"],
         "tau": ["--N_S=2", "--hid_S=8", "--hid_T=16", "--N_T=2", "--mlp_ratio=2"],
         "mau": ["--sr_size=2", "--mau_tau=2"],  # 6x8 -> 3x4 cells
         "phydnet": ["--patch_size=4"]}  # its encoder downsamples by 2 or 4 only: 48x64 -> 12x16


def random_checkpoint(cfg, path):
    import mindspore as ms
    from nets.registry import build_model
    net = build_model(cfg)
    rng = np.random.default_rng(0)
    for p in net.get_parameters():  # larger than the init so that every path matters
        p.set_data(ms.Tensor((p.asnumpy() + rng.normal(0, 0.05, p.shape)).astype(np.float32)))
    ms.save_checkpoint(net, str(path))
    return str(path)


def mindir_io_names(path):
    """The input and output names a MINDIR file's graph carries."""
    from mindspore.train import mind_ir_pb2
    model = mind_ir_pb2.ModelProto()
    with open(path, "rb") as f:
        model.ParseFromString(f.read())
    return [v.name for v in model.graph.input], [v.name for v in model.graph.output]


# stochastic models take a noise input and whole 64x64 frames: tests/test_srvp.py exports them
def cpp_runner_predictions(binary, onnx_path, inputs, expected, tmp_path, noise=None):
    """The C++ runner (ONNX Runtime) on the same ONNX file and inputs (noise: a stochastic
    model's second input): its predictions, checked against MindSpore's to 1e-4."""
    from tests.conftest import run_onnxruntime_runner
    folder, noise_folder, out = tmp_path / "cpp_in", tmp_path / "cpp_noise", tmp_path / "cpp_out"
    folder.mkdir()
    inputs.tofile(folder / "seq_00000.bin")
    if noise is not None:
        noise_folder.mkdir()
        noise.tofile(noise_folder / "seq_00000.bin")
    proc = run_onnxruntime_runner(binary, onnx_path, folder, out, noise_dir=noise_folder if noise is not None else None,
                                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "input 0 frames" in proc.stdout and "output 0 predictions" in proc.stdout, proc.stdout
    got = np.fromfile(out / "seq_00000_0.bin", np.float32).reshape(expected.shape)
    assert np.abs(got - expected).max() < 1e-4
    return got


def assert_same_table(cpp, expected, patch_size):
    """eval.py's per-frame table (engine.metrics on the frames patched back, against a truth
    near the prediction, so that SSIM is far from 0 and relative errors mean something)
    from the C++ predictions equals the one from MindSpore's within 1e-4 relative."""
    from data_provider.patch import reshape_patch_back
    from engine.metrics import summarize
    near = np.clip(expected, 0, 1) + 0.1 * np.random.default_rng(2).standard_normal(expected.shape)
    truth = reshape_patch_back(np.clip(near, 0, 1).astype(np.float32), patch_size)
    want = summarize(reshape_patch_back(expected, patch_size), truth)
    have = summarize(reshape_patch_back(cpp, patch_size), truth)
    for metric in ("mse", "mae", "ssim", "psnr"):
        np.testing.assert_allclose(have[metric]["per_frame"], want[metric]["per_frame"], rtol=1e-4)


def standard_convolution_predictions(cfg, ckpt, inputs, native_predictions):
    """The predictions of the checkpoint's graph on MindSpore's own convolutions (what export
    writes), after checking that they agree with the native CPU convolutions' to float32
    rounding."""
    from engine.inference import CheckpointPredictor
    from layers.conv import standard_operators
    predictor = CheckpointPredictor(cfg, ckpt, inputs.shape[0])
    with standard_operators(predictor.net):
        standard = predictor.predict(inputs)
    assert np.abs(standard - native_predictions).max() < 1e-5 * max(1.0, np.abs(native_predictions).max())
    return standard


@pytest.mark.parametrize("model_name", [m for m in model_names() if not is_stochastic(m)])
def test_onnx_and_mindir_match_mindspore(ms_context, onnxruntime_runner, tmp_path, model_name):
    from engine.inference import (CheckpointPredictor, MindIRPredictor, OnnxPredictor, export_model, input_shape,
                                  name_onnx_io)
    cfg = load_config(SHORT + WIDE + [f"--model_name={model_name}"] + EXTRA.get(model_name, []))
    ckpt = random_checkpoint(cfg, tmp_path / "model.ckpt")
    shape = input_shape(cfg, 2)  # (2, 3, 6, 8, 64) at patch 8
    inputs = np.random.default_rng(1).random(shape).astype(np.float32)
    expected = CheckpointPredictor(cfg, ckpt, 2).predict(inputs)
    assert expected.shape == shape and np.abs(expected).max() > 1e-3
    standard = standard_convolution_predictions(cfg, ckpt, inputs, expected)

    mindir = export_model(cfg, ckpt, "MINDIR", 2, str(tmp_path / "model"), "CPU")
    assert mindir.endswith("model.mindir")
    # renamed in the file (MindSpore writes '<graph>:frames' and '<graph>:CNode_N:M'), and the
    # reloaded graph still gives MindSpore's predictions bit for bit
    assert mindir_io_names(mindir) == (["frames"], ["predictions"])
    np.testing.assert_array_equal(MindIRPredictor(cfg, mindir).predict(inputs), standard)

    onnx_path = export_model(cfg, ckpt, "ONNX", 2, str(tmp_path / "model.onnx"), "CPU")
    runtime = OnnxPredictor(cfg, onnx_path, providers=["CPUExecutionProvider"])
    assert [i.name for i in runtime.session.get_inputs()] == ["frames"]
    assert [o.name for o in runtime.session.get_outputs()] == ["predictions"]
    got = runtime.predict(inputs)
    assert np.abs(got - expected).max() < 1e-4
    # files with other names (older exports) still run: the predictor takes them by position
    old = str(tmp_path / "old_names.onnx")
    shutil.copy(onnx_path, old)
    name_onnx_io(old, ["x"], ["y"])
    legacy = OnnxPredictor(cfg, old, providers=["CPUExecutionProvider"])
    assert [i.name for i in legacy.session.get_inputs()] == ["x"]
    np.testing.assert_array_equal(legacy.predict(inputs), got)

    # the C++ runner on the same file: the same predictions, so eval.py's per-frame table
    cpp = cpp_runner_predictions(onnxruntime_runner, onnx_path, inputs, expected, tmp_path)
    assert_same_table(cpp, expected, cfg.patch_size)


def test_air_needs_ascend(tmp_path):
    from engine.inference import export_model
    cfg = load_config(SHORT)
    with pytest.raises(UserError, match="AIR needs an Ascend"):
        export_model(cfg, "unused.ckpt", "AIR", 1, str(tmp_path / "m"), "CPU")


def test_export_cli_errors(tmp_path):
    proc = subprocess.run([sys.executable, "export.py", *SHORT, "--file_format=AIR",
                           f"--pretrained_model={tmp_path / 'none.ckpt'}"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "pretrained_model" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "export.py", *SHORT, "--file_format=PNG"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "file_format" in proc.stderr


def test_eval_onnx_and_310_protocol_equal_eval(ms_context, tmp_path):
    """eval.py (checkpoint), eval_onnx.py and preprocess -> runner -> postprocess agree."""
    from data_provider.build import build_mindrecords
    from engine.evaluator import evaluate
    from engine.inference import export_model
    from engine.protocol310 import postprocess, preprocess, run_python
    cfg = load_config(SHORT + WIDE + [f"--mindrecord_dir={tmp_path}", "--num_train_sequences=2", "--num_test_sequences=5",
                               f"--eval_dir={tmp_path / 'eval'}", "--eval_batch_size=2"])
    data = build_mindrecords(cfg, log=lambda *_: None)
    cfg.test_mindrecord = data["test"]
    cfg.pretrained_model = random_checkpoint(cfg, tmp_path / "model.ckpt")
    reference = evaluate(cfg, log=lambda *_: None)
    assert reference["model"]["mse"]["per_frame"][0] > 0

    cfg.onnx_path = export_model(cfg, cfg.pretrained_model, "ONNX", 2, str(tmp_path / "m2"), "CPU")
    via_onnx = evaluate(cfg, log=lambda *_: None, model_key="onnx_path", log_name="log_eval_onnx.txt")
    for metric in ("mse", "ssim"):
        np.testing.assert_allclose(via_onnx["model"][metric]["per_frame"], reference["model"][metric]["per_frame"],
                                   rtol=1e-3, atol=1e-3)

    mindir = export_model(cfg, cfg.pretrained_model, "MINDIR", 1, str(tmp_path / "m1"), "CPU")
    assert preprocess(cfg, cfg.test_mindrecord, str(tmp_path / "pre"), log=lambda *_: None) == 5
    run_python(mindir, str(tmp_path / "pre" / "00_data"), str(tmp_path / "res"), log=lambda *_: None)
    via_310 = postprocess(str(tmp_path / "res"), str(tmp_path / "pre" / "01_label"), log=lambda *_: None)
    for name in ("model", "copy-last", "all-black"):
        for metric in ("mse", "mae", "ssim", "psnr"):
            np.testing.assert_allclose(via_310[name][metric]["per_frame"], reference[name][metric]["per_frame"],
                                       rtol=1e-5, atol=1e-6)
