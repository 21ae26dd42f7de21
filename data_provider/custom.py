"""Your own data as clips for MindRecord: dataset=custom, --dataset_path=PATH.

What PATH may be (the kind is found from PATH; a folder is walked at any depth, links
followed, names in natural order: frame2 before frame10):
- video files (.avi .mp4 .mov .mkv .webm .m4v .mpg .mpeg .wmv .flv .3gp .ts .y4m), decoded with
  the FFmpeg libraries inside the MindSpore wheel (mindspore.dataset.vision.read_video);
- frame folders: a folder holding PNG / JPG / BMP / TIFF frames is one video, its frames in
  natural name order; 8-bit (grey, RGB; RGBA loses alpha) or 16-bit grey (PNG/TIFF);
- array files: .npy, .npz (--array_key, or its only array), .h5 / .hdf5 (--array_key, or
  its only dataset; read with h5py). Either clips [N, T, H, W], [N, T, H, W, C], [N, T, C, H, W]
  (each clip counts as one video) or one long sequence [T, H, W], [T, H, W, C], [T, C, H, W]
  to be cut; --array_layout names the layout when the shape leaves it open.
  Values: uint8, uint16, any integer or float type, any range.

Processing, per video: keep every frame_step-th frame; channels to img_channel (RGB to grey
with --grey=true, 8-bit luma as Pillow's "L"; a video whose three channels are equal counts
as grey); frames of another size than img_height x img_width are refused unless --resize=true
(bilinear, cv2.INTER_LINEAR arithmetic as KTH) or --crop=true (centre crop to the target
aspect ratio, then that resize); clips of seq_length frames (test: test_seq_length or
seq_length) every clip_stride frames (0: seq_length, no overlap); a video too short for a
clip is counted and skipped, an unreadable one named and skipped.

Splits are by video (a video's clips all go to one split): test_path gives the test set;
otherwise a seeded draw of round(test_split x videos) videos (at least one) is the test set.
With a single video (one long sequence), its first frames are the train split and the last
test_split of them the test split (a split in time, as for traffic and weather series).

Values: 8-bit data stay uint8 in the file (the model sees x / 255, as Moving MNIST). Other
data (uint16, float, ...) are scaled per channel with statistics of the training split
(normalize: minmax to [0, 1] | standard to zero mean, unit variance | none) and stored as
float32 (or float16, store_dtype); NAME.mindrecord.json records the method and statistics
(engine/data_units.py reads them back to report metrics and write predictions in the data's
own units). NaN / Inf: an error naming file and frame, unless nan_to=VALUE replaces them.

Files: mindrecord_dir/custom_train.mindrecord and custom_test.mindrecord, each written
atomically and then described by NAME.mindrecord.json; a rerun keeps a file whose inputs
and settings are unchanged, so an interrupted conversion resumes with the split it was
writing.
"""
import hashlib
import json
import os
import re
import time

import numpy as np

from data_provider.kth import (SplitStats, _linear_taps, _short_reason, _write_json, manifest_path,
                               remove_stale_temporaries, rgb_to_luma)
from engine.errors import UserError
from engine.log import format_duration

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts",
                    ".y4m")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
ARRAY_EXTENSIONS = (".npy", ".npz", ".h5", ".hdf5")
CLIP_LAYOUTS = ("NTHW", "NTHWC", "NTCHW")
SEQUENCE_LAYOUTS = ("THW", "THWC", "TCHW")
LAYOUTS = ("auto",) + CLIP_LAYOUTS + SEQUENCE_LAYOUTS
NORMALIZE = ("minmax", "standard", "none")
STORE_DTYPES = ("float32", "float16")
TRAIN_NAME = "custom_train.mindrecord"
TEST_NAME = "custom_test.mindrecord"
FORMAT_VERSION = 1  # bump when the processing changes: a rerun then rebuilds old files
MAX_AUTO_CHANNELS = 4  # array_layout=auto takes an axis this small for channels
_CHUNK_BYTES = 64 << 20  # clips handed to the writer at once
_PROGRESS_SECONDS = 10.0


def natural_key(name):
    """'frame10.png' after 'frame2.png': digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class Source:
    """One video: a video file, a frame folder (frames = [paths]), clip `item` of a clip
    array, or a whole long-sequence array (item None); span = (start, stop) frame range of
    it (None: all)."""

    def __init__(self, kind, path, name, frames=None, item=None, layout=None, span=None):
        self.kind, self.path, self.name = kind, path, name
        self.frames, self.item, self.layout, self.span = frames, item, layout, span

    def files(self):
        return list(self.frames) if self.kind == "frames" else [self.path]

    def __repr__(self):
        return f"Source({self.kind}, {self.name})"


# ---- arrays ----

class ArrayFiles:
    """Opened array files, kept while their sources are converted (an .npz member is read
    whole once; .npy files are memory-mapped; HDF5 datasets read per clip)."""

    def __init__(self, key):
        self.key = key
        self._open = {}

    def get(self, path):
        if path not in self._open:
            if len(self._open) >= 2:  # sources come file by file: keep the last few only
                self.close()
            self._open[path] = open_array(path, self.key)
        return self._open[path][0]

    def close(self):
        for _, handle in self._open.values():
            if handle is not None:
                handle.close()
        self._open = {}


def open_array(path, key=""):
    """(array-like with .shape/.dtype and numpy indexing, file handle to close or None)."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False), None
        except (ValueError, OSError, EOFError) as e:
            raise UserError(f"{path}: not a readable .npy file ({e})") from None
    if ext == ".npz":
        try:
            npz = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise UserError(f"{path}: not a readable .npz file ({e})") from None
        names = list(npz.files)
        name = _pick_key(path, names, key)
        try:
            return npz[name], None
        except (ValueError, OSError, EOFError) as e:
            raise UserError(f"{path}: array '{name}' cannot be read ({e})") from None
    try:
        import h5py
    except ImportError:
        raise UserError(f"{path}: reading HDF5 needs h5py (pip install -r requirements.txt)") from None
    try:
        handle = h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 file ({e})") from None
    names = []
    handle.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    name = _pick_key(path, names, key)
    return handle[name], handle


def _pick_key(path, names, key):
    if key:
        if key not in names:
            raise UserError(f"{path}: no array '{key}' (config key 'array_key'); it holds: {', '.join(names) or 'none'}")
        return key
    if len(names) != 1:
        raise UserError(f"{path} holds {len(names)} arrays ({', '.join(names) or 'none'}): name one with --array_key")
    return names[0]


def resolve_layout(shape, layout, path):
    """The layout of an array of `shape`: the given one (checked against the rank) or, for
    'auto', the one the shape allows (channels: an axis of at most 4)."""
    if layout != "auto":
        if len(layout) != len(shape):
            raise UserError(f"{path}: array of shape {tuple(shape)} has {len(shape)} axes but array_layout "
                            f"{layout} has {len(layout)}")
        return layout
    small = [d <= MAX_AUTO_CHANNELS for d in shape]
    if len(shape) == 3:
        return "THW"
    if len(shape) == 4:
        options = [name for name, ok in (("THWC", small[3] and not small[2]), ("TCHW", small[1] and not small[3]),
                                         ("NTHW", not small[2] and not small[3])) if ok]
    elif len(shape) == 5:
        options = [name for name, ok in (("NTHWC", small[4] and not small[3]),
                                         ("NTCHW", small[2] and not small[4])) if ok]
    else:
        raise UserError(f"{path}: array of shape {tuple(shape)} has {len(shape)} axes; expected clips "
                        f"[N, T, H, W(, C)] / [N, T, C, H, W] or one sequence [T, H, W(, C)] / [T, C, H, W]")
    if len(options) != 1:
        raise UserError(f"{path}: the layout of an array of shape {tuple(shape)} is "
                        f"{'ambiguous' if options else 'not recognised'}: give --array_layout="
                        f"{'|'.join(options or (CLIP_LAYOUTS + SEQUENCE_LAYOUTS))}")
    return options[0]


def _array_sources(path, name, key, layout):
    array, handle = open_array(path, key)
    try:
        shape = tuple(int(d) for d in array.shape)
        resolved = resolve_layout(shape, layout, path)
    finally:
        if handle is not None:
            handle.close()
    if resolved in CLIP_LAYOUTS:
        return [Source("array", path, f"{name}[{i}]", item=i, layout=resolved) for i in range(shape[0])]
    return [Source("array", path, name, layout=resolved)]


def _to_thwc(frames, layout):
    """An array in `layout` (without N) -> [T, H, W, C]."""
    frames = np.asarray(frames)
    body = layout.lstrip("N")
    if body in ("THW",):
        return frames[..., None]
    if body == "TCHW":
        return frames.transpose(0, 2, 3, 1)
    return frames


# ---- finding the videos ----

def find_sources(root, cfg, warn):
    """All videos under root (a file or a folder), sorted by natural name order."""
    root = os.fspath(root)
    if os.path.isfile(root):
        return _file_sources(root, os.path.basename(root), cfg)
    if not os.path.isdir(root):
        raise UserError(f"dataset_path {root}: no such file or folder")
    found = []
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back up the tree
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort(key=natural_key)
        rel_dir = os.path.relpath(dirpath, root)
        images = sorted((n for n in filenames if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS), key=natural_key)
        if images:
            name = rel_dir if rel_dir != "." else os.path.basename(os.path.abspath(root))
            found.append(Source("frames", dirpath, name, frames=[os.path.join(dirpath, n) for n in images]))
        for fname in sorted(filenames, key=natural_key):
            ext = os.path.splitext(fname)[1].lower()
            if ext in VIDEO_EXTENSIONS or ext in ARRAY_EXTENSIONS:
                rel = os.path.normpath(os.path.join(rel_dir, fname))
                found.extend(_file_sources(os.path.join(dirpath, fname), rel, cfg))
    found.sort(key=lambda s: natural_key(s.name))
    return found


def _file_sources(path, name, cfg):
    ext = os.path.splitext(path)[1].lower()
    if ext in VIDEO_EXTENSIONS:
        return [Source("video", path, name)]
    if ext in ARRAY_EXTENSIONS:
        return _array_sources(path, name, cfg.array_key, cfg.array_layout)
    raise UserError(f"dataset_path {path}: not a video ({', '.join(VIDEO_EXTENSIONS)}) or array "
                    f"({', '.join(ARRAY_EXTENSIONS)}) file")


# ---- reading one video ----

def _read_image(path):
    """[H, W, C] of one frame file: uint8 (grey, RGB) or uint16 (16-bit grey), or float32."""
    from PIL import Image
    with Image.open(path) as im:
        mode = im.mode
        if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
            return np.asarray(im).astype(np.uint16)[..., None]
        if mode in ("I", "F"):
            return np.asarray(im)[..., None]
        if mode in ("L", "RGB"):
            a = np.asarray(im)
        elif mode in ("1", "LA", "La"):
            a = np.asarray(im.convert("L"))
        else:  # P, RGBA, CMYK, YCbCr, ...
            a = np.asarray(im.convert("RGB"))
    return a if a.ndim == 3 else a[..., None]


def read_frames(source, arrays):
    """[T, H, W, C] of a source in its own dtype; OSError/ValueError/RuntimeError when it
    cannot be read (the caller names it and skips it)."""
    if source.kind == "video":
        from mindspore.dataset.vision import read_video
        video = np.asarray(read_video(os.fspath(source.path))[0])
        if video.ndim != 4 or video.shape[0] == 0:
            raise RuntimeError("no video frames decoded")
        frames = video
    elif source.kind == "frames":
        frames = []
        for path in source.frames:
            try:
                frames.append(_read_image(path))
            except (OSError, ValueError, SyntaxError) as e:
                raise OSError(f"frame {os.path.basename(path)} is unreadable ({e})") from None
            # frames of one video that disagree are an error, not a skip: resize / crop
            # cannot say which is right
            if frames[-1].shape != frames[0].shape:
                raise UserError(f"{path}: frame of {frames[-1].shape[0]}x{frames[-1].shape[1]}x{frames[-1].shape[2]} "
                                f"(HxWxC) where the folder's first is "
                                f"{frames[0].shape[0]}x{frames[0].shape[1]}x{frames[0].shape[2]}; all frames of a "
                                f"video must share one size")
            if frames[-1].dtype != frames[0].dtype:
                raise UserError(f"{path}: {frames[-1].dtype} frame where the folder's first is {frames[0].dtype}")
        frames = np.stack(frames)
    else:
        array = arrays.get(source.path)
        data = array[source.item] if source.item is not None else array[...]
        frames = _to_thwc(data, source.layout)
    if source.span is not None:
        frames = frames[source.span[0]:source.span[1]]
    return frames


def frame_count(source, arrays):
    """Frames of a source without decoding it, or None when that needs the decode."""
    if source.kind == "frames":
        return len(source.frames)
    if source.kind == "array" and source.item is None:
        return int(arrays.get(source.path).shape[0])
    return None


# ---- per-video processing ----

def fit_channels(frames, cfg, where):
    c = frames.shape[-1]
    if c == cfg.img_channel:
        return frames
    if c == 3 and cfg.img_channel == 1:
        if frames.dtype == np.uint8 and (cfg.grey or _channels_equal(frames)):
            return rgb_to_luma(frames)[..., None]
        if cfg.grey:
            weights = np.array([0.299, 0.587, 0.114], np.float32)
            return (frames.astype(np.float32) @ weights)[..., None]
        raise UserError(f"{where}: frames are RGB but img_channel is 1: pass --img_channel=3 to keep the "
                        f"colour, or --grey=true to convert them to grey")
    raise UserError(f"{where}: frames have {c} channel(s) but img_channel is {cfg.img_channel}; "
                    f"all data must have img_channel channels (--img_channel={c} for these)")


def _channels_equal(frames):
    return bool((frames[..., 0] == frames[..., 1]).all() and (frames[..., 1] == frames[..., 2]).all())


def resize_bilinear(frames, height, width):
    """[T, H, W, C] -> float32 [T, height, width, C], cv2.INTER_LINEAR arithmetic (horizontal
    pass first, half-pixel centres, no anti-aliasing), as the KTH converter."""
    f = np.asarray(frames, np.float32)
    _, h, w, _ = f.shape
    if (h, w) == (height, width):
        return f
    x0, x1, wx = _linear_taps(w, width)
    g = np.take(f, x0, axis=2) * (1 - wx)[:, None] + np.take(f, x1, axis=2) * wx[:, None]
    y0, y1, wy = _linear_taps(h, height)
    return np.take(g, y0, axis=1) * (1 - wy)[:, None, None] + np.take(g, y1, axis=1) * wy[:, None, None]


def centre_crop(frames, height, width):
    """The largest centred window of the height:width aspect ratio."""
    _, h, w, _ = frames.shape
    if h * width > w * height:  # too tall
        keep = int(round(w * height / width))
        top = (h - keep) // 2
        return frames[:, top:top + keep]
    keep = int(round(h * width / height))
    left = (w - keep) // 2
    return frames[:, :, left:left + keep]


def fit_size(frames, cfg, where):
    _, h, w, _ = frames.shape
    height, width = cfg.img_height, cfg.img_width
    if (h, w) == (height, width):
        return frames
    if not (cfg.resize or cfg.crop):
        raise UserError(f"{where}: frames are {h}x{w} (HxW) but img_height x img_width is {height}x{width}: "
                        f"pass --img_height={h} --img_width={w} to keep them, or --resize=true (stretch) / "
                        f"--crop=true (centre crop, then resize)")
    if cfg.crop:
        frames = centre_crop(frames, height, width)
    out = resize_bilinear(frames, height, width)
    if frames.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out


def check_finite(frames, cfg, where, first_frame):
    """NaN/Inf: an error naming the frame, or replaced by nan_to."""
    if frames.dtype.kind != "f":
        return frames
    bad = ~np.isfinite(frames)
    if not bad.any():
        return frames
    if cfg.nan_to != "":
        try:
            value = float(cfg.nan_to)
        except ValueError:
            raise UserError(f"config key 'nan_to': expected a number, got {cfg.nan_to!r}") from None
        return np.where(bad, np.float32(value), frames).astype(frames.dtype)
    t = int(np.argwhere(bad.reshape(len(frames), -1).any(axis=1))[0, 0])
    raise UserError(f"{where}: frame {first_frame + t * cfg.frame_step} holds NaN or Inf values "
                    f"({int(bad.sum())} in this video); clean the data or pass --nan_to=VALUE")


def prepare(source, frames, cfg):
    """Raw [T, H, W, C] -> [T', img_height, img_width, img_channel]: frame_step, channels,
    size, NaN check. uint8 stays uint8; other types become float32 (not yet normalized)."""
    where = _where(source)
    frames = frames[::cfg.frame_step]
    if frames.dtype != np.uint8:
        frames = frames.astype(np.float32)
    frames = fit_channels(frames, cfg, where)
    frames = check_finite(frames, cfg, where, (source.span or (0,))[0])
    return fit_size(frames, cfg, where)


def _where(source):
    if source.kind == "array":
        return f"{source.path}" + (f" clip {source.item}" if source.item is not None else "")
    return source.path


def clip_starts(length, clip_length, stride):
    return list(range(0, length - clip_length + 1, stride))


# ---- statistics and normalization ----

class Stats:
    """Per-channel count, sum, sum of squares (float64), min and max."""

    def __init__(self, channels):
        self.n = 0
        self.sum = np.zeros(channels)
        self.sq = np.zeros(channels)
        self.min = np.full(channels, np.inf)
        self.max = np.full(channels, -np.inf)

    def update(self, frames):
        flat = frames.reshape(-1, frames.shape[-1]).astype(np.float64)
        self.n += len(flat)
        self.sum += flat.sum(0)
        self.sq += np.square(flat).sum(0)
        self.min = np.minimum(self.min, flat.min(0))
        self.max = np.maximum(self.max, flat.max(0))

    def description(self, method):
        """The record DataUnits reads: the method, its parameters and the data range."""
        out = {"method": method, "min": self.min.tolist(), "max": self.max.tolist()}
        if method == "standard":
            mean = self.sum / self.n
            out["mean"] = mean.tolist()
            out["std"] = np.sqrt(np.maximum(self.sq / self.n - mean ** 2, 0.0)).tolist()
        return out


def normalize(frames, norm, store_dtype):
    from engine.data_units import DataUnits
    return DataUnits(norm).to_model(frames).astype(store_dtype)


# ---- the conversion ----

def _validate(cfg):
    if cfg.array_layout not in LAYOUTS:
        raise UserError(f"config key 'array_layout': must be one of {', '.join(LAYOUTS)}, got {cfg.array_layout!r}")
    if cfg.normalize not in NORMALIZE:
        raise UserError(f"config key 'normalize': must be one of {', '.join(NORMALIZE)}, got {cfg.normalize!r}")
    if cfg.store_dtype not in STORE_DTYPES:
        raise UserError(f"config key 'store_dtype': must be float32 or float16, got {cfg.store_dtype!r}")
    if cfg.frame_step < 1:
        raise UserError(f"config key 'frame_step': must be >= 1, got {cfg.frame_step}")
    if cfg.clip_stride < 0:
        raise UserError(f"config key 'clip_stride': must be >= 0 (0: seq_length), got {cfg.clip_stride}")
    if not 0 <= cfg.test_split < 1:
        raise UserError(f"config key 'test_split': must be in [0, 1), got {cfg.test_split}")
    test_length = cfg.test_seq_length or cfg.seq_length
    if test_length <= cfg.input_length:
        raise UserError(f"config key 'test_seq_length': {test_length} must be more than input_length "
                        f"({cfg.input_length})")
    return test_length


def split_sources(sources, cfg, arrays, log):
    """{'train': [...], 'test': [...]} by video, seeded; one video is split in time."""
    if cfg.test_split == 0 or not sources:
        return {"train": sources, "test": []}
    if len(sources) == 1:
        only = sources[0]
        total = frame_count(only, arrays)
        if total is None:
            total = len(read_frames(only, arrays))
        cut = total - int(round(total * cfg.test_split))
        log(f"one video: frames [0, {cut}) for train, [{cut}, {total}) for test (test_split {cfg.test_split})")
        head = Source(only.kind, only.path, only.name + f"[:{cut}]", only.frames, only.item, only.layout, (0, cut))
        tail = Source(only.kind, only.path, only.name + f"[{cut}:]", only.frames, only.item, only.layout, (cut, total))
        return {"train": [head], "test": [tail]}
    count = min(len(sources) - 1, max(1, int(round(len(sources) * cfg.test_split))))
    chosen = set(np.random.default_rng([int(cfg.seed), 0x7E57]).permutation(len(sources))[:count].tolist())
    return {"train": [s for i, s in enumerate(sources) if i not in chosen],
            "test": [s for i, s in enumerate(sources) if i in chosen]}


def fingerprint(split, sources, cfg, clip_length, norm):
    """What a finished file was made from: settings, the normalization, and name, size and
    mtime of every input file."""
    h = hashlib.sha256()
    for s in sources:
        h.update(f"{s.name}\0{s.span}\n".encode())
        for path in s.files():
            try:
                st = os.stat(path)
                h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{path}\0missing\n".encode())
    settings = {k: cfg[k] for k in ("img_height", "img_width", "img_channel", "frame_step", "clip_stride", "resize",
                                    "crop", "grey", "nan_to", "store_dtype", "array_key", "array_layout")}
    return {"dataset": "custom", "format_version": FORMAT_VERSION, "split": split, "clip_length": int(clip_length),
            "settings": settings, "normalize": norm, "num_sources": len(sources), "sources_sha256": h.hexdigest()}


def _up_to_date(path, expected):
    from data_provider.mindrecord import mindrecord_info
    mpath = manifest_path(path)
    if not (os.path.isfile(path) and os.path.isfile(mpath)):
        return None
    try:
        with open(mpath, encoding="utf-8") as f:
            manifest = json.load(f)
        info = mindrecord_info(path)
    except (OSError, ValueError, UserError):
        return None
    if manifest.get("fingerprint") == expected and manifest.get("num_clips") == info["num_samples"]:
        return manifest
    return None


def _probe_kind(sources, arrays, warn):
    """'uint8' or 'scaled': the value type of the data (from the first readable source)."""
    for s in sources:
        if s.kind == "video":
            return "uint8"
        if s.kind == "array":
            return "uint8" if arrays.get(s.path).dtype == np.uint8 else "scaled"
        try:
            return "uint8" if _read_image(s.frames[0]).dtype == np.uint8 else "scaled"
        except (OSError, ValueError, SyntaxError):
            continue
    return "uint8"


def iter_prepared(sources, cfg, arrays, stats, warn, log, label):
    """(source, prepared frames) of every readable source, with progress lines."""
    began = last = time.monotonic()
    for source in sources:
        stats.done += 1
        try:
            raw = read_frames(source, arrays)
        except (RuntimeError, ValueError, OSError) as e:
            warn(f"{_where(source)}: cannot be read ({_short_reason(e)}); skipped")
            stats.failed.append(source.name)
            raw = None
        if raw is not None:
            yield source, prepare(source, raw, cfg)
        now = time.monotonic()
        if now - last >= _PROGRESS_SECONDS and stats.done < stats.total:
            rate = stats.done / (now - began)
            log(f"  {label}: {stats.done}/{stats.total} videos, {stats.clips} clips, {rate:.1f} videos/s, "
                f"ETA {format_duration((stats.total - stats.done) / rate)}")
            last = now


def iter_clips(sources, cfg, arrays, clip_length, kind, norm, stats, warn, log, label):
    """Chunks (n, clip_length, H, W, C) for the writer: uint8, or normalized floats."""
    stride = cfg.clip_stride or clip_length
    store = np.dtype(cfg.store_dtype)
    for source, frames in iter_prepared(sources, cfg, arrays, stats, warn, log, label):
        if (frames.dtype == np.uint8) != (kind == "uint8"):
            raise UserError(f"{_where(source)}: {frames.dtype} data among "
                            f"{'8-bit' if kind == 'uint8' else 'non-8-bit'} data; convert all to one type")
        starts = clip_starts(len(frames), clip_length, stride)
        if not starts:
            stats.too_short.append(source.name)
            continue
        stats.used += 1
        if kind != "uint8":
            frames = normalize(frames, norm, store)
        per_chunk = max(1, _CHUNK_BYTES // max(1, frames[:clip_length].nbytes))
        for c in range(0, len(starts), per_chunk):
            part = starts[c:c + per_chunk]
            stats.clips += len(part)
            yield np.stack([frames[s:s + clip_length] for s in part])


def training_statistics(sources, cfg, arrays, warn, log):
    stats = Stats(cfg.img_channel)
    progress = SplitStats(len(sources))
    for _, frames in iter_prepared(sources, cfg, arrays, progress, warn, log, "statistics"):
        stats.update(frames)
    if stats.n == 0:
        raise UserError("no readable training data to take the normalization statistics from")
    return stats.description(cfg.normalize)


def build_custom(cfg, log=print):
    """Write mindrecord_dir/custom_train.mindrecord and custom_test.mindrecord; returns
    {split: path} of the files now in place."""
    from data_provider.mindrecord import write_mindrecord

    if not cfg.dataset_path:
        raise UserError("dataset=custom needs --dataset_path=PATH: a folder of videos or frame folders, or an "
                        "array file (.npy/.npz/.h5)")
    test_length = _validate(cfg)

    def warn(message):
        log(f"warning: {message}")

    arrays = ArrayFiles(cfg.array_key)
    try:
        log(f"looking for videos, frame folders and arrays in {cfg.dataset_path}")
        sources = find_sources(cfg.dataset_path, cfg, warn)
        if not sources:
            raise UserError(f"{cfg.dataset_path}: no videos ({', '.join(VIDEO_EXTENSIONS)}), frame folders "
                            f"({', '.join(IMAGE_EXTENSIONS)}) or arrays ({', '.join(ARRAY_EXTENSIONS)}) found")
        if cfg.test_path:
            test_sources = find_sources(cfg.test_path, cfg, warn)
            if not test_sources:
                raise UserError(f"test_path {cfg.test_path}: no videos, frame folders or arrays found")
            splits = {"train": sources, "test": test_sources}
        else:
            splits = split_sources(sources, cfg, arrays, log)
        kinds = {}
        for s in sources:
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
        log(f"found {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))} source(s); "
            f"{len(splits['train'])} for train, {len(splits['test'])} for test; frames "
            f"{cfg.img_height}x{cfg.img_width}x{cfg.img_channel}, train clips of {cfg.seq_length}, "
            f"test clips of {test_length}")
        kind = _probe_kind(splits["train"] or splits["test"], arrays, warn)

        out_dir = cfg.mindrecord_dir
        os.makedirs(out_dir, exist_ok=True)
        remove_stale_temporaries(out_dir, (TRAIN_NAME, TEST_NAME), warn)
        written = {}
        norm = None  # the training split's statistics (non-8-bit data)
        for split, name, length in (("train", TRAIN_NAME, cfg.seq_length), ("test", TEST_NAME, test_length)):
            path = os.path.join(out_dir, name)
            chosen = splits[split]
            if not chosen:
                warn(f"no {split} videos; {path} not written")
                continue
            if kind != "uint8" and norm is None:
                kept = _up_to_date(os.path.join(out_dir, TRAIN_NAME),
                                   fingerprint("train", splits["train"], cfg, cfg.seq_length,
                                               _kept_norm(out_dir, cfg)))
                if kept is not None:
                    norm = kept["normalize"]
                else:
                    log(f"normalization ({cfg.normalize}): statistics of the {len(splits['train'])} train videos")
                    norm = training_statistics(splits["train"], cfg, arrays, warn, log)
            expected = fingerprint(split, chosen, cfg, length, norm)
            if _up_to_date(path, expected) is not None:
                log(f"{split}: {path} is up to date (same inputs and settings); kept")
                written[split] = path
                continue
            if os.path.exists(manifest_path(path)):
                os.remove(manifest_path(path))  # the old file no longer counts as finished
            stats = SplitStats(len(chosen))
            log(f"{split}: {len(chosen)} videos -> {path}")
            began = time.monotonic()
            chunks = iter_clips(chosen, cfg, arrays, length, kind, norm, stats, warn, log, split)
            try:
                n = write_mindrecord(path, chunks, description=f"custom {split}, {length} frames")
            except UserError as e:
                if stats.clips or not str(e).endswith("no sequences to write"):
                    raise
                warn(f"no {split} clip of {length} frames (every {cfg.frame_step} frame(s)) in {len(chosen)} "
                     f"videos; {path} not written")
                continue
            dtype = "uint8" if kind == "uint8" else cfg.store_dtype
            _write_json(manifest_path(path), {
                "fingerprint": expected, "num_clips": n, "frame_shape": [length, cfg.img_height, cfg.img_width,
                                                                         cfg.img_channel],
                "dtype": dtype, "normalize": norm, "videos_used": stats.used,
                "too_short": stats.too_short, "unreadable": stats.failed})
            extra = []
            if stats.too_short:
                extra.append(f"{len(stats.too_short)} too short for a clip")
            if stats.failed:
                extra.append(f"{len(stats.failed)} unreadable")
            log(f"wrote {path}: {n} clips of {length} frames ({dtype}) from {stats.used} videos"
                f"{' (' + '; '.join(extra) + ')' if extra else ''} in {format_duration(time.monotonic() - began)}")
            written[split] = path
    finally:
        arrays.close()
    if "train" not in written:
        raise UserError(f"{cfg.dataset_path}: no training clip of {cfg.seq_length} frames could be made "
                        f"(every {cfg.frame_step} frame(s)); see the warnings above")
    return written


def _kept_norm(out_dir, cfg):
    """The normalization recorded beside an existing train file (None if there is none)."""
    try:
        with open(manifest_path(os.path.join(out_dir, TRAIN_NAME)), encoding="utf-8") as f:
            return json.load(f).get("normalize")
    except (OSError, ValueError):
        return None
