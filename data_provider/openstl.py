"""OpenSTL's benchmark datasets, read from the files its preparation scripts leave, as
NAME_train.mindrecord / NAME_test.mindrecord (each with NAME_SPLIT.mindrecord.json):

    python generate_mindrecord.py --dataset=NAME --dataset_path=DIR

dataset       what DIR holds (OpenSTL's data root; the dataset's own folder works too)   clips
mfmnist       moving_fmnist/train-images-idx3-ubyte[.gz] (+ fmnist_test_seq.npy)      uint8 20 x 64x64x1
taxibj        taxibj/dataset.npz (X_train, Y_train, X_test, Y_test)                   float 8 x 32x32x2
human         human/train.txt, test.txt, images/S1_Walking.54138969_NNNNNN.jpg         uint8 8 x 256x256x3
kitticaltech  kitti_hkl/X_train.hkl, sources_train.hkl;                                uint8 11 x 128x160x3
              caltech/data_cache.npy, indices_cache.npy
weather       weather_5_625deg/2m_temperature/2m_temperature_YEAR_5.625deg.nc         float 24 x 32x64x1

The splits, clip lengths and frame sizes are OpenSTL's (openstl/datasets/dataloader_*.py and
dataset_constant.py; the readers in openstl_video.py and openstl_weather.py say which lines
they follow). A key left out of the config file and the command line takes OpenSTL's value
for the dataset; a key that is given is used where the dataset allows it and refused in one
line where it does not (TaxiBJ's file fixes its 4 -> 4 frames of 32x32x2, for instance).
Keys each dataset takes: mfmnist seq_length, test_seq_length, img_height / img_width (the
generated canvas), num_digits, num_train_sequences, num_test_sequences (without OpenSTL's test
file), seed; taxibj store_dtype; human img_height / img_width (resized), seq_length,
test_seq_length, frame_step (5); kitticaltech seq_length, test_seq_length (up to the cache's
clip length); weather weather_variable, weather_train_years, weather_test_years, input_length,
seq_length, test_seq_length, frame_step (1), clip_stride (1: a clip every hour), normalize
(standard), store_dtype.

Values: 8-bit data stay uint8 (the model sees x / 255, as OpenSTL's loaders give it). TaxiBJ
and WeatherBench are stored as float32 (store_dtype) model values with the normalization in
the .json (engine/data_units.py reads it back), chosen so that eval.py's numbers are in
OpenSTL's units: TaxiBJ's data units are OpenSTL's (X + 1) / 2, WeatherBench's are the
variable's own (Kelvin for t2m), normalized with the training years' mean and std.

A rerun keeps a finished file whose inputs (name, size, mtime) and settings are unchanged,
so an interrupted conversion resumes with the split it was writing.
"""
import hashlib
import os
import time
import zipfile

import numpy as np

from data_provider.kth import _write_json, manifest_path, remove_stale_temporaries
from engine.errors import UserError
from engine.log import format_duration

DATASETS = ("mfmnist", "taxibj", "human", "kitticaltech", "weather")
FORMAT_VERSION = 1  # bump when a reader changes what it writes: a rerun then rebuilds old files
_PROGRESS_SECONDS = 10.0
_CHUNK_BYTES = 64 << 20  # clips handed to the writer at once


def file_names(dataset):
    return f"{dataset}_train.mindrecord", f"{dataset}_test.mindrecord"


# ---- which keys the user gave ----

def explicit_keys(cfg):
    """Keys set in the --config_path YAML or on the command line (not defaults)."""
    keys = set(getattr(cfg, "cli_keys", ()))
    path = cfg.get("config_path")
    if path:
        import yaml
        try:
            with open(path, encoding="utf-8") as f:
                keys |= set(yaml.safe_load(f) or {})
        except (OSError, yaml.YAMLError, TypeError):
            pass  # load_config has read it already; an unreadable file cannot reach here
    return keys


class Settings:
    """OpenSTL's value of each key unless the user gave one."""

    def __init__(self, cfg, dataset):
        self.cfg, self.dataset = cfg, dataset
        self.given = explicit_keys(cfg)

    def get(self, key, native):
        return self.cfg[key] if key in self.given else native

    def size(self, native):
        """(height, width): the config's when img_height or img_width is given, else native."""
        if {"img_height", "img_width"} & self.given:
            return int(self.cfg.img_height), int(self.cfg.img_width)
        return tuple(native)

    def lengths(self, native):
        """(train clip length, test clip length)."""
        train = int(self.get("seq_length", native))
        test = int(self.cfg.test_seq_length) if "test_seq_length" in self.given else 0
        return train, test or train

    def fixed(self, key, value, why):
        """Refuse a given key that differs from what the data fix."""
        if key in self.given and self.cfg[key] != value:
            raise UserError(f"config key '{key}': {self.cfg[key]} but {why} ({key}={value}); leave it out or "
                            f"set it to {value}")


# ---- fingerprints and the writer ----

def input_stamp(paths):
    """sha256 over name, size and mtime of each input file."""
    h = hashlib.sha256()
    for path in paths:
        try:
            st = os.stat(path)
            h.update(f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{os.path.abspath(path)}\0missing\n".encode())
    return h.hexdigest()


class Split:
    """One file to write. chunks(progress) yields (n, T, H, W, C) arrays; it is only called
    when the file is not up to date. norm() gives the normalization record (None: 8-bit)."""

    def __init__(self, split, clip_length, frame_size, channels, inputs, settings, chunks, total,
                 dtype="uint8", norm=None, source=""):
        self.split, self.clip_length = split, int(clip_length)
        self.frame_size, self.channels = tuple(int(v) for v in frame_size), int(channels)
        self.inputs, self.settings = list(inputs), dict(settings)
        self.chunks, self.total, self.dtype = chunks, total, dtype
        self.norm = norm or (lambda: None)
        self.source = source

    def fingerprint(self, dataset):
        return {"dataset": dataset, "format_version": FORMAT_VERSION, "split": self.split,
                "clip_length": self.clip_length, "frame_size": list(self.frame_size), "channels": self.channels,
                "dtype": self.dtype, "settings": self.settings, "inputs_sha256": input_stamp(self.inputs)}


class Progress:
    """Counts clips through the writer and logs a line every _PROGRESS_SECONDS."""

    def __init__(self, label, total, log):
        self.label, self.total, self.log = label, total, log
        self.clips = 0
        self.began = self.last = time.monotonic()

    def add(self, n):
        self.clips += int(n)
        now = time.monotonic()
        if now - self.last >= _PROGRESS_SECONDS and self.total and self.clips < self.total:
            rate = self.clips / max(now - self.began, 1e-9)
            self.log(f"  {self.label}: {self.clips}/{self.total} clips, {rate:.0f} clips/s, "
                     f"ETA {format_duration((self.total - self.clips) / max(rate, 1e-9))}")
            self.last = now


def clips_per_chunk(clip_length, frame_size, channels, itemsize=1):
    return max(1, _CHUNK_BYTES // (clip_length * frame_size[0] * frame_size[1] * channels * itemsize))


def write_splits(cfg, dataset, splits, log):
    """Write each Split to mindrecord_dir/DATASET_SPLIT.mindrecord unless it is up to date;
    returns {split: path}."""
    from data_provider.custom import _up_to_date
    from data_provider.mindrecord import write_mindrecord

    out_dir = cfg.mindrecord_dir
    os.makedirs(out_dir, exist_ok=True)
    names = dict(zip(("train", "test"), file_names(dataset)))
    remove_stale_temporaries(out_dir, tuple(names.values()), lambda m: log(f"warning: {m}"))
    written = {}
    for s in splits:
        path = os.path.join(out_dir, names[s.split])
        expected = s.fingerprint(dataset)
        if _up_to_date(path, expected) is not None:
            log(f"{s.split}: {path} is up to date (same inputs and settings); kept")
            written[s.split] = path
            continue
        if os.path.exists(manifest_path(path)):
            os.remove(manifest_path(path))  # the old file no longer counts as finished
        log(f"{s.split}: {s.source} -> {path} ({s.total if s.total is not None else '?'} clips of "
            f"{s.clip_length} frames {s.frame_size[0]}x{s.frame_size[1]}x{s.channels}, {s.dtype})")
        began = time.monotonic()
        progress = Progress(s.split, s.total, log)
        n = write_mindrecord(path, s.chunks(progress), description=f"{dataset} {s.split}, {s.clip_length} frames")
        _write_json(manifest_path(path), {
            "fingerprint": expected, "num_clips": n,
            "frame_shape": [s.clip_length, s.frame_size[0], s.frame_size[1], s.channels],
            "dtype": s.dtype, "normalize": s.norm(), "source": s.source})
        log(f"wrote {path}: {n} clips in {format_duration(time.monotonic() - began)}")
        written[s.split] = path
    return written


def find_first(root, candidates, what):
    """The first existing path of root/candidate; UserError listing them all otherwise."""
    for rel in candidates:
        p = os.path.join(root, rel)
        if os.path.exists(p):
            return p
    raise UserError(f"{root}: no {what}; looked for {', '.join(candidates)}")


def require_dataset_path(cfg, what):
    if not cfg.dataset_path:
        raise UserError(f"dataset={cfg.dataset} needs --dataset_path=DIR: {what}")
    if not os.path.isdir(cfg.dataset_path):
        raise UserError(f"dataset_path {cfg.dataset_path}: folder not found")
    return cfg.dataset_path


# ---- Moving Fashion-MNIST ----
# openstl/datasets/dataloader_moving_mnist.py with data_name='fmnist': training sequences
# are drawn from moving_fmnist/train-images-idx3-ubyte.gz (2 objects, 64x64, 28x28 images,
# step 0.1, max of the images), 10000 per epoch; the test set is the fixed file
# moving_fmnist/fmnist_test_seq.npy (20, 10000, 64, 64) uint8, which
# tools/prepare_data/generate_mmnist.py drew from the same training images.

MFMNIST_TEST_FILE = "fmnist_test_seq.npy"


def _mfmnist_splits(cfg, log):
    from data_provider.digits import load_idx_images
    from data_provider.moving_mnist import iter_moving_mnist
    from data_provider.sources import load_mnist_test_seq

    root = require_dataset_path(cfg, "OpenSTL's data folder with moving_fmnist/train-images-idx3-ubyte.gz")
    settings = Settings(cfg, "mfmnist")
    train_len, test_len = settings.lengths(20)
    size = settings.size((64, 64))
    settings.fixed("img_channel", 1, "Fashion-MNIST is grey")
    digits_path = find_first(root, ("moving_fmnist/train-images-idx3-ubyte.gz", "moving_fmnist/train-images-idx3-ubyte",
                                    "train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"),
                             "Fashion-MNIST training images")
    test_file = None
    for rel in (f"moving_fmnist/{MFMNIST_TEST_FILE}", MFMNIST_TEST_FILE):
        if os.path.isfile(os.path.join(root, rel)):
            test_file = os.path.join(root, rel)
            break
    num_digits = int(settings.get("num_digits", 2))
    n_train = int(settings.get("num_train_sequences", 10000))
    n_test = int(settings.get("num_test_sequences", 10000))
    seed = int(cfg.seed)
    common = {"num_digits": num_digits, "seed": seed}
    digits_cache = []

    def digits():
        if not digits_cache:
            d = load_idx_images(digits_path)
            if d.shape[1:] != (28, 28):
                raise UserError(f"{digits_path}: images of {d.shape[1]}x{d.shape[2]}; Fashion-MNIST's are 28x28")
            digits_cache.append(d)
        return digits_cache[0]

    def generated(count, gen_seed, length):
        def chunks(progress):
            for chunk in iter_moving_mnist(digits(), count, seq_length=length, image_size=size,
                                           num_digits=num_digits, seed=gen_seed, chunk_size=256):
                progress.add(len(chunk))
                yield chunk
        return chunks

    splits = [Split("train", train_len, size, 1, [digits_path], dict(common, sequences=n_train),
                    generated(n_train, seed, train_len), n_train, source=f"{n_train} sequences generated from "
                    f"{digits_path}")]
    if test_file is not None:
        fixed = load_mnist_test_seq(test_file)  # (N, 20, 64, 64, 1) view
        if fixed.shape[2:4] != size:
            raise UserError(f"{test_file}: frames of {fixed.shape[2]}x{fixed.shape[3]} but img_height x img_width "
                            f"is {size[0]}x{size[1]}: OpenSTL's test set is 64x64 (move the file away to generate one)")
        if test_len > fixed.shape[1]:
            raise UserError(f"{test_file}: sequences of {fixed.shape[1]} frames, fewer than the {test_len} asked "
                            f"for (test_seq_length / seq_length)")

        def fixed_chunks(progress):
            for start in range(0, len(fixed), 256):
                chunk = np.ascontiguousarray(fixed[start:start + 256, :test_len])
                progress.add(len(chunk))
                yield chunk
        splits.append(Split("test", test_len, size, 1, [test_file], {}, fixed_chunks, len(fixed),
                            source=f"{test_file} (OpenSTL's fixed test set)"))
    else:
        log(f"no {MFMNIST_TEST_FILE} in {root}: generating {n_test} test sequences from the same training images, "
            f"as OpenSTL's tools/prepare_data/generate_mmnist.py does (not its exact sequences)")
        splits.append(Split("test", test_len, size, 1, [digits_path], dict(common, sequences=n_test),
                            generated(n_test, seed + 1, test_len), n_test,
                            source=f"{n_test} sequences generated from {digits_path}"))
    return splits


# ---- TaxiBJ ----
# openstl/datasets/dataloader_taxibj.py: taxibj/dataset.npz holds X_train, Y_train, X_test,
# Y_test of shape [N, 4, 2, 32, 32] (4 input and 4 target frames of inflow / outflow),
# min-max scaled to [-1, 1] by its preparation; the loader feeds (X + 1) / 2 with mean 0 and
# std 1, so OpenSTL's MSE / MAE / SSIM / PSNR are taken on (X + 1) / 2 values in [0, 1]
# (openstl/core/metrics.py, spatial_norm off: MSE summed over each frame's 2 x 32 x 32 values).

TAXIBJ_KEYS = ("X_train", "Y_train", "X_test", "Y_test")
TAXIBJ_SHAPE = (4, 2, 32, 32)
_TAXIBJ_TOLERANCE = 0.01  # beyond [-1, 1] by more than this: not OpenSTL's scaled file


def _npy_header(f):
    """(shape, fortran_order, dtype) of an .npy stream, leaving it at the data."""
    version = np.lib.format.read_magic(f)
    read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read is None:
        raise ValueError(f"unsupported .npy format version {version}")
    return read(f)


class NpzMember:
    """One array of an .npz read in row blocks (the TaxiBJ arrays are 1.3 GB each as float64)."""

    def __init__(self, path, key):
        self.path, self.key = path, key
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise UserError(f"{path}: not a readable .npz file ({e})") from None
        names = [n[:-4] for n in self.zip.namelist() if n.endswith(".npy")]
        if key not in names:
            self.zip.close()
            raise UserError(f"{path}: no array '{key}' (it holds: {', '.join(names) or 'none'})")
        try:
            with self.zip.open(key + ".npy") as f:
                self.shape, fortran, self.dtype = _npy_header(f)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            self.zip.close()
            raise UserError(f"{path}: array '{key}' cannot be read ({e})") from None
        if fortran or self.dtype.hasobject:
            self.zip.close()
            raise UserError(f"{path}: array '{key}' is {'Fortran-ordered' if fortran else 'of Python objects'}; "
                            f"expected a C-ordered numeric array")

    def rows(self, block):
        """Yield consecutive blocks of up to `block` rows."""
        row_items = int(np.prod(self.shape[1:]))
        with self.zip.open(self.key + ".npy") as f:
            _npy_header(f)
            for start in range(0, self.shape[0], block):
                n = min(block, self.shape[0] - start)
                nbytes = n * row_items * self.dtype.itemsize
                buf = f.read(nbytes)
                if len(buf) != nbytes:
                    raise UserError(f"{self.path}: array '{self.key}' is truncated")
                yield np.frombuffer(buf, self.dtype).reshape((n,) + tuple(self.shape[1:]))

    def close(self):
        self.zip.close()


def _taxibj_pair(path, split):
    x, y = NpzMember(path, f"X_{split}"), NpzMember(path, f"Y_{split}")
    for m in (x, y):
        if tuple(m.shape[1:]) != TAXIBJ_SHAPE or m.dtype.kind not in "fiu":
            raise UserError(f"{path}: '{m.key}' is {m.dtype} {tuple(m.shape)}; expected numbers of shape "
                            f"[N, 4, 2, 32, 32] (4 frames of inflow/outflow 32x32, OpenSTL's TaxiBJ)")
    if x.shape[0] != y.shape[0]:
        raise UserError(f"{path}: X_{split} has {x.shape[0]} samples but Y_{split} {y.shape[0]}")
    return x, y


def taxibj_to_model(x, path, key):
    """[-1, 1] flows -> OpenSTL's (X + 1) / 2, float32, after checking the range."""
    x = np.asarray(x, np.float64)
    if not np.isfinite(x).all():
        raise UserError(f"{path}: '{key}' holds NaN or Inf values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1 - _TAXIBJ_TOLERANCE or hi > 1 + _TAXIBJ_TOLERANCE:
        raise UserError(f"{path}: '{key}' has values in [{lo:g}, {hi:g}]; OpenSTL's dataset.npz is scaled to "
                        f"[-1, 1] (is this the raw TaxiBJ?)")
    return ((x + 1.0) / 2.0).astype(np.float32)


def _taxibj_splits(cfg, log):
    root = require_dataset_path(cfg, "OpenSTL's data folder with taxibj/dataset.npz")
    settings = Settings(cfg, "taxibj")
    for key, value in (("input_length", 4), ("seq_length", 8), ("img_height", 32), ("img_width", 32),
                       ("img_channel", 2)):
        settings.fixed(key, value, "TaxiBJ's dataset.npz holds 4 -> 4 frames of 32x32 with 2 channels")
    if cfg.test_seq_length not in (0, 8):
        raise UserError(f"config key 'test_seq_length': {cfg.test_seq_length} but TaxiBJ's test clips have 8 frames "
                        f"(0 or 8)")
    path = find_first(root, ("taxibj/dataset.npz", "dataset.npz"), "TaxiBJ dataset.npz")
    store = np.dtype(cfg.store_dtype)
    if cfg.store_dtype not in ("float32", "float16"):
        raise UserError(f"config key 'store_dtype': must be float32 or float16, got {cfg.store_dtype!r}")
    # data units = model values = OpenSTL's (X + 1) / 2: eval.py's tables are then OpenSTL's
    norm = {"method": "none", "min": [0.0, 0.0], "max": [1.0, 1.0],
            "units": "OpenSTL's (X + 1) / 2 of taxibj/dataset.npz (flows min-max scaled to [0, 1])"}
    splits = []
    for split in ("train", "test"):
        x, y = _taxibj_pair(path, split)
        total = int(x.shape[0])
        x.close()
        y.close()

        def chunks(progress, split=split):
            xs, ys = _taxibj_pair(path, split)
            try:
                block = clips_per_chunk(8, (32, 32), 2, 8)
                for a, b in zip(xs.rows(block), ys.rows(block)):
                    seq = np.concatenate([taxibj_to_model(a, path, xs.key), taxibj_to_model(b, path, ys.key)], axis=1)
                    progress.add(len(seq))
                    yield seq.transpose(0, 1, 3, 4, 2).astype(store)  # [N, T, C, H, W] -> [N, T, H, W, C]
            finally:
                xs.close()
                ys.close()
        splits.append(Split(split, 8, (32, 32), 2, [path], {"store_dtype": cfg.store_dtype}, chunks, total,
                            dtype=cfg.store_dtype, norm=lambda: norm, source=f"{path} X_{split} + Y_{split}"))
    return splits


# ---- the table ----

def build_openstl(cfg, log=print):
    """Write mindrecord_dir/DATASET_train.mindrecord and DATASET_test.mindrecord for
    cfg.dataset in DATASETS; returns {split: path}."""
    if cfg.dataset == "mfmnist":
        splits = _mfmnist_splits(cfg, log)
    elif cfg.dataset == "taxibj":
        splits = _taxibj_splits(cfg, log)
    elif cfg.dataset in ("human", "kitticaltech"):
        from data_provider.openstl_video import human_splits, kitticaltech_splits
        splits = (human_splits if cfg.dataset == "human" else kitticaltech_splits)(cfg, log)
    elif cfg.dataset == "weather":
        from data_provider.openstl_weather import weather_splits
        splits = weather_splits(cfg, log)
    else:
        raise UserError(f"config key 'dataset': {cfg.dataset!r} is not one of OpenSTL's: {', '.join(DATASETS)}")
    return write_splits(cfg, cfg.dataset, splits, log)

