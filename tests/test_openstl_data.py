"""OpenSTL's benchmark datasets (dataset=mfmnist | taxibj | human | kitticaltech | weather):
tiny files in each real format, written with the real library (IDX bytes, numpy, PIL JPEGs,
hickle, netCDF4), converted, read back exactly (8-bit) or through the recorded data units
(float), OpenSTL's splits and clip rules, a bad input each, resume, and every config."""
import glob
import gzip
import json
import os
import struct

import h5py
import numpy as np
import pytest
from PIL import Image

from data_provider import openstl
from data_provider.build import build_mindrecords
from data_provider.mindrecord import mindrecord_info, read_sequences
from data_provider.moving_mnist import generate_moving_mnist
from data_provider.openstl_video import (hkl_strings, human_clip_paths, kitti_clip_starts, resize_cubic)
from engine.config import load_config
from engine.data_units import units_from_file
from engine.errors import UserError
from tests.conftest import ROOT


def convert(tmp_path, dataset, root, *extra):
    cfg = load_config([f"--dataset={dataset}", f"--dataset_path={root}", f"--mindrecord_dir={tmp_path / 'out'}",
                       *extra], needs_model=False)
    lines = []
    written = build_mindrecords(cfg, log=lines.append)
    return written, lines


def description(path):
    with open(path + ".json", encoding="utf-8") as f:
        return json.load(f)


# ---- Moving Fashion-MNIST ----

def write_idx(path, images):
    raw = struct.pack(">iiii", 2051, len(images), 28, 28) + np.asarray(images, np.uint8).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(raw)


def test_mfmnist_train_generated_test_fixed(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "moving_fmnist"
    folder.mkdir(parents=True)
    images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    write_idx(folder / "train-images-idx3-ubyte.gz", images)
    fixed = rng.integers(0, 256, (20, 3, 64, 64), dtype=np.uint8)  # (T, N, H, W) as OpenSTL's file
    np.save(folder / "fmnist_test_seq.npy", fixed)
    written, _ = convert(tmp_path, "mfmnist", tmp_path / "data", "--num_train_sequences=5", "--seed=7")
    assert [os.path.basename(p) for p in (written["train"], written["test"])] == \
        ["mfmnist_train.mindrecord", "mfmnist_test.mindrecord"]
    train = read_sequences(written["train"])
    assert train.dtype == np.uint8 and train.shape == (5, 20, 64, 64, 1)
    np.testing.assert_array_equal(train, generate_moving_mnist(images, 5, 20, 64, num_digits=2, seed=7))
    np.testing.assert_array_equal(read_sequences(written["test"]), fixed.transpose(1, 0, 2, 3)[..., None])
    assert description(written["test"])["normalize"] is None and units_from_file(written["test"]) is None

    # without OpenSTL's test file: generated from the same images with the next seed
    os.remove(folder / "fmnist_test_seq.npy")
    written, lines = convert(tmp_path, "mfmnist", tmp_path / "data", "--num_train_sequences=5", "--seed=7",
                             "--num_test_sequences=2")
    assert any("train: " in ln and "up to date" in ln for ln in lines)
    np.testing.assert_array_equal(read_sequences(written["test"]),
                                  generate_moving_mnist(images, 2, 20, 64, num_digits=2, seed=8))


def test_mfmnist_bad_idx(tmp_path):
    (tmp_path / "moving_fmnist").mkdir()
    bad = tmp_path / "moving_fmnist" / "train-images-idx3-ubyte.gz"
    with gzip.open(bad, "wb") as f:
        f.write(struct.pack(">iiii", 2049, 1, 28, 28) + bytes(784))  # a label file's magic
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz: bad magic number 2049"):
        convert(tmp_path, "mfmnist", tmp_path, "--num_train_sequences=2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty: no Fashion-MNIST training images; looked for "
                                        "moving_fmnist/train-images-idx3-ubyte.gz"):
        convert(tmp_path, "mfmnist", tmp_path / "empty")
    with pytest.raises(UserError, match="dataset_path .*missing: folder not found"):
        convert(tmp_path, "mfmnist", tmp_path / "missing")


# ---- TaxiBJ ----

def taxibj_npz(path, n_train=5, n_test=3, seed=0, drop=None):
    rng = np.random.default_rng(seed)
    arrays = {k: rng.uniform(-1, 1, (n_train if "train" in k else n_test, 4, 2, 32, 32))
              for k in openstl.TAXIBJ_KEYS if k != drop}
    arrays["X_train"][0, 0, 0, 0, 0] = -1.0  # the ends of the scaled range
    arrays["X_train"][0, 0, 1, 0, 0] = 1.0
    np.savez(path, **arrays)
    return arrays


def test_taxibj_float_units_resume_progress(tmp_path, monkeypatch):
    (tmp_path / "taxibj").mkdir()
    arrays = taxibj_npz(tmp_path / "taxibj" / "dataset.npz")
    monkeypatch.setattr(openstl, "_PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr(openstl, "_CHUNK_BYTES", 8 * 2 * 32 * 32 * 8 * 2)  # two clips per chunk
    written, lines = convert(tmp_path, "taxibj", tmp_path)
    assert any("clips/s" in ln for ln in lines)  # progress lines
    for split, n in (("train", 5), ("test", 3)):
        info = mindrecord_info(written[split])
        assert info["num_samples"] == n and info["frame_shape"] == (8, 32, 32, 2) and info["dtype"] == np.float32
        units = units_from_file(written[split])
        assert units.method == "none"
        truth = np.concatenate([arrays[f"X_{split}"], arrays[f"Y_{split}"]], axis=1).transpose(0, 1, 3, 4, 2)
        # data units are OpenSTL's (X + 1) / 2, in which its TaxiBJ metrics are reported
        np.testing.assert_allclose(units.to_data(read_sequences(written[split])), (truth + 1) / 2, atol=1e-7)
        np.testing.assert_allclose(units.to_unit(read_sequences(written[split])), (truth + 1) / 2, atol=1e-6)
    _, lines = convert(tmp_path, "taxibj", tmp_path)
    assert sum("up to date" in ln for ln in lines) == 2


def test_taxibj_bad_inputs(tmp_path):
    taxibj_npz(tmp_path / "dataset.npz", drop="Y_test")
    with pytest.raises(UserError, match=r"dataset.npz: no array 'Y_test' \(it holds: X_train, Y_train, X_test\)"):
        convert(tmp_path, "taxibj", tmp_path)
    with pytest.raises(UserError, match="config key 'seq_length': 20 but TaxiBJ's dataset.npz holds 4 -> 4"):
        convert(tmp_path, "taxibj", tmp_path, "--seq_length=20")
    np.savez(tmp_path / "dataset.npz", X_train=np.zeros((2, 4, 2, 16, 16)), Y_train=np.zeros((2, 4, 2, 16, 16)),
             X_test=np.zeros((1, 4, 2, 16, 16)), Y_test=np.zeros((1, 4, 2, 16, 16)))
    with pytest.raises(UserError, match=r"'X_train' is float64 \(2, 4, 2, 16, 16\); expected"):
        convert(tmp_path, "taxibj", tmp_path)
    arrays = taxibj_npz(tmp_path / "dataset.npz")
    np.savez(tmp_path / "dataset.npz", **dict(arrays, X_test=arrays["X_test"] * 500))
    with pytest.raises(UserError, match=r"'X_test' has values in .*scaled to \[-1, 1\]"):
        convert(tmp_path, "taxibj", tmp_path)


# ---- Human3.6M ----

def write_human(root, size=32, frames=60):
    rng = np.random.default_rng(3)
    images = root / "human" / "images"
    images.mkdir(parents=True)
    for video in ("S1_Walking.54138969_", "S9_Eating.60457274_"):
        base = rng.integers(0, 200, (size, size, 3))
        for j in range(1, frames + 1):
            frame = np.clip(base + 2 * j + rng.integers(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(frame).save(images / f"{video}{j:06d}.jpg", quality=90)
    (root / "human" / "train.txt").write_text("images/S1_Walking.54138969_,1,71\nimages/S9_Eating.60457274_,11,81\n"
                                              "images/S1_Walking.54138969_,21,91\n")
    (root / "human" / "test.txt").write_text("images/S9_Eating.60457274_,16,86\n")
    return root / "human"


def decoded(paths, size=None):
    out = []
    for p in paths:
        with Image.open(p) as im:
            f = np.asarray(im.convert("RGB"))
        out.append(f if size is None else resize_cubic(f, *size))
    return np.stack(out)


def test_human_lists_and_frames(tmp_path):
    human = write_human(tmp_path / "data")
    written, _ = convert(tmp_path, "human", tmp_path / "data", "--img_width=32", "--img_channel=3")
    train = read_sequences(written["train"])
    assert train.shape == (3, 8, 32, 32, 3) and train.dtype == np.uint8
    for k, (prefix, begin) in enumerate((("images/S1_Walking.54138969_", 1), ("images/S9_Eating.60457274_", 11),
                                         ("images/S1_Walking.54138969_", 21))):
        paths = human_clip_paths(str(human), prefix, begin, 8, 5)  # frames begin, begin + 5, ..., begin + 35
        assert os.path.basename(paths[-1]) == f"{prefix.split('/')[1]}{begin + 35:06d}.jpg"
        np.testing.assert_array_equal(train[k], decoded(paths))
    test = read_sequences(written["test"])
    np.testing.assert_array_equal(test[0], decoded(human_clip_paths(str(human), "images/S9_Eating.60457274_", 16, 8, 5)))
    # frames of another size are resized (cv2.INTER_CUBIC's kernel), as OpenSTL's loader does
    written, _ = convert(tmp_path, "human", tmp_path / "data", "--img_width=24", "--img_channel=3",
                         f"--mindrecord_dir={tmp_path / 'out24'}")
    np.testing.assert_array_equal(read_sequences(written["test"])[0], decoded(
        human_clip_paths(str(human), "images/S9_Eating.60457274_", 16, 8, 5), (24, 24)))


def test_human_missing_frame(tmp_path):
    human = write_human(tmp_path, frames=40)  # the clip from 11 needs frames 41 and 46
    with pytest.raises(UserError, match=r"S9_Eating.60457274_000041.jpg: frame not found \(train.txt line 2\)"):
        convert(tmp_path, "human", tmp_path, "--img_width=32", "--img_channel=3")
    os.remove(human / "test.txt")
    with pytest.raises(UserError, match="test.txt: file not found"):
        convert(tmp_path, "human", tmp_path, "--img_width=32", "--img_channel=3")


def test_resize_cubic_reproduces_a_ramp():
    # cubic convolution reproduces linear functions away from the borders
    ramp = np.tile((np.arange(40) * 5.0)[None, :, None], (4, 1, 3)).astype(np.uint8)
    out = resize_cubic(ramp, 4, 32).astype(np.float64)
    x = (np.arange(32) + 0.5) * 40 / 32 - 0.5
    inner = (x > 1) & (x < 37)
    np.testing.assert_allclose(out[0, inner, 0], np.rint(x[inner] * 5), atol=0.5)
    np.testing.assert_array_equal(resize_cubic(ramp, 4, 40), ramp)


# ---- KITTI -> Caltech ----

def write_kitti(root, hickle, sources=None):
    rng = np.random.default_rng(5)
    (root / "kitti_hkl").mkdir(parents=True)
    (root / "caltech").mkdir()
    x = rng.integers(0, 256, (30, 16, 20, 3), dtype=np.uint8)
    sources = sources or ["city-a"] * 14 + ["road-b"] * 12 + ["res-c"] * 4
    hickle.dump(x, str(root / "kitti_hkl" / "X_train.hkl"), mode="w")
    hickle.dump(sources, str(root / "kitti_hkl" / "sources_train.hkl"), mode="w")
    cache = rng.integers(0, 256, (25, 16, 20, 3), dtype=np.uint8)
    np.save(root / "caltech" / "data_cache.npy", cache)
    np.save(root / "caltech" / "indices_cache.npy", np.array([11, 0], np.int32))
    return x, cache


def test_kitticaltech_hickle_and_cache(tmp_path):
    hickle = pytest.importorskip("hickle")
    x, cache = write_kitti(tmp_path / "data", hickle)
    written, _ = convert(tmp_path, "kitticaltech", tmp_path / "data")
    # walking back from frame 29: 19..29 mixes recordings, ..., 15..25 is one clip, then
    # 4..14 mixes, 3..13 is one; then fewer than 11 frames remain
    assert kitti_clip_starts(["city-a"] * 14 + ["road-b"] * 12 + ["res-c"] * 4, 11) == [15, 3]
    train = read_sequences(written["train"])
    np.testing.assert_array_equal(train, np.stack([x[15:26], x[3:14]]))
    np.testing.assert_array_equal(read_sequences(written["test"]), np.stack([cache[11:22], cache[0:11]]))
    assert mindrecord_info(written["test"])["frame_shape"] == (11, 16, 20, 3)


def test_kitticaltech_bad_inputs(tmp_path):
    hickle = pytest.importorskip("hickle")
    write_kitti(tmp_path, hickle, sources=["city-a"] * 29)
    with pytest.raises(UserError, match=r"sources_train.hkl: 29 sources for the 30 frames of .*X_train.hkl"):
        convert(tmp_path, "kitticaltech", tmp_path)
    hickle.dump(["city-a"] * 30, str(tmp_path / "kitti_hkl" / "sources_train.hkl"), mode="w")
    with pytest.raises(UserError, match="clips start 11 frames apart .* shorter than the 12-frame test clips"):
        convert(tmp_path, "kitticaltech", tmp_path, "--seq_length=12")
    os.remove(tmp_path / "caltech" / "data_cache.npy")
    with pytest.raises(UserError, match="no Caltech test cache data_cache.npy"):
        convert(tmp_path, "kitticaltech", tmp_path)
    (tmp_path / "kitti_hkl" / "X_train.hkl").write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="X_train.hkl: not a readable hickle"):
        convert(tmp_path, "kitticaltech", tmp_path)


def test_hkl_strings_of_old_hickle_layout(tmp_path):
    # hickle 2-3 keep a list of strings as one dataset of byte strings ('data_0')
    with h5py.File(tmp_path / "old.hkl", "w") as f:
        f.attrs["VERSION"] = "3.4.0"
        f.create_dataset("data_0", data=np.array([b"city-a", b"city-a", b"road-b"]))
    with h5py.File(tmp_path / "old.hkl", "r") as f:
        assert hkl_strings(f, "old.hkl") == ["city-a", "city-a", "road-b"]


# ---- WeatherBench ----

def write_nc(path, start_hour, hours, name="t2m", grid=(4, 8), seed=0):
    """A WeatherBench-like file: hourly `name` [time, lat, lon] in Kelvin, hours since 1979-01-01."""
    import netCDF4
    rng = np.random.default_rng(seed)
    values = (280 + 10 * rng.standard_normal((hours,) + grid)).astype(np.float32)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", None)
        ds.createDimension("lat", grid[0])
        ds.createDimension("lon", grid[1])
        t = ds.createVariable("time", "i8", ("time",))
        t.units = "hours since 1979-01-01"
        t.calendar = "proleptic_gregorian"
        t[:] = np.arange(start_hour, start_hour + hours)
        ds.createVariable("lat", "f8", ("lat",))[:] = np.linspace(-80, 80, grid[0])
        ds.createVariable("lon", "f8", ("lon",))[:] = np.linspace(0, 360, grid[1], endpoint=False)
        v = ds.createVariable(name, "f4", ("time", "lat", "lon"))
        v.units = "K"
        v[:] = values
    return values


def hour_of(date):
    return int((np.datetime64(date) - np.datetime64("1979-01-01T00")) / np.timedelta64(1, "h"))


def test_weather_years_clips_and_kelvin(tmp_path):
    folder = tmp_path / "data" / "weather_5_625deg" / "2m_temperature"
    folder.mkdir(parents=True)
    # 4 hours of 2009 and 6 of 2010; 34 more hours of 2010; 30 of 2011; 5 of 2012
    a = write_nc(folder / "2m_temperature_2009_5.625deg.nc", hour_of("2009-12-31T20"), 10, seed=1)
    b = write_nc(folder / "2m_temperature_2010_5.625deg.nc", hour_of("2010-01-01T06"), 34, seed=2)
    c = write_nc(folder / "2m_temperature_2011_5.625deg.nc", hour_of("2011-01-01T00"), 30, seed=3)
    write_nc(folder / "2m_temperature_2012_5.625deg.nc", hour_of("2012-01-01T00"), 5, seed=4)
    written, _ = convert(tmp_path, "weather", tmp_path / "data", "--weather_train_years=2010",
                         "--weather_test_years=2011")
    train_hours = np.concatenate([a[4:], b])[:-1]  # the 40 hours of 2010 less the last, as OpenSTL
    test_hours = c[:-1]
    mean, std = train_hours.astype(np.float64).mean(), train_hours.astype(np.float64).std()
    for split, hours, n in (("train", train_hours, 39 - 24), ("test", test_hours, 29 - 24)):
        stored = read_sequences(written[split])
        assert stored.shape == (n, 24, 4, 8, 1) and stored.dtype == np.float32
        units = units_from_file(written[split])
        assert units.method == "standard"
        np.testing.assert_allclose(units.offset, [mean], rtol=1e-9)  # the training years' statistics, both splits
        np.testing.assert_allclose(units.scale, [std], rtol=1e-9)
        windows = np.stack([hours[s:s + 24] for s in range(n)])[..., None]  # a clip at every hour
        np.testing.assert_allclose(units.to_data(stored), windows, atol=2e-4)  # Kelvin
    assert description(written["test"])["normalize"]["units"] == ["K"]


def test_weather_bad_inputs(tmp_path):
    folder = tmp_path / "2m_temperature"
    folder.mkdir()
    write_nc(folder / "2m_temperature_2010_5.625deg.nc", hour_of("2010-01-01T00"), 30, name="temp")
    with pytest.raises(UserError, match=r"2m_temperature_2010_5.625deg.nc: no variable 't2m' \(it holds: time, lat, "
                                        r"lon, temp\)"):
        convert(tmp_path, "weather", tmp_path, "--weather_train_years=2010", "--weather_test_years=2011")
    with pytest.raises(UserError, match="config key 'weather_train_years': expected YEAR or FIRST-LAST"):
        convert(tmp_path, "weather", tmp_path, "--weather_train_years=recent")
    (folder / "2m_temperature_2010_5.625deg.nc").write_bytes(b"CDF garbage")
    with pytest.raises(UserError, match="2m_temperature_2010_5.625deg.nc: not a readable NetCDF file"):
        convert(tmp_path, "weather", tmp_path, "--weather_train_years=2010", "--weather_test_years=2011")


# ---- configs ----

OPENSTL = {  # dataset: (input_length, seq_length, img_height, img_width, img_channel)
    "mfmnist": (10, 20, 64, 64, 1), "taxibj": (4, 8, 32, 32, 2), "human": (4, 8, 256, 256, 3),
    "kitticaltech": (10, 11, 128, 160, 3), "weather": (12, 24, 32, 64, 1)}
MODELS = ("convlstm", "predrnn", "predrnn_v2", "predrnn_pp", "e3d_lstm")
# OpenSTL's other methods on every dataset (simvp_incepu: model simvp, translator IncepU)
NEWER = {d: ("simvp", "simvp_incepu", "tau", "mim", "mau", "phydnet") for d in OPENSTL}


def test_every_openstl_config_loads_and_fits():
    paths = sorted(p for d in OPENSTL for p in glob.glob(os.path.join(ROOT, "configs", f"*_{d}.yaml")))
    assert len(paths) == len(OPENSTL) * len(MODELS) + sum(len(v) for v in NEWER.values())
    for path in paths:
        cfg = load_config([f"--config_path={path}"])
        model, dataset = os.path.basename(path)[:-5].rsplit("_", 1)
        if model == "simvp_incepu":
            model = "simvp"
            assert cfg.simvp_model_type == "incepu"
        assert cfg.model_name == model and cfg.dataset == dataset, path
        assert (cfg.input_length, cfg.seq_length, cfg.img_height, cfg.img_width, cfg.img_channel) == OPENSTL[dataset]
        p = cfg.patch_size
        assert cfg.img_height % p == 0 and cfg.img_width % p == 0
        shape = (cfg.batch_size, cfg.seq_length, cfg.img_height // p, cfg.img_width // p, p * p * cfg.img_channel)
        assert shape[2] * shape[3] * shape[4] == cfg.img_height * cfg.img_width * cfg.img_channel
        train, test = openstl.file_names(dataset)
        assert os.path.basename(cfg.train_mindrecord) == train and os.path.basename(cfg.test_mindrecord) == test
        assert os.path.dirname(os.path.normpath(cfg.train_mindrecord)) == os.path.normpath(cfg.mindrecord_dir)
        if model in MODELS + ("mim",):
            assert cfg.hidden_list() == [128, 128, 128, 128], path  # OpenSTL's '128,128,128,128' everywhere


# OpenSTL's published parameter counts (docs/en/model_zoos/video_benchmarks.md), in millions, of the
# newer models on the four datasets added in session 9. Known departures: MIM's three MIMNs each
# declare an unused 1x1 conv_last (256 -> 128) that OpenSTL counts and we do not build (98,304
# parameters); OpenSTL's KITTI->Caltech TAU row repeats the MFMNIST figure (44.7 M) where its own
# config builds 15.0 M (as its KTH TAU of the same sizes); its Human3.6M PhyDNet row says 4.2 M,
# where PhyDNet has no weight that depends on the frame size (3.09 M on every dataset here).
PUBLISHED_M = {
    "mfmnist": {"simvp": 46.8, "simvp_incepu": 58.0, "tau": 44.7, "mim": 38.0, "mau": 4.5, "phydnet": 3.1},
    "human": {"simvp": 11.3, "simvp_incepu": 41.2, "tau": 37.6, "mim": 47.6, "mau": 20.2, "phydnet": 3.1},
    "kitticaltech": {"simvp": 15.6, "simvp_incepu": 8.6, "tau": 15.0, "mim": 49.2, "mau": 24.3, "phydnet": 3.1},
    "weather": {"simvp": 12.76, "simvp_incepu": 14.67, "tau": 12.22, "mim": 37.75, "mau": 5.46, "phydnet": 3.09},
}


def test_newer_models_on_the_openstl_datasets_have_openstls_sizes(ms_context):
    from nets.registry import build_model
    for dataset, models in PUBLISHED_M.items():
        for model, published in models.items():
            cfg = load_config([f"--config_path={ROOT}/configs/{model}_{dataset}.yaml"])
            count = sum(p.size for p in build_model(cfg).trainable_params())
            if model == "mim":
                count += 3 * 256 * 128  # the MIMNs' unused conv_last OpenSTL counts
            digits = 2 if dataset == "weather" else 1
            # within the table's rounding (MAU on weather: OpenSTL's unused merge / conv_last_sr, 8,259)
            assert abs(count / 1e6 - published) <= 0.5 * 10 ** -digits + 1e-2, (model, dataset, count)
