"""The one model registry: model_name -> the class that builds it from a config.

Entries name their module so that listing names (for config validation and --help) does not
import mindspore. Each class provides from_config(cfg).
"""
import importlib

from engine.errors import UserError

_MODELS = {
    "convlstm": ("nets.convlstm", "ConvLSTM"),
    "convlstm_ef": ("nets.convlstm", "ConvLSTMEncoderForecaster"),
    "predrnn": ("nets.predrnn", "PredRNN"),
    "predrnn_v2": ("nets.predrnn", "PredRNNv2"),
    "predrnn_pp": ("nets.predrnn_pp", "PredRNNpp"),
    "e3d_lstm": ("nets.e3d_lstm", "E3DLSTM"),
    "srvp": ("nets.srvp", "SRVP"),
    "simvp": ("nets.simvp", "SimVP"),
    "tau": ("nets.simvp", "TAU"),
    "mim": ("nets.mim", "MIM"),
    "mau": ("nets.mau", "MAU"),
    "phydnet": ("nets.phydnet", "PhyDNet"),
}
# models whose prediction depends on a noise input besides the frames (nets expose
# noise_dim and sample(frames, noise); exported graphs take the noise as a second input)
STOCHASTIC = ("srvp",)


def model_names():
    return sorted(_MODELS)


def is_stochastic(name):
    return name in STOCHASTIC


def noise_dim(cfg):
    """Width of the noise input of a stochastic model (None for deterministic ones), from
    the config alone (no net built)."""
    if not is_stochastic(cfg.model_name):
        return None
    return model_class(cfg.model_name).noise_dim_of(cfg)


def model_class(name):
    if name not in _MODELS:
        raise UserError(f"config key 'model_name': unknown model {name!r}; known: {', '.join(model_names())}")
    module, attr = _MODELS[name]
    return getattr(importlib.import_module(module), attr)


def build_model(cfg):
    cls = model_class(cfg.model_name)
    try:
        return cls.from_config(cfg)
    except ValueError as e:
        # the constructors check their arguments (widths, sizes, modes) with ValueError: from a
        # config those are the user's settings, so one line naming the model, not a traceback
        raise UserError(f"model_name={cfg.model_name}: {e}") from None
