import os
import subprocess
import sys

import pytest

from engine.config import load_config, parse_cli
from engine.errors import UserError
from tests.conftest import ROOT


def test_defaults_hold_the_seed_keys_verbatim():
    cfg = load_config([], validate=False)
    seed_keys = ["train_mindrecord", "test_mindrecord", "pretrained_model", "save_dir", "model_name",
                 "file_format", "input_length", "seq_length", "img_width", "img_channel", "stride",
                 "filter_size", "num_hidden", "patch_size", "layer_norm", "lr", "reverse_input",
                 "batch_size", "max_iterations", "snapshot_interval", "sink_size", "device_num",
                 "device_id", "result_path", "result_dir", "input0_path"]
    for key in seed_keys:
        assert key in cfg, key
    assert cfg.model_name == "predrnn_pp"
    assert cfg.hidden_list() == [128, 64, 64, 64]
    assert (cfg.filter_size, cfg.patch_size, cfg.layer_norm, cfg.lr, cfg.batch_size) == (5, 4, True, 0.001, 8)


def test_overrides_are_typed_from_the_defaults(tmp_path):
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text("model_name: convlstm\nnum_hidden: [8, 8]\nlr: 1e-3\n")
    cfg = load_config([f"--config_path={yaml_path}", "--batch_size=4", "--layer_norm", "false",
                       "--lr=0.5", "--reverse_input"])
    assert cfg.batch_size == 4 and isinstance(cfg.batch_size, int)
    assert cfg.layer_norm is False and cfg.reverse_input is True
    assert cfg.lr == 0.5 and cfg.hidden_list() == [8, 8] and cfg.num_hidden == "8,8"
    assert cfg.model_name == "convlstm"


@pytest.mark.parametrize("argv, key", [
    (["--no_such_key=1"], "no_such_key"),
    (["--batch_size=abc"], "batch_size"),
    (["--batch_size=2.5"], "batch_size"),
    (["--layer_norm=maybe"], "layer_norm"),
    (["--model_name=convlstm", "--input_length=20", "--seq_length=20"], "seq_length"),
    (["--model_name=convlstm", "--img_width=30", "--patch_size=4"], "patch_size"),
    (["--model_name=convlstm", "--num_hidden=64,x"], "num_hidden"),
    (["--model_name=convlstm", "--num_hidden=64,0"], "num_hidden"),
    (["--model_name=convlstm", "--filter_size=4"], "filter_size"),
    (["--model_name=nope"], "model_name"),
    (["--model_name=convlstm", "--device_target=TPU"], "device_target"),
    (["--model_name=convlstm", "--activations=fast"], "activations"),
    (["--model_name=convlstm", "--loss=l1"], "loss"),
    (["--model_name=srvp", "--loss=mse_l1"], "loss"),
])
def test_bad_values_name_the_key(argv, key):
    with pytest.raises(UserError, match=key):
        load_config(argv)


def test_unknown_key_in_yaml_and_missing_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_name: convlstm\nlearning_rate: 0.1\n")
    with pytest.raises(UserError, match="learning_rate"):
        load_config([f"--config_path={bad}"])
    with pytest.raises(UserError, match="not found"):
        load_config([f"--config_path={tmp_path / 'none.yaml'}"])


def test_renamed_keys_name_their_new_name(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text('model_name: predrnn_pp\ncausal_tanh: "exact"\n')
    with pytest.raises(UserError, match="'causal_tanh' in .* renamed to 'activations'"):
        load_config([f"--config_path={old}"])
    with pytest.raises(UserError, match="'e3d_activations' on the command line was renamed to 'activations'"):
        load_config(["--e3d_activations=exact"])


def test_parse_cli_forms():
    assert parse_cli(["--a=1", "--b", "2", "--flag", "--c=x=y"]) == {"a": "1", "b": "2", "flag": "true", "c": "x=y"}
    with pytest.raises(UserError):
        parse_cli(["positional"])


def test_every_shipped_yaml_loads():
    config_dir = os.path.join(ROOT, "configs")
    names = sorted(n for n in os.listdir(config_dir) if n.endswith(".yaml"))
    assert names
    for name in names:
        load_config([f"--config_path={os.path.join(config_dir, name)}"])


@pytest.mark.parametrize("args, needle", [
    (["train.py", "--model_name=convlstm", "--bogus=1"], "unknown option --bogus"),
    (["train.py", "--model_name=convlstm", "--train_mindrecord=/nonexistent/x.mindrecord"], "train_mindrecord"),
    (["eval.py", "--model_name=convlstm", "--test_mindrecord=/nonexistent/x.mindrecord"], "test_mindrecord"),
    # an output folder key naming an existing file (README.md, relative to the root)
    (["train.py", "--model_name=convlstm", "--save_dir=README.md"], "'save_dir': README.md is a file"),
    (["eval.py", "--model_name=convlstm", "--eval_dir=README.md"], "'eval_dir': README.md is a file"),
    (["infer.py", "--model_name=convlstm", "--infer_dir=README.md"], "'infer_dir': README.md is a file"),
    (["generate_mindrecord.py", "--mindrecord_dir=README.md"], "'mindrecord_dir': README.md is a file"),
    (["preprocess.py", "--model_name=convlstm", "--result_path=README.md"], "'result_path': README.md is a file"),
])
def test_cli_user_errors_are_one_line_exit_2(args, needle):
    proc = subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
