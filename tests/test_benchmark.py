"""benchmark.py: the analytic FLOP count and a run on a tiny configuration."""
import json
import os
import platform
import subprocess
import sys

from engine.config import load_config
from tests.conftest import ROOT, TINY


def test_conv_flops_by_hand():
    from benchmark import conv_flops_per_sequence
    from nets.registry import build_model
    cfg = load_config(TINY + ["--num_hidden=16,8"])
    net = build_model(cfg)
    hw = 8 * 8
    per_step = (64 * 64 * 9 + 16 * 64 * 9      # layer 0: conv_x 64 -> 4*16, conv_h 16 -> 64, 3x3
                + 16 * 32 * 9 + 8 * 32 * 9     # layer 1: conv_x 16 -> 4*8, conv_h 8 -> 32
                + 8 * 64)                      # conv_last 1x1, 8 -> 64
    assert conv_flops_per_sequence(net, cfg) == 2 * hw * per_step * (cfg.seq_length - 1)
    ef = load_config(TINY + ["--model_name=convlstm_ef", "--num_hidden=16"])
    # encoder: conv_x + conv_h over 5 input frames; forecaster: conv_h only (it reads no
    # input) and conv_out 1x1 16 -> 64 over 5 future frames
    hand = 2 * hw * ((64 * 64 * 9 + 16 * 64 * 9) * 5 + (16 * 64 * 9 + 16 * 64) * 5)
    assert conv_flops_per_sequence(build_model(ef), ef) == hand


def test_benchmark_runs_and_writes_json_and_markdown(tmp_path):
    # MINDIR/ONNX latency is left out here: each export compiles the graph again (they are
    # exercised by tests/test_export.py); training, GRAPH eval, the pipeline and the RSS
    # probe run on a tiny config.
    proc = subprocess.run([sys.executable, "benchmark.py", "--models=convlstm", "--size=small", "--batch_size=1",
                           "--steps=1", "--eval_repeats=1", "--formats=none", "--rss_steps=1,2",
                           f"--out={tmp_path}", "--num_hidden=8", "--seq_length=4", "--input_length=2",
                           "--filter_size=3", "--patch_size=8"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "benchmark.json").read_text())
    row = report["rows"][0]
    assert row["model"] == "convlstm" and row["size"] == "small" and row["parameters"] > 0
    assert row["train_ms_per_step"] > 0 and row["train_samples_per_s"] > 0 and row["train_gflop_per_s"] > 0
    assert row["inference"]["graph"]["ms_per_sequence"] > 0 and "mindir" not in row["inference"]
    assert row["pipeline_ratio"] > 0 and report["pipelines"]["small"]["samples"] > 0
    assert row["train_peak_rss_gib"] > 0.1 and report["numpy_matmul_gflops"] > 0
    assert set(report["rss"][0]["rss_gib_at_step"]) == {"1", "2"}
    table = (tmp_path / "benchmark.md").read_text()
    assert table.startswith("| model |") and "| convlstm | small |" in table and "RSS GiB at step 1" in table


def test_lockstep_runs_both_frameworks_step_for_step(tmp_path):
    """The PyTorch column's protocol, with a stand-in for tools/torch_step.py (torch is not
    a test dependency): both processes answer every step, the stand-in's result comes back
    as it wrote it, and a stand-in that dies names its last stderr line."""
    import pytest
    from benchmark import lockstep_train
    serving = tmp_path / "serving.py"
    serving.write_text("import json, sys\nprint('READY', flush=True)\nn = 0\n"
                       "while sys.stdin.readline().strip() == 'step':\n"
                       "    n += 1\n    print('TIME 0.001', flush=True)\n"
                       "print('RESULT ' + json.dumps({'steps': n}), flush=True)\n")
    dying = tmp_path / "dying.py"
    dying.write_text("import sys\nsys.exit('no torch here')\n")
    ms_args = ["--one=convlstm", "--part=train", "--size=small", "--batch_size=1", "--steps=3", "--num_hidden=8",
               "--seq_length=4", "--input_length=2", "--filter_size=3", "--patch_size=8"]
    row, other = lockstep_train(ms_args, [sys.executable, str(serving)], None, 3)
    assert other == {"steps": 3}
    assert row["model"] == "convlstm" and len(row["train_step_ms"]) == 3 and row["train_ms_per_step"] > 0
    with pytest.raises(RuntimeError, match="no torch here"):
        lockstep_train(ms_args, [sys.executable, str(dying)], None, 3)


def test_benchmark_refuses_parts_it_cannot_report(tmp_path):
    for parts, message in (("infer", "--parts=infer needs train as well"), ("train,speed", "unknown part 'speed'")):
        proc = subprocess.run([sys.executable, "benchmark.py", "--models=convlstm", f"--parts={parts}",
                               f"--out={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
        assert not (tmp_path / "benchmark.json").exists()


def test_the_pytorch_side_runs_as_a_user_would(monkeypatch):
    """None of the project's settings reach the PyTorch child: no oneDNN ISA cap set by
    engine, no OpenBLAS core-type override, no OMP_NUM_THREADS=1; the same thread count."""
    import engine
    import benchmark
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cmd, env = benchmark.torch_command(sys.executable, "convlstm", "small", 2, 1, [])
    assert "OPENBLAS_CORETYPE" not in env and "OMP_NUM_THREADS" not in env
    assert env.get("OMP_WAIT_POLICY") == "PASSIVE"  # lock-step beside an idle MindSpore process
    if engine.ISA_CAP_SET_HERE:
        assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2" and "ONEDNN_MAX_CPU_ISA" not in env
    assert f"--threads={os.cpu_count()}" in cmd
    assert benchmark.cpu_isa() in ("AVX-512", "AVX2", "AVX", platform.machine())
