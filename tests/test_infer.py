"""infer.py: a user's clip (.npy, folder of frames, GIF) -> predicted frames, with every way
of giving the same frames, and every model format, agreeing; clip mistakes are one line."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from engine.config import load_config
from engine.errors import UserError
from tests.conftest import ROOT
from tests.test_export import SHORT, random_checkpoint

# SHORT: convlstm, 64x64 grey frames, patch 8, 3 input frames -> 3 predicted
FUTURE = 3


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import mindspore as ms
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    folder = tmp_path_factory.mktemp("infer_model")
    cfg = load_config(SHORT)
    return {"cfg": cfg, "ckpt": random_checkpoint(cfg, folder / "model.ckpt"), "dir": folder}


@pytest.fixture(scope="module")
def clip():
    """5 frames, so that the 3 inputs are the last 3; smooth blobs plus noise, uint8."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:64, :64]
    frames = []
    for t in range(5):
        blob = 255 * np.exp(-((yy - 20 - 5 * t) ** 2 + (xx - 30 + 3 * t) ** 2) / 60.0)
        frames.append(np.clip(blob + rng.integers(0, 40, (64, 64)), 0, 255).astype(np.uint8))
    return np.stack(frames)


def _unit(frames):
    """uint8 -> float32 as the MindRecord reader decodes (x/255 in float64, rounded once)."""
    return (frames / 255.0).astype(np.float32)


def _cfg(model, clip_path, out, *extra):
    return load_config(SHORT + [f"--input_clip={clip_path}", f"--pretrained_model={model['ckpt']}",
                                f"--infer_dir={out}", *extra])


def _run(model, clip_path, out, *extra, source=None):
    from infer import infer
    cfg = _cfg(model, clip_path, out, *extra)
    if source:
        cfg.pretrained_model = source
    lines = []
    result = infer(cfg, str(out), log=lines.append)
    return result, "\n".join(lines)


def _write_pngs(frames, folder, names):
    os.makedirs(folder, exist_ok=True)
    for frame, name in zip(frames, names):
        Image.fromarray(frame).save(os.path.join(folder, name))
    return str(folder)


def _write_gif(frames, path):
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
    return str(path)


def test_npy_pngs_gif_and_checkpoint_predictor_agree(model, clip, tmp_path):
    from data_provider.patch import reshape_patch, reshape_patch_back
    from engine.inference import CheckpointPredictor
    cfg = model["cfg"]
    npy = tmp_path / "clip.npy"
    np.save(npy, clip)

    # the CLI on the .npy: prints where the files are and that it used the last frames
    out = tmp_path / "out_npy"
    proc = subprocess.run([sys.executable, "infer.py", *SHORT, f"--input_clip={npy}",
                           f"--pretrained_model={model['ckpt']}", f"--infer_dir={out}"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "last 3 of the 5 frames" in proc.stdout and str(out / "prediction.npy") in proc.stdout
    from_npy = np.load(out / "prediction.npy")
    assert from_npy.dtype == np.float32 and from_npy.shape == (FUTURE, 64, 64, 1)
    assert 0 <= from_npy.min() and from_npy.max() <= 1 and from_npy.std() > 1e-3

    # names in natural order differ from sorted order: f_10 after f_9
    names = [f"f_{i}.png" for i in (8, 9, 10, 11, 12)]
    folder = _write_pngs(clip, tmp_path / "frames", names)
    (tmp_path / "frames" / "notes.txt").write_text("not a frame")
    from_pngs, log = _run(model, folder, tmp_path / "out_png")
    assert "last 3 of the 5 frames" in log
    from_gif, _ = _run(model, _write_gif(clip, tmp_path / "clip.gif"), tmp_path / "out_gif")

    np.testing.assert_array_equal(from_pngs["inputs"], _unit(clip[-3:, :, :, None]))
    np.testing.assert_array_equal(from_pngs["pred"], from_npy)
    np.testing.assert_array_equal(from_gif["pred"], from_npy)

    inputs = reshape_patch(_unit(clip[None, -3:, :, :, None]), cfg.patch_size)
    direct = CheckpointPredictor(cfg, model["ckpt"], 1).predict(inputs)
    expected = np.clip(reshape_patch_back(direct, cfg.patch_size)[0], 0, 1)
    np.testing.assert_array_equal(from_npy, expected)

    # the files: one PNG per predicted frame (the 8-bit frames), a GIF of inputs + predictions
    pngs = sorted(os.listdir(tmp_path / "out_png"))
    assert pngs == ["pred_00.png", "pred_01.png", "pred_02.png", "prediction.gif", "prediction.npy"]
    from engine.metrics import to_uint8
    for i in range(FUTURE):
        picture = np.asarray(Image.open(tmp_path / "out_png" / f"pred_{i:02d}.png"))
        np.testing.assert_array_equal(picture, to_uint8(from_npy[i])[..., 0])
    with Image.open(tmp_path / "out_png" / "prediction.gif") as gif:
        assert gif.n_frames == 3 + FUTURE and gif.size[0] == 128  # scale 2 at 64 pixels


def test_longer_clip_uses_its_last_frames(model, clip, tmp_path):
    from engine.clip_io import input_frames
    longer = np.concatenate([np.full((4, 64, 64), 200, np.uint8), clip])
    np.save(tmp_path / "long.npy", longer)
    lines = []
    got = input_frames(str(tmp_path / "long.npy"), model["cfg"], notice=lines.append)
    np.testing.assert_array_equal(got[..., 0], _unit(clip[-3:]))
    assert any("last 3 of the 9 frames (frames 7-9" in line for line in lines)


def test_mindir_and_onnx_give_the_checkpoint_predictions(model, clip, tmp_path):
    from engine.inference import export_model
    cfg = model["cfg"]
    np.save(tmp_path / "clip.npy", clip)
    reference, _ = _run(model, tmp_path / "clip.npy", tmp_path / "ckpt")
    mindir = export_model(cfg, model["ckpt"], "MINDIR", 1, str(tmp_path / "m"), "CPU")
    via_mindir, log = _run(model, tmp_path / "clip.npy", tmp_path / "mindir", source=mindir)
    assert "(mindir, batch 1)" in log
    # the MINDIR holds MindSpore's convolutions, the checkpoint ran the native ones: float32 rounding
    assert np.abs(via_mindir["pred"] - reference["pred"]).max() < 1e-6
    onnx_path = export_model(cfg, model["ckpt"], "ONNX", 1, str(tmp_path / "m"), "CPU")
    via_onnx, log = _run(model, tmp_path / "clip.npy", tmp_path / "onnx", source=onnx_path)
    assert "(onnx, batch 1)" in log
    assert np.abs(via_onnx["pred"] - reference["pred"]).max() < 1e-4

    # an exported file made for another input length is named, not a crash in the runtime
    other = load_config(SHORT + ["--input_length=2", "--seq_length=5"])
    onnx2 = export_model(other, random_checkpoint(other, tmp_path / "o.ckpt"), "ONNX", 1, str(tmp_path / "o"), "CPU")
    with pytest.raises(UserError, match="--config_path it was exported with"):
        _run(model, tmp_path / "clip.npy", tmp_path / "bad", source=onnx2)


def _error(model, clip_path, tmp_path, *extra):
    with pytest.raises(UserError) as info:
        _run(model, clip_path, tmp_path / "never", *extra)
    assert not (tmp_path / "never").exists()
    return str(info.value)


def test_clip_mistakes_are_named(model, clip, tmp_path):
    np.save(tmp_path / "short.npy", clip[:2])
    msg = _error(model, tmp_path / "short.npy", tmp_path)
    assert "has 2 frames" in msg and "input_length=3" in msg

    np.save(tmp_path / "wide.npy", np.zeros((3, 48, 64), np.uint8))
    msg = _error(model, tmp_path / "wide.npy", tmp_path)
    assert "48x64" in msg and "64x64" in msg and "--resize=true" in msg

    np.save(tmp_path / "rgb.npy", np.zeros((3, 64, 64, 3), np.uint8))
    msg = _error(model, tmp_path / "rgb.npy", tmp_path)
    assert "3 channels" in msg and "img_channel=1" in msg

    np.save(tmp_path / "float.npy", np.linspace(-0.5, 2, 3 * 64 * 64).reshape(3, 64, 64))
    msg = _error(model, tmp_path / "float.npy", tmp_path)
    assert "[0, 1]" in msg and "[-0.5, 2]" in msg

    np.save(tmp_path / "int.npy", np.zeros((3, 64, 64), np.int64))
    assert "int64" in _error(model, tmp_path / "int.npy", tmp_path)

    assert "not found" in _error(model, tmp_path / "nothing.npy", tmp_path)
    os.makedirs(tmp_path / "empty")
    msg = _error(model, tmp_path / "empty", tmp_path)
    assert "no .png/.jpg frames" in msg and str(tmp_path / "empty") in msg
    (tmp_path / "clip.xyz").write_bytes(b"\0" * 16)
    msg = _error(model, tmp_path / "clip.xyz", tmp_path)
    assert "unknown file type" in msg and "clip.xyz" in msg
    (tmp_path / "clip.mp4").write_bytes(b"\0" * 16)
    msg = _error(model, tmp_path / "clip.mp4", tmp_path)
    assert msg.startswith(f"cannot decode video {tmp_path / 'clip.mp4'}: Failed to open the file")
    os.makedirs(tmp_path / "broken")
    (tmp_path / "broken" / "f_1.png").write_bytes(b"not a png")
    assert "cannot read image" in _error(model, tmp_path / "broken", tmp_path)
    assert "input_clip" in _error(model, "", tmp_path)


def test_cli_error_is_one_line(model, tmp_path):
    proc = subprocess.run([sys.executable, "infer.py", *SHORT, f"--input_clip={tmp_path / 'nothing.gif'}",
                           f"--pretrained_model={model['ckpt']}"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: input_clip not found: {tmp_path / 'nothing.gif'}"]


def test_resize_and_channel_conversion(model, tmp_path):
    from engine.clip_io import input_frames, load_clip
    cfg = model["cfg"]
    np.save(tmp_path / "wide.npy", np.full((3, 48, 80), 100, np.uint8))
    lines = []
    got = input_frames(str(tmp_path / "wide.npy"), cfg, resize=True, notice=lines.append)
    assert got.shape == (3, 64, 64, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got, 100 / 255, atol=1e-6)  # a flat frame stays flat
    assert any("stretched" in line for line in lines)
    np.save(tmp_path / "square.npy", np.full((3, 32, 32), 100, np.uint8))
    lines = []
    assert input_frames(str(tmp_path / "square.npy"), cfg, resize=True, notice=lines.append).shape == (3, 64, 64, 1)
    assert not any("stretched" in line for line in lines)

    rgb = np.random.default_rng(3).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    folder = _write_pngs(rgb, tmp_path / "rgb", ["a.png", "b.png"])
    grey = load_clip(folder, 1)
    expected = np.stack([np.asarray(Image.fromarray(f).convert("L")) for f in rgb])
    np.testing.assert_array_equal(grey[..., 0], _unit(expected))
    colour = load_clip(_write_gif(expected, tmp_path / "grey.gif"), 3)
    assert colour.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(colour, np.repeat(grey, 3, axis=-1))
    np.testing.assert_array_equal(load_clip(folder, 3), _unit(rgb))
