"""Scheduled-sampling masks (the input schedule of every frame-by-frame predictor).

A mask is float32 [B, T-1]: mask[:, t] is 1 where step t reads the true frame t and 0 where
it reads the model's own previous prediction (see nets/base.py). Coins are drawn per sample
and per frame, as in thuml/predrnn-pytorch, from an RNG seeded by (seed, step), so a resumed
run draws the same masks as an uninterrupted one.
"""
import math

import numpy as np


def eval_mask(batch, seq_length, input_length):
    """Inputs are true frames; every predicted frame feeds back the model's own output."""
    mask = np.zeros((batch, seq_length - 1), np.float32)
    mask[:, :input_length] = 1.0
    return mask


def sampling_eta(step, cfg):
    """Probability of the true frame in the prediction period (linear decay, thuml)."""
    if not cfg.scheduled_sampling:
        return 0.0
    if step >= cfg.sampling_stop_iter:
        return 0.0
    return max(0.0, cfg.sampling_start_value - cfg.sampling_changing_rate * step)


def reverse_sampling_etas(step, cfg):
    """(input-period probability, prediction-period probability) of PredRNN-V2's reverse
    scheduled sampling (thuml reserve_schedule_sampling_exp)."""
    s1, s2, alpha = cfg.r_sampling_step_1, cfg.r_sampling_step_2, cfg.r_exp_alpha
    if step < s1:
        return 0.5, 0.5
    if step < s2:
        return 1.0 - 0.5 * math.exp(-float(step - s1) / alpha), 0.5 - (0.5 / (s2 - s1)) * (step - s1)
    return 1.0, 0.0


def train_mask(step, batch, cfg, num_shards=1, shard_id=0):
    """Mask for training step `step`; returns (mask, probability used in the prediction period).

    In data-parallel training each shard takes its slice of the mask of the global batch,
    so N workers of batch B draw exactly the coins of one process with batch N*B."""
    rng = np.random.default_rng([int(cfg.seed), int(step), 0x55])
    total, inp = cfg.seq_length, cfg.input_length
    mask = np.ones((batch, total - 1), np.float32)
    coins = rng.random((batch * num_shards, total - 1))[shard_id * batch:(shard_id + 1) * batch]
    if cfg.reverse_scheduled_sampling:
        r_eta, eta = reverse_sampling_etas(step, cfg)
        mask[:, 1:inp] = coins[:, 1:inp] < r_eta
    else:
        eta = sampling_eta(step, cfg)
    if cfg.get("teacher_forcing", "frame") == "batch":
        # PhyDNet (OpenSTL): one coin per (global) batch decides for every predicted frame
        mask[:, inp:] = float(rng.random() < eta)
    else:
        mask[:, inp:] = coins[:, inp:] < eta
    return mask, eta
