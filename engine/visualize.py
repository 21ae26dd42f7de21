"""Pictures of predictions for people to look at: a PNG strip and an animated GIF.

Frames are float arrays in [0, 1] shaped [T, H, W, C] with C = 1 (grey) or 3 (RGB); they
go through ``engine.metrics.to_uint8`` (clip, then round), so a picture shows the same
8-bit frames that PSNR and SSIM are computed on.  Pixels are enlarged by an integer
``scale`` with nearest-neighbour repetition, so that no smoothing hides what the model did.
Files are written under a temporary name and renamed, so a reader never sees half a file.
"""
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.metrics import to_uint8

GAP = 2            # pixels between cells and rows
GAP_VALUE = 255    # white gaps and empty cells: Moving MNIST frames are mostly black
BAR_HEIGHT = 3     # GIF time bar
BAR_INPUT = 128    # grey bar while the inputs play ...
BAR_PREDICTED = 255  # ... white once the predicted frames start
ROW_LABELS = ("input", "truth", "prediction")
LABEL_WIDTH = 66   # the left column holding the row labels (Pillow's default font, ~6 px a letter)
NUMBER_BAND = 12   # the band above the input and truth rows holding the frame numbers


def _frames_uint8(frames, what, like=None):
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] not in (1, 3):
        raise ValueError('%s must be shaped [T, H, W, C] with C 1 or 3, got %s' % (what, a.shape))
    if a.shape[0] < 1:
        raise ValueError('%s holds no frames' % what)
    if like is not None and a.shape[1:] != like.shape[1:]:
        raise ValueError('%s frames are %s, expected %s like the inputs'
                         % (what, a.shape[1:], like.shape[1:]))
    return to_uint8(a)


def _enlarge(frame, scale):
    if scale != 1:
        frame = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
    return frame


def _to_image(canvas):
    # Pillow infers 'L' from a 2-D uint8 array and 'RGB' from [H, W, 3].
    return Image.fromarray(canvas[..., 0] if canvas.shape[-1] == 1 else canvas)


def _check_scale(scale):
    if int(scale) != scale or scale < 1:
        raise ValueError('scale must be a positive integer, got %r' % (scale,))
    return int(scale)


def _save_atomic(path, save):
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, '.%s.%d.tmp' % (os.path.basename(path), os.getpid()))
    try:
        with open(tmp, 'wb') as f:
            save(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def strip_cell(row, col, t_in, h, w, scale=2):
    """(top, left) pixel of cell (row, col) in save_strip_png's picture: row 0 the inputs,
    1 the truth, 2 the prediction."""
    ch, cw = h * scale, w * scale
    tops = (NUMBER_BAND, 2 * NUMBER_BAND + ch + GAP, 2 * NUMBER_BAND + 2 * (ch + GAP))
    return tops[row], LABEL_WIDTH + col * (cw + GAP)


def save_strip_png(inputs, truth, pred, path, scale=2):
    """One PNG with three labelled rows of cells: the input frames, the ground-truth future
    and the predicted future, with the frame numbers of the sequence (1 .. T_in above the
    inputs, T_in + 1 .. above the truth; the prediction row shares the truth's columns).
    Rows shorter than the longest stay blank on the right.  Returns path."""
    scale = _check_scale(scale)
    x = _frames_uint8(inputs, 'inputs')
    rows = [x, _frames_uint8(truth, 'truth', like=x), _frames_uint8(pred, 'pred', like=x)]
    if rows[1].shape[0] != rows[2].shape[0]:
        raise ValueError('truth has %d frames but pred has %d'
                         % (rows[1].shape[0], rows[2].shape[0]))
    t_in, h, w, c = x.shape
    ch, cw = h * scale, w * scale
    ncols = max(r.shape[0] for r in rows)
    height = strip_cell(2, 0, t_in, h, w, scale)[0] + ch
    canvas = np.full((height, LABEL_WIDTH + ncols * cw + (ncols - 1) * GAP, c), GAP_VALUE, dtype=np.uint8)
    for i, frames in enumerate(rows):
        for j, frame in enumerate(frames):
            top, left = strip_cell(i, j, t_in, h, w, scale)
            canvas[top:top + ch, left:left + cw] = _enlarge(frame, scale)
    image = _to_image(canvas)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    ink = 0 if c == 1 else (0, 0, 0)
    for i, label in enumerate(ROW_LABELS):
        top, _ = strip_cell(i, 0, t_in, h, w, scale)
        draw.text((2, top + max(0, ch // 2 - 6)), label, fill=ink, font=font)
    for i, first in ((0, 1), (1, t_in + 1)):
        for j in range(rows[i].shape[0]):
            top, left = strip_cell(i, j, t_in, h, w, scale)
            text = str(first + j)
            draw.text((left + (cw - draw.textlength(text, font=font)) / 2, top - NUMBER_BAND), text,
                      fill=ink, font=font)
    return _save_atomic(path, lambda f: image.save(f, format='PNG'))


def save_gif(inputs, truth, pred, path, duration_ms=200, scale=2):
    """Animated GIF, looping forever, of ground truth (left) beside prediction (right).

    During the input frames both halves show the same input.  A bar under the pictures
    grows with time, grey over the inputs and white over the predicted frames, so a viewer
    can tell where prediction starts.  It also keeps consecutive GIF frames distinct (while
    the picture is wider than the sequence is long), which stops Pillow merging identical
    ones, so the file has T_in + T_out frames.
    Returns path.
    """
    scale = _check_scale(scale)
    x = _frames_uint8(inputs, 'inputs')
    y = _frames_uint8(truth, 'truth', like=x)
    p = _frames_uint8(pred, 'pred', like=x)
    if y.shape[0] != p.shape[0]:
        raise ValueError('truth has %d frames but pred has %d' % (y.shape[0], p.shape[0]))
    _, h, w, c = x.shape
    ch, cw = h * scale, w * scale
    t_in, total = x.shape[0], x.shape[0] + y.shape[0]
    width = 2 * cw + GAP
    images = []
    for t in range(total):
        left, right = (x[t], x[t]) if t < t_in else (y[t - t_in], p[t - t_in])
        canvas = np.full((ch + GAP + BAR_HEIGHT, width, c), GAP_VALUE, dtype=np.uint8)
        canvas[:ch, :cw] = _enlarge(left, scale)
        canvas[:ch, cw + GAP:] = _enlarge(right, scale)
        bar = canvas[ch + GAP:]
        bar[...] = 0
        # Rounded up, so that the first frame already shows a sliver of bar.
        filled = -(-width * (t + 1) // total)
        bar[:, :filled] = BAR_INPUT if t < t_in else BAR_PREDICTED
        images.append(_to_image(canvas))

    def save(f):
        images[0].save(f, format='GIF', save_all=True, append_images=images[1:],
                       duration=int(duration_ms), loop=0)
    return _save_atomic(path, save)
