"""Patch reshaping between frames and the space-to-depth layout the recurrent cells see.

A frame [H, W, C] becomes [H/p, W/p, p*p*C]; channel (py*p + px)*C + c of patch (i, j) holds
pixel (i*p + py, j*p + px, c). This is TensorFlow's space_to_depth order, which the thuml
reference code and the seed checkpoints use, so converted weights see the same channels.
"""

import numpy as np

from engine.errors import UserError


def _check(shape, p, what):
    if len(shape) < 3:
        raise UserError(f"{what}: expected an array of shape [..., H, W, C], got shape {tuple(shape)}")
    if int(p) != p or p < 1:
        raise UserError(f"{what}: patch_size must be a positive integer, got {p!r}")


def reshape_patch(x, p):
    """[..., H, W, C] -> [..., H/p, W/p, p*p*C]."""
    x = np.asarray(x)
    _check(x.shape, p, "reshape_patch")
    p = int(p)
    *lead, h, w, c = x.shape
    if h % p or w % p:
        raise UserError(f"reshape_patch: frame size {h}x{w} is not divisible by patch_size {p}")
    y = x.reshape(*lead, h // p, p, w // p, p, c)
    n = len(lead)
    # (.., H/p, py, W/p, px, C) -> (.., H/p, W/p, py, px, C)
    order = list(range(n)) + [n, n + 2, n + 1, n + 3, n + 4]
    return y.transpose(order).reshape(*lead, h // p, w // p, p * p * c)


def reshape_patch_back(y, p):
    """[..., H/p, W/p, p*p*C] -> [..., H, W, C]; exact inverse of reshape_patch."""
    y = np.asarray(y)
    _check(y.shape, p, "reshape_patch_back")
    p = int(p)
    *lead, hp, wp, cc = y.shape
    if cc % (p * p):
        raise UserError(f"reshape_patch_back: {cc} channels are not divisible by patch_size^2 = {p * p}")
    c = cc // (p * p)
    x = y.reshape(*lead, hp, wp, p, p, c)
    n = len(lead)
    order = list(range(n)) + [n, n + 2, n + 1, n + 3, n + 4]
    return x.transpose(order).reshape(*lead, hp * p, wp * p, c)
