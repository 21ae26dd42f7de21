"""KTH Actions: videos and frame folders -> MindRecord -> training and 10 -> 20 evaluation.

The test writes its own tiny KTH-like tree. Videos are real AVI files (Motion-JPEG in a
RIFF container, written by write_mjpeg_avi below) that MindSpore's FFmpeg decodes like the
real ones. Every frame is one flat grey level, base + frame number, so a stored clip tells
which video and which frames it came from; flat frames survive JPEG and resizing exactly."""
import io
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from engine.config import load_config
from engine.errors import UserError
from tests.conftest import ROOT

W, H = 40, 30          # source frames (KTH: 160x120)
SIZE = 16              # img_width of the tests
TRAIN_LEN, TEST_LEN = 6, 30

# (relative path, kind, number of frames or list of frame numbers, grey base)
TREE = [
    ("boxing/person01_boxing_d1_uncomp", "png", 14, 0),              # clips at frames 3, 9
    ("boxing/person01_boxing_d1_uncomp.avi", "avi", 8, 250),         # same video as the folder: unused
    ("running/person01_running_d2_uncomp.avi", "avi", 13, 40),       # stride 3: frames 2, 5, 8
    ("handwaving/person16_handwaving_d3", "jpg", [1, 2, 3, 4] + list(range(6, 15)), 80),  # frame 5 missing: 9
    ("handclapping/person02_handclapping_d1_uncomp", "empty", 0, 0),  # no frames: warned
    ("walking/person03_walking_d1_uncomp.avi", "avi", 4, 100),       # too short for a clip
    ("walking/person17_walking_d1_uncomp.avi", "avi", 33, 120),      # test: frame 4
    ("jogging/person17_jogging_d4_uncomp", "png", 35, 160),          # test, stride 3: frames 3, 6
    ("boxing/person18_boxing_d1_uncomp.avi", "corrupt", 0, 0),       # undecodable: warned
    ("boxing/person25_boxing_d2_uncomp.avi", "avi", 31, 200),        # test: frame 2
    ("00sequences.txt", "text", 0, 0),                               # not KTH data: ignored
]
# (grey base + first frame number) of every stored clip, in file order
TRAIN_FIRST = [0 + 3, 0 + 9, 80 + 9, 40 + 2, 40 + 5, 40 + 8]
TEST_FIRST = [200 + 2, 160 + 3, 160 + 6, 120 + 4]


def _chunk(fourcc, data):
    return fourcc + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def write_mjpeg_avi(path, frames, fps=25):
    """A minimal AVI 1.0 file (RIFF 'AVI ', one MJPG video stream, idx1 index) holding
    grey uint8 frames as JPEG images."""
    from PIL import Image

    jpegs = []
    for frame in frames:
        buf = io.BytesIO()
        Image.fromarray(np.asarray(frame, np.uint8)).save(buf, "JPEG", quality=100)
        jpegs.append(buf.getvalue())
    h, w = np.asarray(frames[0]).shape[:2]
    n, biggest = len(jpegs), max(len(j) for j in jpegs)
    mjpg = struct.unpack("<I", b"MJPG")[0]
    avih = struct.pack("<14I", 1000000 // fps, biggest * fps, 0, 0x10, n, 0, 1, biggest, w, h, 0, 0, 0, 0)
    strh = b"vidsMJPG" + struct.pack("<IHHIIIIIIIIhhhh", 0, 0, 0, 0, 1, fps, 0, n, biggest,
                                     0xFFFFFFFF, 0, 0, 0, w, h)
    strf = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, mjpg, w * h * 3, 0, 0, 0, 0)
    strl = _chunk(b"LIST", b"strl" + _chunk(b"strh", strh) + _chunk(b"strf", strf))
    hdrl = _chunk(b"LIST", b"hdrl" + _chunk(b"avih", avih) + strl)
    movi, index, offset = b"", b"", 4
    for j in jpegs:
        piece = _chunk(b"00dc", j)
        index += b"00dc" + struct.pack("<III", 0x10, offset, len(j))
        offset += len(piece)
        movi += piece
    body = b"AVI " + hdrl + _chunk(b"LIST", b"movi" + movi) + _chunk(b"idx1", index)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def flat(value):
    return np.full((H, W), value, np.uint8)


def make_tree(root, entries=TREE):
    from PIL import Image

    for rel, kind, frames, base in entries:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        numbers = list(range(1, frames + 1)) if isinstance(frames, int) else frames
        if kind == "avi":
            write_mjpeg_avi(path, [flat(base + k) for k in numbers])
        elif kind in ("png", "jpg"):
            os.makedirs(path)
            sep = "_" if kind == "png" else "-"
            for k in numbers:
                # RGB like the PredRNN archive's frames (thuml keeps channel 0)
                img = Image.fromarray(np.repeat(flat(base + k)[..., None], 3, axis=2))
                img.save(os.path.join(path, f"image{sep}{k:04d}.{kind}"), quality=100)
        elif kind == "empty":
            os.makedirs(path)
        elif kind == "corrupt":
            with open(path, "wb") as f:
                f.write(b"RIFF\x10\x00\x00\x00AVI not really a video" * 4)
        else:
            with open(path, "w") as f:
                f.write("person01_boxing_d1 frames 1-95\n")
    if entries is TREE:
        # links are followed; one pointing back up the tree must not loop or count twice
        os.symlink("..", os.path.join(root, "boxing", "back_to_top"))
    return root


ARGS = ["--dataset=kth", f"--img_width={SIZE}", f"--seq_length={TRAIN_LEN}", "--input_length=3",
        f"--test_seq_length={TEST_LEN}"]


def kth_cfg(src, out, *extra):
    return load_config(ARGS + [f"--dataset_path={src}", f"--mindrecord_dir={out}", *extra], needs_model=False)


def first_values(clips):
    return [int(c[0, 0, 0, 0]) for c in clips]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The tree converted once by the command line (the user's way)."""
    src = make_tree(str(tmp_path_factory.mktemp("kth_src")))
    out = tmp_path_factory.mktemp("kth_out")
    proc = subprocess.run([sys.executable, "generate_mindrecord.py", *ARGS, f"--dataset_path={src}",
                           f"--mindrecord_dir={out}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"src": src, "out": out, "log": proc.stdout,
            "train": str(out / "kth_train.mindrecord"), "test": str(out / "kth_test.mindrecord")}


def test_person_split_and_clip_cutting(converted):
    from data_provider.mindrecord import read_sequences
    train, test = read_sequences(converted["train"]), read_sequences(converted["test"])
    assert train.shape == (6, TRAIN_LEN, SIZE, SIZE, 1) and test.shape == (4, TEST_LEN, SIZE, SIZE, 1)
    assert first_values(train) == TRAIN_FIRST
    assert first_values(test) == TEST_FIRST
    for clips in (train, test):
        # every frame flat, and frame t of a clip is frame (first + t) of its video
        assert (clips == clips[:, :, :1, :1]).all()
        steps = np.diff(clips[:, :, 0, 0, 0].astype(int), axis=1)
        assert (steps == 1).all()
    # persons 1-16 only in train, 17-25 only in test: the bases say which video
    assert {v // 40 * 40 for v in first_values(train)} == {0, 40, 80}
    assert {v // 40 * 40 for v in first_values(test)} == {120, 160, 200}


def test_warnings_name_the_bad_inputs_and_the_rest_survives(converted):
    log = converted["log"]
    assert "person18_boxing_d1_uncomp.avi: cannot decode this video" in log
    assert "person02_handclapping_d1_uncomp: no image_NNNN.png/.jpg frames" in log
    assert "1 video(s) are also there as frame folders" in log
    assert "6 clips of 6 frames from 3 videos (1 too short for a clip)" in log
    assert "4 clips of 30 frames from 3 videos (1 unreadable: person18_boxing_d1)" in log
    assert "00sequences" not in log


def test_clip_starts_follow_thuml():
    from data_provider.kth import clip_starts, stride_for
    # disjoint clips from the end of the video; the first frames are left over
    assert clip_starts(list(range(1, 15)), 6, stride_for("boxing", 6)) == [2, 8]
    # jogging/running: every 3 frames, again anchored at the last frame
    assert clip_starts(list(range(1, 14)), 6, stride_for("running", 6)) == [1, 4, 7]
    # a missing frame (5): no clip spans the gap, so 2-8 is not taken
    numbers = [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert clip_starts(numbers, 6, 6) == [7]
    # stride 3 from the end: 11-14, 8-11; windows ending at 8, 7, 6 contain the gap; then 1-4
    assert [numbers[i] for i in clip_starts(numbers, 4, 3)] == [1, 8, 11]
    assert clip_starts(list(range(1, 6)), 6, 6) == []
    # thuml's setting, 20-frame clips of a 95-frame boxing video: frames 16-35, ..., 76-95
    assert clip_starts(list(range(1, 96)), 20, 20) == [15, 35, 55, 75]


def test_resize_matches_cv2_inter_linear():
    """Values of cv2.resize(a, (4, 4)) and cv2.resize(a, (11, 11)) (OpenCV 5.0, the call of
    thuml's kth_action.py), recorded once; we store them rounded to uint8."""
    from data_provider.kth import resize_frames
    a = (np.arange(48).reshape(6, 8) * 5 % 256).astype(np.uint8)
    a[2, 3], a[4, 6] = 250, 0
    down = [[12.5, 22.5, 32.5, 42.5], [72.5, 140.625, 92.5, 102.5],
            [132.5, 142.5, 152.5, 138.75], [192.5, 202.5, 212.5, 198.75]]
    np.testing.assert_array_equal(resize_frames(a[None], 4)[0], np.rint(down))
    up = resize_frames(a[None], 11)[0]
    assert up[0].tolist() == [0, 3, 7, 10, 14, 18, 21, 25, 28, 32, 35]  # 17.5 -> 18: rint
    assert up[4, 3:6].tolist() == [95, 206, 170] and up[7, 8:10].tolist() == [95, 109]
    square = a[:, :6]
    np.testing.assert_array_equal(resize_frames(square[None], 6)[0], square)


def test_training_step_and_20_frame_evaluation(ms_context, converted, tmp_path):
    from engine.evaluator import evaluate
    from engine.trainer import train
    base = ["--model_name=convlstm", "--num_hidden=8,8", "--filter_size=3", "--patch_size=4",
            f"--img_width={SIZE}", "--layer_norm=false", "--batch_size=2", "--eval_batch_size=2",
            "--reverse_input=false", "--device_target=CPU", "--log_interval=1000",
            f"--train_mindrecord={converted['train']}", f"--test_mindrecord={converted['test']}",
            f"--save_dir={tmp_path / 'ckpt'}", f"--eval_dir={tmp_path / 'eval'}"]
    result = train(load_config(base + ["--input_length=3", f"--seq_length={TRAIN_LEN}", "--max_iterations=2",
                                       "--snapshot_interval=2"]), log=lambda *_: None)
    assert len(result["history"]) == 2 and all(np.isfinite(l) for _, l in result["history"])
    # 10 -> 20 on the 30-frame test clips, as the KTH configs document (--seq_length=30)
    lines = []
    cfg = load_config(base + ["--input_length=10", f"--seq_length={TEST_LEN}",
                              f"--pretrained_model={result['checkpoint']}"])
    summaries = evaluate(cfg, log=lines.append)
    model = summaries["model"]
    assert model["num_sequences"] == 4
    assert len(model["psnr"]["per_frame"]) == 20 and len(model["ssim"]["per_frame"]) == 20
    text = "\n".join(lines).splitlines()
    for name in ("ssim", "psnr"):
        at = next(i for i, ln in enumerate(text) if ln.startswith(f"{name} per frame: "))
        assert len([ln for ln in text[at + 1:at + 21] if ln.startswith("    ")]) == 20


def test_interrupted_conversion_resumes(converted, tmp_path, monkeypatch):
    import data_provider.kth as kth
    from data_provider.build import build_mindrecords
    from data_provider.mindrecord import read_sequences
    out = tmp_path / "out"
    real_load = kth.load_source

    def ctrl_c_in_test_split(source, *args):
        if source.key.person >= 17:
            raise KeyboardInterrupt
        return real_load(source, *args)

    monkeypatch.setattr(kth, "load_source", ctrl_c_in_test_split)
    with pytest.raises(KeyboardInterrupt):
        build_mindrecords(kth_cfg(converted["src"], out), log=lambda *_: None)
    assert sorted(os.listdir(out)) == ["kth_train.mindrecord", "kth_train.mindrecord.db",
                                       "kth_train.mindrecord.json"]
    # a conversion killed outright leaves its private temporary folder behind
    (out / ".kth_test.mindrecord.tmp-dead").mkdir()
    (out / ".kth_test.mindrecord.tmp-dead" / "kth_test.mindrecord").write_bytes(b"partial")

    monkeypatch.setattr(kth, "load_source", real_load)
    lines = []
    written = build_mindrecords(kth_cfg(converted["src"], out), log=lines.append)
    log = "\n".join(lines)
    assert "kth_train.mindrecord is up to date" in log and "tmp-dead, left by an interrupted" in log
    assert not (out / ".kth_test.mindrecord.tmp-dead").exists()
    for split in ("train", "test"):
        np.testing.assert_array_equal(read_sequences(written[split]), read_sequences(converted[split]))

    # nothing changed: nothing is decoded again; a new test length redoes the test file only
    def no_decoding(*_):
        raise AssertionError("decoded again")

    monkeypatch.setattr(kth, "load_source", no_decoding)
    lines.clear()
    build_mindrecords(kth_cfg(converted["src"], out), log=lines.append)
    assert sum("is up to date" in ln for ln in lines) == 2
    monkeypatch.setattr(kth, "load_source", real_load)
    monkeypatch.setattr(kth, "_PROGRESS_SECONDS", 0.0)  # a progress line after every video
    lines.clear()
    written = build_mindrecords(kth_cfg(converted["src"], out, "--test_seq_length=8"), log=lines.append)
    assert sum("is up to date" in ln for ln in lines) == 1
    assert any(ln.startswith("  test: 1/4 videos, ") and "ETA" in ln for ln in lines), lines
    assert read_sequences(written["test"]).shape[1] == 8


def test_no_clips_at_all_is_a_user_error(tmp_path):
    from data_provider.build import build_mindrecords
    src = make_tree(str(tmp_path / "src"), [e for e in TREE if e[1] in ("empty", "corrupt", "text")]
                    + [("walking/person03_walking_d1_uncomp.avi", "avi", 4, 100)])
    lines = []
    with pytest.raises(UserError, match="no KTH clip could be made"):
        build_mindrecords(kth_cfg(src, tmp_path / "out"), log=lines.append)
    assert any("person18_boxing_d1_uncomp.avi: cannot decode" in ln for ln in lines)
    os.makedirs(tmp_path / "nothing" / "boxing")
    with pytest.raises(UserError, match="no KTH data found"):
        build_mindrecords(kth_cfg(str(tmp_path / "nothing"), tmp_path / "out"), log=lambda *_: None)
    with pytest.raises(UserError, match="needs --dataset_path"):
        build_mindrecords(kth_cfg("", tmp_path / "out"), log=lambda *_: None)
