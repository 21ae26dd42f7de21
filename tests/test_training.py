"""Training end to end on generated data: resume equality, divergence guard, Ctrl-C, and a
tiny ConvLSTM that must beat both trivial baselines."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from engine.config import load_config
from engine.errors import UserError
from tests.conftest import ROOT, TINY


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Moving MNIST, one digit, 64x64, 10 frames: 400 train and 64 test sequences."""
    from data_provider.build import build_mindrecords
    out = tmp_path_factory.mktemp("mmnist")
    cfg = load_config(TINY + [f"--mindrecord_dir={out}", "--num_train_sequences=400",
                              "--num_test_sequences=64", "--seed=7"])
    return build_mindrecords(cfg, log=lambda *_: None)


def tiny_cfg(tiny_data, tmp_path, *extra):
    return load_config(TINY + [f"--train_mindrecord={tiny_data['train']}",
                               f"--test_mindrecord={tiny_data['test']}",
                               f"--save_dir={tmp_path / 'ckpt'}", f"--eval_dir={tmp_path / 'eval'}",
                               *extra])


def quiet(*_):
    pass


def test_learning_rate_schedules():
    from engine.trainer import learning_rates
    base = TINY + ["--max_iterations=100", "--lr=0.01"]
    np.testing.assert_allclose(learning_rates(load_config(base)), 0.01)
    cos = learning_rates(load_config(base + ["--lr_schedule=cosine", "--lr_min=0.001"]))
    assert cos[0] == pytest.approx(0.01) and cos[50] == pytest.approx(0.0055) and cos[-1] == pytest.approx(0.001, abs=1e-5)
    step = learning_rates(load_config(base + ["--lr_schedule=step", "--lr_step_iters=30,60", "--warmup_iters=10"]))
    assert step[0] == pytest.approx(0.001) and step[9] == pytest.approx(0.01)
    assert step[30] == pytest.approx(0.001) and step[60] == pytest.approx(0.0001)


def test_resume_continues_the_same_loss_curve(ms_context, tiny_data, tmp_path):
    from engine.trainer import train
    straight = train(tiny_cfg(tiny_data, tmp_path / "a", "--max_iterations=6", "--snapshot_interval=3",
                              "--reverse_input=true"), log=quiet)
    first = train(tiny_cfg(tiny_data, tmp_path / "b", "--max_iterations=3", "--snapshot_interval=3",
                           "--reverse_input=true"), log=quiet)
    resumed = train(tiny_cfg(tiny_data, tmp_path / "b", "--max_iterations=6", "--snapshot_interval=3",
                             "--reverse_input=true", "--resume=latest", "--keep_checkpoint_max=1"), log=quiet)
    assert [s for s, _ in resumed["history"]] == [4, 5, 6]
    full = dict(straight["history"])
    np.testing.assert_allclose([l for _, l in first["history"]], [full[s] for s in (1, 2, 3)], rtol=1e-6)
    np.testing.assert_allclose([l for _, l in resumed["history"]], [full[s] for s in (4, 5, 6)], rtol=1e-5)
    import mindspore as ms
    a = ms.load_checkpoint(straight["checkpoint"])
    b = ms.load_checkpoint(resumed["checkpoint"])
    for name in ("cell_list.0.conv_x.0.weight", "conv_last.weight", "moment1.conv_last.weight"):
        np.testing.assert_allclose(a[name].asnumpy(), b[name].asnumpy(), rtol=1e-5, atol=1e-7)
    # keep_checkpoint_max prunes, the newest survives
    assert sorted(os.listdir(tmp_path / "b" / "ckpt")) == ["convlstm-6.ckpt"]


def test_a_used_save_dir_is_refused_unless_resumed_or_started_over(ms_context, tiny_data, tmp_path):
    """Training never mixes runs; 'start_over' moves the earlier run aside. The progress
    lines: step 1 says it holds the compile and gives no ETA; step 2's ETA excludes it."""
    from engine.evaluator import resolve_latest
    from engine.trainer import train
    save_dir = tmp_path / "ckpt"
    save_dir.mkdir()
    (save_dir / "convlstm-500.ckpt").write_bytes(b"an earlier run")
    (save_dir / "train.log").write_text("earlier\n")
    with pytest.raises(UserError, match=r"holds checkpoints of an earlier run .*convlstm-500.ckpt.*"
                                        r"--resume=latest.*--start_over=true"):
        train(tiny_cfg(tiny_data, tmp_path, "--max_iterations=3"), log=quiet)
    lines = []
    result = train(tiny_cfg(tiny_data, tmp_path, "--max_iterations=3", "--start_over=true"), log=lines.append)
    assert result["checkpoint"] == str(save_dir / "convlstm-3.ckpt")
    moved = list((save_dir / "earlier_runs").iterdir())
    assert len(moved) == 1 and sorted(os.listdir(moved[0])) == ["convlstm-500.ckpt", "train.log"]
    assert not (save_dir / "convlstm-500.ckpt").exists()
    # 'latest' is this run's newest
    cfg = tiny_cfg(tiny_data, tmp_path, "--pretrained_model=latest")
    said = []
    resolve_latest(cfg, log=said.append)
    assert cfg.pretrained_model == str(save_dir / "convlstm-3.ckpt") and said == [f"pretrained_model=latest: {cfg.pretrained_model} (step 3)"]
    # progress: compile announced, step 1 without an ETA, steps 2 and 3 logged with one
    assert any("compiling the training graph" in l for l in lines)
    step1 = next(l for l in lines if l.startswith("step 1/3"))
    assert "graph compile included" in step1 and "ETA" not in step1
    first_s = float(step1.split("first step ")[1].split(" s")[0])
    step2 = next(l for l in lines if l.startswith("step 2/3"))
    ms_step = float(step2.split(" ms/step")[0].rsplit(" ", 1)[1])
    assert "ETA 0:00:0" in step2 and "graph compile ~" in step2
    assert ms_step / 1000.0 < first_s / 3, (step1, step2)  # compile (seconds) is not in the step time
    # a second run into the now used save_dir is refused again; resume continues it
    with pytest.raises(UserError, match="earlier run"):
        train(tiny_cfg(tiny_data, tmp_path, "--max_iterations=3"), log=quiet)


def test_divergence_stops_and_keeps_the_last_good_checkpoint(ms_context, tiny_data, tmp_path):
    from engine.trainer import train
    cfg = tiny_cfg(tiny_data, tmp_path, "--max_iterations=20", "--snapshot_interval=1", "--lr=1e30")
    with pytest.raises(UserError, match="diverged"):
        train(cfg, log=quiet)
    saved = sorted(os.listdir(tmp_path / "ckpt"))
    assert saved and all(name.endswith(".ckpt") or name == "train.log" for name in saved)
    import mindspore as ms
    for name in saved:
        if name.endswith(".ckpt"):
            params = ms.load_checkpoint(str(tmp_path / "ckpt" / name))
            assert all(np.isfinite(p.asnumpy()).all() for p in params.values())


def test_bad_checkpoint_is_one_clear_error(ms_context, tiny_data, tmp_path):
    from engine.evaluator import evaluate
    bogus = tmp_path / "bogus.ckpt"
    bogus.write_bytes(os.urandom(2048))
    with pytest.raises(UserError, match="not a readable MindSpore checkpoint"):
        evaluate(tiny_cfg(tiny_data, tmp_path, f"--pretrained_model={bogus}"))


def test_ctrl_c_saves_a_checkpoint(tiny_data, tmp_path):
    args = [sys.executable, "train.py"] + TINY + [
        f"--train_mindrecord={tiny_data['train']}", f"--save_dir={tmp_path}", "--max_iterations=100000",
        "--snapshot_interval=100000", "--log_interval=1"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 180
        for line in proc.stdout:
            if line.startswith("step 3/"):
                break
            assert time.time() < deadline, "training did not start"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    saved = [n for n in os.listdir(tmp_path) if n.endswith(".ckpt")]
    assert len(saved) == 1 and "saved" in out, out


# the tiny models that must learn: (extra options, steps, bound on the last / first losses,
# bound on the model's MSE / the better baseline's)
LEARNERS = {
    # PhyDNet first (the longest run: its widths are fixed, ~1.2 s per step here): at patch 4 and
    # 80 steps MSE 59.2 against the better baseline's 91.1 (2026-12-06)
    "phydnet": (["--patch_size=4", "--lr=0.004"], 80, 0.7, 0.8),
    "convlstm": ([], 300, 0.6, 0.75),
    "predrnn": (["--num_hidden=16,16"], 300, 0.6, 0.75),
    "simvp": (["--hid_S=16", "--hid_T=64", "--N_S=2", "--N_T=2", "--mlp_ratio=2", "--lr=0.003"], 300, 0.6, 0.8),
    "tau": (["--hid_S=16", "--hid_T=64", "--N_S=2", "--N_T=2", "--mlp_ratio=2", "--lr=0.003"], 300, 0.6, 0.8),
    "mim": (["--num_hidden=16,16", "--lr=0.004"], 150, 0.7, 0.8),
    "mau": (["--num_hidden=16,16", "--sr_size=2", "--mau_tau=3", "--lr=0.003"], 150, 0.7, 0.8),
}


def train_and_evaluate(model_name, data, folder):
    """Train one tiny model for 300 steps and evaluate it against the baselines; returns the
    loss history and the evaluation summaries. Runs in a process of its own (see `learned`)."""
    import mindspore as ms
    from engine.evaluator import evaluate
    from engine.trainer import train
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    extra, steps, _, _ = LEARNERS[model_name]
    cfg = load_config(TINY + [f"--train_mindrecord={data['train']}", f"--test_mindrecord={data['test']}",
                              f"--save_dir={folder}/ckpt", f"--eval_dir={folder}/eval", f"--max_iterations={steps}",
                              f"--snapshot_interval={steps}", "--scheduled_sampling=false", f"--model_name={model_name}",
                              *extra])
    result = train(cfg, log=quiet)
    cfg.pretrained_model = result["checkpoint"]
    return [l for _, l in result["history"]], evaluate(cfg, log=quiet)


@pytest.fixture(scope="module")
def learned(tiny_data, tmp_path_factory):
    """The tiny models trained two at a time, each in a spawned process: a training step here
    keeps about one core busy, so on 2 cores two runs overlap (measured under other load: 100 s
    side by side against 125 s one after the other; the same losses either way). Returns each
    run's future: .result() gives its outcome or raises its error."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, wait
    root = tmp_path_factory.mktemp("learned")
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = {name: pool.submit(train_and_evaluate, name, tiny_data, str(root / name)) for name in LEARNERS}
        wait(runs.values(), timeout=900)
    return runs


@pytest.mark.parametrize("model_name", list(LEARNERS))
def test_tiny_model_beats_both_baselines(learned, model_name):
    losses, summaries = learned[model_name].result(timeout=0)
    _, steps, loss_bound, baseline_bound = LEARNERS[model_name]
    assert len(losses) == steps
    assert np.mean(losses[-20:]) < loss_bound * np.mean(losses[:5])
    model = summaries["model"]["mse"]["mean"]
    black = summaries["all-black"]["mse"]["mean"]
    copy_last = summaries["copy-last"]["mse"]["mean"]
    assert model < baseline_bound * min(black, copy_last), (model, black, copy_last)
    assert summaries["model"]["num_sequences"] == 64
