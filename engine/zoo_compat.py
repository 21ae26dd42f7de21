"""Checkpoints of the MindSpore model zoo's PredRNN++ (mindspore-ai/models,
research/cv/predrnn++) on our predrnn_pp.

Their train.py saves through ModelCheckpoint around NetWithLossCell(PreRNN), so the network
tensors are named 'network.lstm.{i}.h_conv.weight', ..., 'network.gradient_highway.*',
'network.conv2d.weight', next to Adam's 'moment1.*' / 'moment2.*', 'beta1_power',
'beta2_power', 'learning_rate', 'global_step' and their wrapper's 'global_step1', 'eta',
'mask_true'. The bare PreRNN saved with mindspore.save_checkpoint(net, ...) names its
cells differently: PreRNN fills an empty nn.CellList with append(), and MindSpore 2.x then
names the cells' tensors '0.h_conv.weight', '1.h_conv.weight', ... (no 'lstm.'), beside
'gradient_highway.*' and 'conv2d.weight'; both forms are read.

Their maths is ours (checked against their own code by tests/test_zoo_checkpoint.py):
the same gate split orders (h: i,g,f,o; c: i,g,f; m: i,f,m; x: i,g,f,o,i',g',f'; c2m:
i,g,f,o; GHU: p,s), LayerNorm eps 1e-5 with per-sample (C,H,W) statistics and a per-channel
scale 's' and shift 'b' of shape (C,), forget bias 1.0, tanh output gate, 'same' padding,
zero initial states. So the mapping renames tensors, reshapes the LayerNorm ones to
(C,1,1) and gives their bias-free output conv a zero bias: no channel block is permuted.
"""
import re

import numpy as np
import mindspore as ms

from engine.errors import UserError

_CELL_CONVS = {"h_conv": "conv_h", "c_conv": "conv_c", "m_conv": "conv_m", "x_conv": "conv_x",
               "c2m_conv": "conv_c2m", "m2o_conv": "conv_om"}
_CELL_NORMS = {"layer_norm_h": "conv_h", "layer_norm_c": "conv_c", "layer_norm_m": "conv_m",
               "layer_norm_x": "conv_x", "layer_norm_c2m": "conv_c2m", "layer_norm_m2o": "conv_om"}
_GHU_CONVS = {"z_conv": "conv_z", "x_conv": "conv_x"}
_GHU_NORMS = {"layer_norm_z": "conv_z", "layer_norm_x": "conv_x"}

# Training state their ModelCheckpoint writes besides the network (MindSpore 1.x and 2.x
# callbacks add the epoch/step entries).
_TRAINING_SCALARS = {"global_step", "global_step1", "learning_rate", "beta1_power", "beta2_power",
                     "eta", "mask_true", "epoch_num", "step_num", "current_epoch",
                     "current_iterator_step", "last_save_time", "loss_scale", "scale_sense"}
_OPTIMIZER_PREFIXES = ("moment1.", "moment2.", "vhat.")

_ZOO_SIGNATURE = re.compile(r"^(network\.)?((lstm\.)?\d+\.(h_conv|c2m_conv|m2o_conv|cell_conv)\.weight"
                            r"|gradient_highway\.z_conv\.weight|conv2d\.weight)$")


def is_zoo_layout(params):
    """True when the names are those of the model zoo's PreRNN (prefixed or bare)."""
    return any(_ZOO_SIGNATURE.match(name) for name in params)


def _our_name(zoo_name):
    """Our parameter name for one of their network tensor names (prefix already removed),
    or None. LayerNorm names come back with a marker so the caller reshapes them."""
    parts = zoo_name.split(".")
    if zoo_name == "conv2d.weight":
        return "conv_last.weight"
    if len(parts) == 4 and parts[0] == "lstm" and parts[1].isdigit():
        layer, module, leaf = parts[1], parts[2], parts[3]
        if module == "cell_conv" and leaf in ("weight", "bias"):
            return f"lstm.{layer}.conv_last.0.{leaf}"
        if module in _CELL_CONVS and leaf in ("weight", "bias"):
            return f"lstm.{layer}.{_CELL_CONVS[module]}.0.{leaf}"
        if module in _CELL_NORMS and leaf in ("s", "b"):
            return f"lstm.{layer}.{_CELL_NORMS[module]}.1.{'gamma' if leaf == 's' else 'beta'}"
    if len(parts) == 3 and parts[0] == "gradient_highway":
        module, leaf = parts[1], parts[2]
        if module in _GHU_CONVS and leaf in ("weight", "bias"):
            return f"gradient_highway.{_GHU_CONVS[module]}.0.{leaf}"
        if module in _GHU_NORMS and leaf in ("s", "b"):
            return f"gradient_highway.{_GHU_NORMS[module]}.1.{'gamma' if leaf == 's' else 'beta'}"
    return None


def _network_name(name):
    """Their network tensor name without the 'network.' prefix and with 'lstm.' before a bare
    save's cell index ('0.h_conv.weight' -> 'lstm.0.h_conv.weight'); None for training state."""
    if name in _TRAINING_SCALARS or name.startswith(_OPTIMIZER_PREFIXES):
        return None
    short = name[len("network."):] if name.startswith("network.") else name
    return "lstm." + short if short.split(".", 1)[0].isdigit() else short


def describe_zoo_config(params):
    """What the checkpoint's shapes say about the configuration it was trained with."""
    net = {}
    for name, value in params.items():
        short = _network_name(name)
        if short is not None:
            net[short] = tuple(value.shape)
    widths = []
    while f"lstm.{len(widths)}.h_conv.weight" in net:
        widths.append(net[f"lstm.{len(widths)}.h_conv.weight"][1])
    parts = []
    if widths:
        parts.append(f"num_hidden={','.join(map(str, widths))}")
        parts.append(f"filter_size={net['lstm.0.h_conv.weight'][-1]}")
    if "lstm.0.x_conv.weight" in net:
        parts.append(f"patch_size^2*img_channel={net['lstm.0.x_conv.weight'][1]}")
    return ", ".join(parts)


def _fail(path, problems, params, unknown=()):
    head = f"model-zoo checkpoint {path} does not fit this predrnn_pp"
    if unknown:  # names we cannot place: say which first, before any size hint
        head += (f": {len(unknown)} tensor(s) it has no place for "
                 f"({', '.join(unknown[:4])}{', ...' if len(unknown) > 4 else ''})")
    if len(problems) > len(unknown):  # sizes or missing tensors: what the checkpoint looks like
        head += (f"{';' if unknown else ''} (the checkpoint looks like {describe_zoo_config(params) or 'no PreRNN'}; "
                 "set num_hidden, filter_size, patch_size, img_channel, layer_norm to match)")
    raise UserError("\n".join([head + ":"] + [f"  {p}" for p in problems]))


def map_zoo_params(params, net, path="checkpoint"):
    """Their parameter dict -> {our name: numpy array} for every parameter of net.

    Raises one UserError listing every tensor that has no place in net, every parameter of
    net the checkpoint does not provide, and every shape that differs. Their LayerNorm
    tensors exist even when they trained with layer_norm=False (created unconditionally,
    never used); with our layer_norm=False they are dropped only while still at their
    initial ones/zeros, i.e. provably unused."""
    ours = {p.name: tuple(p.shape) for p in net.get_parameters()}
    mapped, problems, unknown = {}, [], []
    for name, value in params.items():
        short = _network_name(name)
        if short is None:
            continue
        target = _our_name(short)
        array = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
        if target is None:
            problems.append(f"unknown tensor {name} {tuple(array.shape)}")
            unknown.append(name)
            continue
        is_norm = target.endswith((".gamma", ".beta"))
        if is_norm and target not in ours:
            layer_norm_off = not any(n.endswith(".gamma") for n in ours)
            at_init = np.all(array == (1.0 if target.endswith(".gamma") else 0.0))
            if layer_norm_off and at_init:
                continue
            if layer_norm_off:
                problems.append(f"{name} holds trained LayerNorm values but layer_norm is false here")
                continue
        if target not in ours:
            problems.append(f"{name} {tuple(array.shape)} has no counterpart ({target}) in this net")
            continue
        if is_norm:
            array = array.reshape(-1, 1, 1)
        if tuple(array.shape) != ours[target]:
            problems.append(f"{name} {tuple(array.shape)} -> {target} {ours[target]}: shapes differ")
            continue
        if target in mapped:
            problems.append(f"{name} maps onto {target} twice (prefixed and bare copies)")
            continue
        mapped[target] = array.astype(np.float32)
    # their output conv has no bias: ours does, and a zero bias computes the same
    if "conv_last.bias" in ours and "conv_last.weight" in mapped and "conv_last.bias" not in mapped:
        mapped["conv_last.bias"] = np.zeros(ours["conv_last.bias"], np.float32)
    for name, shape in ours.items():
        if name not in mapped:
            problems.append(f"{name} {shape} of this net is not in the checkpoint")
    if problems:
        _fail(path, problems, params, unknown)
    return mapped


def load_zoo_weights(net, params, path="checkpoint", log=print):
    """Map and load a zoo checkpoint into our predrnn_pp net (every parameter, checked)."""
    if type(net).__name__ != "PredRNNpp":
        raise UserError(f"{path} is a model-zoo PredRNN++ checkpoint; it loads into model_name "
                        f"predrnn_pp only, not {type(net).__name__}")
    mapped = map_zoo_params(params, net, path)
    ms.load_param_into_net(net, {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in mapped.items()},
                           strict_load=True)
    dropped = sorted(n for n in params if _network_name(n) is None)
    if log is not None:
        log(f"  model-zoo PredRNN++ checkpoint {path}: {len(mapped)} tensors mapped onto predrnn_pp; "
            f"its optimizer state and training scalars ({len(dropped)} entries: Adam moments, "
            "beta powers, learning_rate, global_step, eta, mask_true) are not used, so a fine-tuning "
            "optimizer starts fresh")
    return mapped
