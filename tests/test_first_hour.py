"""What a new user meets first: --help on every entry point, a missing package as one line,
eval.py's --batch_size, and run_infer_310.sh's defaults on a machine without Ascend."""
import os
import subprocess
import sys

import pytest

from engine.config import key_comments, load_config
from tests.conftest import ROOT

ENTRY_POINTS = ("train.py", "eval.py", "export.py", "infer.py", "generate_mindrecord.py", "convert_checkpoint.py",
                "preprocess.py", "postprocess.py", "benchmark.py", "eval_onnx.py", "infer_mindir.py")


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_on_every_entry_point_lists_keys_values_and_comments(flag):
    comments = {key: comment for _, key, comment in key_comments()}
    assert comments["save_dir"] == "where checkpoints and the training log go"
    for script in ENTRY_POINTS:
        proc = subprocess.run([sys.executable, script, flag], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (script, proc.stderr)
        out = proc.stdout
        assert "python " + script.split(".")[0] in out or script in out, (script, out[:300])  # its usage
        for key in ("save_dir", "lr", "model_name", "start_over"):
            line = next((l for l in out.splitlines() if l.strip().startswith(f"--{key}=")), None)
            assert line is not None, (script, key)
            assert comments[key] in line, (script, line)
        assert '--save_dir="./ckpt/"' in out and "--lr=0.001" in out


def test_help_shows_the_values_a_config_and_options_give():
    config = os.path.join("configs", "quickstart_convlstm_mmnist.yaml")
    proc = subprocess.run([sys.executable, "train.py", f"--config_path={config}", "--lr=0.5", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    cfg = load_config([f"--config_path={config}"], validate=False)
    assert "--lr=0.5 " in proc.stdout and f'--model_name="{cfg.model_name}"' in proc.stdout


def test_a_missing_package_is_one_line_saying_how_to_set_up(capsys):
    from engine.cli import run_cli

    def main(argv):
        raise ModuleNotFoundError("No module named 'mindspore'", name="mindspore")

    with pytest.raises(SystemExit) as stop:
        run_cli(main)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the package 'mindspore' is not installed")
    assert ".venv/bin/activate" in err[0]

    def sklearn(argv):  # named as pip installs it
        raise ModuleNotFoundError("No module named 'sklearn'", name="sklearn")

    with pytest.raises(SystemExit):
        run_cli(sklearn)
    assert "the package 'scikit-learn' is not installed" in capsys.readouterr().err

    def other(argv):  # a module of ours that is missing is a bug, not a set-up problem
        raise ModuleNotFoundError("No module named 'nets.nope'", name="nets.nope")

    with pytest.raises(ModuleNotFoundError):
        run_cli(other)


def test_eval_takes_batch_size_for_eval_batch_size():
    from engine.evaluator import batch_size_alias
    said = []
    cfg = load_config(["--batch_size=3"], validate=False)
    batch_size_alias(cfg, log=said.append)
    assert cfg.eval_batch_size == 3 and "eval_batch_size" in said[0]
    cfg = load_config(["--batch_size=3", "--eval_batch_size=5"], validate=False)
    batch_size_alias(cfg, log=said.append)
    assert cfg.eval_batch_size == 5 and len(said) == 1
    cfg = load_config([], validate=False)  # batch_size from the defaults: eval_batch_size stays
    batch_size_alias(cfg, log=said.append)
    assert cfg.eval_batch_size == load_config([], validate=False).eval_batch_size and len(said) == 1


def test_run_infer_310_picks_cpu_and_the_python_runner_without_ascend(tmp_path):
    env = dict(os.environ)
    env.pop("ASCEND_HOME_PATH", None)
    if os.path.isdir("/usr/local/Ascend"):
        pytest.skip("this machine has an Ascend folder")
    proc = subprocess.run(["bash", "scripts/run_infer_310.sh", str(tmp_path / "none.mindir"), "data", "y", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert "DEVICE_TYPE: CPU" in proc.stdout and "RUNNER: python" in proc.stdout, proc.stdout + proc.stderr
    assert "The C++ runner here runs ONNX" in proc.stdout
    assert proc.returncode == 2 and "MODEL_PATH not found" in proc.stderr
    # an ONNX file: the C++ runner on ONNX Runtime
    proc = subprocess.run(["bash", "scripts/run_infer_310.sh", str(tmp_path / "none.onnx"), "data", "y", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert "RUNNER: cpp (the ONNX Runtime C++ runner" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode == 2 and "MODEL_PATH not found" in proc.stderr


def test_distributed_logs_are_ignored_by_git():
    proc = subprocess.run(["git", "check-ignore", "-q", "log_distribute/worker_0.log"], cwd=ROOT)
    assert proc.returncode == 0


def test_quickstart_script_runs_and_states_its_bar(tmp_path):
    """scripts/quickstart.sh end to end at a toy size: data, training (again into the same
    folder: a rerun starts over), eval, and its one-line verdict on the two baselines."""
    args = [f"--mindrecord_dir={tmp_path / 'data'}", f"--train_mindrecord={tmp_path / 'data' / 'mnist_train.mindrecord'}",
            f"--test_mindrecord={tmp_path / 'data' / 'mnist_test.mindrecord'}", f"--save_dir={tmp_path / 'ckpt'}",
            f"--eval_dir={tmp_path / 'eval'}", "--num_train_sequences=16", "--num_test_sequences=8",
            "--max_iterations=2", "--save_predictions=1"]
    for _ in range(2):
        proc = subprocess.run(["bash", "scripts/quickstart.sh", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    verdict = [l for l in proc.stdout.splitlines() if l.startswith("quickstart: the model ")]
    assert len(verdict) == 1 and "baselines on MSE and SSIM" in verdict[0] and "min in all" in verdict[0]
    assert os.path.isfile(tmp_path / "eval" / "predictions" / "simvp-2" / "seq_0000.png")
    assert len(os.listdir(tmp_path / "ckpt" / "earlier_runs")) == 1  # the first run, moved aside
