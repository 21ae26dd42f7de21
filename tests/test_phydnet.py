"""PhyDNet: the moment constraint (K2M) by hand, OpenSTL checkpoints reproduced with the
predictions and the training loss of OpenSTL's own PhyDNet_Model (fixtures written once by
tools/make_openstl_phydnet_fixtures.py), PhyDNet's per-batch teacher forcing, and training
steps that lower the loss."""
import json
import math
import os

import numpy as np

from engine.config import load_config
from tests.conftest import ROOT

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "openstl_phydnet")


def test_moments_by_hand():
    """K2M: m[p, q] = sum_ij M[p, i] M[q, j] k[i, j], M[p, i] = (i - 3)^p / p!; the constraint
    of filter n = 7i + j is the one-hot moment (i, j)."""
    from nets.phydnet import moment_constraints, moment_matrices
    m = moment_matrices()
    assert m.shape == (7, 7) and m[0].tolist() == [1.0] * 7 and m[1].tolist() == [-3, -2, -1, 0, 1, 2, 3]
    np.testing.assert_allclose(m[2], np.array([9, 4, 1, 0, 1, 4, 9]) / 2.0)
    np.testing.assert_allclose(m[6, 0], 3.0 ** 6 / math.factorial(6))
    # a kernel that is 1 at the centre has moment 1 at (0, 0) only: the identity filter
    k = np.zeros((7, 7))
    k[3, 3] = 1.0
    moments = m @ k @ m.T
    assert moments[0, 0] == 1.0 and np.abs(moments).sum() == 1.0
    c = moment_constraints()
    assert c.shape == (49, 7, 7) and c[0, 0, 0] == 1 and c[8, 1, 1] == 1 and c.sum() == 49


def manifest():
    with open(os.path.join(FIXTURES, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def test_openstl_checkpoint_reproduces_pytorch(ms_context, tmp_path):
    """OpenSTL's inference (true inputs, then its own outputs) and its training loss with no
    teacher forcing (per-step MSEs summed + the moment constraint of each of PhyCell's 64
    input channels): ours give the same predictions to 1e-5 and the same loss times T - 1."""
    import convert_checkpoint
    from data_provider.patch import reshape_patch, reshape_patch_back
    from data_provider.sampling import eval_mask
    from engine.checkpoint import load_weights
    from engine.trainer import NetWithLoss
    from nets.registry import build_model
    ms = ms_context
    m = manifest()
    argv = ["--model_name=phydnet", f"--patch_size={m['patch_size']}", f"--img_width={m['img_width']}",
            f"--img_channel={m['img_channel']}", f"--input_length={m['input_length']}",
            f"--seq_length={m['seq_length']}", "--device_target=CPU"]
    ref = np.load(os.path.join(FIXTURES, "reference.npz"))
    frames = ms.Tensor(reshape_patch(ref["frames"], m["patch_size"]).astype(np.float32))
    mask = ms.Tensor(eval_mask(m["batch"], m["seq_length"], m["input_length"]))
    out = str(tmp_path / "ours.ckpt")
    lines = []
    cfg = convert_checkpoint._convert_torch("openstl", os.path.join(FIXTURES, m["file"]), out, argv,
                                            log=lines.append)
    assert any("registers phycell and convcell twice" in line for line in lines), lines
    for source in (out, os.path.join(FIXTURES, m["file"])):
        net = build_model(cfg)
        load_weights(net, source, log=None, cfg=cfg)
        net.set_train(False)
        got = reshape_patch_back(net(frames, mask).asnumpy(), m["patch_size"])[:, m["input_length"] - 1:]
        assert np.abs(ref["pred"]).mean() > 0.1
        np.testing.assert_allclose(got, ref["pred"], rtol=0, atol=1e-5)
    loss = NetWithLoss(net, m["seq_length"])
    loss.set_train(True)
    got_loss = float(loss(frames, mask).asnumpy()) * (m["seq_length"] - 1)
    np.testing.assert_allclose(got_loss, float(ref["train_loss"]), rtol=1e-5)


def test_teacher_forcing_per_batch():
    from data_provider.sampling import train_mask
    cfg = load_config(["--model_name=phydnet", "--patch_size=4", "--input_length=3", "--seq_length=8",
                       "--teacher_forcing=batch", "--scheduled_sampling=true", "--sampling_start_value=0.5",
                       "--sampling_changing_rate=0"])
    seen = set()
    for step in range(40):
        mask, eta = train_mask(step, 6, cfg)
        assert eta == 0.5 and (mask[:, :3] == 1).all()
        future = mask[:, 3:]
        assert (future == future[0, 0]).all()  # one coin for the whole batch and every predicted frame
        seen.add(float(future[0, 0]))
    assert seen == {0.0, 1.0}


def test_training_steps_lower_the_loss(ms_context):
    """A few optimiser steps on Moving MNIST at 32x32 lower the loss (MSE + the moment term).
    The learning run against the baselines is tests/test_training.py's LEARNERS['phydnet']."""
    ms = ms_context
    from mindspore import nn
    from data_provider.digits import builtin_digits
    from data_provider.moving_mnist import generate_moving_mnist
    from data_provider.patch import reshape_patch
    from data_provider.sampling import eval_mask
    from engine.trainer import NetWithLoss, TrainStep
    from nets.registry import build_model
    ms.set_seed(0)
    cfg = load_config(["--model_name=phydnet", "--patch_size=4", "--img_width=32", "--seq_length=6",
                       "--input_length=3", "--lr=0.002"])
    net = build_model(cfg)
    seqs = generate_moving_mnist(builtin_digits(), 4, seq_length=6, image_size=32, num_digits=1, seed=0)
    frames = ms.Tensor(reshape_patch(seqs.astype(np.float32) / 255, 4))
    step = TrainStep(NetWithLoss(net, 6), nn.Adam(net.trainable_params(), cfg.lr))
    step.set_train()
    mask = ms.Tensor(eval_mask(4, 6, 3))
    losses = [float(step(frames, mask).asnumpy()) for _ in range(12)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
