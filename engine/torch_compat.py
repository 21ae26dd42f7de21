"""PyTorch checkpoints of thuml/predrnn-pytorch and OpenSTL on our nets, without PyTorch.

Reading: a .pth/.ckpt written by torch.save, in the zip format (ARCHIVE/data.pkl plus one
raw file per storage under ARCHIVE/data/) or the legacy format (magic number, protocol,
sys_info and the object as consecutive pickles, then the storage keys and, per storage,
an int64 element count followed by its bytes). The pickles are read by an Unpickler whose
find_class hands out only our own rebuild functions for the torch names a tensor needs
and collections.OrderedDict; every other global (an optimizer's or scheduler's class, a
Lightning hyper-parameter object) becomes an inert placeholder that records its name and
arguments, so no code from the file runs. Tensors come back as numpy arrays.

Containers: {'net_param': sd} (thuml Model.save), a plain state_dict (OpenSTL's published
weights, v0.3.0 recorder), {'state_dict': sd, 'optimizer': ..., 'scheduler': ...} (OpenSTL
v0.3.0 latest.pth) and Lightning's {'state_dict': {'model.<key>': ...}, ...} (OpenSTL's
current best.ckpt). A 'module.' prefix (DistributedDataParallel) is removed as well.

Mappings (torch Conv2d weights are [out, in, kh, kw] as MindSpore's: no transposes):
- thuml PredRNN / PredRNN-V2 and OpenSTL PredRNN / PredRNNv2: same names and gate orders as
  ours; LayerNorm '.1.weight|bias' [kC, H, W] -> '.1.gamma|beta'.
- OpenSTL ConvLSTM: same names and gate order (i, f, g, o); its cells also hold conv_o and
  conv_last, which its forward never uses (dropped). Its cell defines _forget_bias = 1.0 and
  never adds it: forget_bias=0. v0.3.0 computes h' = sigmoid(o) * tanh(g), today's code
  sigmoid(o) * tanh(c'): convlstm_hidden = g | tanh_c.
- OpenSTL PredRNN++: cell_list -> lstm, z_concat/x_concat -> conv_z/conv_x; gate blocks
  reordered to ours (x: i,f,g,i',f',g',o -> i,g,f,o,i',g',f'; h: i,f,g,o -> i,g,f,o;
  c: i,f,g -> i,g,f; m, c2m, GHU as ours); no conv of theirs has a bias, ours do: zeros.
  Their cells' conv_o is never used (dropped). v0.3.0 feeds m to conv_c, today's code c:
  causal_c_input = m | c. OpenSTL cannot build it with layer_norm=1 (the GHU's LayerNorm
  has the wrong shape), so no LayerNorm tensors are expected.
- OpenSTL E3D-LSTM (the same at v0.3.0 and today): its tf_Conv3d wraps the Conv3d as
  '.conv3d' (cell_list.N.conv_x.0.conv3d.weight -> cell_list.N.conv_x.0.weight, the cells'
  conv_last.conv3d likewise); conv_gm -> conv_m (4C: i, f, g, m, our e3d_gates=released
  order), conv_new_cell -> conv_oc, conv_new_gm -> conv_om, _norm_c_t -> norm_c, LayerNorm
  '.1.weight|bias' [kC, tau, H, W] -> '.1.gamma|beta'; Conv3d weights [out, in, kt, kh, kw]
  as ours. Its maths need e3d_memory, e3d_gates = released, e3d_temporal_conv = upsample,
  e3d_recall_layout = flat, kernel (2, 5, 5), window 2 (see nets/e3d_lstm.py).
"""
import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

from engine.errors import UserError

SOURCES = ("thuml", "openstl")
OPENSTL_CODES = ("v0.3.0", "current")
SUPPORTED = {
    "thuml": ("predrnn", "predrnn_v2"),
    "openstl": ("convlstm", "predrnn", "predrnn_v2", "predrnn_pp", "e3d_lstm", "simvp", "tau", "mim", "mau", "phydnet"),
}
# recurrent-free models: OpenSTL's SimVP_Model state dicts (model_type gSTA, IncepU or tau)
SIMVP_MODELS = ("simvp", "tau")
# the config each (source, model) defaults to: their Moving MNIST settings
DEFAULT_CONFIGS = {
    ("thuml", "predrnn"): "configs/predrnn_mmnist.yaml",
    ("thuml", "predrnn_v2"): "configs/predrnn_v2_mmnist.yaml",
    ("openstl", "convlstm"): "configs/openstl_convlstm_mmnist.yaml",
    ("openstl", "predrnn"): "configs/openstl_predrnn_mmnist.yaml",
    ("openstl", "predrnn_v2"): "configs/openstl_predrnn_v2_mmnist.yaml",
    ("openstl", "predrnn_pp"): "configs/openstl_predrnn_pp_mmnist.yaml",
    ("openstl", "e3d_lstm"): "configs/openstl_e3d_lstm_mmnist.yaml",
    ("openstl", "simvp"): "configs/simvp_mmnist.yaml",
    ("openstl", "tau"): "configs/tau_mmnist.yaml",
    ("openstl", "mim"): "configs/mim_mmnist.yaml",
    ("openstl", "mau"): "configs/mau_mmnist.yaml",
    ("openstl", "phydnet"): "configs/phydnet_mmnist.yaml",
}

# ---------------------------------------------------------------- reading torch files

_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _StorageType:
    def __init__(self, name):
        self.name = name

    @property
    def itemsize(self):
        return 2 if self.name == "BFloat16Storage" else np.dtype(_DTYPES[self.name]).itemsize

    def decode(self, raw):
        if self.name == "BFloat16Storage":
            # numpy has no bfloat16: its bits are the high half of a float32
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            return bits.view(np.float32)
        return np.frombuffer(raw, dtype=np.dtype(_DTYPES[self.name]).newbyteorder("<"))


class Opaque:
    """Stands in for any global the restricted unpickler refuses to import."""

    def __init__(self, qualname, *args, **kwargs):
        self.qualname = qualname
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<not loaded: {self.qualname}>"


def _opaque_class(qualname):
    class _Placeholder(Opaque):
        def __new__(cls, *args, **kwargs):
            return object.__new__(cls)

        def __init__(self, *args, **kwargs):
            super().__init__(qualname, *args)

    _Placeholder.__name__ = qualname.rsplit(".", 1)[-1]
    return _Placeholder


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    size = tuple(int(s) for s in size)
    if not size:  # a 0-d tensor (BatchNorm's num_batches_tracked): a 0-d array, not a numpy scalar
        return np.array(storage[offset])
    itemsize = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=tuple(int(s) * itemsize for s in stride))
    return np.ascontiguousarray(view)


def _rebuild_parameter(data, *_ignored):
    return data


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, stream, load_storage):
        super().__init__(stream)
        self._load_storage = load_storage

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        return _opaque_class(f"{module}.{name}")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"storage of unsupported type {storage_type!r}")
        return self._load_storage(storage_type, key, pid)


def _read_zip(path):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pkl:
            raise UserError(f"{path}: a zip file without ARCHIVE/data.pkl, not a torch.save file")
        prefix = pkl[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in names and zf.read(f"{prefix}byteorder").strip() != b"little":
            raise UserError(f"{path}: a big-endian torch file is not supported")
        cache = {}

        def load_storage(storage_type, key, _pid):
            if key not in cache:
                cache[key] = storage_type.decode(zf.read(f"{prefix}data/{key}"))
            return cache[key]

        return _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), load_storage).load()


def _read_legacy(path):
    with open(path, "rb") as f:
        def plain():
            return _RestrictedUnpickler(f, None).load()

        if plain() != _LEGACY_MAGIC:
            raise UserError(f"{path} is neither a zip nor a legacy torch.save file")
        plain()  # protocol version
        info = plain()
        if isinstance(info, dict) and not info.get("little_endian", True):
            raise UserError(f"{path}: a big-endian torch file is not supported")
        # storages are placeholders until their bytes, stored after the object, are read
        pending = {}

        def load_storage(storage_type, key, pid):
            view = pid[5] if len(pid) > 5 else None
            if view is not None:
                raise UserError(f"{path}: storage views of the old torch format are not supported")
            if key not in pending:
                pending[key] = (storage_type, np.empty(0, np.uint8), [])
            holder = _LazyStorage(key)
            pending[key][2].append(holder)
            return holder

        obj = _RestrictedUnpickler(f, load_storage).load()
        keys = _RestrictedUnpickler(f, None).load()
        data = {}
        for key in keys:
            count = struct.unpack("<q", f.read(8))[0]
            storage_type = pending[str(key)][0] if str(key) in pending else None
            if storage_type is None:
                raise UserError(f"{path}: storage {key} is listed but never used")
            raw = f.read(count * storage_type.itemsize)
            data[str(key)] = storage_type.decode(raw)
    return _resolve_lazy(obj, data)


class _LazyStorage:
    def __init__(self, key):
        self.key = key


class _LazyTensor:
    def __init__(self, storage, args):
        self.storage, self.args = storage, args


def _resolve_lazy(obj, data):
    if isinstance(obj, _LazyTensor):
        return _rebuild_tensor(data[obj.storage.key], *obj.args)
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _resolve_lazy(v, data)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve_lazy(v, data) for v in obj)
    return obj


def _lazy_or_real(storage, *args):
    if isinstance(storage, _LazyStorage):
        return _LazyTensor(storage, args)
    return _rebuild_tensor(storage, *args)


# the legacy format reads the storage bytes after the object: defer building tensors
_ALLOWED[("torch._utils", "_rebuild_tensor_v2")] = _lazy_or_real
_ALLOWED[("torch._utils", "_rebuild_tensor")] = _lazy_or_real


def read_torch_file(path):
    """The object torch.save wrote, with numpy arrays for tensors; nothing else is built."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}")
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        return _read_legacy(path)
    except UserError:
        raise
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, IndexError, struct.error,
            zipfile.BadZipFile) as e:
        raise UserError(f"{path} is not a readable torch.save file: {type(e).__name__}: {str(e)[:200]}") from None


# ---------------------------------------------------------------- containers

def network_state(obj, path="checkpoint"):
    """(state dict {name: array}, what the container was, 'lightning' | 'v0.3.0' | None)."""
    kind, origin = "a plain state_dict", "plain"
    if isinstance(obj, dict) and isinstance(obj.get("net_param"), dict):
        sd, kind, origin = obj["net_param"], "thuml {'net_param': state_dict}", "thuml"
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        sd = obj["state_dict"]
        if "pytorch-lightning_version" in obj or any(str(k).startswith("model.") for k in sd):
            kind, origin = "a Lightning checkpoint {'state_dict': {'model.<key>': ...}}", "lightning"
            sd = {k[len("model."):] if str(k).startswith("model.") else k: v for k, v in sd.items()}
        else:
            kind, origin = "OpenSTL v0.3.0 latest.pth {'state_dict', 'optimizer', ...}", "v0.3.0"
    elif isinstance(obj, dict):
        sd = obj
    else:
        raise UserError(f"{path} holds a {type(obj).__name__}, not a state_dict")
    out, bad = {}, []
    for name, value in sd.items():
        name = str(name)
        name = name[len("module."):] if name.startswith("module.") else name
        if isinstance(value, np.ndarray):
            out[name] = value
        else:
            bad.append(f"{name} ({value!r:.60})")
    if bad:
        raise UserError(f"{path}: entries of its state_dict are not tensors: {', '.join(bad[:8])}")
    if not out:
        raise UserError(f"{path}: no tensors found in {kind}")
    return out, kind, origin


# ---------------------------------------------------------------- mappings

# our gate block k <- their block perm[k] (OpenSTL CausalLSTMCell split orders vs ours)
_PP_PERMS = {"conv_x": [0, 2, 1, 6, 3, 5, 4], "conv_h": [0, 2, 1, 3], "conv_c": [0, 2, 1],
             "conv_m": [0, 1, 2], "conv_c2m": [0, 1, 2, 3], "conv_om": [0]}


def _permute_blocks(array, perm):
    blocks = np.split(array, len(perm), axis=0)
    return np.concatenate([blocks[p] for p in perm], axis=0)


def _sequential_conv(parts, convs):
    """Our name for cell_list.i.<conv>.0.weight (the convolution) or .1.weight|bias (its
    LayerNorm) of their nn.Sequential gate blocks, the same layout as ours; None otherwise."""
    if len(parts) == 5 and parts[2] in convs:
        if parts[3] == "0" and parts[4] == "weight":
            return ".".join(parts)
        if parts[3] == "1" and parts[4] in ("weight", "bias"):
            return ".".join(parts[:4] + [{"weight": "gamma", "bias": "beta"}[parts[4]]])
    return None


_NORM_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def _simvp_rule(name):
    """OpenSTL SimVP_Model -> ours: the module tree is the same (layers/simvp_blocks.py); norms
    name their affine parameters and running statistics MindSpore's way, and MixMlp's DWConv
    wrapper has no counterpart level."""
    parts = name.split(".")
    if parts[-1] == "num_batches_tracked":
        return None, None, "BatchNorm's update counter, which inference never reads"
    if len(parts) >= 2 and parts[-2] in ("norm", "norm1", "norm2") and parts[-1] in _NORM_NAMES:
        parts[-1] = _NORM_NAMES[parts[-1]]
    return ".".join(parts).replace(".mlp.dwconv.dwconv.", ".mlp.dwconv."), None, None


_MIMS_PARTS = ("conv_h_concat", "conv_x_concat", "ct_weight", "oc_weight")


def _mim_rule(name):
    """OpenSTL MIM_Model -> ours: the same tree, except that a MIM block's MIMS (a method of
    theirs, whose tensors sit on the block) is our block's `mims` cell; LayerNorms' weight and
    bias are gamma and beta."""
    parts = name.split(".")
    if parts[0] == "stlstm_layer_diff" and len(parts) >= 3 and parts[2] == "conv_last":
        return None, None, "OpenSTL's MIMN creates conv_last but its forward never uses it"
    if len(parts) >= 3 and parts[0] == "stlstm_layer" and parts[1] != "0" and parts[2] in _MIMS_PARTS:
        parts.insert(2, "mims")
    if len(parts) >= 2 and parts[-2] == "1" and parts[-1] in ("weight", "bias"):  # nn.Sequential(conv, LayerNorm)
        parts[-1] = {"weight": "gamma", "bias": "beta"}[parts[-1]]
    return ".".join(parts), None, None


def _flip_transposed(array):
    from layers.mau_cell import flip_transposed_weight  # numpy only
    return flip_transposed_weight(array)


def _mau_rule(name):
    """OpenSTL MAU_Model -> ours: encoder and decoder layers by position in their Sequentials
    (theirs are named encoder_t_conv-1, encoder_tN, c_decoderN); a ConvTranspose2d weight
    [in, out, k, k] becomes our UpConv's flipped conv weight; merge and conv_last_sr, built but
    never used, are dropped."""
    parts = name.split(".")
    if parts[0] in ("merge", "conv_last_sr"):
        return None, None, "OpenSTL's MAU_Model builds merge and conv_last_sr but its forward never uses them"
    if parts[0] == "encoders" and len(parts) == 4:
        return f"encoders.{parts[1]}.0.{parts[3]}", None, None
    if parts[0] == "decoders" and len(parts) == 4:
        return (f"decoders.{parts[1]}.0.conv.{parts[3]}", _flip_transposed if parts[3] == "weight" else None,
                None)
    if parts[0] == "cell_list" and len(parts) == 5 and parts[3] == "1":  # LayerNorm
        parts[4] = {"weight": "gamma", "bias": "beta"}.get(parts[4], parts[4])
    return ".".join(parts), None, None


_PHY_F = {"conv1": "0", "bn1": "1", "conv2": "2"}


def _phydnet_rule(name):
    """OpenSTL PhyDNet_Model -> ours: everything lives under its `encoder` (PhyD_EncoderRNN),
    which also holds phycell and convcell, registered a second time at the top level (dropped,
    the same tensors); K2M's buffers are constants. dcgan blocks lose their `main` level,
    PhyCell's F (conv1, bn1, conv2) is a SequentialCell, cell lists are CellLists, GroupNorms
    have gamma / beta, ConvTranspose2d weights become UpConv's flipped conv weights."""
    parts = name.split(".")
    if parts[0] in ("phycell", "convcell"):
        return None, None, "PhyDNet_Model registers phycell and convcell twice (the same tensors as encoder.*)"
    if parts[0] == "k2m":
        return None, None, "K2M's constant moment matrices (ours are computed)"
    if parts[0] != "encoder":
        return None, None, None
    parts = [q for q in parts[1:] if q != "main"]
    if parts[0] in ("phycell", "convcell") and parts[1] == "cell_list":
        parts = [parts[0]] + parts[2:]
        if parts[2] == "F":
            parts[3] = _PHY_F.get(parts[3], parts[3])
            if parts[3] == "1":
                parts[4] = {"weight": "gamma", "bias": "beta"}[parts[4]]
        return ".".join(parts), None, None
    transposed = parts[0] in ("decoder_Dp", "decoder_Dr", "decoder_D") and (len(parts) == 3 or parts[2] == "0")
    if len(parts) == 4 and parts[2] == "1":  # GroupNorm of a dcgan block
        parts[3] = {"weight": "gamma", "bias": "beta"}[parts[3]]
    elif transposed:
        parts.insert(len(parts) - 1, "conv")
        return ".".join(parts), _flip_transposed if parts[-1] == "weight" else None, None
    return ".".join(parts), None, None


def _rule(source, model, name):
    """(our name, transform or None, reason it is dropped or None) for one of their tensors;
    our name None when there is no place for it."""
    if model == "phydnet":
        return _phydnet_rule(name)
    if model in SIMVP_MODELS:
        return _simvp_rule(name)
    if model == "mim":
        return _mim_rule(name)
    if model == "mau":
        return _mau_rule(name)
    parts = name.split(".")
    ln = {"weight": "gamma", "bias": "beta"}
    if name == "conv_last.weight":
        return "conv_last.weight", None, None
    if model == "predrnn_v2" and name == "adapter.weight":
        return "adapter.weight", None, None
    if len(parts) < 3:
        return None, None, None
    if model in ("predrnn", "predrnn_v2") and parts[0] == "cell_list":
        if parts[2:] == ["conv_last", "weight"]:
            return name, None, None
        return _sequential_conv(parts, ("conv_x", "conv_h", "conv_m", "conv_o")), None, None
    if model == "convlstm" and parts[0] == "cell_list":
        if parts[2] in ("conv_o", "conv_last"):
            return None, None, "its ConvLSTMCell creates conv_o and conv_last but its forward never uses them"
        return _sequential_conv(parts, ("conv_x", "conv_h")), None, None
    if model == "e3d_lstm" and parts[0] == "cell_list":
        conv = {"conv_x": "conv_x", "conv_h": "conv_h", "conv_gm": "conv_m", "conv_new_cell": "conv_oc",
                "conv_new_gm": "conv_om"}.get(parts[2])
        if conv and len(parts) == 6 and parts[3:] == ["0", "conv3d", "weight"]:
            return f"cell_list.{parts[1]}.{conv}.0.weight", None, None
        if conv and len(parts) == 5 and parts[3] == "1" and parts[4] in ln:
            return f"cell_list.{parts[1]}.{conv}.1.{ln[parts[4]]}", None, None
        if parts[2:] == ["conv_last", "conv3d", "weight"]:
            return f"cell_list.{parts[1]}.conv_last.weight", None, None
        if len(parts) == 4 and parts[2] == "_norm_c_t" and parts[3] in ln:
            return f"cell_list.{parts[1]}.norm_c.{ln[parts[3]]}", None, None
        return None, None, None
    if model == "predrnn_pp":
        if parts[0] == "cell_list":
            layer = parts[1]
            if parts[2] == "conv_o":
                return None, None, "its CausalLSTMCell creates conv_o but its forward never uses it"
            if parts[2:] == ["conv_last", "weight"]:
                return f"lstm.{layer}.conv_last.0.weight", None, None
            if len(parts) == 5 and parts[2] in _PP_PERMS and parts[3:] == ["0", "weight"]:
                perm = _PP_PERMS[parts[2]]
                return f"lstm.{layer}.{parts[2]}.0.weight", (lambda a, p=perm: _permute_blocks(a, p)), None
            return None, None, None
        if parts[0] == "gradient_highway" and len(parts) == 4 and parts[2:] == ["0", "weight"]:
            conv = {"z_concat": "conv_z", "x_concat": "conv_x"}.get(parts[1])
            if conv:
                return f"gradient_highway.{conv}.0.weight", None, None
    return None, None, None


def switches(source, model, code):
    """{config key: value} the net needs to compute what their code computes, with reasons."""
    out = {}
    if source == "openstl" and model == "convlstm":
        out["forget_bias"] = (0.0, "OpenSTL's ConvLSTMCell sets _forget_bias = 1.0 but never adds it")
        if code == "v0.3.0":
            out["convlstm_hidden"] = ("g", "OpenSTL v0.3.0's ConvLSTMCell returns h' = sigmoid(o) * tanh(g)")
        else:
            out["convlstm_hidden"] = ("tanh_c", "today's OpenSTL ConvLSTMCell returns h' = sigmoid(o) * tanh(c')")
    if source == "openstl" and model == "predrnn_pp":
        out["layer_norm"] = (False, "OpenSTL's PredRNN++ cannot be built with layer_norm=1")
        out["causal_output_gate"] = ("tanh", "OpenSTL's CausalLSTMCell uses a tanh output gate")
        out["forget_bias"] = (1.0, "OpenSTL's CausalLSTMCell adds forget bias 1.0")
        if code == "v0.3.0":
            out["causal_c_input"] = ("m", "OpenSTL v0.3.0's CausalLSTMCell computes conv_c(m_t)")
        else:
            out["causal_c_input"] = ("c", "today's OpenSTL CausalLSTMCell computes conv_c(c_t)")
    if source == "openstl" and model == "e3d_lstm":
        out["forget_bias"] = (1.0, "OpenSTL's Eidetic3DLSTMCell adds forget bias 1.0")
        out["e3d_memory"] = ("released", "OpenSTL's E3DLSTM_Model hands every cell the zero memory (cells return the M "
                                         "they were given)")
        out["e3d_gates"] = ("released", "OpenSTL's Eidetic3DLSTMCell has a 4C conv_gm, M' = sigmoid(f') * tanh(m_m) "
                                        "+ ..., output gate sigmoid(tanh(.))")
        out["e3d_temporal_conv"] = ("upsample", "OpenSTL's tf_Conv3d pads no frame in time and upsamples back to "
                                                "the window (nearest)")
        out["e3d_recall_layout"] = ("flat", "OpenSTL's _attn reshapes NCDHW tensors to [B, -1, C] without a permute")
        out["window_length"] = (2, "OpenSTL's E3DLSTM_Model fixes window_length = 2")
        out["temporal_kernel"] = (2, "OpenSTL's E3DLSTM_Model builds its cells with kernel (2, 5, 5)")
        out["filter_size"] = (5, "OpenSTL's E3DLSTM_Model builds its cells with kernel (2, 5, 5), whatever "
                                 "filter_size says")
    if source == "thuml" or model in ("predrnn", "predrnn_v2"):
        out["forget_bias"] = (1.0, "their SpatioTemporalLSTMCell adds forget bias 1.0")
    if model in SIMVP_MODELS or model in ("mau", "phydnet"):  # no switch: the same maths in v0.3.0 and today
        return out
    out["activations"] = ("exact", "PyTorch's sigmoid/tanh/softmax are exact; MindSpore's float32 CPU kernels "
                                   "err by up to 1e-4 (tanh) and 8e-7 (sigmoid), which LayerNorms amplify")
    return out


def _describe_simvp(sd):
    n_s = sum(1 for k in sd if k.startswith("enc.enc.") and k.endswith(".conv.norm.weight"))
    first = sd["enc.enc.0.conv.conv.weight"]
    if "hid.enc.0.conv1.weight" in sd:
        kind, hid_t = "incepu", sd["hid.enc.0.layers.0.conv.weight"].shape[0]
        n_t = sum(1 for k in sd if k.startswith("hid.enc.") and k.endswith(".conv1.weight"))
    else:
        kind = "tau" if any(".spatial_gating_unit.fc." in k for k in sd) else "gsta"
        hid_t = sd["hid.enc.0.reduction.weight"].shape[0] if "hid.enc.0.reduction.weight" in sd else "?"
        n_t = sum(1 for k in sd if k.startswith("hid.enc.") and k.endswith(".block.layer_scale_1"))
    mlp = sd.get("hid.enc.1.block.mlp.fc1.weight")
    parts = [f"SimVP translator {kind}", f"hid_S={first.shape[0]}", f"hid_T={hid_t}", f"N_S={n_s}", f"N_T={n_t}",
             f"spatio_kernel_enc={first.shape[-1]}", f"patch_size^2*img_channel={first.shape[1]}"]
    if mlp is not None:
        parts.append(f"mlp_ratio={mlp.shape[0] / mlp.shape[1]:g}")
    return ", ".join(parts)


def describe(sd):
    """What the tensor shapes say about the network that wrote them."""
    if "enc.enc.0.conv.conv.weight" in sd:  # OpenSTL SimVP / TAU
        return _describe_simvp(sd)
    if "encoder.encoder_E.c1.main.0.weight" in sd:  # OpenSTL PhyDNet
        return (f"PhyDNet (PhyCell 64 channels, 49 filters; ConvLSTM 128,128,64), "
                f"img_channel={sd['encoder.encoder_E.c1.main.0.weight'].shape[1]}")
    if "cell_list.0.conv_t_next.0.weight" in sd:  # OpenSTL MAU
        w = sd["cell_list.0.conv_t_next.0.weight"]
        layers = sum(1 for k in sd if k.startswith("cell_list.") and k.endswith(".conv_t_next.0.weight"))
        ln = sd["cell_list.0.conv_t_next.1.weight"]
        downs = sum(1 for k in sd if k.startswith("encoders.") and k.endswith(".weight")) - 1
        return (f"MAU num_hidden={','.join([str(w.shape[0])] * layers)}, filter_size={w.shape[-1]}, "
                f"sr_size={2 ** downs}, cells at {ln.shape[1]}x{ln.shape[2]}, "
                f"patch_size^2*img_channel={sd['encoders.0.encoder_t_conv-1.weight'].shape[1]}")
    if "stlstm_layer.0.conv_h.0.weight" in sd:  # OpenSTL MIM
        w = sd["stlstm_layer.0.conv_h.0.weight"]
        layers = sum(1 for k in sd if k.startswith("stlstm_layer.") and k.endswith(".conv_last.weight"))
        return (f"MIM num_hidden={','.join([str(w.shape[1])] * layers)}, filter_size={w.shape[-1]}, "
                f"patch_size^2*img_channel={sd['stlstm_layer.0.conv_x.0.weight'].shape[1]}, "
                f"layer_norm={'stlstm_layer.0.conv_h.1.weight' in sd}")
    if "cell_list.0.conv_h.0.conv3d.weight" in sd:  # OpenSTL E3D-LSTM
        widths = []
        while f"cell_list.{len(widths)}.conv_h.0.conv3d.weight" in sd:
            widths.append(sd[f"cell_list.{len(widths)}.conv_h.0.conv3d.weight"].shape[1])
        w = sd["cell_list.0.conv_h.0.conv3d.weight"]
        norm = sd.get("cell_list.0._norm_c_t.weight")
        parts = [f"num_hidden={','.join(map(str, widths))}", f"kernel={tuple(w.shape[2:])}"]
        if "cell_list.0.conv_x.0.conv3d.weight" in sd:
            parts.append(f"patch_size^2*img_channel={sd['cell_list.0.conv_x.0.conv3d.weight'].shape[1]}")
        if norm is not None:
            parts.append(f"window {norm.shape[1]}, frames {norm.shape[2]}x{norm.shape[3]} after patching")
        parts.append(f"layer_norm={'cell_list.0.conv_h.1.weight' in sd}")
        return ", ".join(parts)
    widths = []
    while f"cell_list.{len(widths)}.conv_h.0.weight" in sd:
        widths.append(sd[f"cell_list.{len(widths)}.conv_h.0.weight"].shape[1])
    if not widths:
        return "no cell_list.N.conv_h.0.weight tensors"
    w = sd["cell_list.0.conv_h.0.weight"]
    parts = [f"num_hidden={','.join(map(str, widths))}", f"filter_size={w.shape[-1]}"]
    if "cell_list.0.conv_x.0.weight" in sd:
        parts.append(f"patch_size^2*img_channel={sd['cell_list.0.conv_x.0.weight'].shape[1]}")
    norm = sd.get("cell_list.0.conv_h.1.weight")
    parts.append(f"layer_norm={norm is not None}" + (f" (frames {norm.shape[1]}x{norm.shape[2]} after patching)"
                                                      if norm is not None else ""))
    return ", ".join(parts)


def map_torch_params(source, model, sd, net, path="checkpoint"):
    """Their state dict -> ({our name: float32 array} for every parameter of net, notes).

    Raises one UserError listing every tensor without a place in net, every parameter of
    net the checkpoint does not provide, and every shape that differs."""
    ours = {p.name: tuple(p.shape) for p in net.get_parameters()}
    mapped, problems, dropped, sources = {}, [], [], {}
    for name, array in sd.items():
        target, transform, reason = _rule(source, model, name)
        if reason is not None:
            dropped.append(name)
            continue
        if target is None:
            problems.append(f"{name} {tuple(array.shape)}: no counterpart in our {model}")
            continue
        if target not in ours:
            problems.append(f"{name} {tuple(array.shape)} -> {target}: not a parameter of this net "
                            "(layer_norm or num_hidden differ?)")
            continue
        expected = ours[target]
        if transform is not None:
            try:
                array = transform(array)
            except ValueError:
                pass  # reported below as a shape mismatch
        if tuple(array.shape) != expected:
            problems.append(f"{name} {tuple(array.shape)} -> {target} {expected}: shapes differ")
            continue
        mapped[target] = np.ascontiguousarray(array, dtype=np.float32)
        sources[target] = name
    # no conv of theirs has a bias; where ours has one, a zero bias computes the same
    for name, shape in ours.items():
        if name.endswith(".bias") and name not in mapped and name[:-5] + ".weight" in mapped:
            mapped[name] = np.zeros(shape, np.float32)
    for name, shape in ours.items():
        if name not in mapped:
            problems.append(f"{name} {shape} of our net: not in the checkpoint")
    if problems:
        keys = ("simvp_model_type, hid_S, hid_T, N_S, N_T, mlp_ratio, spatio_kernel_enc, patch_size, img_channel"
                if model in SIMVP_MODELS else
                "num_hidden, filter_size, patch_size, img_channel, img_width, layer_norm")
        lines = [f"{source} checkpoint {path} does not fit this {model} (the checkpoint looks like "
                 f"{describe(sd)}; set {keys} to match):"]
        lines += [f"  {p}" for p in problems]
        raise UserError("\n".join(lines))
    notes = []
    if dropped:
        reasons = sorted({_rule(source, model, n)[2] for n in dropped})
        notes.append(f"dropped {len(dropped)} tensors their forward never reads ({'; '.join(reasons)})")
    zeros = sorted(n for n in mapped if n not in sources)
    if zeros:
        notes.append(f"{len(zeros)} biases of ours set to zero (their convolutions have none)")
    if model == "predrnn_pp":
        notes.append("gate blocks reordered: conv_x (i,f,g,i',f',g',o)->(i,g,f,o,i',g',f'), "
                     "conv_h (i,f,g,o)->(i,g,f,o), conv_c (i,f,g)->(i,g,f)")
    return mapped, notes


# ---------------------------------------------------------------- direct use (load_weights)

CHECKPOINT_SOURCES = ("auto",) + SOURCES
# switches that only make our float32 CPU result closer to PyTorch's: a notice, not a refusal
PRECISION_KEYS = ("activations",)
# OpenSTL changed these models' maths after v0.3.0 without renaming a tensor
CODE_DEPENDENT = ("convlstm", "predrnn_pp")
_LEGACY_HEAD = pickle.dumps(_LEGACY_MAGIC, protocol=2)


def is_torch_file(path):
    """A torch.save file: a zip holding ARCHIVE/data.pkl, or the legacy format, which starts
    with its magic number pickled (MindSpore checkpoints are protobuf, neither)."""
    if not os.path.isfile(path):
        return False
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                return any(n.endswith("data.pkl") and n.count("/") == 1 for n in zf.namelist())
        except zipfile.BadZipFile:
            return False
    with open(path, "rb") as f:
        return f.read(len(_LEGACY_HEAD)) == _LEGACY_HEAD


def guess_model(sd):
    """Our model_name for a state dict of thuml/OpenSTL, from its tensor names (None: unknown)."""
    names = set(sd)
    if any(n.startswith("encoder.phycell.") for n in names):
        return "phydnet"
    if any(n.startswith("stlstm_layer_diff.") for n in names):
        return "mim"
    if any(n.startswith("cell_list.") and ".conv_t_next." in n for n in names):
        return "mau"
    if "enc.enc.0.conv.conv.weight" in names and any(n.startswith("hid.") for n in names):
        return "tau" if any(".spatial_gating_unit.fc." in n for n in names) else "simvp"
    if any(".conv_gm." in n or n.endswith("._norm_c_t.weight") for n in names):
        return "e3d_lstm"
    if any(n.startswith("gradient_highway.") for n in names):
        return "predrnn_pp"
    if "adapter.weight" in names:
        return "predrnn_v2"
    if any(n.startswith("cell_list.") and ".conv_m." in n for n in names):
        return "predrnn"
    if any(n.startswith("cell_list.") and ".conv_x." in n for n in names):
        return "convlstm"
    return None


def _same_meaning(sources, model, sd):
    """Whether every candidate source maps these tensors alike and needs the same switches."""
    first = sources[0]
    for other in sources[1:]:
        for code in OPENSTL_CODES:
            if switches(first, model, code) != switches(other, model, code):
                return False
        for name in sd:
            a, b = _rule(first, model, name), _rule(other, model, name)
            if a[0] != b[0] or a[2] != b[2] or (a[1] is None) != (b[1] is None):
                return False
    return True


def resolve_source(requested, model, sd, origin, kind, path):
    """(source, why) for checkpoint_source=auto|thuml|openstl; one UserError line when the
    file could come from repositories whose maths differ."""
    if requested not in CHECKPOINT_SOURCES:
        raise UserError(f"config key 'checkpoint_source': must be {' | '.join(CHECKPOINT_SOURCES)}, got {requested!r}")
    if requested != "auto":
        if model not in SUPPORTED[requested]:
            raise UserError(f"config key 'checkpoint_source': {requested} checkpoints are supported for "
                            f"{', '.join(SUPPORTED[requested])}, not model_name={model}")
        return requested, "checkpoint_source"
    if origin == "thuml":
        candidates = ["thuml"]
    elif origin in ("lightning", "v0.3.0"):
        candidates = ["openstl"]
    else:
        candidates = [s for s in SOURCES if model in SUPPORTED[s]]
    candidates = [s for s in candidates if model in SUPPORTED[s]]
    if not candidates:
        raise UserError(f"{path} is {kind}, which no supported repository writes for model_name={model}; "
                        f"set checkpoint_source to {' or '.join(SOURCES)}")
    if len(candidates) > 1 and not _same_meaning(candidates, model, sd):
        raise UserError(f"{path} ({kind}) may be {' or '.join(candidates)}'s {model}, whose maths differ: "
                        f"set --checkpoint_source={'|'.join(candidates)}")
    if len(candidates) > 1:
        return candidates[0], f"{kind}: thuml and OpenSTL write the same names and compute the same {model}"
    return candidates[0], kind


def _flag(key, value):
    return f"--{key}={str(value).lower() if isinstance(value, bool) else value}"


def check_switches(cfg, source, model, origin, log):
    """Refuse (one line, with the flags) a config whose maths differ from the source's; the
    OpenSTL version of ConvLSTM and PredRNN++ is whichever the config's switches select."""
    versions = {code: switches(source, model, code) for code in OPENSTL_CODES}
    required = versions["current"]
    fixed = {k: v for k, (v, _) in required.items()
             if all(k in s and s[k][0] == v for s in versions.values())}
    wrong = [k for k, v in fixed.items() if k not in PRECISION_KEYS and cfg[k] != v]
    if wrong:
        raise UserError(f"this {source} {model} checkpoint needs {' '.join(_flag(k, fixed[k]) for k in wrong)} "
                        f"(the config has {', '.join(f'{k}={cfg[k]}' for k in wrong)}); add the flags or use "
                        f"--config_path={DEFAULT_CONFIGS[(source, model)]}")
    for key in PRECISION_KEYS:
        if key in fixed and cfg[key] != fixed[key]:
            log(f"notice: {key}={cfg[key]}: predictions differ from PyTorch's by up to ~1e-4; "
                f"{_flag(key, fixed[key])} matches them within 1e-5")
    if source == "openstl" and model in CODE_DEPENDENT:
        varying = [k for k in required if k not in fixed]
        runs = [code for code, s in versions.items() if all(cfg[k] == s[k][0] for k in varying)]
        expected = "current" if origin == "lightning" else "v0.3.0"
        if not runs:
            needs = "; ".join(f"{c} needs {' '.join(_flag(k, versions[c][k][0]) for k in varying)}" for c in versions)
            raise UserError(f"no OpenSTL version computes this {model} with "
                            f"{', '.join(f'{k}={cfg[k]}' for k in varying)}: {needs}")
        code = runs[0]
        other = [o for o in OPENSTL_CODES if o != code][0]
        log(f"  computing OpenSTL {code}'s {model} ({', '.join(f'{k}={cfg[k]}' for k in varying)}); "
            f"{other}'s needs {' '.join(_flag(k, versions[other][k][0]) for k in varying)}"
            + (f" (a file like this one is usually written by {expected})" if code != expected else ""))


def _model_of(net):
    from nets.registry import model_class, model_names
    for name in model_names():
        if type(net) is model_class(name):
            return name
    raise UserError(f"a PyTorch checkpoint cannot be loaded into {type(net).__name__}")


def load_torch_weights(net, path, cfg=None, log=print):
    """Map a thuml/OpenSTL torch.save file onto net in memory, as convert_checkpoint.py would.
    With cfg, the source comes from cfg.checkpoint_source (auto: by container and names) and
    the config's switches are checked against the source's maths."""
    log = log or (lambda *_: None)
    sd, kind, origin = network_state(read_torch_file(path), path)
    model = cfg.model_name if cfg is not None else _model_of(net)
    guessed = guess_model(sd)
    if guessed is not None and guessed != model:
        hint = DEFAULT_CONFIGS.get(("openstl", guessed)) or DEFAULT_CONFIGS.get(("thuml", guessed))
        raise UserError(f"{path} holds a {guessed} ({kind}), not a {model}: use --model_name={guessed}"
                        + (f" (e.g. --config_path={hint})" if hint else ""))
    requested = cfg.checkpoint_source if cfg is not None else "auto"
    source, why = resolve_source(requested, model, sd, origin, kind, path)
    log(f"{path}: PyTorch checkpoint of {source}'s {model} ({why}), converted in memory")
    if cfg is not None:
        check_switches(cfg, source, model, origin, log)
    else:
        log("  notice: no config given, so its switches are not checked against the source's maths")
    mapped, notes = map_torch_params(source, model, sd, net, path)
    import mindspore as ms
    ms.load_param_into_net(net, {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in mapped.items()},
                           strict_load=True)
    for note in notes:
        log(f"  {note}")
