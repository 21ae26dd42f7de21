"""SRVP: Gaussian sampling and KL terms against closed forms, the ELBO's parts, noise
reproducibility, a few training steps, export with the noise as an input (MINDIR and
ONNX Runtime against MindSpore), best-of-N evaluation, and the stochastic bounces of
Stochastic Moving MNIST."""
import numpy as np
import pytest

from engine.config import load_config
from engine.errors import UserError
from tests.conftest import ROOT

T, COND, INF = 6, 3, 2
TINY_SRVP = ["--model_name=srvp", "--patch_size=1", "--img_width=64", f"--input_length={COND}",
             f"--seq_length={T}", f"--nt_inf={INF}", "--ny=4", "--nz=3", "--nf=4", "--nhx=8", "--nh_inf=8",
             "--nlayers_inf=2", "--nh_res=32", "--nlayers_res=3", "--skipco=true", "--batch_size=2",
             "--device_target=CPU", "--seed=5"]


def srvp_config(extra=()):
    return load_config(TINY_SRVP + list(extra))


def build(cfg):
    from nets.registry import build_model
    return build_model(cfg)


@pytest.fixture(scope="module")
def tiny(ms_context):
    ms_context.set_seed(0)
    cfg = srvp_config()
    net = build(cfg)
    perturb(net)
    net.set_train(False)
    return cfg, net


def perturb(net, scale=0.2):
    """Larger weights than the reference's N(0, 0.02) init, so that every path (noise, skips,
    content) visibly moves the output of an untrained tiny model."""
    import mindspore as ms
    rng = np.random.default_rng(0)
    for p in net.trainable_params():
        p.set_data(ms.Tensor((p.asnumpy() + rng.normal(0, scale, p.shape)).astype(np.float32)))


def frames(seed, b=2):
    return np.random.default_rng(seed).random((b, T, 64, 64, 1)).astype(np.float32)


def noise(seed, net, b=2):
    return np.random.default_rng(seed).normal(size=(b, T, net.noise_dim)).astype(np.float32)


# ---------------------------------------------------------------- Gaussians
def test_sampling_and_kl_closed_forms(ms_context):
    ms = ms_context
    from layers.srvp_blocks import gaussian_nll, kl_normal, kl_std_normal, rsample, split_gaussian
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(5, 8)).astype(np.float32)
    mean, std = (a.asnumpy() for a in split_gaussian(ms.Tensor(raw)))
    np.testing.assert_allclose(mean, raw[:, :4])
    np.testing.assert_allclose(std, np.log1p(np.exp(raw[:, 4:])) + 1e-8, rtol=1e-5)
    eps = rng.normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(rsample(ms.Tensor(mean), ms.Tensor(std), ms.Tensor(eps)).asnumpy(),
                               mean + std * eps, rtol=1e-6)

    m1, m2 = rng.normal(size=(2, 6))
    s1, s2 = rng.uniform(0.2, 2.0, size=(2, 6))
    t = lambda a: ms.Tensor(a.astype(np.float32))  # noqa: E731
    expect = np.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    np.testing.assert_allclose(kl_normal(t(m1), t(s1), t(m2), t(s2)).asnumpy(), expect, rtol=1e-5, atol=1e-6)
    expect0 = -np.log(s1) + (s1 ** 2 + m1 ** 2) / 2 - 0.5
    np.testing.assert_allclose(kl_std_normal(t(m1), t(s1)).asnumpy(), expect0, rtol=1e-5, atol=1e-6)
    assert np.allclose(kl_normal(t(m1), t(s1), t(m1), t(s1)).asnumpy(), 0, atol=1e-6)
    # the Gaussian log-density, also against a Monte Carlo check of the KL
    x, mu = rng.random(6), rng.random(6)
    np.testing.assert_allclose(gaussian_nll(t(mu), t(x), 0.5).asnumpy(),
                               0.5 * ((x - mu) / 0.5) ** 2 + np.log(0.5) + 0.5 * np.log(2 * np.pi), rtol=1e-5)
    draws = m1[0] + s1[0] * rng.normal(size=200000)
    mc = np.mean(np.log(s2[0] / s1[0]) - 0.5 * ((draws - m1[0]) / s1[0]) ** 2 + 0.5 * ((draws - m2[0]) / s2[0]) ** 2)
    assert abs(mc - expect[0]) < 0.02 * max(1.0, expect[0])


# ---------------------------------------------------------------- the model
def test_from_config_and_checks(tiny):
    cfg, net = tiny
    from nets.srvp import SRVP
    assert isinstance(net, SRVP) and net.nt_cond == COND and net.noise_dim == 4
    with pytest.raises(UserError, match="patch_size"):
        SRVP.from_config(srvp_config(["--patch_size=4"]))
    with pytest.raises(UserError, match="nt_inf"):
        SRVP(T, COND, COND + 1)


def test_elbo_parts(tiny, ms_context):
    ms = ms_context
    cfg, net = tiny
    x = frames(1)
    dyn_last = net.dynamics.body[-1]
    saved = dyn_last.weight.asnumpy(), dyn_last.bias.asnumpy()
    try:
        # f = 0: y stays y_1, the residual penalty vanishes and every frame decodes alike
        dyn_last.weight.set_data(ms.Tensor(np.zeros_like(saved[0])))
        dyn_last.bias.set_data(ms.Tensor(np.zeros_like(saved[1])))
        x_hat, loss, (nll, kl_y, kl_z, l2) = net.elbo(ms.Tensor(x), ms.Tensor(noise(2, net)))
    finally:
        dyn_last.weight.set_data(ms.Tensor(saved[0]))
        dyn_last.bias.set_data(ms.Tensor(saved[1]))
    x_hat = x_hat.asnumpy().astype(np.float64)
    assert x_hat.shape == x.shape
    assert float(l2.asnumpy()) < 1e-4  # sqrt(|0|^2 + 1e-12) per step and sequence
    np.testing.assert_allclose(x_hat[:, 1:], np.repeat(x_hat[:, :1], T - 1, axis=1), atol=1e-6)
    expect_nll = np.sum(0.5 * (x - x_hat) ** 2 + 0.5 * np.log(2 * np.pi)) / 2
    np.testing.assert_allclose(float(nll.asnumpy()), expect_nll, rtol=1e-5)
    assert float(kl_y.asnumpy()) > 0 and float(kl_z.asnumpy()) > 0
    np.testing.assert_allclose(float(loss.asnumpy()),
                               float((nll + net.beta_y * kl_y + net.beta_z * kl_z + net.l2_res * l2).asnumpy()),
                               rtol=1e-6)


def test_l2_penalty_is_the_norm_of_each_residual(tiny, ms_context):
    """The reference's l2_res term: sum over steps and sequences of ||dt f(y, z)||_2, per batch."""
    ms = ms_context
    cfg, net = tiny
    dyn_last = net.dynamics.body[-1]
    saved = dyn_last.weight.asnumpy(), dyn_last.bias.asnumpy()
    try:  # f = constant vector v: every residual is v, so the penalty is (T - 1) * |v|
        v = np.array([3.0, 0.0, 4.0, 0.0], np.float32)
        dyn_last.weight.set_data(ms.Tensor(np.zeros_like(saved[0])))
        dyn_last.bias.set_data(ms.Tensor(v))
        _, _, (_, _, _, l2) = net.elbo(ms.Tensor(frames(1)), ms.Tensor(noise(2, net)))
    finally:
        dyn_last.weight.set_data(ms.Tensor(saved[0]))
        dyn_last.bias.set_data(ms.Tensor(saved[1]))
    np.testing.assert_allclose(float(l2.asnumpy()), (T - 1) * 5.0, rtol=1e-5)


def test_training_picks_choose_content_and_skip_frames(tiny, ms_context):
    """As the reference trains: w from nt_inf random frames, skips from one random frame."""
    ms = ms_context
    cfg, net = tiny
    x, eps = ms.Tensor(frames(7)), ms.Tensor(noise(3, net))
    test_time = net.elbo(x, eps)[1].asnumpy()
    # keys that pick exactly the test-time frames: the last nt_inf and the last conditioning one
    keys = np.zeros((2, 2, T), np.float32)
    keys[:, 0, COND - INF:COND] = 1.0
    keys[:, 1, COND - 1] = 1.0
    np.testing.assert_allclose(net.elbo(x, eps, ms.Tensor(keys))[1].asnumpy(), test_time, rtol=1e-5)
    other = np.zeros((2, 2, T), np.float32)
    other[:, 0, -INF:] = 1.0
    other[:, 1, T - 1] = 1.0
    assert abs(float(net.elbo(x, eps, ms.Tensor(other))[1].asnumpy()) - float(test_time)) > 1e-3


def test_noise_controls_the_future(tiny, ms_context):
    ms = ms_context
    cfg, net = tiny
    x = frames(3)
    a = net.sample(ms.Tensor(x), ms.Tensor(noise(10, net))).asnumpy()
    b = net.sample(ms.Tensor(x), ms.Tensor(noise(10, net))).asnumpy()
    c = net.sample(ms.Tensor(x), ms.Tensor(noise(11, net))).asnumpy()
    assert a.shape == (2, T - 1, 64, 64, 1)
    # CPU kernels may reorder float sums between calls: equal to rounding, not bit for bit
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert np.abs(a[:, COND - 1:] - c[:, COND - 1:]).max() > 1e-4
    # frames after the conditioning ones are never read
    y = x.copy()
    y[:, COND:] = 0
    np.testing.assert_allclose(net.sample(ms.Tensor(y), ms.Tensor(noise(10, net))).asnumpy(), a, atol=1e-6)
    # the registry path draws from the seeded internal source: a fresh draw each call
    mask = ms.Tensor(np.ones((2, T - 1), np.float32))
    d, e = net(ms.Tensor(x), mask).asnumpy(), net(ms.Tensor(x), mask).asnumpy()
    assert d.shape == a.shape and np.abs(d - e).max() > 1e-4


def test_sampler_exports_to_mindir(tiny, ms_context, tmp_path):
    ms = ms_context
    from nets.srvp import SRVPSampler
    cfg, net = tiny
    sampler = SRVPSampler(net)
    inp = ms.Tensor(frames(4)[:, :COND])
    eps = ms.Tensor(noise(12, net))
    want = sampler(inp, eps).asnumpy()
    assert want.shape == (2, T - COND, 64, 64, 1)
    path = str(tmp_path / "srvp")
    from engine.inference import export_graph
    export_graph(sampler, inp, eps, file_name=path, file_format="MINDIR")
    got = ms.nn.GraphCell(ms.load(path + ".mindir"))(inp, eps).asnumpy()
    # the file holds MindSpore's convolutions, `want` came from the native CPU ones: float32 rounding
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_tiny_srvp_trains(ms_context):
    ms = ms_context
    from mindspore import nn
    from engine.trainer import NetWithLoss, TrainStep
    ms.set_seed(1)
    cfg = srvp_config(["--skipco=false"])
    net = build(cfg)
    step = TrainStep(NetWithLoss(net, cfg.seq_length), nn.Adam(net.trainable_params(), learning_rate=2e-3))
    step.set_train()
    x = ms.Tensor(frames(6))
    mask = ms.Tensor(np.ones((2, T - 1), np.float32))
    losses = [float(step(x, mask).asnumpy()) for _ in range(8)]
    assert all(np.isfinite(losses))
    # the loss is the negative ELBO: at least the Gaussian NLL's constant per pixel
    assert losses[0] > T * 64 * 64 * 0.5 * np.log(2 * np.pi)
    assert np.mean(losses[-3:]) < losses[0]


# ---------------------------------------------------------------- Stochastic Moving MNIST
def test_stochastic_bounces():
    from data_provider.moving_mnist import _trajectories, generate_moving_mnist
    u = np.array([[[0.5, 0.95, 0.0]]])  # moving right (+x), 0.05 from the wall
    det = _trajectories(u, 8, 0.1)
    rng = np.random.default_rng(0)
    bounce_u = rng.random((1, 1, 8))
    sto = _trajectories(u, 8, 0.1, bounce_u)
    vel_det, vel_sto = np.diff(det[0, 0], axis=0), np.diff(sto[0, 0], axis=0)
    np.testing.assert_allclose(det[0, 0, 0], sto[0, 0, 0])  # the wall is hit on step 0
    np.testing.assert_allclose(vel_det[1:], [[0, -0.1]] * 6, atol=1e-12)  # plain reflection
    # after the bounce: the direction drawn at that step, the x component turned inwards
    angle = bounce_u[0, 0, 0] * 2 * np.pi
    expect = np.array([np.sin(angle), -abs(np.cos(angle))]) * 0.1
    np.testing.assert_allclose(vel_sto[0], expect, atol=1e-12)
    assert np.abs(vel_sto[0] - vel_det[0]).max() > 1e-3
    assert np.allclose(np.linalg.norm(vel_sto[0]), 0.1)

    digits = (np.random.default_rng(1).random((5, 8, 8)) * 255).astype(np.uint8)
    a = generate_moving_mnist(digits, 6, seq_length=30, image_size=32, seed=3, stochastic=True)
    b = generate_moving_mnist(digits, 6, seq_length=30, image_size=32, seed=3, stochastic=True, chunk_size=4)
    d = generate_moving_mnist(digits, 6, seq_length=30, image_size=32, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:, 0], d[:, 0])  # same start, then the bounces diverge
    assert (a != d).any()
    assert (generate_moving_mnist(digits, 6, seq_length=30, image_size=32, seed=4, stochastic=True) != a).any()


# ---------------------------------------------------------------- deployment and evaluation
@pytest.fixture(scope="module")
def srvp_files(tiny, tmp_path_factory):
    """A perturbed tiny SRVP checkpoint and a stochastic Moving MNIST test set of 6 sequences."""
    import mindspore as ms
    from data_provider.build import build_mindrecords
    cfg, net = tiny
    out = tmp_path_factory.mktemp("srvp")
    ckpt = str(out / "srvp.ckpt")
    ms.save_checkpoint(net, ckpt)
    data_cfg = srvp_config([f"--mindrecord_dir={out}", "--num_train_sequences=4", "--num_test_sequences=6",
                            "--stochastic_bounce=true", "--num_digits=1"])
    paths = build_mindrecords(data_cfg, log=lambda *_: None)
    return {"dir": out, "ckpt": ckpt, "test": paths["test"], "train": paths["train"]}


def test_export_with_noise_input_matches_mindspore(tiny, srvp_files, onnxruntime_runner, tmp_path):
    """MINDIR and ONNX Runtime take (frames, noise) and give MindSpore's futures; the same
    noise gives the same future in every runtime, other noise another one."""
    from engine.inference import CheckpointPredictor, MindIRPredictor, OnnxPredictor, export_model, sequence_noise
    cfg, net = tiny
    inputs = frames(4, b=3)[:, :COND]  # 3 sequences through batch-2 graphs: one padded batch
    eps = sequence_noise(cfg, range(3), 0, net.noise_dim)
    ckpt = CheckpointPredictor(cfg, srvp_files["ckpt"], 2)
    assert ckpt.stochastic and ckpt.noise_dim == net.noise_dim
    want = ckpt.predict(inputs, eps)
    assert want.shape == (3, T - COND, 64, 64, 1)
    # without explicit noise a fresh predictor draws sequence_noise(cfg, i, draw 0) itself
    np.testing.assert_allclose(CheckpointPredictor(cfg, srvp_files["ckpt"], 2).predict(inputs), want, atol=1e-6)
    other = ckpt.predict(inputs, sequence_noise(cfg, range(3), 1, net.noise_dim))
    assert np.abs(other - want).max() > 1e-3

    mindir = export_model(cfg, srvp_files["ckpt"], "MINDIR", 2, str(srvp_files["dir"] / "srvp"), "CPU")
    from tests.test_export import mindir_io_names
    assert mindir_io_names(mindir) == (["frames", "noise"], ["predictions"])
    got = MindIRPredictor(cfg, mindir)
    assert got.stochastic and got.noise_dim == net.noise_dim
    np.testing.assert_allclose(got.predict(inputs, eps), want, atol=1e-5)  # MindSpore's vs the native convolutions
    onnx_path = export_model(cfg, srvp_files["ckpt"], "ONNX", 2, str(srvp_files["dir"] / "srvp.onnx"), "CPU")
    runtime = OnnxPredictor(cfg, onnx_path, providers=["CPUExecutionProvider"])
    assert runtime.stochastic
    assert [i.name for i in runtime.session.get_inputs()] == ["frames", "noise"]
    assert [o.name for o in runtime.session.get_outputs()] == ["predictions"]
    np.testing.assert_allclose(runtime.predict(inputs, eps), want, atol=1e-4)

    # the C++ runner (ONNX Runtime) feeds the noise folder as the noise input: MindSpore's
    # futures, so eval.py's per-frame table
    from tests.test_export import assert_same_table, cpp_runner_predictions
    cpp = cpp_runner_predictions(onnxruntime_runner, onnx_path, inputs[:2], want[:2], tmp_path, noise=eps[:2])
    assert_same_table(cpp, want[:2], cfg.patch_size)


def test_transposed_convs_for_onnx_compute_the_same(ms_context):
    """The ONNX path swaps every Conv2dTranspose for zero-stuffing + pad + flipped conv."""
    ms = ms_context
    from mindspore import nn
    from layers.srvp_blocks import StuffedConvTranspose, _deconv
    rng = np.random.default_rng(0)
    for k, stride, pad in ((4, 2, 1), (4, 1, 0), (3, 1, 1)):
        deconv = _deconv(3, 5, k, stride, pad)
        deconv.set_train(False)
        x = ms.Tensor(rng.random((2, 3, 5, 5)).astype(np.float32))
        want = deconv(x).asnumpy()
        stuffed = StuffedConvTranspose(deconv)
        assert isinstance(stuffed.conv, nn.Conv2d)
        np.testing.assert_allclose(stuffed(x).asnumpy(), want, atol=1e-6)


def test_vgg_variant(ms_context):
    """seed 004's VGG encoder/decoder (KTH, Human3.6M, BAIR): shapes and skip connections."""
    ms = ms_context
    from layers.srvp_blocks import vgg_decoder, vgg_encoder
    from nets.srvp import SRVP
    enc, dec = vgg_encoder(1, 8, 4), vgg_decoder(1, 10, 4, True)
    enc.set_train(False)
    dec.set_train(False)
    code, skips = enc(ms.Tensor(np.random.default_rng(0).random((3, 1, 64, 64)).astype(np.float32)))
    assert code.shape == (3, 8)
    assert [tuple(s.shape) for s in skips] == [(3, 32, 8, 8), (3, 16, 16, 16), (3, 8, 32, 32), (3, 4, 64, 64)]
    out = dec(ms.Tensor(np.zeros((3, 10), np.float32)), skips).asnumpy()
    assert out.shape == (3, 1, 64, 64) and 0 < out.min() and out.max() < 1
    net = SRVP.from_config(srvp_config(["--archi=vgg"]))
    assert any("encoder.stages.3" in p.name for p in net.trainable_params())


def test_eval_best_mean_worst_and_infer_samples(tiny, srvp_files, tmp_path):
    """eval.py --num_samples=N: best >= mean >= worst per frame; the table's model column is
    the mean prediction; infer.py writes N futures side by side."""
    import json
    from engine.evaluator import evaluate
    from infer import infer
    cfg, _ = tiny
    cfg = srvp_config([f"--test_mindrecord={srvp_files['test']}", f"--pretrained_model={srvp_files['ckpt']}",
                       f"--eval_dir={tmp_path / 'eval'}", "--num_samples=4", "--eval_batch_size=4"])
    lines = []
    summaries = evaluate(cfg, log=lines.append)
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["num_samples"] == 4 and report["samples"]["num_sequences"] == 6
    for name in ("psnr", "ssim"):
        best, mean, worst = (np.array(report["samples"][name][k]["per_frame"]) for k in ("best", "mean", "worst"))
        assert best.shape == (T - COND,)
        assert report["samples"][name]["best"]["mean"] >= report["samples"][name]["mean"]["mean"]
        assert report["samples"][name]["mean"]["mean"] >= report["samples"][name]["worst"]["mean"]
        assert report["samples"][name]["best"]["mean"] > report["samples"][name]["worst"]["mean"]
    mse = report["samples"]["mse"]
    assert mse["best"]["mean"] <= mse["mean"]["mean"] <= mse["worst"]["mean"]
    # the mean prediction's MSE is no worse than the samples' mean MSE (convexity)
    assert summaries["model"]["mse"]["mean"] <= mse["mean"]["mean"] + 1e-9
    assert any("best / mean / worst" in line for line in lines)

    clip = frames(9, b=1)[0, :COND]
    np.save(tmp_path / "clip.npy", clip)
    icfg = srvp_config([f"--pretrained_model={srvp_files['ckpt']}", f"--input_clip={tmp_path / 'clip.npy'}",
                        "--num_samples=3"])
    result = infer(icfg, str(tmp_path / "infer"), log=lambda *_: None)
    assert result["pred"].shape == (3, T - COND, 64, 64, 1)
    assert np.abs(result["pred"][0] - result["pred"][1]).max() > 1e-3
    assert np.load(result["paths"]["npy"]).shape == (3, T - COND, 64, 64, 1)
    from PIL import Image
    with Image.open(result["paths"]["gif"]) as gif:
        assert gif.n_frames == T and gif.size[0] > 3 * 64


def test_linear_lr_schedule_is_srvps():
    """lr_schedule=linear against the reference loop (edouardelasalles/srvp train.py): LambdaLR
    with lambda i: max(0, (n - i) / n), stepped after every optimiser step once
    itr >= lr_scheduling_burnin, for burn-in + n steps in all."""
    from engine.trainer import learning_rates
    burnin, n, lr = 7, 5, 3e-4
    expected, k = [], 0
    for itr in range(1, burnin + n + 1):
        expected.append(lr * max(0.0, (n - k) / n))  # the rate this optimiser step uses
        if itr >= burnin:
            k += 1
    cfg = load_config(["--model_name=srvp", "--lr_schedule=linear", f"--lr_decay_start={burnin}",
                       f"--max_iterations={burnin + n}", f"--lr={lr}"])
    np.testing.assert_allclose(learning_rates(cfg), expected, rtol=1e-6)
    assert expected[burnin - 1] == lr and expected[burnin] < lr and expected[-1] == 0
    for name in ("srvp_smmnist", "srvp_kth"):  # the seed's burn-in and decay lengths
        seed = load_config([f"--config_path={ROOT}/configs/{name}.yaml"])
        assert (seed.lr_schedule, seed.lr_decay_start, seed.max_iterations) == \
            {"srvp_smmnist": ("linear", 1000000, 1100000), "srvp_kth": ("linear", 150000, 200000)}[name]
    with pytest.raises(UserError, match="lr_decay_start"):
        load_config(["--model_name=srvp", "--lr_schedule=linear", "--lr_decay_start=10", "--max_iterations=10"])


def test_resume_draws_the_same_noise(srvp_files, tmp_path):
    """The trainer hands SRVP its noise and frame picks drawn from (seed, step): a run resumed
    from its step-2 checkpoint repeats the uninterrupted run's losses at steps 3 and 4."""
    from engine.trainer import train
    common = [f"--train_mindrecord={srvp_files['train']}", "--max_iterations=4", "--snapshot_interval=2",
              "--keep_checkpoint_max=2", "--log_interval=100", "--lr=1e-3"]
    straight = train(srvp_config(common + [f"--save_dir={tmp_path / 'a'}"]), log=lambda *_: None)
    resumed = train(srvp_config(common + [f"--save_dir={tmp_path / 'b'}",
                                          f"--resume={tmp_path / 'a' / 'srvp-2.ckpt'}"]), log=lambda *_: None)
    full = dict(straight["history"])
    assert [s for s, _ in resumed["history"]] == [3, 4]
    assert len(set(full.values())) == 4  # the loss moves: different noise, picks and weights each step
    np.testing.assert_allclose([l for _, l in resumed["history"]], [full[3], full[4]], rtol=1e-5)


def test_310_protocol_feeds_the_noise(tiny, srvp_files, tmp_path):
    """preprocess writes each sequence's draw-0 noise to 02_noise; the runner feeds it as the
    MINDIR's second input (--input1_path), so postprocess gives eval.py's numbers."""
    from engine.evaluator import evaluate
    from engine.inference import export_model
    from engine.protocol310 import NOISE_DIR, postprocess, preprocess, read_manifest, run_python
    cfg = srvp_config([f"--test_mindrecord={srvp_files['test']}", f"--pretrained_model={srvp_files['ckpt']}",
                       f"--eval_dir={tmp_path / 'eval'}", "--eval_batch_size=2"])
    reference = evaluate(cfg, log=lambda *_: None)
    pre = tmp_path / "pre"
    assert preprocess(cfg, cfg.test_mindrecord, str(pre), log=lambda *_: None) == 6
    assert read_manifest(str(pre))["noise_shape"] == [1, T, tiny[1].noise_dim]
    mindir = export_model(cfg, cfg.pretrained_model, "MINDIR", 1, str(tmp_path / "srvp1"), "CPU")
    with pytest.raises(UserError, match="input1_path"):
        run_python(mindir, str(pre / "00_data"), str(tmp_path / "res"), log=lambda *_: None)
    run_python(mindir, str(pre / "00_data"), str(tmp_path / "res"), str(pre / NOISE_DIR), log=lambda *_: None)
    via_310 = postprocess(str(tmp_path / "res"), str(pre / "01_label"), log=lambda *_: None)
    for metric in ("mse", "ssim"):
        np.testing.assert_allclose(via_310["model"][metric]["per_frame"], reference["model"][metric]["per_frame"],
                                   rtol=1e-4, atol=1e-5)
