"""KTH Actions (Schuldt et al. 2004) as uint8 clips for MindRecord.

What the converter reads, anywhere below --dataset_path (the tree is walked, so the
download's action folders, a flat folder or the PredRNN / E3D / OpenSTL frame archive all
work):

- the original videos: personNN_ACTION_dS_uncomp.avi (also .mp4 / .mov, "_uncomp" optional),
  decoded with mindspore.dataset.vision.read_video (the FFmpeg 5.1 libraries inside the
  MindSpore wheel; no other decoder is needed);
- extracted frames as the PredRNN / E3D / OpenSTL code reads them: one folder per video,
  named like the video (person01_boxing_d1_uncomp or person01_boxing_d1), holding
  image_NNNN.png or .jpg (also image-NNNN / imageNNNN, .jpeg, .bmp); frames are ordered by
  NNNN. If one video is there both as a folder with frames and as a file, the folder wins.

ACTION is boxing, handclapping, handwaving, jogging, running or walking; NN the person
(1-25), S the scenario (1-4).

Processing, as thuml/predrnn-pytorch core/data_provider/kth_action.py (copied unchanged by
OpenSTL's dataloader_kth.py and google/e3d_lstm):
- split by person: persons 1-16 train, 17-25 test;
- grey: 8-bit luma (ITU-R 601 weights, Pillow's "L"); KTH is grey, so this equals the
  first channel that thuml keeps;
- resized to img_width x img_width (160x120 is stretched, not cropped) with cv2.resize's
  default INTER_LINEAR arithmetic (half-pixel centres, no anti-aliasing) on float values,
  as thuml does, then rounded to uint8 for storage;
- clips are cut per video, walking back from its last frame: a window of clip_length
  files is a clip when its first and last frame numbers differ by clip_length - 1 (no
  frame missing); after a clip the window moves back by clip_length for boxing,
  handclapping, handwaving and walking (clips do not overlap) and by 3 frames for jogging
  and running (they overlap). No clip spans two videos or a gap in the numbering. The
  test split is cut the same way with its own clip length (thuml issue #20: 30 frames to
  evaluate 10 -> 20).

Clips are stored in the order action (alphabetical), person, scenario, start frame;
thuml's order depends on os.listdir and is shuffled for training anyway.
"""
import collections
import hashlib
import json
import os
import re
import shutil
import time

import numpy as np

from engine.errors import UserError
from engine.log import format_duration

ACTIONS = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
# thuml's category_2: clips of these actions start every 3 frames and overlap, the others
# are disjoint (presumably because the runner is in view for only part of each video, so
# disjoint clips would be few).
DENSE_ACTIONS = ("jogging", "running")
DENSE_STRIDE = 3
TRAIN_PERSONS = tuple(range(1, 17))
TEST_PERSONS = tuple(range(17, 26))
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov")
TRAIN_NAME = "kth_train.mindrecord"
TEST_NAME = "kth_test.mindrecord"
# Bump when the processing changes, so a rerun does not keep files made the old way.
FORMAT_VERSION = 1

_CLIP_RE = re.compile(r"^person(\d+)_([a-z]+)_d(\d+)(?:_uncomp)?$", re.IGNORECASE)
_FRAME_RE = re.compile(r"^image[_-]?(\d+)\.(?:png|jpe?g|bmp)$", re.IGNORECASE)
_CHUNK = 64  # clips handed to the writer at once: 64 x 20 x 128 x 128 bytes = 21 MB
_PROGRESS_SECONDS = 10.0

ClipKey = collections.namedtuple("ClipKey", ["action", "person", "scenario"])


class Source:
    """One KTH video: a video file, or a folder of frames (frames = [(number, path)])."""

    def __init__(self, key, kind, path, frames=None):
        self.key, self.kind, self.path, self.frames = key, kind, path, frames

    @property
    def name(self):
        return f"person{self.key.person:02d}_{self.key.action}_d{self.key.scenario}"

    def __repr__(self):
        return f"Source({self.name}, {self.kind}, {self.path})"


def _parse_clip_name(stem):
    m = _CLIP_RE.match(stem)
    if not m or m.group(2).lower() not in ACTIONS:
        return None
    return ClipKey(m.group(2).lower(), int(m.group(1)), int(m.group(3)))


def _sort_key(key):
    return ACTIONS.index(key.action), key.person, key.scenario


def find_sources(root, warn, note=None):
    """All KTH videos below root, one Source per (action, person, scenario), sorted.

    Empty frame folders (with no video of the same name) and duplicates are reported
    through warn(message) and left out; videos that are also there as frame folders are
    counted in one note(message)."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise UserError(f"dataset_path {root}: folder not found")
    folders, videos, empty = {}, {}, {}
    seen = set()
    # links are followed (people link action folders into place); a link back up the
    # tree would loop, hence the set of real paths already walked
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        key = _parse_clip_name(os.path.basename(dirpath))
        if key is not None and dirpath != root:
            frames = []
            for name in filenames:
                m = _FRAME_RE.match(name)
                if m:
                    frames.append((int(m.group(1)), os.path.join(dirpath, name)))
            frames.sort()
            if frames:
                folders.setdefault(key, []).append(Source(key, "frames", dirpath, frames))
            else:
                empty.setdefault(key, []).append(dirpath)
        for name in sorted(filenames):
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS:
                vkey = _parse_clip_name(stem)
                if vkey is not None:
                    videos.setdefault(vkey, []).append(Source(vkey, "video", os.path.join(dirpath, name)))
    chosen = []
    shadowed = 0
    for key in sorted(set(folders) | set(videos) | set(empty), key=_sort_key):
        candidates = folders.get(key, []) + videos.get(key, [])
        if not candidates:
            for path in empty[key]:
                warn(f"{path}: no image_NNNN.png/.jpg frames in this folder; skipped")
            continue
        source = candidates[0]
        for other in candidates[1:]:
            if other.kind == source.kind:
                warn(f"{other.path}: a second copy of {source.name} (using {source.path}); skipped")
            else:
                shadowed += 1
        chosen.append(source)
    if shadowed and note:
        note(f"{shadowed} video(s) are also there as frame folders: the frames are used")
    return chosen


def split_sources(sources, warn):
    """{'train': [...], 'test': [...]} by person (thuml: 1-16 train, 17-25 test)."""
    out = {"train": [], "test": []}
    for s in sources:
        if s.key.person in TRAIN_PERSONS:
            out["train"].append(s)
        elif s.key.person in TEST_PERSONS:
            out["test"].append(s)
        else:
            warn(f"{s.path}: person {s.key.person} is in neither split (KTH has persons 1-25); skipped")
    return out


def clip_starts(numbers, clip_length, stride):
    """Start positions (ascending) of the clips thuml's kth_action.py cuts from one video.

    numbers are the frame numbers in order. Walking back from the last frame, a window of
    clip_length frames is taken when its end numbers differ by exactly clip_length - 1;
    the walk then moves back by `stride`, otherwise by one frame."""
    starts = []
    i = len(numbers) - 1
    while i >= clip_length - 1:
        if numbers[i] - numbers[i - clip_length + 1] == clip_length - 1:
            starts.append(i - clip_length + 1)
            i -= stride
        else:
            i -= 1
    return starts[::-1]


def stride_for(action, clip_length):
    return DENSE_STRIDE if action in DENSE_ACTIONS else clip_length


def _linear_taps(src, dst):
    # cv2.INTER_LINEAR: source coordinate (d + 0.5) * src/dst - 0.5, clamped to the image,
    # two taps, no anti-aliasing filter when shrinking (thuml's cv2.resize call).
    x = np.clip((np.arange(dst) + 0.5) * (src / dst) - 0.5, 0, src - 1)
    x0 = np.floor(x).astype(np.int64)
    x1 = np.minimum(x0 + 1, src - 1)
    w1 = (x - x0).astype(np.float32)
    return x0, x1, w1


def resize_frames(frames, size):
    """uint8 (N, H, W) -> uint8 (N, size, size), or (N, height, width) for size = (height,
    width), bilinear as cv2.resize does on float data."""
    frames = np.asarray(frames)
    n, h, w = frames.shape
    out_h, out_w = (size, size) if np.isscalar(size) else size
    if (h, w) == (out_h, out_w):
        return frames.astype(np.uint8, copy=False)
    f = frames.astype(np.float32)
    # horizontal pass first and a0 * s0 + a1 * s1, as cv2 computes it: the rounded result
    # then equals round(cv2.resize(...)) exactly (checked on random frames at 128, 64, 16)
    x0, x1, wx = _linear_taps(w, out_w)
    g = np.take(f, x0, axis=2)
    g *= 1 - wx
    tmp = np.take(f, x1, axis=2)
    tmp *= wx
    g += tmp
    y0, y1, wy = _linear_taps(h, out_h)
    out = np.take(g, y0, axis=1)
    out *= (1 - wy)[:, None]
    tmp = np.take(g, y1, axis=1)
    tmp *= wy[:, None]
    out += tmp
    np.rint(out, out=out)
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def rgb_to_luma(rgb):
    """uint8 (..., 3) -> uint8 (...), Pillow's "L" conversion in integer arithmetic."""
    c = rgb.astype(np.uint32)
    return ((c[..., 0] * 19595 + c[..., 1] * 38470 + c[..., 2] * 7471 + 0x8000) >> 16).astype(np.uint8)


def read_video(path):
    """uint8 grey frames (T, H, W) of a video file; RuntimeError if it cannot be decoded."""
    from mindspore.dataset.vision import read_video as ms_read_video

    video, _, _ = ms_read_video(os.fspath(path))
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[0] == 0:
        raise RuntimeError("no video frames decoded")
    return rgb_to_luma(video) if video.shape[-1] == 3 else video[..., 0]


def _read_image(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def _short_reason(exc):
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("[ERROR]"):
            return ln.replace("[ERROR]", "").strip()
    return lines[-1] if lines else type(exc).__name__


def load_source(source, img_width, warn):
    """(frame numbers, uint8 frames (N, H, W) of the size resize_frames makes of img_width
    (an int: square; or (height, width))) of one source, or None
    (reported through warn) when nothing can be read from it."""
    if source.kind == "video":
        try:
            grey = read_video(source.path)
        except (RuntimeError, ValueError, OSError) as e:
            warn(f"{source.path}: cannot decode this video ({_short_reason(e)}); skipped")
            return None
        # in blocks: a long video as float32 would otherwise cost hundreds of MB at once
        frames = np.concatenate([resize_frames(grey[i:i + 256], img_width) for i in range(0, len(grey), 256)])
        return list(range(1, len(grey) + 1)), frames
    numbers, frames = [], []
    for number, path in source.frames:
        if numbers and number == numbers[-1]:
            warn(f"{path}: a second file for frame {number}; skipped")
            continue
        try:
            grey = _read_image(path)
        except (OSError, ValueError, SyntaxError) as e:
            # dropping the frame leaves a gap in the numbering: no clip will span it
            warn(f"{path}: unreadable frame ({e}); skipped")
            continue
        numbers.append(number)
        frames.append(resize_frames(grey[None], img_width)[0])
    if not frames:
        warn(f"{source.path}: none of its frames could be read; skipped")
        return None
    return numbers, np.stack(frames)


class SplitStats:
    def __init__(self, total):
        self.total = total
        self.done = 0
        self.used = 0
        self.too_short = []
        self.failed = []
        self.clips = 0


def iter_clips(sources, clip_length, img_width, stats, warn, log, label):
    """Yield uint8 chunks (n, clip_length, H, W, 1) of every source's clips (H, W from img_width
    as in resize_frames)."""
    began = last = time.monotonic()
    for source in sources:
        loaded = load_source(source, img_width, warn)
        stats.done += 1
        if loaded is None:
            stats.failed.append(source.name)
        else:
            numbers, frames = loaded
            starts = clip_starts(numbers, clip_length, stride_for(source.key.action, clip_length))
            if not starts:
                stats.too_short.append(source.name)
            else:
                stats.used += 1
            for c in range(0, len(starts), _CHUNK):
                part = starts[c:c + _CHUNK]
                chunk = np.stack([frames[s:s + clip_length] for s in part])[..., None]
                stats.clips += len(part)
                yield chunk
        now = time.monotonic()
        if now - last >= _PROGRESS_SECONDS and stats.done < stats.total:
            rate = stats.done / (now - began)
            log(f"  {label}: {stats.done}/{stats.total} videos, {stats.clips} clips, "
                f"{rate:.1f} videos/s, ETA {format_duration((stats.total - stats.done) / rate)}")
            last = now


def _size_keys(size):
    """The frame size in a fingerprint: img_width alone for square frames (as before
    img_height existed, so earlier conversions stay up to date), else both."""
    if np.isscalar(size):
        return {"img_width": int(size)}
    return {"img_height": int(size[0]), "img_width": int(size[1])}


def fingerprint(root, sources, split, clip_length, img_width):
    """What a finished file was made from: settings plus name, size and mtime of every
    input file (relative to root). A rerun keeps a file whose fingerprint is unchanged."""
    h = hashlib.sha256()
    for s in sources:
        files = [s.path] if s.kind == "video" else [p for _, p in s.frames]
        for path in files:
            rel = os.path.relpath(path, root)
            try:
                st = os.stat(path)
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{rel}\0missing\n".encode())
    return {"dataset": "kth", "format_version": FORMAT_VERSION, "split": split,
            "clip_length": int(clip_length), **_size_keys(img_width),
            "persons": list(TRAIN_PERSONS if split == "train" else TEST_PERSONS),
            "num_sources": len(sources), "sources_sha256": h.hexdigest()}


def manifest_path(path):
    return path + ".json"


def _up_to_date(path, expected):
    """True when path holds a finished conversion with exactly these inputs and settings."""
    from data_provider.mindrecord import mindrecord_info

    mpath = manifest_path(path)
    if not (os.path.isfile(path) and os.path.isfile(mpath)):
        return False
    try:
        with open(mpath, encoding="utf-8") as f:
            manifest = json.load(f)
        info = mindrecord_info(path)
    except (OSError, ValueError, UserError):
        return False
    shape = (expected["clip_length"], expected.get("img_height", expected["img_width"]), expected["img_width"], 1)
    return (manifest.get("fingerprint") == expected and manifest.get("num_clips") == info["num_samples"]
            and tuple(info["frame_shape"]) == shape)


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def remove_stale_temporaries(out_dir, names, warn):
    """write_mindrecord builds each file in '.NAME.tmp-*' beside it and removes that on any
    error; a killed process (SIGKILL, power loss) leaves it behind, possibly gigabytes."""
    if not os.path.isdir(out_dir):
        return
    for entry in sorted(os.listdir(out_dir)):
        if any(entry.startswith(f".{name}.tmp-") for name in names):
            path = os.path.join(out_dir, entry)
            warn(f"removing {path}, left by an interrupted conversion")
            shutil.rmtree(path, ignore_errors=True)


def build_kth(cfg, log=print):
    """Write mindrecord_dir/kth_train.mindrecord and kth_test.mindrecord from the KTH videos or
    frame folders under cfg.dataset_path. Returns {split: path} of the files now in place.

    Each file is written atomically (write_mindrecord) and then described by NAME.json;
    a rerun keeps a file whose description matches the current inputs and settings, so an
    interrupted conversion resumes with the split it was writing."""
    from data_provider.mindrecord import write_mindrecord

    if not cfg.dataset_path:
        raise UserError("dataset=kth needs --dataset_path=DIR, the folder with the KTH videos or frame folders")
    test_length = cfg.test_seq_length or cfg.seq_length
    if test_length <= cfg.input_length:
        raise UserError(f"config key 'test_seq_length': {cfg.test_seq_length} must be 0 (= seq_length) "
                        f"or more than input_length ({cfg.input_length})")
    if cfg.img_channel != 1:
        raise UserError(f"config key 'img_channel': KTH is grey, set img_channel=1 (got {cfg.img_channel})")

    def warn(message):
        log(f"warning: {message}")

    log(f"looking for KTH videos and frame folders under {cfg.dataset_path}")
    sources = find_sources(cfg.dataset_path, warn, note=log)
    if not sources:
        raise UserError(f"{cfg.dataset_path}: no KTH data found; looked for videos "
                        f"personNN_ACTION_dS_uncomp.avi and folders personNN_ACTION_dS[_uncomp]/image_NNNN.png|jpg "
                        f"(ACTION: {', '.join(ACTIONS)})")
    kinds = collections.Counter(s.kind for s in sources)
    log(f"found {kinds['video']} video file(s) and {kinds['frames']} frame folder(s); "
        f"frames {cfg.img_height}x{cfg.img_width} grey; train clips of {cfg.seq_length} frames "
        f"(persons 1-16), test clips of {test_length} (persons 17-25)")
    splits = split_sources(sources, warn)

    out_dir = cfg.mindrecord_dir
    os.makedirs(out_dir, exist_ok=True)
    remove_stale_temporaries(out_dir, (TRAIN_NAME, TEST_NAME), warn)
    plan = (("train", TRAIN_NAME, cfg.seq_length), ("test", TEST_NAME, test_length))
    # an int for square frames (the fingerprint of earlier conversions), else (height, width)
    size = cfg.img_width if cfg.img_height == cfg.img_width else (cfg.img_height, cfg.img_width)
    written = {}
    for split, name, length in plan:
        path = os.path.join(out_dir, name)
        chosen = splits[split]
        if not chosen:
            warn(f"no {split} videos (persons {'1-16' if split == 'train' else '17-25'}); {path} not written")
            continue
        expected = fingerprint(cfg.dataset_path, chosen, split, length, size)
        if _up_to_date(path, expected):
            log(f"{split}: {path} is up to date (same inputs and settings); kept")
            written[split] = path
            continue
        if os.path.exists(manifest_path(path)):
            os.remove(manifest_path(path))  # the old file no longer counts as finished
        stats = SplitStats(len(chosen))
        log(f"{split}: {len(chosen)} videos -> {path}")
        began = time.monotonic()
        chunks = iter_clips(chosen, length, size, stats, warn, log, split)
        try:
            n = write_mindrecord(path, chunks, description=f"kth {split}, {length} frames")
        except UserError:
            if stats.clips:
                raise
            warn(f"no {split} clip of {length} frames in {len(chosen)} videos; {path} not written")
            continue
        _write_json(manifest_path(path), {
            "fingerprint": expected, "num_clips": n, "videos_used": stats.used,
            "too_short": stats.too_short, "unreadable": stats.failed})
        extra = []
        if stats.too_short:
            extra.append(f"{len(stats.too_short)} too short for a clip")
        if stats.failed:
            extra.append(f"{len(stats.failed)} unreadable: {', '.join(stats.failed)}")
        log(f"wrote {path}: {n} clips of {length} frames from {stats.used} videos"
            f"{' (' + '; '.join(extra) + ')' if extra else ''} in {format_duration(time.monotonic() - began)}")
        written[split] = path
    if not written:
        raise UserError(f"{cfg.dataset_path}: no KTH clip could be made (train clips need {cfg.seq_length} "
                        f"consecutive frames, test clips {test_length}); see the warnings above")
    return written
