"""Video sequences in MindRecord files, and the training data order.

Schema of every file written here (one sample = one sequence):

    {"frames": {"type": "bytes"},                 raw frames, C order, shape [T, H, W, C]
     "shape":  {"type": "int32", "shape": [4]},   [T, H, W, C]
     "index":  {"type": "int64"}}                 position of the sequence in its source

Frames are uint8 (8-bit data: the model sees x / 255), or float32 / float16 (little-endian)
holding values already in the model's units (16-bit and float data, normalized with the
training split's statistics, which NAME.mindrecord.json records: data_provider/custom.py).
The element type follows from the byte count: len(frames) / prod(shape) = 1, 2 or 4 bytes.
uint8 is not a MindRecord field type, hence bytes; decoding bytes + shape is bit-exact.
A file `x.mindrecord` comes with its index `x.mindrecord.db`; MindRecord records the data
file's name inside both, so neither may be renamed.
"""

import os
import shutil
import sys
import tempfile
import time

import numpy as np

from data_provider.patch import reshape_patch
from engine.errors import UserError

SCHEMA = {"frames": {"type": "bytes"},
          "shape": {"type": "int32", "shape": [4]},
          "index": {"type": "int64"}}

_HEADER_SIZE = 1 << 20
_MIN_PAGE_SIZE = 1 << 23
_MAX_PAGE_SIZE = 1 << 28  # MindRecord's upper limit
_PROGRESS_SECONDS = 5.0
_WRITE_BATCH = 256  # samples handed to FileWriter at once: bounds the extra memory

# x/255 for every uint8 value, rounded once to float32: decoding is a table look-up.
_TO_UNIT = (np.arange(256) / 255.0).astype(np.float32)
# element types by byte width (little-endian floats, as written on every platform here)
FRAME_DTYPES = {1: np.dtype(np.uint8), 2: np.dtype("<f2"), 4: np.dtype("<f4")}


def _reason(exc):
    """The useful line of a MindSpore error (they carry banners and C++ call stacks)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("[ERROR]"):
            return ln.replace("[ERROR]", "").replace("[Internal ERROR]", "").strip()
    return lines[0] if lines else type(exc).__name__


def _page_size(sample_bytes):
    # A sample must fit in one page. The default 32 MB pages (plus a 16 MB header) make
    # even a tiny file 48 MB long, so pages are sized to the data instead.
    need = max(_MIN_PAGE_SIZE, 1 << int(sample_bytes + (1 << 16)).bit_length())
    if need > _MAX_PAGE_SIZE:
        raise UserError(f"one sequence is {sample_bytes} bytes; MindRecord pages hold at most "
                        f"{_MAX_PAGE_SIZE // 2} bytes per sample here")
    return need


def _check_chunk(chunk, frame_shape, path, dtype=None):
    chunk = np.asarray(chunk)
    if chunk.dtype not in (np.uint8, np.float16, np.float32):
        raise UserError(f"{path}: sequences to write must be uint8, float16 or float32, got {chunk.dtype}")
    if dtype is not None and chunk.dtype != dtype:
        raise UserError(f"{path}: all sequences must share one dtype; got {chunk.dtype} after {dtype}")
    if chunk.ndim != 5:
        raise UserError(f"{path}: sequences to write must have shape (n, T, H, W, C), got {chunk.shape}")
    if frame_shape is not None and chunk.shape[1:] != frame_shape:
        raise UserError(f"{path}: all sequences must share one shape (T, H, W, C); got "
                        f"{chunk.shape[1:]} after {frame_shape}")
    return chunk


def write_mindrecord(path, chunks, description=""):
    """Write sequence chunks (n, T, H, W, C), uint8 or float16/float32, to `path` (+ `path`.db)
    atomically.

    The files are built in a temporary folder beside the target and moved into place only
    after a successful commit; on any error nothing at `path` changes. (The two files are
    moved one after the other, so a crash in between those two renames can still pair a
    new data file with an old index; MindRecord then refuses the pair.)
    Returns the number of samples written."""
    from mindspore.mindrecord import FileWriter

    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    # MindRecord stores the data file's base name inside the files, so they are written
    # under their final name in a private folder rather than under a temporary name.
    tmpdir = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
    tmp_path = os.path.join(tmpdir, name)
    writer = None
    frame_shape = None
    frame_dtype = None
    count = 0
    last_report = start = time.monotonic()
    try:
        for chunk in chunks:
            chunk = _check_chunk(chunk, frame_shape, path, frame_dtype)
            if len(chunk) == 0:
                continue
            if writer is None:
                frame_shape, frame_dtype = chunk.shape[1:], chunk.dtype
                writer = FileWriter(tmp_path, shard_num=1, overwrite=True)
                writer.set_header_size(_HEADER_SIZE)
                writer.set_page_size(_page_size(int(np.prod(frame_shape)) * chunk.dtype.itemsize))
                writer.add_schema(SCHEMA, description or "video sequences")
            shape = np.asarray(frame_shape, np.int32)
            if chunk.dtype != np.uint8:
                chunk = chunk.astype(chunk.dtype.newbyteorder("<"), copy=False)
            for s in range(0, len(chunk), _WRITE_BATCH):
                part = np.ascontiguousarray(chunk[s:s + _WRITE_BATCH])
                writer.write_raw_data([{"frames": seq.tobytes(), "shape": shape, "index": count + i}
                                       for i, seq in enumerate(part)])
                count += len(part)
                now = time.monotonic()
                if now - last_report >= _PROGRESS_SECONDS:
                    print(f"{path}: {count} samples written ({count / (now - start):.0f}/s)",
                          file=sys.stderr, flush=True)
                    last_report = now
        if writer is None:
            raise UserError(f"{path}: no sequences to write")
        writer.commit()
        os.replace(tmp_path + ".db", path + ".db")
        os.replace(tmp_path, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return count


def _open_reader(path, columns=None):
    from mindspore.mindrecord import FileReader

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: MindRecord file not found")
    if not os.path.isfile(path + ".db"):
        raise UserError(f"{path}.db: MindRecord index file not found (it must sit beside {path})")
    try:
        return FileReader(path, num_consumer=1, columns=columns)
    except Exception as e:  # MindSpore raises bare RuntimeErrors for every kind of damage
        raise UserError(f"{path} is not a readable MindRecord file: {_reason(e)}") from None


def mindrecord_info(path):
    """{'num_samples': N, 'frame_shape': (T, H, W, C), 'dtype': numpy dtype of the stored
    frames} of a file from write_mindrecord."""
    path = os.fspath(path)
    reader = _open_reader(path)
    try:
        schema = reader.schema()
        if any(k not in schema or schema[k].get("type") != v["type"] for k, v in SCHEMA.items()):
            raise UserError(f"{path}: not a sequence file of this project (schema {schema}, "
                            f"expected fields frames/bytes, shape/int32, index/int64)")
        num = int(reader.len())
        first = None
        for sample in reader.get_next():
            first = sample
            break
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{path} is not a readable MindRecord file: {_reason(e)}") from None
    finally:
        reader.close()
    if num == 0 or first is None:
        raise UserError(f"{path}: MindRecord file holds no samples")
    shape = tuple(int(v) for v in np.asarray(first["shape"]).reshape(-1))
    width = len(first["frames"]) // max(1, int(np.prod(shape))) if len(shape) == 4 else 0
    if (len(shape) != 4 or min(shape) < 1 or width not in FRAME_DTYPES
            or len(first["frames"]) != int(np.prod(shape)) * width):
        raise UserError(f"{path}: first sample has shape {shape} but {len(first['frames'])} bytes of frames")
    return {"num_samples": num, "frame_shape": shape, "dtype": FRAME_DTYPES[width]}


def _check_indices(indices, num_samples, path):
    indices = np.asarray(indices)
    if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
        raise UserError(f"{path}: indices must be a 1-D array of integers, got {indices.dtype} {indices.shape}")
    indices = indices.astype(np.int64)
    if indices.size == 0:
        raise UserError(f"{path}: indices select no samples")
    if indices.min() < 0 or indices.max() >= num_samples:
        raise UserError(f"{path}: indices must lie in [0, {num_samples}), got "
                        f"[{indices.min()}, {indices.max()}]")
    return indices


def _workers(num_parallel_workers):
    # MindSpore rejects more workers than CPU cores with a ValueError; a config written on a
    # bigger machine should still run here.
    return max(1, min(int(num_parallel_workers), os.cpu_count() or 1))


def _mind_dataset(path, indices, num_parallel_workers):
    import mindspore.dataset as ds

    # SubsetSampler yields exactly the given indices, in order and with repeats (checked in
    # tests/test_data.py), which training needs to replay a precomputed data order.
    sampler = ds.SubsetSampler(indices.tolist())
    return ds.MindDataset(os.fspath(path), columns_list=["frames", "shape"], sampler=sampler,
                          num_parallel_workers=_workers(num_parallel_workers))


def _decode(frames, shape):
    shape = tuple(int(v) for v in shape)
    # the pipeline hands a bytes column over as a one-element numpy array of dtype |S<n>
    size = len(frames) if isinstance(frames, bytes) else np.asarray(frames).nbytes
    return np.frombuffer(frames, FRAME_DTYPES[size // int(np.prod(shape))]).reshape(shape)


def read_sequences(path, indices=None):
    """Array (n, T, H, W, C) of the samples at `indices` (default all), bit-exact, in the
    stored dtype (uint8, or float16/float32 for normalized data)."""
    info = mindrecord_info(path)
    if indices is None:
        indices = np.arange(info["num_samples"])
    indices = _check_indices(indices, info["num_samples"], path)
    data = _mind_dataset(path, indices, 1)
    out = np.empty((len(indices),) + info["frame_shape"], info["dtype"])
    n = 0
    try:
        for frames, shape in data.create_tuple_iterator(output_numpy=True, num_epochs=1):
            out[n] = _decode(frames, shape)
            n += 1
    except Exception as e:
        raise UserError(f"{path} is not a readable MindRecord file: {_reason(e)}") from None
    if n != len(indices):
        raise UserError(f"{path}: read {n} samples, expected {len(indices)}")
    return out


def train_index_stream(num_samples, batch_size, seed, start_step, num_steps, num_shards=1, shard_id=0):
    """Sample indices for training steps [start_step, start_step + num_steps) of one shard.

    The global order is a function of the seed only: the concatenation of per-epoch
    permutations, epoch e from np.random.default_rng([seed, e]). Step s takes global
    positions [s*GB, (s+1)*GB) with GB = batch_size*num_shards, and shard k the k-th block
    of batch_size of that, so a run resumed at step k sees exactly the batches an
    uninterrupted run would. Batches may straddle epoch boundaries.
    Returns int64 of length num_steps*batch_size."""
    num_samples, batch_size = int(num_samples), int(batch_size)
    start_step, num_steps = int(start_step), int(num_steps)
    num_shards, shard_id = int(num_shards), int(shard_id)
    if batch_size < 1 or num_shards < 1 or not 0 <= shard_id < num_shards:
        raise UserError(f"train_index_stream: need batch_size >= 1 and 0 <= shard_id < num_shards, "
                        f"got batch_size={batch_size}, shard_id={shard_id}, num_shards={num_shards}")
    if start_step < 0 or num_steps < 0:
        raise UserError(f"train_index_stream: start_step and num_steps must be >= 0, "
                        f"got {start_step}, {num_steps}")
    if int(seed) != seed or seed < 0:
        raise UserError(f"train_index_stream: seed must be a non-negative integer, got {seed!r}")
    global_batch = batch_size * num_shards
    if num_samples < global_batch:
        raise UserError(f"the training set has {num_samples} samples, fewer than one global batch "
                        f"(batch_size {batch_size} x {num_shards} shard(s) = {global_batch})")
    steps = np.arange(start_step, start_step + num_steps, dtype=np.int64)
    pos = (steps[:, None] * global_batch + shard_id * batch_size
           + np.arange(batch_size, dtype=np.int64)).reshape(-1)
    epoch, offset = np.divmod(pos, num_samples)
    out = np.empty(len(pos), np.int64)
    for e in np.unique(epoch):
        sel = epoch == e
        perm = np.random.default_rng([int(seed), int(e)]).permutation(num_samples)
        out[sel] = perm[offset[sel]]
    return out


def create_dataset(path, batch_size, patch_size, indices=None, shuffle=False, seed=0, drop_remainder=True,
                   num_parallel_workers=2, seq_length=None):
    """A mindspore.dataset pipeline with one column "frames": float32 [B, T, H/p, W/p, p*p*C].

    Values are x/255 of stored uint8 frames (stored float frames are already in model units,
    and are only cast to float32), then reshape_patch. `indices` (any order,
    repeats allowed) selects the samples read; otherwise all, in file order, or in the order
    of np.random.default_rng(seed).permutation when shuffle is set. seq_length keeps only
    the first frames of each sequence."""
    info = mindrecord_info(path)
    num, (t, h, w, c) = info["num_samples"], info["frame_shape"]
    p = int(patch_size)
    if p < 1 or h % p or w % p:
        raise UserError(f"{path}: frames of {h}x{w} cannot be cut into patches of {patch_size}")
    if seq_length is not None:
        seq_length = int(seq_length)
        if not 1 <= seq_length <= t:
            raise UserError(f"{path}: stored sequences have {t} frames; seq_length {seq_length} "
                            f"must be between 1 and {t}")
    if indices is None:
        indices = np.random.default_rng(seed).permutation(num) if shuffle else np.arange(num)
    indices = _check_indices(indices, num, path)
    if batch_size < 1 or (drop_remainder and len(indices) < batch_size):
        raise UserError(f"{path}: batch_size {batch_size} needs at least that many samples, "
                        f"{len(indices)} selected")
    keep = t if seq_length is None else seq_length

    def decode(frames, shape):
        x = _decode(frames, shape)[:keep]
        x = _TO_UNIT[x] if x.dtype == np.uint8 else x.astype(np.float32)
        return reshape_patch(x, p)

    data = _mind_dataset(path, indices, num_parallel_workers)
    data = data.map(operations=decode, input_columns=["frames", "shape"], output_columns=["frames"],
                    num_parallel_workers=_workers(num_parallel_workers))
    return data.batch(batch_size, drop_remainder=drop_remainder)


def iter_batches(path, batch_size, patch_size, indices, seq_length=None, num_parallel_workers=2):
    """Yield numpy batches ("frames", as create_dataset makes them) for a long index stream.

    MindRecord's SubsetSampler refuses more indices than the file has samples, so a stream
    spanning several epochs is read as consecutive pipelines of at most num_samples indices,
    cut at batch boundaries."""
    num = mindrecord_info(path)["num_samples"]
    indices = np.asarray(indices, np.int64)
    per_chunk = max(batch_size, (num // batch_size) * batch_size)
    for start in range(0, len(indices), per_chunk):
        data = create_dataset(path, batch_size, patch_size, indices=indices[start:start + per_chunk],
                              seq_length=seq_length, num_parallel_workers=num_parallel_workers)
        for (frames,) in data.create_tuple_iterator(num_epochs=1, output_numpy=True):
            yield frames
