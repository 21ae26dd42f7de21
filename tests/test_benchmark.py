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


def test_torch_command_for_the_openstl_models(tmp_path):
    """MIM, MAU and PhyDNet's PyTorch side is OpenSTL's own model: the command carries their
    Moving MNIST hyper-parameters and the checkout; without one it is refused."""
    import pytest
    import benchmark
    from engine.errors import UserError
    checkout = str(tmp_path / "OpenSTL")
    expected = {
        "mim": ["--num_hidden=128,128,128,128", "--filter_size=5", "--patch_size=4", "--layer_norm=0"],
        "mau": ["--num_hidden=64,64,64,64", "--filter_size=5", "--patch_size=1", "--mau_tau=5", "--sr_size=4",
                "--cell_mode=normal", "--model_mode=normal"],
        "phydnet": ["--patch_size=4", "--img_width=64", "--seq_length=20", "--input_length=10"],
    }
    for name, options in expected.items():
        cmd, env = benchmark.torch_command(sys.executable, name, "mmnist", 2, 3, [], checkout)
        assert cmd[1].endswith(os.path.join("tools", "torch_step.py")) and f"--model={name}" in cmd
        assert set(options) <= set(cmd) and f"--openstl={checkout}" in cmd and "--batch_size=2" in cmd
        assert "--eval" not in cmd and env.get("OMP_WAIT_POLICY") == "PASSIVE"
        with pytest.raises(UserError, match="--openstl"):
            benchmark.torch_command(sys.executable, name, "mmnist", 2, 3, [])
    cmd, env = benchmark.torch_command(sys.executable, "mau", "small", 4, 5, ["--model_mode=recall"], checkout,
                                       evaluate=True)
    assert {"--eval", "--steps=5", "--model_mode=recall", "--num_hidden=32,32", "--patch_size=4"} <= set(cmd)
    # the eval child runs alone: PyTorch's own defaults, no lock-step setting
    assert env.get("OMP_WAIT_POLICY") == os.environ.get("OMP_WAIT_POLICY")
    cmd, _ = benchmark.torch_command(sys.executable, "convlstm", "small", 2, 1, [])  # no checkout needed
    assert not any(c.startswith(("--openstl", "--mau_tau")) for c in cmd)


def test_models_needing_openstl_are_left_unpaired_without_it():
    from benchmark import torch_pairing
    names = ["convlstm", "mim", "e3d_lstm", "phydnet"]
    assert torch_pairing(names, "", "") == ([], None)
    paired, note = torch_pairing(names, sys.executable, "")
    assert paired == ["convlstm"] and "mim, phydnet not paired" in note and "--openstl" in note
    assert torch_pairing(names, sys.executable, "/x/OpenSTL") == (["convlstm", "mim", "phydnet"], None)


def _row(model, **more):
    row = {"model": model, "size": "small", "num_hidden": "32,32", "parameters": 1000, "batch_size": 4,
           "train_gflop_per_step": 1.0, "train_ms_per_step": 100.0, "train_samples_per_s": 40.0,
           "train_gflop_per_s": 10.0, "compile_s": 2.0, "train_peak_rss_gib": 0.5}
    row.update(more)
    return row


def test_main_pairs_openstl_models_only_with_a_checkout(tmp_path, monkeypatch, capsys):
    """main's wiring, the children faked: without --openstl MIM trains and evaluates on our
    side only and one line says why; with it both PyTorch columns land in its row."""
    import benchmark
    torch_calls, eval_calls = [], []
    monkeypatch.setattr(benchmark, "matmul_ceiling", lambda: (100.0, 100.0, 100.0, None))

    def run_child(args):
        name = next(a for a in args if a.startswith("--one="))[len("--one="):]
        return _row(name) if "--part=train" in args else {"graph": {"ms_per_sequence": 20.0}, "infer_peak_rss_gib": 1.0}

    def lockstep(ms_args, cmd, env, steps):
        torch_calls.append(cmd)
        return run_child(ms_args), {"train_ms_per_step": 50.0, "parameters": 1000, "torch": "x"}

    def torch_eval(python, name, size, batch_size, repeats, extra, openstl):
        eval_calls.append((name, openstl))
        return {"mode": "eval", "ms_per_sequence": 10.0, "peak_rss_gib": 0.25}
    monkeypatch.setattr(benchmark, "run_child", run_child)
    monkeypatch.setattr(benchmark, "lockstep_train", lockstep)
    monkeypatch.setattr(benchmark, "measure_torch_eval", torch_eval)
    common = ["--models=convlstm,mim", "--size=small", "--parts=train,infer", f"--torch={sys.executable}"]
    benchmark.main(common + [f"--out={tmp_path / 'a'}"])
    out = capsys.readouterr().out
    assert out.count("mim not paired with PyTorch") == 1
    rows = json.loads((tmp_path / "a" / "benchmark.json").read_text())["rows"]
    assert [c[2] for c in torch_calls] == ["--model=convlstm"] and eval_calls == [("convlstm", "")]
    assert "torch" in rows[0] and "torch" in rows[0]["inference"]
    assert "torch" not in rows[1] and "torch" not in rows[1]["inference"]
    checkout = tmp_path / "OpenSTL"
    (checkout / "openstl" / "models").mkdir(parents=True)
    benchmark.main(common + [f"--out={tmp_path / 'b'}", f"--openstl={checkout}"])
    assert "not paired" not in capsys.readouterr().out
    assert f"--openstl={checkout}" in torch_calls[-1] and eval_calls[-1] == ("mim", str(checkout))
    rows = json.loads((tmp_path / "b" / "benchmark.json").read_text())["rows"]
    assert rows[1]["inference"]["torch"]["ms_per_sequence"] == 10.0
    assert "| mim | small |" in (tmp_path / "b" / "benchmark.md").read_text()


def test_markdown_shows_pytorch_eval_beside_ours():
    from benchmark import markdown
    inference = {"graph": {"ms_per_sequence": 30.0}, "mindir": {"ms_per_sequence": 31.0},
                 "onnx": {"ms_per_sequence": 25.0}, "infer_peak_rss_gib": 1.25}
    rows = [_row("convlstm", inference=dict(inference, torch={"ms_per_sequence": 20.0, "peak_rss_gib": 0.75}),
                 torch={"train_ms_per_step": 80.0, "torch": "2.14.1", "threads": 2}),
            _row("predrnn", inference=dict(inference, torch={"error": "exit 1: no torch"})),
            _row("e3d_lstm", inference=dict(inference, torch={"ms_per_sequence": 4.0, "peak_rss_gib": 0.5},
                                            graph={"ms_per_sequence": 6.0})),
            _row("mim", inference=inference)]
    report = {"numpy_matmul_gflops": 100.0, "rows": rows, "date": "2027-01-01", "machine": "cpu", "cpus": 2,
              "mindspore": "2.10.0"}
    lines = markdown(report).splitlines()
    header = lines[0].split(" | ")
    column = header.index("PyTorch eager eval ms/seq (GRAPH / PT; RSS)")
    assert header[column - 1] == "C++ ONNX RT" and lines[1].count("---|") == len(header)
    cells = {line.split(" | ")[0][2:]: line.split(" | ") for line in lines[2:6]}
    assert all(len(c) == len(header) for c in cells.values())
    assert cells["convlstm"][column] == "20 (1.50x; 0.8 GiB)"    # GRAPH 30 ms over PyTorch's 20
    assert cells["predrnn"][column] == "n/a" and cells["mim"][column] == "-"
    assert cells["e3d_lstm"][column] == "4.0 (1.50x; 0.5 GiB)"   # under 10 ms: a decimal kept
    assert cells["convlstm"][column + 2] == "80 (1.25x)"        # the train column, unchanged
    assert any(line.startswith("PyTorch 2.14.1: 2 threads") for line in lines)
