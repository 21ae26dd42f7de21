"""Your own data (dataset=custom): videos in two containers, PNG and 16-bit TIFF frame
folders, npy / npz / h5 arrays of uint8 and float, split by video, normalization recorded
and exact round trips, resume, and every bad input as one clear line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from data_provider import mindrecord as mr
from data_provider.custom import TEST_NAME, TRAIN_NAME, build_custom, resolve_layout
from engine.config import load_config
from engine.errors import UserError
from tests.conftest import ROOT
from tests.test_kth import write_mjpeg_avi

BASE = ["--dataset=custom", "--seq_length=6", "--input_length=3", "--img_height=24", "--img_width=32",
        "--patch_size=4", "--model_name=convlstm", "--num_hidden=8", "--filter_size=3"]


def convert(tmp_path, path, *extra, out="out"):
    cfg = load_config(BASE + [f"--dataset_path={path}", f"--mindrecord_dir={tmp_path / out}", *extra],
                      needs_model=False)
    lines = []
    written = build_custom(cfg, log=lines.append)
    return written, lines


def description(path):
    with open(path + ".json", encoding="utf-8") as f:
        return json.load(f)


def write_y4m(path, frames):
    """RGB uint8 [T, H, W, 3] as a YUV4MPEG2 4:4:4 file (BT.601 full range), a second
    container beside AVI that the FFmpeg inside MindSpore reads."""
    f = np.asarray(frames, np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    planes = (0.299 * r + 0.587 * g + 0.114 * b, 128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
              128 + 0.5 * r - 0.418688 * g - 0.081312 * b)
    t, h, w, _ = f.shape
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C444\n".encode())
        for k in range(t):
            out.write(b"FRAME\n")
            for plane in planes:
                out.write(np.clip(np.rint(plane[k]), 0, 255).astype(np.uint8).tobytes())


def coloured_clip(t, h, w, seed):
    """A red square moving right on a dark blue background."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[...] = (0, 0, 60)
    y = int(rng.integers(0, h - 8))
    for k in range(t):
        x = (2 * k + int(rng.integers(0, 4))) % (w - 8)
        frames[k, y:y + 8, x:x + 8] = (220, 30, 30)
    return frames


def test_videos_in_two_containers_split_by_video(tmp_path):
    root = tmp_path / "videos"
    (root / "a" / "b").mkdir(parents=True)
    videos = {}
    for i in range(5):
        frames = coloured_clip(13 + i, 24, 32, i)
        name = root / ("a" if i % 2 else "a/b") / f"clip{i}.{'avi' if i < 2 else 'y4m'}"
        (write_mjpeg_avi if i < 2 else write_y4m)(str(name), frames)
        videos[name.name] = frames
    (root / "broken.mp4").write_bytes(b"not a video at all")
    written, lines = convert(tmp_path, root, "--img_channel=3", "--test_split=0.4", "--seed=3")
    train, test = mr.read_sequences(written["train"]), mr.read_sequences(written["test"])
    assert train.dtype == np.uint8 and train.shape[1:] == (6, 24, 32, 3)
    assert len(train) + len(test) == sum(len(v) // 6 for v in videos.values())
    assert any("broken.mp4" in l and "skipped" in l for l in lines)
    # split by video: each stored clip equals (up to codec loss) the start of a clip of a
    # video of its own split, and no video gives clips to both splits
    owners = {}
    for split, clips in (("train", train), ("test", test)):
        for clip in clips:
            best = min(((np.abs(clip.astype(int) - v[s:s + 6].astype(int)).mean(), n)
                        for n, v in videos.items() for s in range(0, len(v) - 5, 6)))
            assert best[0] < 12, best  # JPEG / YUV rounding only
            owners.setdefault(best[1], set()).add(split)
    assert all(len(s) == 1 for s in owners.values()) and len(owners) == 5
    assert sum(1 for s in owners.values() if s == {"test"}) == 2  # round(0.4 * 5) videos
    # the same seed draws the same split; a rerun keeps both files
    again, lines = convert(tmp_path, root, "--img_channel=3", "--test_split=0.4", "--seed=3")
    assert sum("up to date" in l for l in lines) == 2
    # grey on request (luma), refused without it
    with pytest.raises(UserError, match=r"RGB but img_channel is 1: pass --img_channel=3 .* --grey=true"):
        convert(tmp_path, root, out="g1")
    grey, _ = convert(tmp_path, root, "--grey=true", out="g2")
    assert mr.mindrecord_info(grey["train"])["frame_shape"] == (6, 24, 32, 1)


def test_infer_reads_a_video_file_as_its_clip(tmp_path):
    from engine.clip_io import input_frames
    frames = coloured_clip(8, 24, 32, 0)
    write_y4m(str(tmp_path / "clip.y4m"), frames)
    cfg = load_config(BASE + ["--img_channel=3"])
    lines = []
    got = input_frames(str(tmp_path / "clip.y4m"), cfg, notice=lines.append)
    assert got.shape == (3, 24, 32, 3) and got.dtype == np.float32
    # FFmpeg reads Y4M as limited-range YUV: colours come back within about 10 levels
    assert np.abs(got * 255 - frames[-3:]).mean() < 12
    assert "8 frames of 24x32x3" in lines[0]


def test_png_frame_folders_round_trip_exactly_and_resize_or_crop(tmp_path):
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (3, 14, 24, 32), dtype=np.uint8)
    for i, clip in enumerate(clips):
        folder = tmp_path / "frames" / f"video{i}"
        folder.mkdir(parents=True)
        for t, frame in enumerate(clip):  # natural order: f2 before f10
            Image.fromarray(frame).save(folder / f"f{t + 1}.png")
    written, _ = convert(tmp_path, tmp_path / "frames", "--test_split=0", "--clip_stride=4", "--frame_step=2")
    got = mr.read_sequences(written["train"])
    # frames 0, 2, 4, ... of each video; clips of 6 every 4 (kept) frames: starts 0 (7 frames)
    expected = np.stack([c[::2][s:s + 6] for c in clips for s in (0,)])[..., None]
    np.testing.assert_array_equal(got, expected)
    # another size: refused with the keys to set, or resized / cropped
    with pytest.raises(UserError, match=r"frames are 24x32 \(HxW\) but img_height x img_width is 12x12: "
                                        r"pass --img_height=24 --img_width=32 .* --resize=true .* --crop=true"):
        convert(tmp_path, tmp_path / "frames", "--img_height=12", "--img_width=12", out="o2")
    cropped, _ = convert(tmp_path, tmp_path / "frames", "--img_height=12", "--img_width=12", "--crop=true",
                         "--test_split=0", "--patch_size=2", out="o3")
    got = mr.read_sequences(cropped["train"])
    # centre 24x24 window halved: each output pixel is the mean of a 2x2 block (cv2 bilinear)
    window = clips[0, :6, :, 4:28].astype(np.float64)
    halves = window.reshape(6, 12, 2, 12, 2).mean(axis=(2, 4))
    np.testing.assert_array_equal(got[0, ..., 0], np.clip(np.rint(halves), 0, 255).astype(np.uint8))


def test_16bit_tiff_frames_are_normalized_with_the_training_statistics(tmp_path):
    rng = np.random.default_rng(1)
    clips = rng.integers(100, 60000, (4, 6, 24, 32)).astype(np.uint16)
    for i, clip in enumerate(clips):
        folder = tmp_path / "tiff" / f"v{i}"
        folder.mkdir(parents=True)
        for t, frame in enumerate(clip):
            Image.fromarray(frame).save(folder / f"{t:03d}.tif")
    written, _ = convert(tmp_path, tmp_path / "tiff", "--test_split=0.25", "--seed=5")
    info = description(written["train"])
    assert info["dtype"] == "float32" and info["normalize"]["method"] == "minmax"
    low, high = info["normalize"]["min"][0], info["normalize"]["max"][0]
    assert description(written["test"])["normalize"] == info["normalize"]
    train = mr.read_sequences(written["train"])
    test = mr.read_sequences(written["test"])
    assert train.dtype == np.float32 and len(train) == 3 and len(test) == 1

    def owner(stored):  # which video a stored clip is, back in its own units
        units = stored[..., 0].astype(np.float64) * (high - low) + low
        errors = [np.abs(units - c).max() for c in clips]
        assert min(errors) < 0.05, min(errors)  # float32 round trip of 16-bit values
        return int(np.argmin(errors))

    test_video = owner(test[0])
    train_videos = sorted(owner(c) for c in train)
    assert train_videos == [i for i in range(4) if i != test_video]
    # the statistics are the training split's, not the test video's
    assert (low, high) == (float(clips[train_videos].min()), float(clips[train_videos].max()))
    assert train.min() == 0.0 and train.max() == 1.0


def test_arrays_npy_npz_h5_layouts_and_standard_normalization(tmp_path):
    import h5py
    rng = np.random.default_rng(2)
    clips = (rng.normal(5.0, 3.0, (10, 6, 2, 24, 32))).astype(np.float64)  # [N, T, C, H, W]
    np.savez(tmp_path / "d.npz", x=clips, other=np.zeros(3))
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.create_dataset("group/frames", data=clips)
        f.create_dataset("meta", data=np.arange(4))
    args = ["--img_channel=2", "--normalize=standard", "--array_key=x", "--test_split=0.2"]
    npz, _ = convert(tmp_path, tmp_path / "d.npz", *args, out="npz")
    info = description(npz["train"])["normalize"]
    train = mr.read_sequences(npz["train"])
    assert train.shape == (8, 6, 24, 32, 2)
    np.testing.assert_allclose(train.reshape(-1, 2).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(train.reshape(-1, 2).std(0), 1, atol=1e-5)
    units = train * np.asarray(info["std"], np.float32) + np.asarray(info["mean"], np.float32)
    as_thwc = clips.transpose(0, 1, 3, 4, 2)
    for clip in units:  # each stored clip is one of the clips, in its own units
        assert min(np.abs(clip - c).max() for c in as_thwc) < 1e-4
    h5, _ = convert(tmp_path, tmp_path / "d.h5", *(args[:-2] + ["--array_key=group/frames", "--test_split=0.2"]),
                    out="h5")
    np.testing.assert_array_equal(mr.read_sequences(h5["train"]), train)
    # one long uint8 sequence [T, H, W] is cut; the test set is its last part
    seq = rng.integers(0, 256, (40, 24, 32), dtype=np.uint8)
    np.save(tmp_path / "long.npy", seq)
    long, lines = convert(tmp_path, tmp_path / "long.npy", "--test_split=0.25", out="long")
    np.testing.assert_array_equal(mr.read_sequences(long["train"])[..., 0], seq[:30].reshape(5, 6, 24, 32))
    np.testing.assert_array_equal(mr.read_sequences(long["test"])[..., 0], seq[30:36][None])
    assert any("frames [0, 30) for train, [30, 40) for test" in l for l in lines)
    # float16 storage on request
    half, _ = convert(tmp_path, tmp_path / "d.npz", *args, "--store_dtype=float16", out="half")
    assert mr.read_sequences(half["train"]).dtype == np.float16


def test_layouts_are_found_or_asked_for():
    assert resolve_layout((100, 20, 64, 64), "auto", "x") == "NTHW"
    assert resolve_layout((500, 64, 64, 3), "auto", "x") == "THWC"
    assert resolve_layout((8, 4, 2, 32, 32), "auto", "x") == "NTCHW"
    assert resolve_layout((8, 4, 32, 32, 3), "auto", "x") == "NTHWC"
    with pytest.raises(UserError, match=r"ambiguous: give --array_layout=TCHW\|NTHW"):
        resolve_layout((1000, 2, 32, 32), "auto", "x")
    with pytest.raises(UserError, match="has 4 axes but array_layout NTHWC has 5"):
        resolve_layout((1000, 2, 32, 32), "NTHWC", "x")
    with pytest.raises(UserError, match="has 2 axes"):
        resolve_layout((10, 10), "auto", "x")


def test_bad_inputs_are_one_clear_line(tmp_path):
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 6, 24, 32)), b=np.zeros(2))
    with pytest.raises(UserError, match=r"two.npz holds 2 arrays \(a, b\): name one with --array_key"):
        convert(tmp_path, tmp_path / "two.npz")
    with pytest.raises(UserError, match=r"no array 'c' \(config key 'array_key'\); it holds: a, b"):
        convert(tmp_path, tmp_path / "two.npz", "--array_key=c")
    bad = rng.random((3, 12, 24, 32)).astype(np.float32)
    bad[1, 7, 3, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(UserError, match=r"nan.npy clip 1: frame 7 holds NaN or Inf .* --nan_to=VALUE"):
        convert(tmp_path, tmp_path / "nan.npy", "--test_split=0")
    fixed, _ = convert(tmp_path, tmp_path / "nan.npy", "--test_split=0", "--nan_to=0", out="nan")
    assert np.isfinite(mr.read_sequences(fixed["train"])).all()
    # too short: counted; nothing left: an error
    np.save(tmp_path / "short.npy", np.zeros((2, 4, 24, 32), np.uint8))
    with pytest.raises(UserError, match="no training clip of 6 frames"):
        convert(tmp_path, tmp_path / "short.npy", "--test_split=0", "--array_layout=NTHW")
    # mixed channel counts
    (tmp_path / "mixed" / "g").mkdir(parents=True)
    (tmp_path / "mixed" / "c").mkdir(parents=True)
    for t in range(6):
        Image.fromarray(np.zeros((24, 32), np.uint8)).save(tmp_path / "mixed" / "g" / f"{t}.png")
        Image.fromarray(np.full((24, 32, 3), (9, 80, 200), np.uint8)).save(tmp_path / "mixed" / "c" / f"{t}.png")
    with pytest.raises(UserError, match=r"mixed/c: frames are RGB but img_channel is 1"):
        convert(tmp_path, tmp_path / "mixed", "--test_split=0")
    with pytest.raises(UserError, match=r"frames have 1 channel\(s\) but img_channel is 3"):
        convert(tmp_path, tmp_path / "mixed", "--test_split=0", "--img_channel=3")
    Image.fromarray(np.zeros((20, 32), np.uint8)).save(tmp_path / "mixed" / "g" / "6.png")
    with pytest.raises(UserError, match=r"g/6.png: frame of 20x32x1 \(HxWxC\) where the folder's first is 24x32x1"):
        convert(tmp_path, tmp_path / "mixed" / "g", "--test_split=0")
    with pytest.raises(UserError, match="no such file or folder"):
        convert(tmp_path, tmp_path / "nowhere")
    # from the command line: one line, exit code 2
    proc = subprocess.run([sys.executable, "generate_mindrecord.py", *BASE, f"--dataset_path={tmp_path / 'two.npz'}",
                           f"--mindrecord_dir={tmp_path / 'cli'}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--array_key" in proc.stderr
    assert not os.path.exists(tmp_path / "cli" / TRAIN_NAME) and not os.path.exists(tmp_path / "cli" / TEST_NAME)
