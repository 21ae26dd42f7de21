"""Non-square frames: img_height beside img_width (img_width alone still means square)."""
import numpy as np
import pytest

from engine.config import load_config
from engine.errors import UserError
from tests.conftest import TINY


def test_img_height_defaults_to_img_width_and_patch_must_divide_both(tmp_path):
    assert load_config([], validate=False).img_height == 64
    assert load_config(["--img_width=128"], validate=False).img_height == 128
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text("img_width: 160\nimg_height: 128\n")
    cfg = load_config([f"--config_path={yaml_path}"], validate=False)
    assert (cfg.img_height, cfg.img_width) == (128, 160)
    with pytest.raises(UserError, match=r"'patch_size': frames of 36x64 .* not divisible by patch_size 8"):
        load_config(TINY + ["--img_height=36"])
    with pytest.raises(UserError, match="img_height"):
        load_config(TINY + ["--img_height=-8"])


def test_moving_mnist_on_a_wide_canvas_keeps_the_square_sequences():
    from data_provider.moving_mnist import generate_moving_mnist
    rng = np.random.default_rng(0)
    digits = rng.integers(1, 256, (5, 28, 28), dtype=np.uint8)
    square = generate_moving_mnist(digits, 3, seq_length=6, image_size=64, seed=3)
    also_square = generate_moving_mnist(digits, 3, seq_length=6, image_size=(64, 64), seed=3)
    np.testing.assert_array_equal(square, also_square)
    wide = generate_moving_mnist(digits, 3, seq_length=6, image_size=(48, 96), seed=3)
    assert wide.shape == (3, 6, 48, 96, 1)
    # every frame holds both digits whole (max-combined: at least one digit's pixel sum)
    assert (wide.reshape(3, 6, -1).astype(np.int64).sum(-1) >= digits.reshape(5, -1).sum(-1).min()).all()
    with pytest.raises(UserError, match="smaller than the digits"):
        generate_moving_mnist(digits, 1, image_size=(20, 64))


def test_data_of_another_size_is_refused_naming_both_keys(tmp_path):
    from data_provider.build import build_mindrecords
    from engine.trainer import check_data_fits
    cfg = load_config(TINY + [f"--mindrecord_dir={tmp_path}", "--num_train_sequences=2", "--num_test_sequences=1",
                              "--img_height=48"])
    data = build_mindrecords(cfg, log=lambda *_: None)
    assert tuple(check_data_fits(cfg, data["train"], "train_mindrecord")["frame_shape"][1:3]) == (48, 64)
    square = load_config(TINY)
    with pytest.raises(UserError, match=r"'img_height'/'img_width': frames of 64x64 .* holds 48x64 frames"):
        check_data_fits(square, data["train"], "train_mindrecord")


def test_infer_fits_a_clip_to_height_and_width(tmp_path):
    from engine.clip_io import input_frames
    cfg = load_config(TINY + ["--img_height=48"])
    clip = np.random.default_rng(0).random((6, 24, 32, 1)).astype(np.float32)
    np.save(tmp_path / "c.npy", clip)
    lines = []
    got = input_frames(str(tmp_path / "c.npy"), cfg, resize=True, notice=lines.append)
    assert got.shape == (5, 48, 64, 1)
    assert not any("stretched" in l for l in lines)  # 24x32 -> 48x64 keeps the aspect ratio
    with pytest.raises(UserError, match=r"takes 48x64 \(img_height x img_width\)"):
        input_frames(str(tmp_path / "c.npy"), cfg, resize=False)
