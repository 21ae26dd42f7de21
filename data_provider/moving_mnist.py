"""Moving MNIST generator after Srivastava et al. 2015 (the bouncing-digits set-up).

Each digit starts at a uniform position in the unit square, moves in a uniform random
direction at constant speed `step_length` (in units of the free canvas, image_size - digit
size), reflects off the edges, and digits are combined by elementwise max.

With stochastic=True (Stochastic Moving MNIST, Denton & Fergus 2018 / SRVP), a digit that
hits a wall leaves it in a new uniformly random direction at the same speed, pointing back
into the frame; the directions come from the sequence's own generator too.

Sequence i is drawn from its own generator np.random.default_rng([seed, i]), so a sequence
is the same whatever chunk it is generated in, and any slice of a data set can be rebuilt
without generating what comes before it.
"""

import numpy as np

from engine.errors import UserError


def _check_digits(digits):
    digits = np.asarray(digits)
    if digits.ndim != 3 or len(digits) == 0:
        raise UserError(f"moving MNIST: digits must have shape (N, h, w) with N > 0, got {digits.shape}")
    if digits.dtype != np.uint8:
        raise UserError(f"moving MNIST: digits must be uint8, got {digits.dtype}")
    return digits


def _trajectories(u, seq_length, step_length, bounce_u=None):
    """u: uniforms (n, D, 3) as (y, x, direction) -> positions in [0, 1], (n, D, T, 2) as (y, x).
    bounce_u: None (deterministic reflections) or uniforms (n, D, T), the new direction of a
    digit that hits a wall at step t."""
    pos = u[..., :2].copy()
    theta = u[..., 2] * (2 * np.pi)
    vel = np.stack([np.sin(theta), np.cos(theta)], axis=-1) * step_length
    out = np.empty(u.shape[:2] + (seq_length, 2))
    for t in range(seq_length):
        pos += vel
        # Reflect at the walls as the reference generator does: clamp to the edge and flip
        # that component, so a digit never leaves the frame.
        low = pos <= 0.0
        high = pos >= 1.0
        pos[low] = 0.0
        pos[high] = 1.0
        if bounce_u is None:
            vel[low | high] *= -1.0
        else:
            hit = (low | high).any(axis=-1)
            angle = bounce_u[:, :, t] * (2 * np.pi)
            fresh = np.stack([np.sin(angle), np.cos(angle)], axis=-1) * step_length
            vel[hit] = fresh[hit]
            # whatever the draw, the component across the wall hit must point inwards
            vel[low] = np.abs(vel[low])
            vel[high] = -np.abs(vel[high])
        out[:, :, t] = pos
    return out


def _canvas(image_size):
    """(height, width) from an int (square canvas) or a (height, width) pair."""
    return (int(image_size), int(image_size)) if np.isscalar(image_size) else tuple(int(s) for s in image_size)


def _make_chunk(digits, first, n, seq_length, image_size, num_digits, seed, step_length, stochastic=False):
    dh, dw = digits.shape[1:]
    ih, iw = _canvas(image_size)
    picks = np.empty((n, num_digits), np.int64)
    u = np.empty((n, num_digits, 3))
    bounce_u = np.empty((n, num_digits, seq_length)) if stochastic else None
    for k, i in enumerate(range(first, first + n)):
        # The draw order (digit picks, then y, x, direction per digit) is part of what makes
        # a (seed, i) pair reproducible: do not reorder. The bounce directions come last, so
        # a stochastic sequence starts exactly as its deterministic twin.
        rng = np.random.default_rng([seed, i])
        picks[k] = rng.integers(0, len(digits), num_digits)
        u[k] = rng.random((num_digits, 3))
        if stochastic:
            bounce_u[k] = rng.random((num_digits, seq_length))
    traj = _trajectories(u, seq_length, step_length, bounce_u)
    oy = (traj[..., 0] * (ih - dh)).astype(np.int64)  # (n, D, T)
    ox = (traj[..., 1] * (iw - dw)).astype(np.int64)

    frames = np.zeros((n, seq_length, ih, iw), np.uint8)
    flat = frames.reshape(-1)
    # Flat indices are much faster than broadcast multi-axis fancy indexing here.
    frame_base = (np.arange(n)[:, None] * seq_length + np.arange(seq_length)) * (ih * iw)
    in_patch = (np.arange(dh)[:, None] * iw + np.arange(dw)).reshape(-1)
    for d in range(num_digits):
        base = frame_base + oy[:, d] * iw + ox[:, d]  # (n, T)
        idx = base[:, :, None] + in_patch  # (n, T, dh*dw)
        img = digits[picks[:, d]].reshape(n, 1, dh * dw)
        # One digit's patches never overlap each other within a frame, so a gather, max
        # and scatter per digit is exact; digits are done one after another.
        flat[idx] = np.maximum(flat[idx], img)
    return frames[..., None]


def iter_moving_mnist(digits, num_sequences, seq_length=20, image_size=64, num_digits=2, seed=0,
                      step_length=0.1, chunk_size=256, stochastic=False):
    """Yield uint8 arrays (n, seq_length, H, W, 1), num_sequences in total, on a canvas of
    image_size (an int: square; or (H, W)). The position along each axis is a fraction of
    that axis's free room, so a non-square canvas keeps the same trajectories.
    stochastic: a new random direction at every bounce (Stochastic Moving MNIST)."""
    digits = _check_digits(digits)
    num_sequences = int(num_sequences)
    if num_sequences < 0 or seq_length < 1 or num_digits < 1 or chunk_size < 1:
        raise UserError("moving MNIST: num_sequences must be >= 0 and seq_length, num_digits, "
                        "chunk_size >= 1")
    if int(seed) != seed or seed < 0:
        raise UserError(f"moving MNIST: seed must be a non-negative integer, got {seed!r}")
    ih, iw = _canvas(image_size)
    if ih < digits.shape[1] or iw < digits.shape[2]:
        raise UserError(f"moving MNIST: frames of {ih}x{iw} are smaller than the digits "
                        f"{digits.shape[1]}x{digits.shape[2]}")
    for first in range(0, num_sequences, chunk_size):
        n = min(chunk_size, num_sequences - first)
        yield _make_chunk(digits, first, n, seq_length, image_size, num_digits, seed, step_length, stochastic)


def generate_moving_mnist(digits, num_sequences, seq_length=20, image_size=64, num_digits=2, seed=0,
                          step_length=0.1, chunk_size=256, stochastic=False):
    """All sequences of iter_moving_mnist in one array (meant for small sizes)."""
    chunks = list(iter_moving_mnist(digits, num_sequences, seq_length, image_size, num_digits, seed,
                                    step_length, chunk_size, stochastic))
    if not chunks:
        return np.zeros((0, seq_length) + _canvas(image_size) + (1,), np.uint8)
    return np.concatenate(chunks)
