"""Scheduled-sampling and reverse-scheduled-sampling masks follow their schedules."""
import math

import numpy as np
import pytest

from data_provider.sampling import reverse_sampling_etas, sampling_eta, eval_mask, train_mask
from engine.config import load_config

BASE = ["--model_name=convlstm", "--seq_length=20", "--input_length=10"]


def fractions(mask, input_length):
    return mask[:, 1:input_length].mean(), mask[:, input_length:].mean()


def test_test_mask():
    mask = eval_mask(3, 20, 10)
    assert mask.shape == (3, 19) and mask[:, :10].all() and not mask[:, 10:].any()


@pytest.mark.parametrize("step, eta", [(0, 1.0), (10000, 0.8), (25000, 0.5), (49999, 0.00002), (50000, 0.0), (90000, 0.0)])
def test_scheduled_sampling_eta_and_mask(step, eta):
    cfg = load_config(BASE)
    assert sampling_eta(step, cfg) == pytest.approx(eta, abs=1e-9)
    mask, used = train_mask(step, 4000, cfg)
    assert used == pytest.approx(eta, abs=1e-9)
    assert mask.shape == (4000, 19) and mask[:, :10].all()  # inputs are always true frames
    assert mask[:, 10:].mean() == pytest.approx(eta, abs=0.01)
    assert set(np.unique(mask)) <= {0.0, 1.0}


def test_no_scheduled_sampling_feeds_predictions():
    mask, eta = train_mask(0, 16, load_config(BASE + ["--scheduled_sampling=false"]))
    assert eta == 0.0 and mask[:, :10].all() and not mask[:, 10:].any()


@pytest.mark.parametrize("step", [0, 24999, 25000, 27500, 40000, 50000, 60000])
def test_reverse_scheduled_sampling(step):
    cfg = load_config(BASE + ["--reverse_scheduled_sampling=true", "--r_exp_alpha=2500"])
    if step < 25000:
        r_eta, eta = 0.5, 0.5
    elif step < 50000:
        r_eta = 1.0 - 0.5 * math.exp(-(step - 25000) / 2500)
        eta = 0.5 - 0.5 * (step - 25000) / 25000
    else:
        r_eta, eta = 1.0, 0.0
    assert reverse_sampling_etas(step, cfg) == pytest.approx((r_eta, eta))
    mask, _ = train_mask(step, 4000, cfg)
    assert mask[:, 0].all()  # step 0 always reads frame 0
    got_r, got = fractions(mask, 10)
    assert got_r == pytest.approx(r_eta, abs=0.015) and got == pytest.approx(eta, abs=0.015)


def test_masks_are_a_function_of_seed_and_step():
    cfg = load_config(BASE)
    a, _ = train_mask(20000, 8, cfg)  # eta 0.6: the coins matter
    b, _ = train_mask(20000, 8, cfg)
    c, _ = train_mask(20001, 8, cfg)
    d, _ = train_mask(20000, 8, load_config(BASE + ["--seed=99"]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
