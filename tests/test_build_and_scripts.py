"""generate_mindrecord from each kind of source folder, and the seed's shell usages."""
import gzip
import os
import struct
import subprocess

import numpy as np
import pytest

from engine.config import load_config
from engine.errors import UserError
from tests.conftest import ROOT, TINY


def write_idx(path, images):
    header = struct.pack(">iiii", 2051, len(images), images.shape[1], images.shape[2])
    with gzip.open(path, "wb") as f:
        f.write(header + images.astype(np.uint8).tobytes())


def test_build_from_a_folder_of_standard_files(tmp_path):
    from data_provider.build import build_mindrecords
    from data_provider.mindrecord import read_sequences
    rng = np.random.default_rng(0)
    src = tmp_path / "raw"
    src.mkdir()
    # seed 001 layout: MNIST digits for training, mnist_test_seq.npy (time first) for testing
    write_idx(src / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (50, 28, 28)))
    test_seq = rng.integers(0, 256, (20, 6, 64, 64), dtype=np.uint8)
    np.save(src / "mnist_test_seq.npy", test_seq)
    cfg = load_config([f"--dataset_path={src}", f"--mindrecord_dir={tmp_path / 'out'}",
                       "--num_train_sequences=12"], needs_model=False)
    written = build_mindrecords(cfg, log=lambda *_: None)
    np.testing.assert_array_equal(read_sequences(written["test"]), test_seq.transpose(1, 0, 2, 3)[..., None])
    train = read_sequences(written["train"])
    assert train.shape == (12, 20, 64, 64, 1) and train.max() > 0

    # seed 000 layout: thuml npz files (input clip followed by output clip)
    src2 = tmp_path / "npz"
    src2.mkdir()
    raw = rng.random((40, 1, 64, 64)).astype(np.float32)
    clips = np.array([[[0, 10], [20, 10]], [[10, 10], [30, 10]]]).transpose(1, 0, 2)  # (2, N=2, 2)
    for name in ("train.npz", "test.npz"):
        np.savez(src2 / name, clips=clips, dims=np.array([[1, 64, 64]]), input_raw_data=raw)
    cfg2 = load_config([f"--dataset_path={src2}", f"--mindrecord_dir={tmp_path / 'out2'}"], needs_model=False)
    written2 = build_mindrecords(cfg2, log=lambda *_: None)
    got = read_sequences(written2["test"])
    expect0 = np.concatenate([raw[0:10], raw[20:30]]).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(got[0], np.round(expect0 * 255).astype(np.uint8))


def test_build_generated_is_deterministic_and_splits_digits(tmp_path):
    from data_provider.build import build_mindrecords, split_digits
    from data_provider.digits import builtin_digits
    from data_provider.mindrecord import read_sequences
    train_digits, test_digits = split_digits(builtin_digits())
    assert len(train_digits) + len(test_digits) == 1797 and len(test_digits) == 299
    paths = []
    for name in ("a", "b"):
        cfg = load_config([f"--mindrecord_dir={tmp_path / name}", "--num_train_sequences=5",
                           "--num_test_sequences=3", "--seq_length=6", "--input_length=3", "--seed=3"], needs_model=False)
        paths.append(build_mindrecords(cfg, log=lambda *_: None))
    for split in ("train", "test"):
        np.testing.assert_array_equal(read_sequences(paths[0][split]), read_sequences(paths[1][split]))


def test_missing_digit_source_and_empty_folder(tmp_path):
    from data_provider.build import build_mindrecords
    cfg = load_config([f"--mindrecord_dir={tmp_path}", "--digit_source=/nope/train-images-idx3-ubyte.gz"],
                      needs_model=False)
    with pytest.raises(UserError, match="digit_source"):
        build_mindrecords(cfg)
    cfg = load_config([f"--dataset_path={tmp_path}", f"--mindrecord_dir={tmp_path}"], needs_model=False)
    with pytest.raises(UserError, match="no data found"):
        build_mindrecords(cfg)


def test_unavailable_device_is_a_clear_error():
    from engine.device import available_targets, resolve_target
    if "GPU" in available_targets():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match="device_target=GPU is not available"):
        resolve_target("GPU")
    assert resolve_target("auto") in ("CPU", "Ascend")


def run(*args):
    return subprocess.run(["bash", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_seed_script_usages(tmp_path):
    for script in ("scripts/run_standalone_train.sh", "scripts/run_eval.sh"):
        proc = run(script)
        assert proc.returncode == 2 and "usage:" in proc.stderr
    data = tmp_path / "data"
    gen = subprocess.run(["python", "generate_mindrecord.py", *TINY, f"--mindrecord_dir={data}",
                          "--num_train_sequences=16", "--num_test_sequences=8"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr
    config = tmp_path / "tiny.yaml"
    config.write_text("\n".join(a[2:].replace("=", ": ", 1) for a in TINY) + "\n")
    ckpt_dir = tmp_path / "ckpt"
    train = run("scripts/run_standalone_train.sh", str(data / "mnist_train.mindrecord"), "0", str(config), "CPU",
                "--max_iterations=2", f"--save_dir={ckpt_dir}")
    assert train.returncode == 0, train.stdout + train.stderr
    assert "step 2/2" in train.stdout and os.path.isfile(ckpt_dir / "convlstm-2.ckpt")
    ev = run("scripts/run_eval.sh", str(data / "mnist_test.mindrecord"), "0", str(ckpt_dir / "convlstm-2.ckpt"),
             str(config), "CPU", f"--eval_dir={tmp_path / 'eval'}", "--save_predictions=1")
    assert ev.returncode == 0, ev.stdout + ev.stderr
    lines = ev.stdout.splitlines()
    first = lines.index(next(line for line in lines if line.startswith("mse per frame: ")))
    assert len([line for line in lines[first + 1:first + 6] if line.startswith("    ")]) == 5
    assert f"{ckpt_dir / 'convlstm-2.ckpt'} (step 2)" in ev.stdout  # which checkpoint, and its step
    for name in ("log.txt", "metrics.json", "predictions/convlstm-2/seq_0000.png", "predictions/convlstm-2/seq_0000.gif"):
        assert os.path.isfile(tmp_path / "eval" / name), name
