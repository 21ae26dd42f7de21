"""Metrics against hand-computed values and against skimage; report formats; pictures."""
import math
import os

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from engine import metrics as M
from engine.visualize import save_gif, save_strip_png


def _u8_frames(values):
    """[B, T, H, W, C] float32 frames holding exactly the given 8-bit values / 255."""
    return (np.asarray(values, dtype=np.float32) / np.float32(255)).astype(np.float32)


def _skimage_ssim(pred, true):
    p8, t8 = M.to_uint8(pred), M.to_uint8(true)
    out = np.empty(pred.shape[:2])
    for b in range(pred.shape[0]):
        for t in range(pred.shape[1]):
            out[b, t] = structural_similarity(p8[b, t], t8[b, t], data_range=255,
                                              channel_axis=-1)
    return out


def _moving_square(b, t, h, w, c, rng, shift=1):
    frames = np.zeros((b, t, h, w, c), dtype=np.float32)
    for i in range(b):
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        colour = rng.random(c)
        for j in range(t):
            y, x = (y0 + shift * j) % (h - 4), (x0 + 2 * shift * j) % (w - 4)
            frames[i, j, y:y + 5, x:x + 4] = colour
            # a smooth ramp so that windows see more than two grey levels
            frames[i, j] += np.linspace(0, 0.2, w, dtype=np.float32)[None, :, None]
    return np.clip(frames, 0, 1)


# ---------------------------------------------------------------- hand-computed values

TRUE_2X2 = [[[[[0], [100]], [[200], [255]]]]]      # one sequence, one 2x2 grey frame
PRED_2X2 = [[[[[10], [100]], [[180], [255]]]]]      # errors of 10 and 20 grey levels


def test_mse_mae_psnr_by_hand():
    true, pred = _u8_frames(TRUE_2X2), _u8_frames(PRED_2X2)
    assert M.frame_mse(pred, true).shape == (1, 1)
    assert M.frame_mse(pred, true)[0, 0] == pytest.approx((10 ** 2 + 20 ** 2) / 255 ** 2, rel=1e-6)
    assert M.frame_mae(pred, true)[0, 0] == pytest.approx((10 + 20) / 255, rel=1e-6)
    # 8-bit mse = (100 + 400) / 4 = 125
    expected = 20 * math.log10(255) - 10 * math.log10(125)
    assert M.frame_psnr(pred, true)[0, 0] == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(27.1617, abs=1e-4)


def test_mse_is_a_sum_over_pixels_and_channels():
    true = np.zeros((2, 3, 4, 5, 3), dtype=np.float32)
    pred = np.full_like(true, 0.5)
    np.testing.assert_allclose(M.frame_mse(pred, true), np.full((2, 3), 0.25 * 4 * 5 * 3))
    np.testing.assert_allclose(M.frame_mae(pred, true), np.full((2, 3), 0.5 * 4 * 5 * 3))


def test_psnr_of_a_perfect_frame_is_capped():
    frames = _u8_frames(TRUE_2X2)
    assert M.frame_psnr(frames, frames)[0, 0] == pytest.approx(M.PSNR_CAP)
    assert M.PSNR_CAP == pytest.approx(148.1308, abs=1e-4)


def test_to_uint8_rounds_back_every_stored_value():
    assert M.to_uint8(np.float32(254 / 255)) == 254
    u = np.arange(256)
    np.testing.assert_array_equal(M.to_uint8((u / 255).astype(np.float32)), u)
    # thuml's truncation loses some values that went through a reciprocal; rounding does not
    approx = u * (1 / 255)
    assert (np.uint8(approx * 255) != u).any()
    np.testing.assert_array_equal(M.to_uint8(approx), u)
    np.testing.assert_array_equal(M.to_uint8(np.array([-0.3, 1.7, 0.5 / 255])), [0, 255, 0])


def test_out_of_range_predictions_are_clipped():
    rng = np.random.default_rng(0)
    true = rng.random((2, 2, 8, 8, 1), dtype=np.float32)
    pred = (rng.random(true.shape, dtype=np.float32) * 2 - 0.5)   # in [-0.5, 1.5)
    assert pred.min() < 0 and pred.max() > 1
    clipped = np.clip(pred, 0, 1)
    got, want = M.compute_frame_metrics(pred, true), M.compute_frame_metrics(clipped, true)
    for k in M.METRIC_NAMES:
        np.testing.assert_array_equal(got[k], want[k])
    d = clipped.astype(np.float64) - true
    np.testing.assert_allclose(got['mse'], (d * d).sum(axis=(2, 3, 4)), rtol=1e-12)


def test_nan_and_bad_shapes_are_refused():
    true = np.zeros((1, 1, 8, 8, 1), dtype=np.float32)
    pred = true.copy()
    pred[0, 0, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match='NaN'):
        M.compute_frame_metrics(pred, true)
    with pytest.raises(ValueError, match='differs'):
        M.frame_mse(true[:, :, :4], true)
    with pytest.raises(ValueError, match=r'\[B, T, H, W, C\]'):
        M.frame_mse(true[0], true[0])
    with pytest.raises(ValueError, match='7x7'):
        M.frame_ssim(true[:, :, :6], true[:, :, :6])


# ------------------------------------------------------------------- SSIM vs skimage

@pytest.mark.parametrize('shape', [(2, 3, 16, 16, 1), (2, 2, 16, 16, 3), (1, 2, 7, 7, 1),
                                   (2, 2, 9, 13, 2), (1, 1, 64, 64, 1)])
def test_ssim_matches_skimage_on_random_frames(shape):
    rng = np.random.default_rng(1)
    true = rng.random(shape, dtype=np.float32)
    pred = np.clip(true + 0.2 * rng.standard_normal(shape), -0.2, 1.2).astype(np.float32)
    np.testing.assert_allclose(M.frame_ssim(pred, true), _skimage_ssim(pred, true),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize('c', [1, 3])
def test_ssim_matches_skimage_on_structured_frames(c):
    rng = np.random.default_rng(2)
    true = _moving_square(3, 4, 20, 24, c, rng)
    moved = _moving_square(3, 4, 20, 24, c, np.random.default_rng(2), shift=2)
    cases = [moved, np.zeros_like(true), np.ones_like(true), np.full_like(true, 0.5),
             np.roll(true, 1, axis=3)]
    for pred in cases:
        np.testing.assert_allclose(M.frame_ssim(pred, true), _skimage_ssim(pred, true),
                                   rtol=0, atol=1e-6)


def test_ssim_of_identical_frames_is_one():
    rng = np.random.default_rng(3)
    for frames in (rng.random((2, 2, 12, 12, 3), dtype=np.float32),
                   np.zeros((1, 2, 8, 8, 1), dtype=np.float32),
                   _moving_square(2, 3, 16, 16, 1, rng)):
        np.testing.assert_allclose(M.frame_ssim(frames, frames), 1.0, rtol=0, atol=1e-12)


def test_ssim_does_not_depend_on_chunking(monkeypatch):
    rng = np.random.default_rng(4)
    true = rng.random((5, 3, 10, 11, 1), dtype=np.float32)
    pred = rng.random(true.shape, dtype=np.float32)
    whole = M.compute_frame_metrics(pred, true)
    # odd chunk sizes, so that chunks end mid-sequence and the last one is short
    monkeypatch.setattr(M, '_SSIM_CHUNK_ELEMENTS', 2 * 110 + 1)
    monkeypatch.setattr(M, '_BATCH_CHUNK_ELEMENTS', 2 * 330 + 1)
    chunked = M.compute_frame_metrics(pred, true)
    for k in M.METRIC_NAMES:
        np.testing.assert_allclose(chunked[k], whole[k], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(chunked['ssim'], _skimage_ssim(pred, true), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------- accumulation

def test_frame_metrics_over_batches_equals_one_shot():
    rng = np.random.default_rng(5)
    true = rng.random((8, 4, 12, 12, 1), dtype=np.float32)
    pred = rng.random(true.shape, dtype=np.float32)
    acc = M.FrameMetrics()
    acc.update(pred[:3], true[:3])
    acc.update(pred[3:], true[3:])
    split, whole = acc.summary(), M.summarize(pred, true)
    assert split['num_sequences'] == whole['num_sequences'] == 8
    per_seq = M.compute_frame_metrics(pred, true)
    for k in M.METRIC_NAMES:
        np.testing.assert_allclose(split[k]['per_frame'], whole[k]['per_frame'], rtol=1e-12)
        np.testing.assert_allclose(whole[k]['per_frame'], per_seq[k].mean(axis=0), rtol=1e-12)
        assert split[k]['mean'] == pytest.approx(np.mean(whole[k]['per_frame']), rel=1e-12)
        assert len(split[k]['per_frame']) == 4
        assert all(type(v) is float for v in split[k]['per_frame'])


def test_frame_metrics_refuses_mixed_lengths_and_empty_summary():
    acc = M.FrameMetrics()
    with pytest.raises(ValueError, match='no batches'):
        acc.summary()
    frames = np.zeros((1, 3, 8, 8, 1), dtype=np.float32)
    acc.update(frames, frames)
    with pytest.raises(ValueError, match='predicted frames'):
        acc.update(frames[:, :2], frames[:, :2])


# ------------------------------------------------------------------------ baselines

def test_baselines():
    rng = np.random.default_rng(6)
    inputs = rng.random((2, 5, 8, 8, 1), dtype=np.float32)
    copy = M.copy_last_baseline(inputs, 3)
    assert copy.shape == (2, 3, 8, 8, 1)
    for t in range(3):
        np.testing.assert_array_equal(copy[:, t], inputs[:, -1])
    black = M.all_black_baseline((2, 3, 8, 8, 1))
    assert black.shape == (2, 3, 8, 8, 1) and not black.any()
    # a static scene is predicted perfectly by copying the last frame
    static = np.repeat(inputs[:, :1], 8, axis=1)
    s = M.summarize(M.copy_last_baseline(static[:, :5], 3), static[:, 5:])
    assert s['mse']['mean'] == 0 and s['ssim']['mean'] == pytest.approx(1.0)


# -------------------------------------------------------------------------- reports

def _summary(t=3, seed=7):
    rng = np.random.default_rng(seed)
    true = rng.random((2, t, 8, 8, 1), dtype=np.float32)
    return M.summarize(rng.random(true.shape, dtype=np.float32), true)


def test_format_report_lines():
    s = _summary(t=3)
    lines = M.format_report(s).split('\n')
    assert len(lines) == 4 * (1 + 3)
    for i, k in enumerate(M.METRIC_NAMES):
        head = lines[i * 4]
        assert head.startswith('%s per frame: ' % k)
        assert float(head.split(': ')[1]) == pytest.approx(s[k]['mean'], abs=1e-4)
        for j, line in enumerate(lines[i * 4 + 1:i * 4 + 4]):
            assert line.startswith('    ') and not line.startswith('     ')
            assert float(line) == pytest.approx(s[k]['per_frame'][j], abs=1e-4)
    assert lines[0].startswith('mse per frame: ')
    assert M.format_report(s, title='model X').split('\n')[0] == 'model X'


def test_format_comparison_table():
    named = {'model': _summary(seed=1), 'copy-last': _summary(seed=2),
             'a-rather-long-baseline-name': _summary(seed=3)}
    table = M.format_comparison(named)
    lines = table.split('\n')
    # header, sub-header, rule, 3 frames, rule, mean
    assert len(lines) == 8
    assert len({len(line) for line in lines}) == 1, table
    for name in named:
        assert name in lines[0]
    assert lines[1].count('MSE') == 3 and lines[1].count('SSIM') == 3
    assert [line.split('|')[0].strip() for line in lines[3:6]] == ['1', '2', '3']
    assert lines[-1].split('|')[0].strip() == 'mean'
    assert ('%.4f' % named['model']['mse']['mean']) in lines[-1]
    assert ('%.6f' % named['copy-last']['ssim']['per_frame'][1]) in lines[4]
    assert M.format_comparison(list(named.items())) == table


# ------------------------------------------------------------------------- pictures

def _clip_frames(t, h, w, c, seed):
    return np.random.default_rng(seed).random((t, h, w, c), dtype=np.float32)


@pytest.mark.parametrize('c,mode', [(1, 'L'), (3, 'RGB')])
def test_save_strip_png(tmp_path, c, mode):
    inputs, truth = _clip_frames(3, 8, 6, c, 0), _clip_frames(4, 8, 6, c, 1)
    pred = _clip_frames(4, 8, 6, c, 2) * 1.4 - 0.2      # out of range on purpose
    path = tmp_path / 'new' / 'dir' / 'strip.png'
    save_strip_png(inputs, truth, pred, path, scale=2)
    assert os.listdir(path.parent) == ['strip.png']      # no temporary file left over
    from engine.visualize import LABEL_WIDTH, NUMBER_BAND, strip_cell
    with Image.open(path) as im:
        assert im.format == 'PNG' and im.mode == mode
        # a label column on the left, a band of frame numbers above the input and truth rows
        assert im.size == (LABEL_WIDTH + 4 * 12 + 3 * 2, 2 * NUMBER_BAND + 3 * 16 + 2 * 2)
        a = np.asarray(im).reshape(im.size[1], im.size[0], c)
    up = lambda f: np.repeat(np.repeat(M.to_uint8(f), 2, axis=0), 2, axis=1)

    def cell(row, col):
        top, left = strip_cell(row, col, 3, 8, 6, 2)
        return a[top:top + 16, left:left + 12]
    np.testing.assert_array_equal(cell(0, 0), up(inputs[0]))
    np.testing.assert_array_equal(cell(1, 1), up(truth[1]))
    np.testing.assert_array_equal(cell(2, 3), up(pred[3]))
    assert (cell(0, 3) == 255).all()                     # blank cell after the inputs
    # the labels and the frame numbers are drawn (dark pixels) in their margins
    assert (a[:, :LABEL_WIDTH] < 128).any() and (a[:NUMBER_BAND, LABEL_WIDTH:] < 128).any()
    top_truth = strip_cell(1, 0, 3, 8, 6, 2)[0]
    assert (a[top_truth - NUMBER_BAND:top_truth, LABEL_WIDTH:] < 128).any()


@pytest.mark.parametrize('c', [1, 3])
def test_save_gif(tmp_path, c):
    inputs, truth, pred = (_clip_frames(3, 8, 6, c, 0), _clip_frames(4, 8, 6, c, 1),
                           _clip_frames(4, 8, 6, c, 2))
    path = tmp_path / 'sub' / 'clip.gif'
    save_gif(inputs, truth, pred, str(path), duration_ms=150, scale=2)
    assert os.listdir(path.parent) == ['clip.gif']
    with Image.open(path) as im:
        assert im.format == 'GIF'
        assert im.n_frames == 7
        assert im.size == (2 * 12 + 2, 16 + 2 + 3)
        assert im.info.get('loop') == 0
        assert im.info.get('duration') == 150
        if c == 1:
            im.seek(4)     # second predicted frame: truth left, prediction right
            a = np.asarray(im.convert('L'))
            np.testing.assert_array_equal(a[:16:2, :12:2], M.to_uint8(truth[1])[..., 0])
            np.testing.assert_array_equal(a[:16:2, 14::2], M.to_uint8(pred[1])[..., 0])


def test_pictures_refuse_mismatched_frames(tmp_path):
    a = _clip_frames(2, 8, 8, 1, 0)
    with pytest.raises(ValueError):
        save_strip_png(a, a, _clip_frames(2, 8, 9, 1, 0), tmp_path / 'x.png')
    with pytest.raises(ValueError):
        save_gif(a, a, a[:1], tmp_path / 'x.gif')
    assert not os.listdir(tmp_path)


def test_sample_metrics_pick_by_frame_average():
    """Best / worst follow SRVP's test.py: per sequence the sample with the best / worst
    frame-averaged metric, kept whole (its per-frame values), then averaged over sequences."""
    from engine.metrics import SampleMetrics, compute_frame_metrics
    rng = np.random.default_rng(3)
    truth = rng.random((2, 2, 8, 8, 1)).astype(np.float32)
    # sample 0: frame 1 exact, frame 2 far off; sample 1: both frames slightly off
    s0 = truth.copy()
    s0[:, 1] = 1.0 - truth[:, 1]
    s1 = np.clip(truth + 0.05, 0, 1)
    m = SampleMetrics()
    m.update(np.stack([s0[:1], s1[:1]]), truth[:1])
    m.update(np.stack([s1[1:], s0[1:]]), truth[1:])  # sequence 2 sees them in the other order
    out = m.summary()
    assert out['num_samples'] == 2 and out['num_sequences'] == 2
    mse0, mse1 = (compute_frame_metrics(s, truth, names=('mse',))['mse'] for s in (s0, s1))
    # sample 1 wins on average MSE for both sequences although sample 0 wins frame 1
    assert mse1.mean(1).max() < mse0.mean(1).min() and (mse0[:, 0] < mse1[:, 0]).all()
    np.testing.assert_allclose(out['mse']['best']['per_frame'], mse1.mean(0))
    np.testing.assert_allclose(out['mse']['worst']['per_frame'], mse0.mean(0))
    np.testing.assert_allclose(out['mse']['mean']['per_frame'], (mse0 + mse1).mean(0) / 2)
    for k in ('psnr', 'ssim'):
        assert out[k]['best']['mean'] >= out[k]['mean']['mean'] >= out[k]['worst']['mean']
