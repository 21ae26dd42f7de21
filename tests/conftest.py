"""Shared fixtures. GRAPH compiles cost seconds each, so tests share shapes through the
TINY configuration below wherever they can."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import engine  # noqa: E402,F401  (CPU settings before mindspore)

# 64x64 frames of one digit, patch 8 -> 8x8x64, 5 -> 5 frames, two small layers.
TINY = ["--model_name=convlstm", "--num_hidden=16,16", "--filter_size=3", "--patch_size=8",
        "--img_width=64", "--input_length=5", "--seq_length=10", "--layer_norm=false",
        "--batch_size=8", "--eval_batch_size=8", "--reverse_input=false", "--lr=0.002",
        "--num_digits=1", "--device_target=CPU", "--log_interval=1000"]


@pytest.fixture(scope="session")
def ms_context():
    import mindspore as ms
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    return ms


def build_onnxruntime_runner(build_dir):
    """ascend310_infer's program on ONNX Runtime, built into build_dir: headers fetched once
    (npm, cached in ~/.cache/stpl), the library of the onnxruntime wheel in this venv. A
    failure fails the test: CI reaches the registries, so this route must work there."""
    import re
    import subprocess
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(BACKEND="onnxruntime", BUILD_DIR=str(build_dir))
    proc = subprocess.run(["bash", os.path.join(ROOT, "ascend310_infer", "build.sh")], capture_output=True,
                          text=True, timeout=900, env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert not re.search(r":\d+:\d+: warning:", log), log
    binary = os.path.join(str(build_dir), "main")
    assert os.path.isfile(binary), log
    return binary


@pytest.fixture(scope="session")
def onnxruntime_runner(tmp_path_factory):
    return build_onnxruntime_runner(tmp_path_factory.mktemp("ort_runner"))


def run_onnxruntime_runner(binary, model, input_dir, output_dir, noise_dir=None, cwd=None, extra=()):
    import subprocess
    cmd = [binary, f"--model_path={model}", f"--input0_path={input_dir}", f"--output_dir={output_dir}",
           "--device_type=CPU", *extra]
    if noise_dir:
        cmd.append(f"--input1_path={noise_dir}")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd)
