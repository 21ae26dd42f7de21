"""Data parallelism under msrun with 2 CPU workers: the same parameters as one process with
the global batch, one set of checkpoints, a clear stop when a worker dies, and resume."""
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from engine.config import load_config
from tests.conftest import ROOT

TINY_YAML = """model_name: convlstm
num_hidden: "16,16"
filter_size: 3
patch_size: 8
img_width: 64
input_length: 5
seq_length: 10
layer_norm: false
reverse_input: false
lr: 0.002
num_digits: 1
device_target: CPU
log_interval: 1
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from data_provider.build import build_mindrecords
    root = tmp_path_factory.mktemp("dist")
    config = root / "tiny.yaml"
    config.write_text(TINY_YAML)
    cfg = load_config([f"--config_path={config}", f"--mindrecord_dir={root}", "--num_train_sequences=48",
                       "--num_test_sequences=4", "--seed=5"])
    data = build_mindrecords(cfg, log=lambda *_: None)
    return root, config, data["train"]


def worker_pids(rank):
    """PIDs of the msrun workers of this rank (msrun marks them in their environment)."""
    listed = subprocess.run(["pgrep", "-f", "train.py --distribute"], capture_output=True, text=True).stdout.split()
    found = []
    for pid in listed:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = set(f.read().decode(errors="ignore").split("\0"))
        except OSError:
            continue
        if f"RANK_ID={rank}" in env and "MS_ROLE=MS_WORKER" in env:
            found.append(int(pid))
    return found


def launch(root, config, train, *extra, log_dir="logs"):
    env = dict(os.environ, MASTER_PORT=str(free_port()), LOG_DIR=str(root / log_dir), CLUSTER_TIME_OUT="60")
    return subprocess.Popen(["bash", "scripts/run_distribute_train.sh", "2", str(train), str(config), "CPU",
                             "--batch_size=4", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_workers_equal_one_process_with_the_global_batch(ms_context, setup):
    import mindspore as ms
    from engine.trainer import train
    root, config, data = setup
    single = train(load_config([f"--config_path={config}", f"--train_mindrecord={data}", "--batch_size=8",
                                "--max_iterations=3", f"--save_dir={root / 'single'}"]), log=lambda *_: None)
    proc = launch(root, config, data, "--max_iterations=3", f"--save_dir={root / 'dist'}")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    # only rank 0 logs and saves: one set of checkpoints
    assert sorted(os.listdir(root / "dist")) == ["convlstm-3.ckpt", "train.log"]
    assert "done: step 3" in (root / "logs" / "worker_0.log").read_text()
    assert "done: step 3" not in (root / "logs" / "worker_1.log").read_text()
    a = ms.load_checkpoint(single["checkpoint"])
    b = ms.load_checkpoint(str(root / "dist" / "convlstm-3.ckpt"))
    names = [n for n in a if n.startswith(("cell_list", "conv_last"))]
    assert len(names) == 5
    for name in names:
        np.testing.assert_allclose(b[name].asnumpy(), a[name].asnumpy(), atol=1e-5, rtol=0)


def test_a_dead_worker_stops_the_job_and_training_resumes(setup):
    root, config, data = setup
    save = root / "killed"
    proc = launch(root, config, data, "--max_iterations=100000", "--snapshot_interval=5",
                  f"--save_dir={save}", log_dir="logs_killed")
    try:
        deadline = time.time() + 180
        while not (save / "convlstm-10.ckpt").exists():
            assert time.time() < deadline and proc.poll() is None, "training did not reach step 10"
            time.sleep(0.5)
        victims = worker_pids(rank=1)
        assert len(victims) == 1
        killed_at = time.time()
        os.kill(victims[0], signal.SIGKILL)
        out, _ = proc.communicate(timeout=150)
        stopped_after = time.time() - killed_at
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and stopped_after < 120
    assert "distributed training failed" in out and "--resume=latest" in out
    kept = sorted(int(n.split("-")[1].split(".")[0]) for n in os.listdir(save) if n.endswith(".ckpt"))
    assert kept and kept[-1] >= 10
    proc = launch(root, config, data, f"--max_iterations={kept[-1] + 2}", f"--save_dir={save}", "--resume=latest",
                  log_dir="logs_resumed")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    log = (root / "logs_resumed" / "worker_0.log").read_text()
    assert "resumed from" in log and f"step {kept[-1] + 1}/" in log and f"done: step {kept[-1] + 2}" in log


def test_distribute_without_the_launcher_is_a_clear_error(setup):
    root, config, data = setup
    proc = subprocess.run([sys.executable, "train.py", f"--config_path={config}", f"--train_mindrecord={data}",
                           "--distribute=true"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "run_distribute_train.sh" in proc.stderr and "Traceback" not in proc.stderr
