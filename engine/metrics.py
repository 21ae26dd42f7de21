"""Per-frame metrics for video prediction: the project's one metrics module.

Inputs are numpy float arrays of unpatched frames in [0, 1], shape [B, T, H, W, C]
(B sequences, T predicted frames).  Every metric is computed per sequence and per
predicted frame, then averaged over sequences, giving one value per predicted step; the
single "mean" number is the mean of those per-step values.

Conventions (they match thuml/predrnn-pytorch, whose numbers the seeds and papers quote):

- Clipping: predictions and ground truth are clipped to [0, 1] before any metric, as
  thuml does with ``np.maximum(gx, 0); np.minimum(gx, 1)``.  NaN in either array is
  refused (a diverged model must not be reported with made-up numbers).
- 8-bit frames: ``to_uint8(x) = round(clip(x, 0, 1) * 255)`` (round half to even).  thuml
  truncates with ``np.uint8(x * 255)``; we round because a stored uint8 value u comes
  back as a float only close to u/255, and truncation turns any value a hair below u into
  u-1 (e.g. u * (1/255) * 255 in float64 is 32.99999... for u = 33), so truncation would
  not even give the stored ground-truth frames back.  Rounding does for every u.
- MSE per frame: the SUM over the frame's H*W*C pixels of the squared error on [0, 1]
  floats (not the mean), accumulated in float64.  This is the number the seeds, thuml and
  OpenSTL report as "MSE" for Moving MNIST.
- MAE per frame: the same sum with absolute error (seed 001 calls it FMAE).
- PSNR per frame (thuml convention, on 8-bit frames, not OpenSTL's [0, 1] floats):
  ``mse8 = mean over pixels of (int(to_uint8(pred)) - int(to_uint8(true)))**2`` and
  ``psnr = 20*log10(255) - 10*log10(mse8)``.  A perfect frame (mse8 == 0) would be +inf;
  mse8 is floored at ``PSNR_MSE_FLOOR`` = 1e-10, which caps PSNR at ``PSNR_CAP`` ~= 148.13 dB.
- SSIM per frame: ``skimage.metrics.structural_similarity`` on the two 8-bit frames with
  data_range=255 and its defaults: 7x7 uniform window ('reflect' borders), K1=0.01,
  K2=0.03, sample covariance (N/(N-1)), mean of the SSIM map over the valid area (3 pixels
  cropped on each side), computed per channel and averaged over channels.  ``frame_ssim``
  is a vectorised re-implementation of that formula over a whole batch (exact integer
  window sums over the valid area, which is all that survives skimage's crop); it equals
  the per-frame skimage call to float64 rounding (tested to 1e-6, observed ~1e-15) and
  is about 3-4x faster than calling skimage frame by frame (64x64 and 128x128 frames).
- Averaging: each metric is averaged over sequences per predicted frame (float64 sums);
  "mean" is the mean over predicted frames of those averages.
"""
import math
from collections.abc import Mapping

import numpy as np

METRIC_NAMES = ('mse', 'mae', 'ssim', 'psnr')

PSNR_MSE_FLOOR = 1e-10
PSNR_CAP = 20.0 * math.log10(255.0) - 10.0 * math.log10(PSNR_MSE_FLOOR)

SSIM_WIN = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# Pixels per SSIM work unit: small enough that its dozen temporaries stay in the CPU cache
# (measured: 2**17 was fastest, 2**20 is 3x slower), large enough to amortise numpy calls.
_SSIM_CHUNK_ELEMENTS = 1 << 17
# Pixels per slice of a batch converted to float64 at once: bounds scratch memory, and
# is several SSIM work units so that those stay full-sized.
_BATCH_CHUNK_ELEMENTS = 1 << 20

# Printf formats shared by format_report and format_comparison, so that a number reads
# the same wherever it is printed.
_FORMATS = {'mse': '%.4f', 'mae': '%.4f', 'ssim': '%.6f', 'psnr': '%.4f'}


def _check_pair(pred, true):
    pred = np.asarray(pred)
    true = np.asarray(true)
    if pred.shape != true.shape:
        raise ValueError('prediction shape %s differs from ground truth shape %s'
                         % (pred.shape, true.shape))
    if pred.ndim != 5:
        raise ValueError('metrics expect frames shaped [B, T, H, W, C], got shape %s'
                         % (pred.shape,))
    return pred, true


def _clip64(x, what):
    """Clipped float64 copy (float64 so that error sums are not limited by float32
    rounding); refuses NaN, which clipping would let through."""
    out = np.clip(x, 0.0, 1.0, out=np.empty(np.shape(x), dtype=np.float64))
    # One summation pass is cheaper than isnan().any(), and after clipping no inf is
    # left to turn the sum into NaN.
    if np.isnan(out.sum()):
        raise ValueError('%s contain NaN (a diverged or unloaded model?)' % what)
    return out


def _clipped_to_uint8(x64):
    scaled = np.multiply(x64, 255.0, out=np.empty_like(x64))
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


def to_uint8(x):
    """Frames in [0, 1] (any float array) -> uint8: clip, scale by 255, round to nearest."""
    return _clipped_to_uint8(_clip64(np.asarray(x), 'frames'))


def _mse(p64, t64):
    d = p64 - t64
    return np.sum(d * d, axis=(2, 3, 4))


def _mae(p64, t64):
    return np.sum(np.abs(p64 - t64), axis=(2, 3, 4))


def _psnr(p8, t8):
    d = p8.astype(np.int32) - t8.astype(np.int32)
    mse8 = np.mean((d * d).astype(np.float64), axis=(2, 3, 4))
    return 20.0 * math.log10(255.0) - 10.0 * np.log10(np.maximum(mse8, PSNR_MSE_FLOOR))


def _window_sum7(a, step):
    """Flat sums a[k] + a[k+step] + ... + a[k+6*step]; the result is 6*step shorter.

    Summing along the flattened array keeps every numpy operation contiguous (a 2-D
    window over short rows spends most of its time in per-row overhead).  Sums whose
    window runs past a row or frame end are garbage but are never read.
    """
    n = a.shape[0]
    s2 = a[:n - step] + a[step:]
    s4 = s2[:n - 3 * step] + s2[2 * step:]
    s7 = s4[:n - 6 * step]
    s7 += s2[4 * step:n - 2 * step]
    s7 += a[6 * step:]
    return s7


def _ssim_uint8_frames(x8, y8):
    """skimage's default SSIM on a stack of 8-bit frames [N, H, W, C] -> [N].

    skimage filters with 'reflect' borders and then crops (7-1)//2 pixels on each side,
    so only windows lying wholly inside the frame reach the mean: those are all that is
    computed here.  Window sums are exact in int32 (at most 49 * 255**2), and the
    variances are formed from them before any rounding, so the result is skimage's
    formula with less rounding error, not a different formula:
      SSIM = (2 Sx Sy + C1 N^2) (2 (N Sxy - Sx Sy) + C2 N (N-1))
             / ((Sx^2 + Sy^2 + C1 N^2) ((N Sxx - Sx^2) + (N Syy - Sy^2) + C2 N (N-1)))
    with S* the window sums and N = 49, which is skimage's expression with
    mean = S/N and sample covariance (N Sxy - Sx Sy) / (N (N-1)) multiplied out.
    """
    n, h, w, c = x8.shape
    size = x8.size
    x = x8.reshape(-1).astype(np.int32)
    y = y8.reshape(-1).astype(np.int32)

    def box(a):
        return _window_sum7(_window_sum7(a, c), w * c)

    sx, sy = box(x), box(y)
    sxx, syy, sxy = box(x * x), box(y * y), box(x * y)
    npx = SSIM_WIN * SSIM_WIN
    k1 = (SSIM_K1 * 255.0) ** 2 * npx * npx
    k2 = (SSIM_K2 * 255.0) ** 2 * npx * (npx - 1)
    # In-place integer updates: every intermediate stays below 2**31 (largest is
    # N * Sxx + N * Syy <= 2 * 49 * 49 * 255**2 ~ 3.1e8), so they are exact.
    sxsy = sx * sy
    sx *= sx
    sy *= sy
    num1 = 2.0 * sxsy + k1
    sxy *= npx
    sxy -= sxsy
    num2 = 2.0 * sxy + k2
    den1 = (sx + sy) + k1
    sxx *= npx
    sxx -= sx
    syy *= npx
    syy -= sy
    sxx += syy
    den2 = sxx + k2
    num1 *= num2
    den1 *= den2
    # The valid outputs are exactly the first len(num1) flat positions of an [N, H, W, C]
    # array laid out like the input: park them there and slice the valid block out.
    ssim_map = np.empty(size, dtype=np.float64)
    np.divide(num1, den1, out=ssim_map[:num1.shape[0]])
    pad = (SSIM_WIN - 1) // 2
    valid = ssim_map.reshape(n, h, w, c)[:, :h - 2 * pad, :w - 2 * pad, :]
    return valid.mean(axis=(1, 2), dtype=np.float64).mean(axis=1)


def _ssim(p8, t8):
    b, t, h, w, c = p8.shape
    if h < SSIM_WIN or w < SSIM_WIN:
        raise ValueError('SSIM needs frames of at least %dx%d pixels, got %dx%d'
                         % (SSIM_WIN, SSIM_WIN, h, w))
    x8 = p8.reshape(b * t, h, w, c)
    y8 = t8.reshape(b * t, h, w, c)
    out = np.empty(b * t, dtype=np.float64)
    step = max(1, _SSIM_CHUNK_ELEMENTS // (h * w * c))
    for start in range(0, b * t, step):
        stop = min(start + step, b * t)
        out[start:stop] = _ssim_uint8_frames(x8[start:stop], y8[start:stop])
    return out.reshape(b, t)


def frame_mse(pred, true):
    """Sum over each frame's pixels of the squared error on clipped [0, 1] floats: [B, T]."""
    return compute_frame_metrics(pred, true, names=('mse',))['mse']


def frame_mae(pred, true):
    """Sum over each frame's pixels of the absolute error on clipped [0, 1] floats: [B, T]."""
    return compute_frame_metrics(pred, true, names=('mae',))['mae']


def frame_psnr(pred, true):
    """thuml PSNR in dB on 8-bit frames, capped at PSNR_CAP for perfect frames: [B, T]."""
    return compute_frame_metrics(pred, true, names=('psnr',))['psnr']


def frame_ssim(pred, true):
    """SSIM per frame, skimage convention on 8-bit frames, vectorised over the batch: [B, T]."""
    return compute_frame_metrics(pred, true, names=('ssim',))['ssim']


def compute_frame_metrics(pred, true, names=METRIC_NAMES):
    """Per-sequence, per-frame metrics of one batch: {name: float64 array [B, T]}.

    Works through the batch a few sequences at a time, so that even a whole test set in
    one call needs only a bounded amount of float64 scratch memory.
    """
    pred, true = _check_pair(pred, true)
    unknown = set(names) - set(METRIC_NAMES)
    if unknown:
        raise ValueError('unknown metric(s) %s; known: %s' % (sorted(unknown), METRIC_NAMES))
    b = pred.shape[0]
    out = {k: np.empty(pred.shape[:2], dtype=np.float64) for k in names}
    rows = max(1, _BATCH_CHUNK_ELEMENTS // max(1, int(np.prod(pred.shape[1:]))))
    funcs8 = {'ssim': _ssim, 'psnr': _psnr}
    funcs64 = {'mse': _mse, 'mae': _mae}
    for start in range(0, b, rows):
        sl = slice(start, min(start + rows, b))
        p64, t64 = _clip64(pred[sl], 'predictions'), _clip64(true[sl], 'ground truth frames')
        for k in names:
            if k in funcs64:
                out[k][sl] = funcs64[k](p64, t64)
        if any(k in funcs8 for k in names):
            p8, t8 = _clipped_to_uint8(p64), _clipped_to_uint8(t64)
            for k in names:
                if k in funcs8:
                    out[k][sl] = funcs8[k](p8, t8)
    return out


class FrameMetrics:
    """Accumulates per-frame metrics over batches of sequences.

    ``update(pred, true)`` takes [B, T, H, W, C] arrays; batches may differ in B but not
    in T.  ``summary()`` averages over every sequence seen, so splitting a data set into
    batches of any size gives the same result as one call on all of it.
    """

    def __init__(self):
        self.reset()

    def reset(self):
        self._sums = None
        self._count = 0

    @property
    def num_sequences(self):
        return self._count

    def update(self, pred, true):
        """Adds one batch; returns its per-sequence values {name: [B, T]} for logging."""
        values = compute_frame_metrics(pred, true)
        batch_t = values['mse'].shape[1]
        if self._sums is None:
            self._sums = {k: np.zeros(batch_t, dtype=np.float64) for k in METRIC_NAMES}
        elif self._sums['mse'].shape[0] != batch_t:
            raise ValueError('batch has %d predicted frames, earlier batches had %d'
                             % (batch_t, self._sums['mse'].shape[0]))
        for k in METRIC_NAMES:
            self._sums[k] += values[k].sum(axis=0, dtype=np.float64)
        self._count += values['mse'].shape[0]
        return values

    def summary(self):
        """{'mse'|'mae'|'ssim'|'psnr': {'per_frame': [T floats], 'mean': float},
        'num_sequences': int}; per_frame is the mean over sequences, mean the mean of
        per_frame.  Plain Python numbers, so the dict can go straight to JSON."""
        if not self._count:
            raise ValueError('no batches were given to FrameMetrics.update')
        out = {}
        for k in METRIC_NAMES:
            per_frame = self._sums[k] / self._count
            out[k] = {'per_frame': [float(v) for v in per_frame],
                      'mean': float(per_frame.mean())}
        out['num_sequences'] = int(self._count)
        return out


SAMPLE_METRICS = ('psnr', 'ssim', 'mse')
_HIGHER_IS_BETTER = {'psnr': True, 'ssim': True, 'mse': False}


class SampleMetrics:
    """Best / mean / worst over several sampled futures per sequence (stochastic models).

    The protocol of seed 004 (SRVP's test.py): for each test sequence and each metric, the
    best (worst) sample is the one whose metric averaged over the predicted frames is the
    best (worst); its per-frame values are kept, then averaged over sequences. 'mean' is
    the metric averaged over the samples. Metrics follow this module's conventions (PSNR
    and SSIM on 8-bit frames, MSE summed per frame), not SRVP's (PSNR on [0, 1] floats,
    Gaussian-window SSIM).
    """

    def __init__(self):
        self._sums = None
        self._count = 0
        self.num_samples = 0

    def update(self, preds, true):
        """preds [N, B, T, H, W, C] (N samples of the same B sequences), true [B, T, H, W, C]."""
        preds = np.asarray(preds)
        if preds.ndim != np.ndim(true) + 1:
            raise ValueError('preds must be [N, B, T, H, W, C] for truth %s, got %s' % (np.shape(true), preds.shape))
        per = [compute_frame_metrics(p, true, names=SAMPLE_METRICS) for p in preds]
        b, t = per[0]['mse'].shape
        if self._sums is None:
            self._sums = {k: {kind: np.zeros(t) for kind in ('best', 'mean', 'worst')} for k in SAMPLE_METRICS}
            self.num_samples = len(preds)
        rows = np.arange(b)
        for k in SAMPLE_METRICS:
            values = np.stack([v[k] for v in per])  # [N, B, T]
            avg = values.mean(axis=2)
            best = avg.argmax(0) if _HIGHER_IS_BETTER[k] else avg.argmin(0)
            worst = avg.argmin(0) if _HIGHER_IS_BETTER[k] else avg.argmax(0)
            self._sums[k]['best'] += values[best, rows].sum(axis=0)
            self._sums[k]['worst'] += values[worst, rows].sum(axis=0)
            self._sums[k]['mean'] += values.mean(axis=0).sum(axis=0)
        self._count += b

    def summary(self):
        """{metric: {'best'|'mean'|'worst': {'per_frame': [...], 'mean': float}},
        'num_samples': N, 'num_sequences': B}."""
        if not self._count:
            raise ValueError('no batches were given to SampleMetrics.update')
        out = {}
        for k in SAMPLE_METRICS:
            out[k] = {}
            for kind, sums in self._sums[k].items():
                per_frame = sums / self._count
                out[k][kind] = {'per_frame': [float(v) for v in per_frame], 'mean': float(per_frame.mean())}
        out['num_samples'] = int(self.num_samples)
        out['num_sequences'] = int(self._count)
        return out


def format_sample_report(summary):
    """Per predicted frame: best / mean / worst PSNR and SSIM over the samples, then the means."""
    n = len(summary['psnr']['best']['per_frame'])
    head = 'frame | %s | %s' % ('PSNR best / mean / worst'.center(26), 'SSIM best / mean / worst'.center(26))
    lines = ['%d samples per sequence, %d sequences (best/worst: the sample with the best/worst '
             'frame-averaged value per sequence)' % (summary['num_samples'], summary['num_sequences']),
             head, '-' * len(head)]

    def row(label, get):
        p = ' '.join('%8.4f' % get(summary['psnr'][kind]) for kind in ('best', 'mean', 'worst'))
        s = ' '.join('%8.6f' % get(summary['ssim'][kind]) for kind in ('best', 'mean', 'worst'))
        return '%5s | %26s | %26s' % (label, p, s)
    for i in range(n):
        lines.append(row(str(i + 1), lambda m, i=i: m['per_frame'][i]))
    lines.append('-' * len(head))
    lines.append(row('mean', lambda m: m['mean']))
    return '\n'.join(lines)


def summarize(pred, true):
    """One-shot summary of a whole set of predictions, same dict as FrameMetrics.summary."""
    m = FrameMetrics()
    m.update(pred, true)
    return m.summary()


def format_report(summary, title=None):
    """Seed-style text: per metric a line '<name> per frame: <mean>', then one line per
    predicted frame indented by 4 spaces.  Order mse, mae, ssim, psnr."""
    lines = [] if title is None else [str(title)]
    for k in METRIC_NAMES:
        fmt = _FORMATS[k]
        lines.append('%s per frame: %s' % (k, fmt % summary[k]['mean']))
        lines.extend('    ' + fmt % v for v in summary[k]['per_frame'])
    return '\n'.join(lines)


def format_comparison(named_summaries):
    """Fixed-width table of MSE and SSIM per predicted frame (rows 1..T, then 'mean'), one
    pair of columns per named summary, e.g. {'model': s1, 'copy-last': s2, ...}.
    Accepts a mapping or a sequence of (name, summary) pairs; order is kept."""
    if isinstance(named_summaries, Mapping):
        items = list(named_summaries.items())
    else:
        items = [tuple(p) for p in named_summaries]
    if not items:
        raise ValueError('format_comparison needs at least one summary')
    lengths = {len(s['mse']['per_frame']) for _, s in items}
    if len(lengths) != 1:
        raise ValueError('summaries cover different numbers of frames: %s' % sorted(lengths))
    t = lengths.pop()

    mse_w, ssim_w = 11, 9
    pair_w = mse_w + 1 + ssim_w
    widths = [max(pair_w, len(str(name))) for name, _ in items]
    row_label_w = max(5, len(str(t)))

    def row(label, cells):
        return ' | '.join([label.rjust(row_label_w)] + cells)

    header = row('frame', [str(name).center(w) for (name, _), w in zip(items, widths)])
    sub = row('', [('MSE'.rjust(mse_w) + ' ' + 'SSIM'.rjust(ssim_w)).rjust(w)
                   for w in widths])
    rule = '-' * len(header)

    def cells(get):
        out = []
        for (_, s), w in zip(items, widths):
            mse, ssim = get(s['mse']), get(s['ssim'])
            text = ((_FORMATS['mse'] % mse).rjust(mse_w) + ' '
                    + (_FORMATS['ssim'] % ssim).rjust(ssim_w))
            out.append(text.rjust(w))
        return out

    lines = [header, sub, rule]
    for i in range(t):
        lines.append(row(str(i + 1), cells(lambda m, i=i: m['per_frame'][i])))
    lines.append(rule)
    lines.append(row('mean', cells(lambda m: m['mean'])))
    return '\n'.join(lines)


def copy_last_baseline(inputs, out_len):
    """Predicts every future frame as the last input frame: [B, T_in, ...] -> [B, out_len, ...]."""
    inputs = np.asarray(inputs)
    if inputs.ndim < 2 or inputs.shape[1] < 1:
        raise ValueError('copy_last_baseline needs inputs shaped [B, T_in>=1, ...], got %s'
                         % (inputs.shape,))
    return np.repeat(inputs[:, -1:], int(out_len), axis=1)


def all_black_baseline(shape, dtype=np.float32):
    """Predicts every pixel as 0: the score of a model that has learnt nothing."""
    return np.zeros(shape, dtype=dtype)


# ---- metrics in the data's own units (non-8-bit data, engine/data_units.py) ----

DATA_METRIC_NAMES = ('mse', 'mae', 'rmse')
_DATA_FORMATS = {'mse': '%.6g', 'mae': '%.6g', 'rmse': '%.6g'}


def compute_data_metrics(pred, true):
    """Per-sequence, per-frame errors in the data's units, {name: float64 [B, T]}: MSE and
    MAE summed over the frame's pixels and channels (the convention of the 8-bit metrics
    above and of OpenSTL's MSE / MAE), RMSE the root of the mean squared error over them
    (OpenSTL's weather RMSE). No clipping: the caller limits predictions to the data range."""
    pred, true = _check_pair(pred, true)
    d = np.asarray(pred, np.float64) - np.asarray(true, np.float64)
    if np.isnan(d.sum()):
        raise ValueError('predictions or ground truth contain NaN')
    sq = np.sum(d * d, axis=(2, 3, 4))
    return {'mse': sq, 'mae': np.sum(np.abs(d), axis=(2, 3, 4)),
            'rmse': np.sqrt(sq / float(np.prod(pred.shape[2:])))}


class DataMetrics:
    """FrameMetrics for compute_data_metrics: averages over sequences per predicted frame."""

    def __init__(self):
        self._sums = None
        self._count = 0

    def update(self, pred, true):
        values = compute_data_metrics(pred, true)
        if self._sums is None:
            self._sums = {k: np.zeros(values['mse'].shape[1]) for k in DATA_METRIC_NAMES}
        for k in DATA_METRIC_NAMES:
            self._sums[k] += values[k].sum(axis=0)
        self._count += values['mse'].shape[0]
        return values

    def summary(self):
        if not self._count:
            raise ValueError('no batches were given to DataMetrics.update')
        out = {}
        for k in DATA_METRIC_NAMES:
            per_frame = self._sums[k] / self._count
            out[k] = {'per_frame': [float(v) for v in per_frame], 'mean': float(per_frame.mean())}
        out['num_sequences'] = int(self._count)
        return out


def format_data_comparison(named_summaries):
    """Per predicted frame, MSE / MAE / RMSE in the data's units for each named summary."""
    items = list(named_summaries.items()) if isinstance(named_summaries, Mapping) else list(named_summaries)
    t = len(items[0][1]['mse']['per_frame'])
    cell = 12
    header = 'frame | ' + ' | '.join(str(name).center(3 * cell + 2) for name, _ in items)
    sub = '      | ' + ' | '.join(' '.join(k.upper().rjust(cell) for k in DATA_METRIC_NAMES) for _ in items)
    lines = ['in the data\'s units (MSE, MAE: sums over each frame\'s pixels; RMSE: per pixel)', header, sub,
             '-' * len(header)]

    def row(label, get):
        return '%5s | ' % label + ' | '.join(
            ' '.join((_DATA_FORMATS[k] % get(s[k])).rjust(cell) for k in DATA_METRIC_NAMES) for _, s in items)
    for i in range(t):
        lines.append(row(str(i + 1), lambda m, i=i: m['per_frame'][i]))
    lines.append('-' * len(header))
    lines.append(row('mean', lambda m: m['mean']))
    return '\n'.join(lines)
