"""Readers of the standard Moving MNIST files, each giving uint8 sequences (N, T, H, W, C).

- mnist_test_seq.npy (Srivastava et al.): uint8 (T, N, H, W), time first.
- thuml npz (seed 000, thuml/predrnn-pytorch): keys
    clips           int (2, N, 2): row 0 = [start, length] of each input clip, row 1 of the
                    output clip, indexing frames of the raw data
    dims            int (1, 3) or (2, 3): (C, H, W) of input_raw_data [and output_raw_data]
    input_raw_data  (F, C, H, W), float in [0, 1] or uint8
    output_raw_data optional, used for the output clips when dims has two rows
  Sequence i = its input clip frames followed by its output clip frames.
- train-images-idx3-ubyte[.gz]: MNIST digits to generate training sequences from
  (see digits.py and moving_mnist.py).
"""

import collections
import os
import zipfile

import numpy as np

from engine.errors import UserError

Source = collections.namedtuple("Source", ["kind", "path"])
Source.__doc__ = "One split's source: kind is 'npz' | 'npy' | 'idx', path the file."

# Looked for in this order; the first that exists wins for its split. Prepared sequence
# files come before generated ones because they fix the exact data a result was measured on.
TRAIN_CANDIDATES = (("npz", "train.npz"),
                    ("idx", "train-images-idx3-ubyte.gz"),
                    ("idx", "train-images-idx3-ubyte"))
TEST_CANDIDATES = (("npz", "test.npz"),
                   ("npz", "valid.npz"),
                   ("npy", "mnist_test_seq.npy"))

_FLOAT_TOLERANCE = 0.5  # data beyond [0, 1] by more than this is taken to be on another scale


def load_mnist_test_seq(path):
    """mnist_test_seq.npy -> read-only view (N, T, H, W, 1) uint8 over a memory map."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: file not found")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npy file: {e}") from None
    if not isinstance(arr, np.ndarray):
        raise UserError(f"{path}: expected a single array (.npy), got {type(arr).__name__}")
    if arr.ndim != 4:
        raise UserError(f"{path}: expected shape (T, N, H, W) like (20, 10000, 64, 64), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise UserError(f"{path}: expected dtype uint8, got {arr.dtype}")
    return arr.transpose(1, 0, 2, 3)[..., None]


def _float_to_uint8(x, where):
    if not np.all(np.isfinite(x)):
        raise UserError(f"{where}: contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -_FLOAT_TOLERANCE or hi > 1 + _FLOAT_TOLERANCE:
        raise UserError(f"{where}: float data must be in [0, 1], found values in [{lo:g}, {hi:g}]")
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _check_raw(shape, dtype, where):
    if len(shape) != 4:
        raise UserError(f"{where}: expected shape (F, C, H, W), got {shape}")
    if not (dtype == np.uint8 or dtype.kind == "f"):
        raise UserError(f"{where}: expected float or uint8 data, got {dtype}")


def _stream_frames(f, shape, dtype, where, frames_per_chunk):
    frame_items = int(np.prod(shape[1:]))
    out = np.empty(shape, np.uint8)
    flat_out = out.reshape(shape[0], frame_items)
    for s in range(0, shape[0], frames_per_chunk):
        e = min(shape[0], s + frames_per_chunk)
        nbytes = (e - s) * frame_items * dtype.itemsize
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise UserError(f"{where}: truncated array data")
        chunk = np.frombuffer(buf, dtype=dtype).reshape(e - s, frame_items)
        flat_out[s:e] = chunk if dtype == np.uint8 else _float_to_uint8(chunk, where)
    return out


def _read_raw_frames(zf, key, path, frames_per_chunk=4096):
    """One raw-data member of the npz as uint8 (F, C, H, W).

    A float32 Moving MNIST training set is several GB; streaming the member out of the zip
    keeps the peak near the uint8 result instead of the float array plus the result."""
    where = f"{path}: {key}"
    headers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with zf.open(key + ".npy") as f:
            read_header = headers.get(np.lib.format.read_magic(f))
            if read_header is not None:
                shape, fortran, dtype = read_header(f)
                _check_raw(shape, dtype, where)
                if not fortran:
                    return _stream_frames(f, shape, dtype, where, frames_per_chunk)
        # Rare layouts (Fortran order, newer header versions) are read whole.
        with zf.open(key + ".npy") as f:
            arr = np.lib.format.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{where}: unreadable array: {e}") from None
    _check_raw(arr.shape, arr.dtype, where)
    return arr if arr.dtype == np.uint8 else _float_to_uint8(arr, where)


def _small_array(zf, key, path):
    try:
        with zf.open(key + ".npy") as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: {key}: unreadable array: {e}") from None


def load_thuml_npz(path):
    """thuml-style npz -> uint8 (N, T, H, W, C): each input clip followed by its output clip."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: file not found")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{path}: not a readable .npz file: {e}") from None
    with zf:
        keys = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
        missing = [k for k in ("clips", "dims", "input_raw_data") if k not in keys]
        if missing:
            raise UserError(f"{path}: missing key(s) {', '.join(missing)} (has: {', '.join(sorted(keys)) or 'none'})")
        clips = _small_array(zf, "clips", path)
        dims = _small_array(zf, "dims", path)
        if clips.ndim != 3 or clips.shape[0] != 2 or clips.shape[2] != 2 or clips.dtype.kind not in "iu":
            raise UserError(f"{path}: clips must be integers of shape (2, N, 2), got {clips.dtype} {clips.shape}")
        if dims.ndim != 2 or dims.shape[0] not in (1, 2) or dims.shape[1] != 3:
            raise UserError(f"{path}: dims must have shape (1, 3) or (2, 3), got {dims.shape}")
        if dims.shape[0] == 2 and "output_raw_data" not in keys:
            raise UserError(f"{path}: dims has two rows but there is no output_raw_data")
        raw_in = _read_raw_frames(zf, "input_raw_data", path)
        raw_out = raw_in
        if dims.shape[0] == 2:
            raw_out = _read_raw_frames(zf, "output_raw_data", path)

    for name, raw, d in (("input_raw_data", raw_in, dims[0]), ("output_raw_data", raw_out, dims[-1])):
        if tuple(raw.shape[1:]) != tuple(int(v) for v in d):
            raise UserError(f"{path}: {name} has frames of shape {raw.shape[1:]} (C, H, W) "
                            f"but dims says {tuple(int(v) for v in d)}")
    if raw_in.shape[1:] != raw_out.shape[1:]:
        raise UserError(f"{path}: input frames {raw_in.shape[1:]} and output frames "
                        f"{raw_out.shape[1:]} differ in shape; they cannot form one sequence")

    clips = clips.astype(np.int64)
    n = clips.shape[1]
    if n == 0:
        raise UserError(f"{path}: clips lists no sequences")
    for row, name, raw in ((0, "input", raw_in), (1, "output", raw_out)):
        start, length = clips[row, :, 0], clips[row, :, 1]
        bad = np.flatnonzero((start < 0) | (length < 0) | (start + length > len(raw)))
        if len(bad):
            i = int(bad[0])
            raise UserError(f"{path}: {name} clip of sequence {i} [start {start[i]}, length {length[i]}] "
                            f"is outside the {len(raw)} frames of its raw data")
    total = clips[0, :, 1] + clips[1, :, 1]
    if np.any(total != total[0]):
        i = int(np.flatnonzero(total != total[0])[0])
        raise UserError(f"{path}: sequences differ in length ({total[0]} frames for sequence 0, "
                        f"{total[i]} for sequence {i}); all must have the same length")
    if total[0] == 0:
        raise UserError(f"{path}: clips describe sequences of zero frames")

    c, h, w = raw_in.shape[1:]
    out = np.empty((n, int(total[0]), h, w, c), np.uint8)
    for i in range(n):
        (s0, l0), (s1, l1) = clips[0, i], clips[1, i]
        out[i, :l0] = raw_in[s0:s0 + l0].transpose(0, 2, 3, 1)
        out[i, l0:] = raw_out[s1:s1 + l1].transpose(0, 2, 3, 1)
    return out


def find_sources(dataset_path):
    """What a data folder holds: {'train': Source | None, 'test': Source | None}.

    Each split takes the first existing file of TRAIN_CANDIDATES / TEST_CANDIDATES: train.npz,
    else MNIST IDX digits (kind 'idx': generate the sequences); test.npz, else valid.npz,
    else mnist_test_seq.npy. At least one split must be found."""
    dataset_path = os.fspath(dataset_path)
    if not os.path.isdir(dataset_path):
        raise UserError(f"{dataset_path}: dataset folder not found")
    found = {}
    for split, candidates in (("train", TRAIN_CANDIDATES), ("test", TEST_CANDIDATES)):
        found[split] = None
        for kind, name in candidates:
            p = os.path.join(dataset_path, name)
            if os.path.isfile(p):
                found[split] = Source(kind, p)
                break
    if found["train"] is None and found["test"] is None:
        names = [n for _, n in TRAIN_CANDIDATES + TEST_CANDIDATES]
        raise UserError(f"{dataset_path}: no data found; looked for {', '.join(names)}")
    return found
