"""Tests of data_provider: patches, digit sources, the Moving MNIST generator, file readers,
MindRecord writing/reading and the training data order."""

import gzip
import os
import struct

import numpy as np
import pytest

os.environ.setdefault("GLOG_v", "3")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

from data_provider import mindrecord as mr  # noqa: E402
from data_provider.digits import builtin_digits, load_idx_images  # noqa: E402
from data_provider.moving_mnist import generate_moving_mnist, iter_moving_mnist  # noqa: E402
from data_provider.patch import reshape_patch, reshape_patch_back  # noqa: E402
from data_provider.sources import find_sources, load_mnist_test_seq, load_thuml_npz  # noqa: E402
from engine.errors import UserError  # noqa: E402


# ---------------------------------------------------------------- patch

def test_reshape_patch_channel_order_and_round_trip():
    rng = np.random.default_rng(0)
    b, t, h, w, c, p = 2, 3, 4, 6, 2, 2
    x = rng.integers(0, 1000, (b, t, h, w, c))
    y = reshape_patch(x, p)
    assert y.shape == (b, t, h // p, w // p, p * p * c)
    for i in range(h // p):
        for j in range(w // p):
            for py in range(p):
                for px in range(p):
                    for ch in range(c):
                        np.testing.assert_array_equal(y[:, :, i, j, (py * p + px) * c + ch],
                                                      x[:, :, i * p + py, j * p + px, ch])
    np.testing.assert_array_equal(reshape_patch_back(y, p), x)


def test_reshape_patch_small_known_example():
    # One 2x2 single-channel frame becomes one patch whose channels read row by row.
    x = np.array([[1, 2], [3, 4]]).reshape(2, 2, 1)
    np.testing.assert_array_equal(reshape_patch(x, 2), [[[1, 2, 3, 4]]])
    x4 = np.arange(4 * 4 * 3).reshape(1, 4, 4, 3)
    np.testing.assert_array_equal(reshape_patch_back(reshape_patch(x4, 4), 4), x4)
    np.testing.assert_array_equal(reshape_patch(x4, 1), x4)


def test_reshape_patch_errors():
    with pytest.raises(UserError, match="not divisible"):
        reshape_patch(np.zeros((1, 1, 6, 8, 1)), 4)
    with pytest.raises(UserError):
        reshape_patch_back(np.zeros((1, 2, 2, 6)), 2)
    with pytest.raises(UserError):
        reshape_patch(np.zeros((4, 4)), 2)


# ---------------------------------------------------------------- digits

def _idx_bytes(images, magic=2051):
    n, r, c = images.shape
    return struct.pack(">iiii", magic, n, r, c) + images.astype(np.uint8).tobytes()


def test_idx_plain_and_gzip(tmp_path):
    imgs = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    plain = tmp_path / "train-images-idx3-ubyte"
    plain.write_bytes(_idx_bytes(imgs))
    # gzip is recognised by content: give the compressed file a name without .gz.
    packed = tmp_path / "packed"
    packed.write_bytes(gzip.compress(_idx_bytes(imgs)))
    for p in (plain, packed):
        got = load_idx_images(p)
        assert got.dtype == np.uint8 and got.shape == (5, 28, 28)
        np.testing.assert_array_equal(got, imgs)


def test_idx_errors(tmp_path):
    imgs = np.ones((3, 28, 28), np.uint8)
    labels = tmp_path / "labels"
    labels.write_bytes(_idx_bytes(imgs, magic=2049))
    with pytest.raises(UserError, match="magic"):
        load_idx_images(labels)
    short = tmp_path / "short"
    short.write_bytes(_idx_bytes(imgs)[:-10])
    with pytest.raises(UserError, match="truncated") as e:
        load_idx_images(short)
    assert str(short) in str(e.value)
    short_gz = tmp_path / "short.gz"
    short_gz.write_bytes(gzip.compress(_idx_bytes(imgs))[:-12])
    with pytest.raises(UserError, match="short.gz"):
        load_idx_images(short_gz)
    with pytest.raises(UserError, match="not found"):
        load_idx_images(tmp_path / "missing")


def test_builtin_digits():
    d = builtin_digits()
    assert d.shape == (1797, 28, 28) and d.dtype == np.uint8
    assert d is builtin_digits()  # cached
    border = np.ones((28, 28), bool)
    border[4:24, 4:24] = False
    assert not d[:, border].any()
    assert d.max() == 255
    # Every image has real ink: MNIST digits cover roughly 10-20% of the 28x28 canvas.
    ink = (d > 127).mean(axis=(1, 2))
    assert ink.min() > 0.03 and 0.08 < ink.mean() < 0.35
    # Centred: the mass centre of the average digit is near the canvas centre.
    mean_img = d.astype(np.float64).mean(0)
    yy, xx = np.mgrid[:28, :28]
    cy, cx = (mean_img * yy).sum() / mean_img.sum(), (mean_img * xx).sum() / mean_img.sum()
    assert abs(cy - 13.5) < 1.5 and abs(cx - 13.5) < 1.5


# ---------------------------------------------------------------- moving mnist

def _square_digits(n, rng):
    """Digits with no zero pixel, so each one's footprint is exactly its 28x28 square."""
    return rng.integers(1, 256, (n, 28, 28), dtype=np.uint8)


def test_moving_mnist_shape_determinism_chunks():
    d = builtin_digits()
    a = generate_moving_mnist(d, 10, seed=3, chunk_size=4)
    assert a.shape == (10, 20, 64, 64, 1) and a.dtype == np.uint8
    b = generate_moving_mnist(d, 10, seed=3, chunk_size=256)
    np.testing.assert_array_equal(a, b)
    c = generate_moving_mnist(d, 10, seed=4)
    assert not np.array_equal(a, c)
    chunks = list(iter_moving_mnist(d, 10, seed=3, chunk_size=4))
    assert [len(x) for x in chunks] == [4, 4, 2]
    # A later slice does not depend on what precedes it.
    np.testing.assert_array_equal(generate_moving_mnist(d, 10, seed=3)[7:],
                                  list(iter_moving_mnist(d, 10, seed=3, chunk_size=7))[1])
    other = generate_moving_mnist(d, 2, seq_length=5, image_size=48, seed=0)
    assert other.shape == (2, 5, 48, 48, 1)


def test_moving_mnist_one_digit_is_the_source_digit_shifted():
    rng = np.random.default_rng(0)
    digits = _square_digits(6, rng)
    seqs = generate_moving_mnist(digits, 16, num_digits=1, seed=11)[..., 0]
    reversals = 0
    for seq in seqs:
        offsets = []
        which = set()
        for frame in seq:
            ys, xs = np.nonzero(frame)
            oy, ox = ys.min(), xs.min()
            assert ys.max() - oy == 27 and xs.max() - ox == 27 and len(ys) == 28 * 28
            window = frame[oy:oy + 28, ox:ox + 28]
            match = [k for k in range(len(digits)) if np.array_equal(window, digits[k])]
            assert len(match) == 1
            which.add(match[0])
            offsets.append((oy, ox))
        assert len(which) == 1  # the same digit all along
        off = np.array(offsets)
        steps = np.diff(off, axis=0)
        # Constant speed 0.1 of the 36-pixel canvas: at most 4 pixels per frame per axis.
        assert np.abs(steps).max() <= 4 and np.abs(steps).sum() > 0
        reversals += int(np.any(steps[:, 0][:-1] * steps[:, 0][1:] < 0)
                         or np.any(steps[:, 1][:-1] * steps[:, 1][1:] < 0))
    # 20 steps of 0.1 cover twice the unit square: most sequences must bounce.
    assert reversals >= 8


def test_moving_mnist_mass_is_conserved_with_real_digits():
    d = builtin_digits()
    seqs = generate_moving_mnist(d, 20, num_digits=1, seed=5).astype(np.int64)
    sums = seqs.sum(axis=(2, 3, 4))
    # The digit never leaves the frame, so every frame holds the whole digit.
    assert np.all(sums == sums[:, :1])
    assert set(sums[:, 0]).issubset(set(d.reshape(len(d), -1).sum(1).astype(np.int64)))


def test_moving_mnist_two_digits_combine_by_max():
    # Flat squares with distinct values: under max the brighter square stays whole even
    # where the two overlap; a sum or a paste-over would break it.
    digits = np.repeat(np.arange(10, 250, 10, dtype=np.uint8), 28 * 28).reshape(-1, 28, 28)
    seqs = generate_moving_mnist(digits, 40, num_digits=2, seed=2)[..., 0]
    overlaps = 0
    for frame in seqs.reshape(-1, 64, 64):
        values = np.unique(frame[frame > 0])
        assert set(values).issubset(set(digits[:, 0, 0]))
        assert 1 <= len(values) <= 2
        if len(values) == 1:
            continue
        hi = frame == values[-1]
        ys, xs = np.nonzero(hi)
        assert hi.sum() == 784 and np.ptp(ys) == 27 and np.ptp(xs) == 27
        lo_y, lo_x = np.nonzero(frame == values[0])
        assert np.ptp(lo_y) <= 27 and np.ptp(lo_x) <= 27
        overlaps += int(len(lo_y) < 784)
    assert overlaps > 20
    assert seqs.max(axis=(2, 3)).min() > 0


def test_moving_mnist_errors():
    with pytest.raises(UserError):
        generate_moving_mnist(np.zeros((3, 28, 28), np.float32), 2)
    with pytest.raises(UserError):
        generate_moving_mnist(np.zeros((3, 28), np.uint8), 2)
    with pytest.raises(UserError):
        generate_moving_mnist(np.zeros((3, 28, 28), np.uint8), 2, image_size=20)
    with pytest.raises(UserError, match="seed"):
        generate_moving_mnist(np.zeros((3, 28, 28), np.uint8), 2, seed=-1)


# ---------------------------------------------------------------- sources

def test_mnist_test_seq(tmp_path):
    arr = np.random.default_rng(2).integers(0, 256, (20, 3, 64, 64), dtype=np.uint8)
    p = tmp_path / "mnist_test_seq.npy"
    np.save(p, arr)
    got = load_mnist_test_seq(p)
    assert got.shape == (3, 20, 64, 64, 1) and got.dtype == np.uint8
    np.testing.assert_array_equal(got[..., 0], arr.transpose(1, 0, 2, 3))
    bad = tmp_path / "f.npy"
    np.save(bad, arr.astype(np.float32))
    with pytest.raises(UserError, match="uint8"):
        load_mnist_test_seq(bad)
    np.save(bad, arr[0])
    with pytest.raises(UserError, match="shape"):
        load_mnist_test_seq(bad)
    bad.write_bytes(b"not numpy at all")
    with pytest.raises(UserError, match="f.npy"):
        load_mnist_test_seq(bad)
    with pytest.raises(UserError, match="not found"):
        load_mnist_test_seq(tmp_path / "none.npy")


def _thuml(tmp_path, name, raw, clips, compressed=True, **extra):
    p = tmp_path / name
    dims = np.array([raw.shape[1:]], np.int32)
    (np.savez_compressed if compressed else np.savez)(p, clips=np.asarray(clips, np.int32), dims=dims,
                                                      input_raw_data=raw, **extra)
    return p


def test_thuml_npz_float_and_uint8(tmp_path):
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, (30, 1, 8, 8), dtype=np.uint8)
    clips = [[[0, 3], [10, 3], [25, 3]],   # input clips
             [[3, 2], [20, 2], [0, 2]]]    # output clips
    expect = np.stack([np.concatenate([raw[s0:s0 + 3], raw[s1:s1 + 2]])
                       for (s0, _), (s1, _) in zip(clips[0], clips[1])]).transpose(0, 1, 3, 4, 2)
    pf = _thuml(tmp_path, "f.npz", raw.astype(np.float32) / 255, clips)
    pu = _thuml(tmp_path, "u.npz", raw, clips, compressed=False)
    for p in (pf, pu):
        got = load_thuml_npz(p)
        assert got.dtype == np.uint8 and got.shape == (3, 5, 8, 8, 1)
        np.testing.assert_array_equal(got, expect)


def test_thuml_npz_output_raw_data_and_many_frames(tmp_path):
    rng = np.random.default_rng(4)
    # More frames than one read chunk (4096), so the streamed conversion crosses chunks.
    raw_in = rng.random((5000, 3, 4, 4), dtype=np.float32)
    raw_out = rng.integers(0, 256, (7, 3, 4, 4), dtype=np.uint8)
    clips = [[[0, 2], [4990, 2]], [[0, 1], [6, 1]]]
    p = tmp_path / "two.npz"
    np.savez(p, clips=np.array(clips), dims=np.array([[3, 4, 4], [3, 4, 4]]),
             input_raw_data=raw_in, output_raw_data=raw_out)
    got = load_thuml_npz(p)
    in_u8 = np.clip(np.round(raw_in * 255), 0, 255).astype(np.uint8)
    expect = np.stack([np.concatenate([in_u8[0:2], raw_out[0:1]]),
                       np.concatenate([in_u8[4990:4992], raw_out[6:7]])]).transpose(0, 1, 3, 4, 2)
    np.testing.assert_array_equal(got, expect)


def test_thuml_npz_errors(tmp_path):
    raw = np.zeros((10, 1, 4, 4), np.uint8)
    with pytest.raises(UserError, match="outside"):
        load_thuml_npz(_thuml(tmp_path, "a.npz", raw, [[[0, 5]], [[8, 5]]]))
    with pytest.raises(UserError, match="outside"):
        load_thuml_npz(_thuml(tmp_path, "b.npz", raw, [[[-1, 2]], [[0, 2]]]))
    with pytest.raises(UserError, match="same length"):
        load_thuml_npz(_thuml(tmp_path, "c.npz", raw, [[[0, 2], [0, 3]], [[2, 2], [2, 2]]]))
    with pytest.raises(UserError, match="clips"):
        load_thuml_npz(_thuml(tmp_path, "d.npz", raw, [[0, 2], [2, 2]]))
    with pytest.raises(UserError, match="float data must be in"):
        load_thuml_npz(_thuml(tmp_path, "e.npz", raw.astype(np.float32) + 255, [[[0, 2]], [[2, 2]]]))
    p = tmp_path / "g.npz"
    np.savez(p, clips=np.zeros((2, 1, 2), int), input_raw_data=raw)
    with pytest.raises(UserError, match="missing key.*dims"):
        load_thuml_npz(p)
    p = tmp_path / "h.npz"
    np.savez(p, clips=np.array([[[0, 2]], [[2, 2]]]), dims=np.array([[1, 8, 8]]), input_raw_data=raw)
    with pytest.raises(UserError, match="dims"):
        load_thuml_npz(p)
    p.write_bytes(b"garbage")
    with pytest.raises(UserError, match="h.npz"):
        load_thuml_npz(p)


def test_find_sources(tmp_path):
    with pytest.raises(UserError, match="mnist_test_seq.npy"):
        find_sources(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    (tmp_path / "mnist_test_seq.npy").write_bytes(b"")
    s = find_sources(tmp_path)
    assert s["train"] == ("idx", str(tmp_path / "train-images-idx3-ubyte.gz"))
    assert s["test"] == ("npy", str(tmp_path / "mnist_test_seq.npy"))
    (tmp_path / "valid.npz").write_bytes(b"")
    assert find_sources(tmp_path)["test"].path.endswith("valid.npz")
    (tmp_path / "test.npz").write_bytes(b"")
    (tmp_path / "train.npz").write_bytes(b"")
    s = find_sources(tmp_path)
    assert s["train"].kind == "npz" and s["train"].path.endswith("train.npz")
    assert s["test"].kind == "npz" and s["test"].path.endswith("test.npz")
    only = tmp_path / "only"
    only.mkdir()
    (only / "mnist_test_seq.npy").write_bytes(b"")
    assert find_sources(only) == {"train": None, "test": ("npy", str(only / "mnist_test_seq.npy"))}
    with pytest.raises(UserError):
        find_sources(tmp_path / "nope")


# ---------------------------------------------------------------- mindrecord

@pytest.fixture(scope="module")
def record(tmp_path_factory):
    seqs = generate_moving_mnist(builtin_digits(), 37, seq_length=6, image_size=32, seed=9)
    path = str(tmp_path_factory.mktemp("rec") / "seqs.mindrecord")
    # Uneven chunks, one of them a non-contiguous view.
    chunks = [seqs[:10], seqs[10:11], np.asfortranarray(seqs[11:])]
    assert mr.write_mindrecord(path, iter(chunks), description="test") == 37
    return path, seqs


def test_mindrecord_round_trip(record):
    path, seqs = record
    assert mr.mindrecord_info(path) == {"num_samples": 37, "frame_shape": (6, 32, 32, 1), "dtype": np.dtype(np.uint8)}
    np.testing.assert_array_equal(mr.read_sequences(path), seqs)
    idx = [36, 0, 5, 5, 2]
    np.testing.assert_array_equal(mr.read_sequences(path, idx), seqs[idx])
    with pytest.raises(UserError, match="indices"):
        mr.read_sequences(path, [0, 37])


def test_create_dataset_values_and_order(record):
    path, seqs = record
    # Out of order and with repeats: SubsetSampler must keep both.
    idx = np.array([30, 2, 2, 17, 0, 30, 5, 11, 36])
    data = mr.create_dataset(path, batch_size=4, patch_size=4, indices=idx, drop_remainder=True)
    batches = [b for (b,) in data.create_tuple_iterator(output_numpy=True, num_epochs=1)]
    assert len(batches) == 2
    got = np.concatenate(batches)
    expect = reshape_patch((seqs[idx[:8]] / 255).astype(np.float32), 4)
    assert got.dtype == np.float32 and got.shape == (8, 6, 8, 8, 16)
    np.testing.assert_array_equal(got, expect)

    data = mr.create_dataset(path, batch_size=5, patch_size=2, drop_remainder=False, seq_length=3,
                             num_parallel_workers=64)
    got = np.concatenate([b for (b,) in data.create_tuple_iterator(output_numpy=True, num_epochs=1)])
    np.testing.assert_array_equal(got, reshape_patch((seqs[:, :3] / 255).astype(np.float32), 2))

    data = mr.create_dataset(path, batch_size=37, patch_size=1, shuffle=True, seed=1)
    (got,) = next(data.create_tuple_iterator(output_numpy=True, num_epochs=1))
    perm = np.random.default_rng(1).permutation(37)
    np.testing.assert_array_equal(got, (seqs[perm] / 255).astype(np.float32))


def test_create_dataset_errors(record):
    path, _ = record
    with pytest.raises(UserError, match="seq_length"):
        mr.create_dataset(path, 2, 4, seq_length=7)
    with pytest.raises(UserError, match="patches"):
        mr.create_dataset(path, 2, 5)
    with pytest.raises(UserError, match="indices"):
        mr.create_dataset(path, 2, 4, indices=[-1, 0])


def test_write_is_atomic(tmp_path, record):
    _, seqs = record
    path = str(tmp_path / "out.mindrecord")

    def failing():
        yield seqs[:4]
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        mr.write_mindrecord(path, failing())
    assert os.listdir(tmp_path) == []

    assert mr.write_mindrecord(path, [seqs[:5]]) == 5
    with pytest.raises(RuntimeError, match="source broke"):
        mr.write_mindrecord(path, failing())
    with pytest.raises(UserError, match="uint8, float16 or float32"):
        mr.write_mindrecord(path, [seqs[:3].astype(np.float64)])
    with pytest.raises(UserError, match="one dtype"):
        mr.write_mindrecord(path, [seqs[:3], seqs[:3].astype(np.float32)])
    with pytest.raises(UserError, match="share one shape"):
        mr.write_mindrecord(path, [seqs[:3], seqs[:3, :4]])
    assert sorted(os.listdir(tmp_path)) == ["out.mindrecord", "out.mindrecord.db"]
    np.testing.assert_array_equal(mr.read_sequences(path), seqs[:5])

    # A successful write replaces the old file.
    assert mr.write_mindrecord(path, [seqs[5:8]]) == 3
    np.testing.assert_array_equal(mr.read_sequences(path), seqs[5:8])


def test_unreadable_files(tmp_path, record):
    good, _ = record
    with pytest.raises(UserError, match="not found"):
        mr.mindrecord_info(tmp_path / "missing.mindrecord")
    rnd = tmp_path / "rnd.mindrecord"
    rnd.write_bytes(np.random.default_rng(0).bytes(100_000))
    (tmp_path / "rnd.mindrecord.db").write_bytes(np.random.default_rng(1).bytes(16384))
    with pytest.raises(UserError, match="is not a readable MindRecord file"):
        mr.mindrecord_info(rnd)
    with pytest.raises(UserError, match="is not a readable MindRecord file"):
        mr.create_dataset(rnd, 1, 1)
    nodb = tmp_path / "nodb.mindrecord"
    nodb.write_bytes(open(good, "rb").read())
    with pytest.raises(UserError, match=r"nodb.mindrecord.db"):
        mr.mindrecord_info(nodb)
    # Truncated: the data file cut short, its index intact. It must keep its name, which
    # MindRecord records inside both files, so it goes in a folder of its own.
    sub = tmp_path / "cut"
    sub.mkdir()
    data = open(good, "rb").read()
    (sub / os.path.basename(good)).write_bytes(data[:len(data) - 1000])
    (sub / (os.path.basename(good) + ".db")).write_bytes(open(good + ".db", "rb").read())
    with pytest.raises(UserError, match="is not a readable MindRecord file"):
        mr.mindrecord_info(sub / os.path.basename(good))


# ---------------------------------------------------------------- training order

def test_train_index_stream():
    n, b = 10, 3
    full = mr.train_index_stream(n, b, seed=7, start_step=0, num_steps=20)
    assert full.dtype == np.int64 and full.shape == (60,)
    np.testing.assert_array_equal(full, mr.train_index_stream(n, b, 7, 0, 20))
    assert not np.array_equal(full, mr.train_index_stream(n, b, 8, 0, 20))
    for k in (1, 4, 13):
        np.testing.assert_array_equal(mr.train_index_stream(n, b, 7, k, 20 - k), full[k * b:])
    for e in range(6):
        np.testing.assert_array_equal(np.sort(full[e * n:(e + 1) * n]), np.arange(n))
        np.testing.assert_array_equal(full[e * n:(e + 1) * n],
                                      np.random.default_rng([7, e]).permutation(n))


def test_train_index_stream_shards():
    n, b, shards = 13, 2, 3
    glob = mr.train_index_stream(n, b * shards, seed=1, start_step=0, num_steps=9)
    parts = [mr.train_index_stream(n, b, 1, 0, 9, num_shards=shards, shard_id=k) for k in range(shards)]
    checked = 0
    for s in range(9):
        step = [p[s * b:(s + 1) * b] for p in parts]
        np.testing.assert_array_equal(np.concatenate(step), glob[s * b * shards:(s + 1) * b * shards])
        # A step inside one epoch gives every shard different samples; one that straddles
        # an epoch boundary may legitimately repeat a sample.
        if (s * b * shards) // n == ((s + 1) * b * shards - 1) // n:
            assert len(np.unique(np.concatenate(step))) == b * shards
            checked += 1
    assert checked == 5
    resumed = mr.train_index_stream(n, b, 1, 4, 5, num_shards=shards, shard_id=2)
    np.testing.assert_array_equal(resumed, parts[2][4 * b:])
    with pytest.raises(UserError, match="fewer than one global batch"):
        mr.train_index_stream(5, 2, 0, 0, 1, num_shards=3)
    with pytest.raises(UserError):
        mr.train_index_stream(20, 2, 0, 0, 1, num_shards=2, shard_id=2)
