"""WeatherBench (Rasp et al. 2020) as OpenSTL reads it (openstl/datasets/dataloader_weather.py
and dataset_constant.py, entry 'weather' = 'weather_t2m_5_625'); see openstl.py.

Files: DIR/weather_5_625deg/2m_temperature/2m_temperature*.nc (else DIR/weather/...,
DIR/2m_temperature/... or the .nc files in DIR itself), one per year at 5.625 degrees:
variable t2m [time, lat 32, lon 64], hourly. Other single variables by weather_variable, with
OpenSTL's folder names (r: relative_humidity, its last level as OpenSTL takes it; uv10: the two
10 m wind components as two channels; ...).

Processing, as OpenSTL:
- the hours of the training years (2010-2015) and of the test years (2017-2018) are selected,
  then the last hour of each selection is dropped and every frame_step-th hour kept
  (xarray isel(time=slice(None, -1, step)), step 1);
- clips of 12 + 12 consecutive frames start at every hour from the first: the loader's
  valid_idx = range(11, N - 13) gives N - 24 clips of a selection of N frames (one window
  fewer than would fit); clip_stride thins them (1: OpenSTL's);
- values are standardized per channel with the mean and (population) std of the training
  selection. OpenSTL standardizes the test years with their own mean and std and then scores
  after un-standardizing with the training ones, which shifts the truth by the difference
  (a few tenths of a Kelvin at most); here both splits use the training statistics, so the
  data units (engine/data_units.py) are exactly the file's (Kelvin for t2m).

Metrics: OpenSTL reports weather MSE / MAE per grid point (spatial_norm) and RMSE as the root
of the MSE over the whole test set; eval.py reports MSE / MAE summed over the frame's points
(divide by 32 x 64 = 2048 to compare) and RMSE per frame, averaged (at most OpenSTL's RMSE,
Jensen's inequality; equal when every frame has the same error).

The files are read with netCDF4 (the Unidata library: NetCDF-3 and NetCDF-4/HDF5 files alike,
time units decoded with cftime).
"""
import os
import re

import numpy as np

from data_provider.openstl import Settings, Split, clips_per_chunk, require_dataset_path
from engine.errors import UserError

# OpenSTL's data_map: short name -> WeatherBench folder (and file prefix)
FOLDERS = {"z": "geopotential_500", "t850": "temperature_850", "tp": "total_precipitation", "t2m": "2m_temperature",
           "r": "relative_humidity", "u10": "10m_u_component_of_wind", "v10": "10m_v_component_of_wind",
           "tcc": "total_cloud_cover", "g": "geopotential", "t": "temperature", "u": "u_component_of_wind",
           "v": "v_component_of_wind"}
COMPOSITE = {"uv10": ("u10", "v10")}
VARIABLES = tuple(FOLDERS) + tuple(COMPOSITE)
RESOLUTION_FOLDERS = ("weather_5_625deg", "weather_2_8125deg", "weather_1_40625deg", "weather")


def _netcdf4():
    try:
        import netCDF4
    except ImportError:
        from engine.cli import setup_hint
        raise UserError(f"reading WeatherBench needs netCDF4 (requirements.txt): {setup_hint('netCDF4')}") from None
    return netCDF4


def parse_years(text, key):
    m = re.fullmatch(r"\s*(\d{4})\s*(?:-\s*(\d{4})\s*)?", str(text))
    if not m:
        raise UserError(f"config key '{key}': expected YEAR or FIRST-LAST like 2010-2015, got {text!r}")
    first, last = int(m.group(1)), int(m.group(2) or m.group(1))
    if last < first:
        raise UserError(f"config key '{key}': {text!r} ends before it starts")
    return first, last


def variable_files(root, folder):
    """The .nc files of one WeatherBench variable below root, sorted by name."""
    candidates = [os.path.join(root, sub, folder) for sub in RESOLUTION_FOLDERS] + [os.path.join(root, folder), root]
    for d in candidates:
        if os.path.isdir(d):
            files = sorted(os.path.join(d, n) for n in os.listdir(d) if n.startswith(folder) and n.endswith(".nc"))
            if files:
                return files
    raise UserError(f"{root}: no {folder}*.nc files; looked in {', '.join(candidates)}")


def _times(ds, path):
    netCDF4 = _netcdf4()
    if "time" not in ds.variables:
        raise UserError(f"{path}: no 'time' variable")
    t = ds.variables["time"]
    units = getattr(t, "units", None)
    if units is None:
        raise UserError(f"{path}: the 'time' variable has no units")
    try:
        dates = netCDF4.num2date(np.asarray(t[:]), units, calendar=getattr(t, "calendar", "standard"),
                                 only_use_cftime_datetimes=False, only_use_python_datetimes=True)
    except (ValueError, TypeError) as e:
        raise UserError(f"{path}: time units {units!r} cannot be decoded ({e})") from None
    dates = np.atleast_1d(dates)
    return np.array([np.datetime64(d.replace(tzinfo=None), "s") for d in dates])


def _read_years(path, name, first, last, take_last_level):
    """(times [n], values float32 [n, H, W, C]) of the hours of years first..last in one file."""
    netCDF4 = _netcdf4()
    if not os.path.isfile(path):
        raise UserError(f"{path}: file not found")
    try:
        ds = netCDF4.Dataset(path, "r")
    except OSError as e:
        raise UserError(f"{path}: not a readable NetCDF file ({e})") from None
    with ds:
        if name not in ds.variables:
            raise UserError(f"{path}: no variable '{name}' (it holds: {', '.join(ds.variables)})")
        var = ds.variables[name]
        if var.ndim not in (3, 4) or var.dimensions[0] != "time":
            raise UserError(f"{path}: '{name}' has dimensions {var.dimensions}; expected (time, [level,] lat, lon)")
        times = _times(ds, path)
        if len(times) != var.shape[0]:
            raise UserError(f"{path}: {len(times)} times but '{name}' has {var.shape[0]}")
        years = times.astype("datetime64[Y]").astype(np.int64) + 1970
        keep = np.flatnonzero((years >= first) & (years <= last))
        units = getattr(var, "units", "")
        if len(keep) == 0:
            return times[:0], None, units
        i0, i1 = int(keep[0]), int(keep[-1]) + 1
        try:
            values = np.ma.filled(np.ma.asarray(var[i0:i1]).astype(np.float32), np.nan)[keep - i0]
        except (OSError, RuntimeError, ValueError) as e:
            raise UserError(f"{path}: '{name}' cannot be read ({e})") from None
        times = times[keep]
    if values.ndim == 4:  # levels as channels; relative humidity: its last level, as OpenSTL
        values = values[:, -1:] if take_last_level else values
        values = values.transpose(0, 2, 3, 1)
    else:
        values = values[..., None]
    if not np.isfinite(values).all():
        bad = int(np.argwhere(~np.isfinite(values).reshape(len(values), -1).any(axis=1))[0, 0])
        raise UserError(f"{path}: '{name}' holds missing, NaN or Inf values (first at {times[bad]})")
    return times, values, units


def load_selection(files, name, first, last, step, take_last_level=False):
    """OpenSTL's selection of one variable: the hours of years first..last over all files, in
    time order, less the last one, every step-th. (times, values [N, H, W, C], units)"""
    parts = []
    units = ""
    for path in files:
        times, values, units = _read_years(path, name, first, last, take_last_level)
        if values is not None:
            parts.append((times, values, path))
    if not parts:
        raise UserError(f"{os.path.dirname(files[0])}: no '{name}' data for the years {first}-{last} in "
                        f"{len(files)} file(s)")
    parts.sort(key=lambda p: p[0][0])
    times = np.concatenate([p[0] for p in parts])
    shapes = {p[1].shape[1:] for p in parts}
    if len(shapes) != 1:
        raise UserError(f"{parts[-1][2]}: grid {parts[-1][1].shape[1:3]} differs from {parts[0][2]}'s "
                        f"{parts[0][1].shape[1:3]}")
    if np.any(np.diff(times) <= np.timedelta64(0, "s")):
        i = int(np.flatnonzero(np.diff(times) <= np.timedelta64(0, "s"))[0])
        raise UserError(f"{os.path.dirname(parts[0][2])}: time {times[i + 1]} repeats or goes back (files overlap)")
    values = np.concatenate([p[1] for p in parts])
    return times[:-1:step], values[:-1:step], units


def weather_splits(cfg, log):
    from data_provider.custom import NORMALIZE, STORE_DTYPES, Stats, normalize

    root = require_dataset_path(cfg, "OpenSTL's data folder with weather_5_625deg/2m_temperature/*.nc")
    settings = Settings(cfg, "weather")
    variable = cfg.weather_variable
    if variable not in VARIABLES:
        raise UserError(f"config key 'weather_variable': {variable!r} is not one of {', '.join(VARIABLES)}")
    parts = COMPOSITE.get(variable, (variable,))
    files = {p: variable_files(root, FOLDERS[p]) for p in parts}
    train_years = parse_years(cfg.weather_train_years, "weather_train_years")
    test_years = parse_years(cfg.weather_test_years, "weather_test_years")
    step = int(settings.get("frame_step", 1))
    stride = int(settings.get("clip_stride", 1)) or None  # explicit 0: seq_length
    input_length = int(settings.get("input_length", 12))
    train_len, test_len = settings.lengths(24)
    if min(train_len, test_len) <= input_length:
        raise UserError(f"config key 'seq_length': clips of {train_len} / {test_len} frames leave nothing to predict "
                        f"after input_length {input_length}")
    method = settings.get("normalize", "standard")
    if method not in NORMALIZE:
        raise UserError(f"config key 'normalize': must be one of {', '.join(NORMALIZE)}, got {method!r}")
    if cfg.store_dtype not in STORE_DTYPES:
        raise UserError(f"config key 'store_dtype': must be float32 or float16, got {cfg.store_dtype!r}")
    if step < 1:
        raise UserError(f"config key 'frame_step': must be >= 1, got {step}")
    loaded = {}

    def load(split):
        if split not in loaded:
            first, last = train_years if split == "train" else test_years
            channels, units = [], []
            times = None
            for p in parts:
                t, v, u = load_selection(files[p], p, first, last, step, take_last_level=(p == "r"))
                if times is not None and (len(t) != len(times) or np.any(t != times)):
                    raise UserError(f"{files[p][0]}: its times differ from those of {files[parts[0]][0]}")
                times = t
                channels.append(v)
                units.append(u)
            loaded[split] = (np.concatenate(channels, axis=-1), units)
        return loaded[split]

    stats_cache = []

    def norm():
        if not stats_cache:
            data, units = load("train")
            stats = Stats(data.shape[-1])
            stats.update(data)
            record = stats.description(method)
            record["units"] = units
            record["variable"] = variable
            stats_cache.append(record)
        return stats_cache[0]

    def starts(n, length):
        # OpenSTL's valid_idx: N - length windows, one fewer than fit
        return list(range(0, max(0, n - length), stride or length))

    def chunks_for(split, length):
        def chunks(progress):
            data, _ = load(split)
            record = norm()
            begins = starts(len(data), length)
            if not begins:
                raise UserError(f"{split} years {cfg.weather_train_years if split == 'train' else cfg.weather_test_years}"
                                f": {len(data)} frames, too few for one clip of {length}")
            per = clips_per_chunk(length, data.shape[1:3], data.shape[3], 4)
            for c in range(0, len(begins), per):
                part = begins[c:c + per]
                chunk = np.stack([normalize(data[s:s + length], record, np.dtype(cfg.store_dtype)) for s in part])
                progress.add(len(chunk))
                yield chunk
            loaded.pop(split, None)
        return chunks

    # the frame size from the first file, without reading the data
    netCDF4 = _netcdf4()
    first_file = files[parts[0]][0]
    try:
        with netCDF4.Dataset(first_file, "r") as ds:
            if parts[0] not in ds.variables:
                raise UserError(f"{first_file}: no variable '{parts[0]}' (it holds: {', '.join(ds.variables)})")
            grid = tuple(int(d) for d in ds.variables[parts[0]].shape[-2:])
            channels = (ds.variables[parts[0]].shape[1] if ds.variables[parts[0]].ndim == 4 and parts[0] != "r" else 1)
    except OSError as e:
        raise UserError(f"{first_file}: not a readable NetCDF file ({e})") from None
    channels *= len(parts)
    for key, value in (("img_height", grid[0]), ("img_width", grid[1]), ("img_channel", channels)):
        settings.fixed(key, value, f"{first_file} holds a {grid[0]}x{grid[1]} grid with {channels} channel(s)")
    all_files = [f for p in parts for f in files[p]]
    common = {"variable": variable, "frame_step": step, "clip_stride": stride or 0, "normalize": method,
              "store_dtype": cfg.store_dtype, "train_years": list(train_years)}
    log(f"WeatherBench {variable} in {os.path.dirname(first_file)}: {grid[0]}x{grid[1]}x{channels}, train "
        f"{train_years[0]}-{train_years[1]}, test {test_years[0]}-{test_years[1]}, clips of {train_len} / {test_len} "
        f"hours every {stride or train_len} (step {step}), {method} normalization with the training years' statistics")
    # the number of clips follows from the hours in the years; the writer counts exactly
    splits = []
    for split, years, length in (("train", train_years, train_len), ("test", test_years, test_len)):
        settings_split = dict(common, years=list(years))
        splits.append(Split(split, length, grid, channels, all_files, settings_split, chunks_for(split, length),
                            _expected_clips(years, step, length, stride), dtype=cfg.store_dtype, norm=norm,
                            source=f"{variable} {years[0]}-{years[1]} ({len(all_files)} file(s))"))
    return splits


def _expected_clips(years, step, length, stride):
    """Clips an hourly record of the whole years gives (for progress lines only)."""
    hours = int((np.datetime64(f"{years[1] + 1}-01-01") - np.datetime64(f"{years[0]}-01-01")) / np.timedelta64(1, "h"))
    n = len(range(0, hours - 1, step))
    return len(range(0, max(0, n - length), stride or length))
