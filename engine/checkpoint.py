"""Checkpoints: atomic writes, keeping the last K, finding the newest, loading with checks.

A training checkpoint holds the network, the optimizer state (Adam moments, its step
counter) and, as extra entries, the training step it was taken after ('step'); the data
order and the sampling masks are functions of (seed, step), so 'step' is the data position.
"""
import os
import re

import mindspore as ms

from engine.errors import UserError

_NAME = re.compile(r"^(?P<prefix>.+)-(?P<step>\d+)\.ckpt$")


def checkpoint_path(save_dir, prefix, step):
    return os.path.join(save_dir, f"{prefix}-{step}.ckpt")


def list_checkpoints(save_dir, prefix=None):
    """[(step, path)] sorted by step for files named PREFIX-STEP.ckpt in save_dir."""
    if not os.path.isdir(save_dir):
        return []
    found = []
    for name in os.listdir(save_dir):
        match = _NAME.match(name)
        if match and not name.startswith(".") and (prefix is None or match.group("prefix") == prefix):
            found.append((int(match.group("step")), os.path.join(save_dir, name)))
    return sorted(found)


def checkpoint_name_step(path):
    """The step in a checkpoint's name PREFIX-STEP.ckpt, else None."""
    match = _NAME.match(os.path.basename(str(path)))
    return int(match.group("step")) if match else None


def latest_checkpoint(save_dir, prefix=None):
    found = list_checkpoints(save_dir, prefix)
    return found[-1][1] if found else None


def save_checkpoint(cell, save_dir, prefix, step, keep, extra=None):
    """Write PREFIX-STEP.ckpt atomically (temporary name, then rename) and prune old ones."""
    os.makedirs(save_dir, exist_ok=True)
    final = checkpoint_path(save_dir, prefix, step)
    tmp = os.path.join(save_dir, f".tmp-{prefix}-{step}.ckpt")
    append = {"step": int(step)}
    append.update(extra or {})
    try:
        ms.save_checkpoint(cell, tmp, append_dict=append)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    for _, old in list_checkpoints(save_dir, prefix)[:-keep]:
        os.remove(old)
    return final


def read_checkpoint(path):
    """Parameter dict of a checkpoint file, with clear errors for missing or corrupt files."""
    if not path:
        raise UserError("no checkpoint given: use --pretrained_model=PATH")
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}")
    from engine.torch_compat import is_torch_file
    if is_torch_file(path):
        raise UserError(f"{path} is a PyTorch checkpoint: give it as --pretrained_model (eval, export, infer, "
                        "fine-tuning), or convert it once with convert_checkpoint.py; resume continues a run of "
                        "ours, with its optimizer state")
    try:
        return ms.load_checkpoint(path)
    except Exception as e:  # MindSpore raises ValueError/RuntimeError on corrupt files
        raise UserError(f"{path} is not a readable MindSpore checkpoint: {str(e).splitlines()[0][:200]}") from None


def checkpoint_step(params):
    value = params.get("step")
    return int(value.asnumpy()) if value is not None else None


def load_into(cell, params, path, what="network", skip=()):
    """Load params into cell; every parameter of the cell (but those named in skip) must be
    found with its shape."""
    missing = []
    mismatched = []
    for param in cell.get_parameters():
        if param.name in skip:
            continue
        source = params.get(param.name)
        if source is None:
            missing.append(param.name)
        elif tuple(source.shape) != tuple(param.shape):
            mismatched.append(f"{param.name} {tuple(source.shape)} vs {tuple(param.shape)}")
    if missing or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:6])}{', ...' if len(missing) > 6 else ''})")
        if mismatched:
            parts.append(f"{len(mismatched)} of another shape ({'; '.join(mismatched[:4])})")
        raise UserError(f"checkpoint {path} does not fit the {what}: {'; '.join(parts)} "
                        "(check model_name, num_hidden, filter_size, patch_size, img_width, layer_norm)")
    wanted = {p.name for p in cell.get_parameters()} - set(skip)
    ms.load_param_into_net(cell, {k: v for k, v in params.items() if k in wanted}, strict_load=True)


def load_weights(net, path, log=print, cfg=None):
    """Load a checkpoint's network weights into net (for eval, export, fine-tuning).

    A checkpoint of the model zoo's PredRNN++ (recognised by its parameter names) is mapped
    onto our predrnn_pp by engine/zoo_compat.py; a torch.save file of thuml/predrnn-pytorch
    or OpenSTL (.pth, Lightning .ckpt; recognised by its format) by engine/torch_compat.py,
    the mapping convert_checkpoint.py writes out, with the source from cfg.checkpoint_source
    and the config's switches checked against its maths when cfg is given. Their training
    steps are not ours, so None."""
    from engine import torch_compat
    if path and torch_compat.is_torch_file(path):
        torch_compat.load_torch_weights(net, path, cfg, log=log)
        return None
    params = read_checkpoint(path)
    from engine import zoo_compat  # only zoo checkpoints need it
    if zoo_compat.is_zoo_layout(params):
        zoo_compat.load_zoo_weights(net, params, path, log=log)
        return None
    load_into(net, params, path)
    return checkpoint_step(params)
