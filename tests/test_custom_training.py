"""Your own data through the whole zoo: float, 2-channel, non-square clips normalized at
conversion go through train -> eval (metrics also in the data's units) -> export -> ONNX
Runtime -> the 310 protocol -> infer.py; and a short run on RGB non-square clips of moving
coloured squares beats copy-last-frame and all-black."""
import json

import numpy as np
import pytest

from data_provider import mindrecord as mr
from data_provider.custom import build_custom
from engine.config import load_config

# 2 channels, 24x32, patch 4 -> 6x8x32; 4 -> 4 frames
FLOAT = ["--dataset=custom", "--model_name=convlstm", "--num_hidden=8", "--filter_size=3", "--patch_size=4",
         "--img_height=24", "--img_width=32", "--img_channel=2", "--input_length=4", "--seq_length=8",
         "--batch_size=4", "--eval_batch_size=4", "--reverse_input=false", "--device_target=CPU",
         "--normalize=standard", "--test_split=0.25", "--log_interval=1000"]


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def float_data(tmp_path_factory):
    """Flows of two channels in their own units (around 300 and -40), as [N, T, C, H, W]."""
    root = tmp_path_factory.mktemp("float")
    rng = np.random.default_rng(0)
    t = np.arange(8)[None, :, None, None, None]
    waves = np.sin(0.7 * t + np.linspace(0, 3, 32)[None, None, None, None, :] + rng.random((16, 1, 1, 1, 1)) * 6)
    clips = np.concatenate([300 + 50 * waves, -40 + 5 * waves], axis=2).repeat(24, axis=3).astype(np.float32)
    np.save(root / "flows.npy", clips)
    cfg = load_config(FLOAT + [f"--dataset_path={root / 'flows.npy'}", f"--mindrecord_dir={root / 'mr'}"])
    return {"root": root, "clips": clips, **build_custom(cfg, log=quiet)}


def test_float_data_train_eval_export_310_infer(ms_context, float_data, tmp_path):
    from engine.evaluator import evaluate
    from engine.inference import export_model
    from engine.protocol310 import postprocess, preprocess, run_python
    from engine.trainer import train
    import infer
    cfg = load_config(FLOAT + [f"--train_mindrecord={float_data['train']}", f"--test_mindrecord={float_data['test']}",
                               f"--save_dir={tmp_path / 'ckpt'}", f"--eval_dir={tmp_path / 'eval'}",
                               "--max_iterations=20", "--snapshot_interval=20"])
    cfg.pretrained_model = train(cfg, log=quiet)["checkpoint"]
    cfg.save_predictions = 1
    summaries = evaluate(cfg, log=quiet)
    # two channels: one block of rows per channel in the strip
    from PIL import Image
    from engine.visualize import save_strip_png
    one = Image.open(save_strip_png(*(np.zeros((4, 24, 32, 1)),) * 3, str(tmp_path / "one.png")))
    both = Image.open(tmp_path / "eval" / "predictions" / "convlstm-20" / "seq_0000.png")
    assert both.size == (one.size[0], 2 * one.size[1] + 2)  # two labelled strips, a gap between
    with open(tmp_path / "eval" / "metrics.json", encoding="utf-8") as f:
        saved = json.load(f)
    description = json.load(open(float_data["test"] + ".json", encoding="utf-8"))["normalize"]
    assert saved["data_units"]["method"] == "standard"
    data = saved["metrics_data_units"]
    # the all-black baseline predicts the training minimum: its error in the data's units
    # is the same frames' error in range-scaled units times the range squared, per channel;
    # with two channels of different ranges, check against a direct computation instead
    test = mr.read_sequences(float_data["test"])
    mean, std = np.asarray(description["mean"]), np.asarray(description["std"])
    truth = test[:, 4:].astype(np.float64) * std + mean
    low = np.asarray(description["min"])
    black = np.sum((truth - low) ** 2, axis=(2, 3, 4)).mean(0)
    np.testing.assert_allclose(data["all-black"]["mse"]["per_frame"], black, rtol=1e-5)
    copy = np.sum((truth - (test[:, 3:4].astype(np.float64) * std + mean)) ** 2, axis=(2, 3, 4)).mean(0)
    np.testing.assert_allclose(data["copy-last"]["mse"]["per_frame"], copy, rtol=1e-4)
    rmse = np.sqrt(np.mean((truth - low) ** 2, axis=(2, 3, 4))).mean(0)
    np.testing.assert_allclose(data["all-black"]["rmse"]["per_frame"], rmse, rtol=1e-5)

    # export -> ONNX Runtime and the 310 protocol give eval's numbers, in both units
    cfg.onnx_path = export_model(cfg, cfg.pretrained_model, "ONNX", 4, str(tmp_path / "m4"), "CPU")
    via_onnx = evaluate(cfg, log=quiet, model_key="onnx_path", log_name="log_eval_onnx.txt")
    np.testing.assert_allclose(via_onnx["model"]["mse"]["per_frame"], summaries["model"]["mse"]["per_frame"],
                               rtol=1e-3)
    mindir = export_model(cfg, cfg.pretrained_model, "MINDIR", 1, str(tmp_path / "m1"), "CPU")
    n = preprocess(cfg, cfg.test_mindrecord, str(tmp_path / "pre"), log=quiet)
    run_python(mindir, str(tmp_path / "pre" / "00_data"), str(tmp_path / "res"), log=quiet)
    lines = []
    via_310 = postprocess(str(tmp_path / "res"), str(tmp_path / "pre" / "01_label"), log=lines.append)
    for metric in ("mse", "ssim", "psnr"):
        np.testing.assert_allclose(via_310["model"][metric]["per_frame"], summaries["model"][metric]["per_frame"],
                                   rtol=1e-5, atol=1e-6)
    assert any("in the data's units" in l for l in lines)
    first = np.load(tmp_path / "res" / "seq_00000_0.npy")
    assert first.shape == (4, 24, 32, 2) and abs(first[..., 0].mean() - 300) < 80 and abs(first[..., 1].mean() + 40) < 10
    assert n == len(test)

    # infer.py: a clip in the data's units in, predictions in them out
    np.save(tmp_path / "clip.npy", float_data["clips"][0, :4].transpose(0, 2, 3, 1))
    cfg.input_clip = str(tmp_path / "clip.npy")
    out = infer.infer(cfg, str(tmp_path / "infer"), log=quiet)
    pred = np.load(tmp_path / "infer" / "prediction.npy")
    assert pred.shape == (4, 24, 32, 2)
    assert low[0] - 1e-3 <= pred[..., 0].min() and pred[..., 0].max() <= description["max"][0] + 1e-3
    assert out["pred"].shape == (4, 24, 32, 2)


def moving_squares(count, t, h, w, seed):
    """RGB clips: a coloured 10x10 square moving at a constant velocity, bouncing."""
    rng = np.random.default_rng(seed)
    clips = np.zeros((count, t, h, w, 3), np.uint8)
    colours = np.array([(230, 40, 40), (40, 200, 60), (50, 80, 240), (240, 220, 40)])
    for i in range(count):
        y, x = rng.integers(0, h - 10), rng.integers(0, w - 10)
        vy, vx = rng.choice([-3, -2, 2, 3]), rng.choice([-3, -2, 2, 3])
        colour = colours[rng.integers(0, 4)]
        for k in range(t):
            clips[i, k, y:y + 10, x:x + 10] = colour
            if not 0 <= y + vy <= h - 10:
                vy = -vy
            if not 0 <= x + vx <= w - 10:
                vx = -vx
            y, x = y + vy, x + vx
    return clips


def test_rgb_non_square_clips_learn_beyond_both_baselines(ms_context, tmp_path):
    from engine.evaluator import evaluate
    from engine.trainer import train
    np.save(tmp_path / "train.npy", moving_squares(300, 10, 48, 64, 0))
    np.save(tmp_path / "test.npy", moving_squares(32, 10, 48, 64, 1))
    args = ["--dataset=custom", "--model_name=convlstm", "--num_hidden=32,32", "--filter_size=3", "--patch_size=8",
            "--img_height=48", "--img_width=64", "--img_channel=3", "--input_length=5", "--seq_length=10",
            "--batch_size=8", "--eval_batch_size=8", "--reverse_input=false", "--scheduled_sampling=false",
            "--lr=0.003", "--device_target=CPU", "--log_interval=1000", f"--mindrecord_dir={tmp_path / 'mr'}",
            f"--dataset_path={tmp_path / 'train.npy'}", f"--test_path={tmp_path / 'test.npy'}",
            "--array_layout=NTHWC"]
    data = build_custom(load_config(args), log=quiet)
    assert mr.mindrecord_info(data["train"])["frame_shape"] == (10, 48, 64, 3)
    cfg = load_config(args + [f"--train_mindrecord={data['train']}", f"--test_mindrecord={data['test']}",
                              f"--save_dir={tmp_path / 'ckpt'}", f"--eval_dir={tmp_path / 'eval'}",
                              "--max_iterations=250", "--snapshot_interval=250"])
    cfg.pretrained_model = train(cfg, log=quiet)["checkpoint"]
    summaries = evaluate(cfg, log=quiet)
    model, copy, black = (summaries[k]["mse"]["mean"] for k in ("model", "copy-last", "all-black"))
    assert model < 0.8 * copy and model < 0.8 * black, (model, copy, black)


def test_colormaps_and_pictures_of_single_channel_float_data(tmp_path):
    from PIL import Image
    from engine.colormaps import COLORMAPS, apply_colormap, colour_bar, displayable
    from engine.evaluator import save_pictures
    ends = apply_colormap(np.array([[0.0], [1.0], [-3.0], [7.0]]), "radar")
    np.testing.assert_allclose(ends * 255, np.asarray(COLORMAPS["radar"])[[0, -1, 0, -1]], atol=1e-3)
    mid = apply_colormap(np.array([0.5]), "grey")
    np.testing.assert_allclose(mid, [0.5, 0.5, 0.5], atol=1e-6)
    assert [p.shape[-1] for p in displayable(np.zeros((2, 8, 8, 4)), "viridis")] == [1, 1, 1, 1]
    assert displayable(np.zeros((2, 8, 8, 1)), None)[0].shape[-1] == 1
    field = np.random.default_rng(0).random((4, 24, 32, 1)).astype(np.float32)
    save_pictures(field, field, field, str(tmp_path / "seq"), "viridis")
    assert Image.open(tmp_path / "seq.png").mode == "RGB" and (tmp_path / "seq.gif").is_file()
    bar = Image.open(colour_bar(str(tmp_path / "bar.png"), "radar", 0.0, 70.5, label="dBZ"))
    assert bar.mode == "RGB" and bar.size[0] > 256
