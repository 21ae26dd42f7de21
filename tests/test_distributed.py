"""Data parallelism under msrun with 2 CPU workers: the same parameters as one process with
the global batch, one set of checkpoints, a clear stop when a worker dies, and resume."""
import os
import signal
import socket
import subprocess
import sys
import threading
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


# MindSpore's scheduler stops the job once a worker has sent no heartbeat for MS_NODE_TIMEOUT
# seconds (default 30); the killed job below sets 10 so the test waits 10 s, not 30, for that.
NODE_TIMEOUT_S = 10


def descendants(pid):
    """PIDs of every process below `pid` (msrun's workers are grandchildren of the script)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def worker_pids(launcher_pid, rank):
    """PIDs of the msrun workers of this rank under our launch (msrun marks them in their
    environment); other jobs on the machine are not ours to kill."""
    found = []
    for pid in descendants(launcher_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="ignore")
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = set(f.read().decode(errors="ignore").split("\0"))
        except OSError:
            continue
        if "train.py" in cmdline and f"RANK_ID={rank}" in env and "MS_ROLE=MS_WORKER" in env:
            found.append(pid)
    return found


def launch(root, config, train, *extra, log_dir="logs", env_extra=None):
    env = dict(os.environ, MASTER_PORT=str(free_port()), LOG_DIR=str(root / log_dir), CLUSTER_TIME_OUT="60",
               **(env_extra or {}))
    return subprocess.Popen(["bash", "scripts/run_distribute_train.sh", "2", str(train), str(config), "CPU",
                             "--batch_size=4", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def checkpoints(folder):
    return sorted(int(n.split("-")[1].split(".")[0]) for n in os.listdir(folder) if n.endswith(".ckpt"))


@pytest.fixture(scope="module")
def killed_job(ms_context, setup):
    """One data-parallel job (2 workers of batch 4) from scratch: worker 1 is SIGKILLed once
    rank 0 has saved step 10. While MindSpore's scheduler waits out the heartbeat timeout,
    this process trains the same 10 steps with the global batch 8 (the reference run), so
    one launch serves the equality test and the dead-worker test."""
    from engine.trainer import train
    root, config, data = setup
    save = root / "killed"
    proc = launch(root, config, data, "--max_iterations=100000", "--snapshot_interval=5", f"--save_dir={save}",
                  log_dir="logs_killed", env_extra={"MS_NODE_TIMEOUT": str(NODE_TIMEOUT_S)})
    ended = {}

    def wait_for_the_job():
        ended["out"] = proc.communicate(timeout=150)[0]
        ended["at"] = time.time()

    try:
        deadline = time.time() + 180
        while not (save / "convlstm-10.ckpt").exists():
            assert time.time() < deadline and proc.poll() is None, "training did not reach step 10"
            time.sleep(0.2)
        victims = worker_pids(proc.pid, rank=1)
        assert len(victims) == 1, victims
        killed_at = time.time()
        os.kill(victims[0], signal.SIGKILL)
        waiter = threading.Thread(target=wait_for_the_job, daemon=True)
        waiter.start()
        single = train(load_config([f"--config_path={config}", f"--train_mindrecord={data}", "--batch_size=8",
                                    "--max_iterations=10", "--snapshot_interval=5",
                                    f"--save_dir={root / 'single'}"]), log=lambda *_: None)
        waiter.join(timeout=160)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "at" in ended, "the job did not stop within 150 s of the kill"
    return {"returncode": proc.returncode, "out": ended["out"], "stopped_after": ended["at"] - killed_at,
            "save": save, "saved": sorted(os.listdir(save)), "single": root / "single", "single_result": single}


def test_two_workers_equal_one_process_with_the_global_batch(killed_job):
    import mindspore as ms
    root = killed_job["save"].parent
    # only rank 0 logs and saves: one set of checkpoints
    assert killed_job["saved"] == ["convlstm-10.ckpt", "convlstm-5.ckpt", "train.log"]
    assert "step 10/" in (root / "logs_killed" / "worker_0.log").read_text()
    assert "step 1/" not in (root / "logs_killed" / "worker_1.log").read_text()
    assert killed_job["single_result"]["step"] == 10
    for step in (5, 10):
        a = ms.load_checkpoint(str(killed_job["single"] / f"convlstm-{step}.ckpt"))
        b = ms.load_checkpoint(str(killed_job["save"] / f"convlstm-{step}.ckpt"))
        names = [n for n in a if n.startswith(("cell_list", "conv_last"))]
        assert len(names) == 5
        for name in names:
            np.testing.assert_allclose(b[name].asnumpy(), a[name].asnumpy(), atol=1e-5, rtol=0, err_msg=name)


def test_a_dead_worker_stops_the_job_and_training_resumes(setup, killed_job):
    root, config, data = setup
    save, out = killed_job["save"], killed_job["out"]
    # the scheduler notices after NODE_TIMEOUT_S and polls every 5 s: well under a minute
    assert killed_job["returncode"] != 0 and killed_job["stopped_after"] < 60, killed_job["stopped_after"]
    assert "distributed training failed" in out and "--resume=latest" in out
    kept = sorted(int(n.split("-")[1].split(".")[0]) for n in killed_job["saved"] if n.endswith(".ckpt"))
    assert kept and kept[-1] >= 10
    proc = launch(root, config, data, f"--max_iterations={kept[-1] + 2}", f"--save_dir={save}", "--resume=latest",
                  log_dir="logs_resumed")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    log = (root / "logs_resumed" / "worker_0.log").read_text()
    assert "resumed from" in log and f"step {kept[-1] + 1}/" in log and f"done: step {kept[-1] + 2}" in log
    # a clean finish: rank 0 alone reports it and saves, next to the job's own checkpoints
    assert "done: step" not in (root / "logs_resumed" / "worker_1.log").read_text()
    assert checkpoints(save) == kept + [kept[-1] + 2]


def test_distribute_without_the_launcher_is_a_clear_error(setup):
    root, config, data = setup
    proc = subprocess.run([sys.executable, "train.py", f"--config_path={config}", f"--train_mindrecord={data}",
                           "--distribute=true"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "run_distribute_train.sh" in proc.stderr and "Traceback" not in proc.stderr
