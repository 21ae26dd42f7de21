"""The data's own units: the normalization a converted data set records, applied both ways.

8-bit data (Moving MNIST, KTH, 8-bit videos and frames) need nothing: the model sees x / 255
and every metric and picture works on [0, 1] frames. Other data (uint16, float: radar,
traffic flows, weather fields) are normalized per channel with the training split's
statistics when converted (data_provider/custom.py), and NAME.mindrecord.json records
them:

    {"normalize": {"method": "minmax", "min": [...], "max": [...]}}           x' = (x - min) / (max - min)
    {"normalize": {"method": "standard", "mean": [...], "std": [...], ...}}   x' = (x - mean) / std
    {"normalize": {"method": "none", ...}}                                     x' = x

(each also carries "min" / "max", the training split's range in the data's units.)
DataUnits turns model values back into data values and maps both to [0, 1] over that range
("range-scaled"), on which SSIM, PSNR and the pictures work as for 8-bit data; eval.py
adds MSE / MAE / RMSE in the data's units, infer.py reads raw clips and writes predictions
in those units, postprocess.py reports the same numbers as eval.py.
"""
import json
import os

import numpy as np

from engine.errors import UserError


class DataUnits:
    """Per-channel x_model = (x_data - offset) / scale, and the data range [low, high]."""

    def __init__(self, norm, source=""):
        method = norm.get("method")
        self.method = method
        self.source = source
        low = np.asarray(norm.get("min", []), np.float64)
        high = np.asarray(norm.get("max", []), np.float64)
        if method == "minmax":
            self.offset, self.scale = low, np.where(high > low, high - low, 1.0)
        elif method == "standard":
            std = np.asarray(norm["std"], np.float64)
            self.offset, self.scale = np.asarray(norm["mean"], np.float64), np.where(std > 0, std, 1.0)
        elif method == "none":
            self.offset, self.scale = np.zeros(len(low)), np.ones(len(low))
        else:
            raise UserError(f"{source}: unknown normalization method {method!r}")
        if low.size == 0 or high.size != low.size:
            raise UserError(f"{source}: the normalization record has no per-channel min / max")
        self.low, self.high = low, np.where(high > low, high, low + 1.0)

    @property
    def channels(self):
        return len(self.low)

    def to_data(self, x):
        """Model values [..., C] -> the data's units (float64)."""
        return np.asarray(x, np.float64) * self.scale + self.offset

    def to_model(self, x):
        """Data values [..., C] -> model values (float32)."""
        return ((np.asarray(x, np.float64) - self.offset) / self.scale).astype(np.float32)

    def clip_model(self, x):
        """Model values limited to the training data's range (what to_uint8's clip to [0, 1]
        does for 8-bit data)."""
        lo, hi = self.to_model(self.low), self.to_model(self.high)
        return np.clip(np.asarray(x, np.float32), lo, hi)

    def to_unit(self, x):
        """Model values -> [0, 1] over the training data's range (float32), for SSIM, PSNR
        and pictures."""
        unit = (self.to_data(x) - self.low) / (self.high - self.low)
        return np.clip(unit, 0.0, 1.0).astype(np.float32)

    def describe(self):
        ranges = ", ".join(f"[{lo:g}, {hi:g}]" for lo, hi in zip(self.low, self.high))
        return f"{self.method} normalization from {self.source}; data range per channel {ranges}"


def read_description(mindrecord_path):
    """The NAME.mindrecord.json beside a MindRecord file (None if there is none)."""
    path = os.fspath(mindrecord_path) + ".json"
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable data description ({e})") from None


def units_from_file(mindrecord_path):
    """DataUnits of a converted file, or None for 8-bit data (or a file without a description)."""
    description = read_description(mindrecord_path)
    norm = (description or {}).get("normalize")
    if not norm:
        return None
    return DataUnits(norm, os.fspath(mindrecord_path) + ".json")


def units_for(cfg, keys=("test_mindrecord", "train_mindrecord")):
    """The data units of the config's data: the description beside the first of `keys` that
    names an existing file with one (None: 8-bit data)."""
    for key in keys:
        path = cfg.get(key)
        if path and os.path.isfile(path):
            units = units_from_file(path)
            if units is not None:
                return units
            if read_description(path) is not None:  # described as 8-bit data
                return None
    return None
