"""Colour for pictures of data that are not 8-bit images: single-channel fields (radar
echoes, temperature) through a colormap with a colour bar, other channel counts one row per
channel. Values come in [0, 1] over the data range (engine.data_units.DataUnits.to_unit).

The maps are piecewise-linear between a few anchor colours, so no plotting library is
needed: 'viridis' (perceptually ordered, matplotlib's anchors), 'radar' (white for no echo,
then blue, green, yellow, red, magenta as weather services draw reflectivity) and 'grey'.
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLORMAPS = {
    "viridis": [(68, 1, 84), (72, 40, 120), (62, 73, 137), (49, 104, 142), (38, 130, 142), (31, 158, 137),
                (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37)],
    "radar": [(255, 255, 255), (160, 220, 255), (40, 120, 240), (20, 180, 60), (10, 130, 30), (250, 230, 40),
              (250, 150, 20), (230, 30, 30), (160, 0, 40), (200, 0, 200)],
    "grey": [(0, 0, 0), (255, 255, 255)],
}


def apply_colormap(unit, name="viridis"):
    """[..., 1] (or [...]) values in [0, 1] -> float32 RGB [..., 3] in [0, 1]."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; known: {', '.join(COLORMAPS)}")
    x = np.asarray(unit, np.float32)
    if x.ndim and x.shape[-1] == 1:
        x = x[..., 0]
    anchors = np.asarray(COLORMAPS[name], np.float32) / 255.0
    pos = np.clip(x, 0.0, 1.0) * (len(anchors) - 1)
    low = np.minimum(pos.astype(np.int64), len(anchors) - 2)
    frac = (pos - low)[..., None]
    return (anchors[low] * (1 - frac) + anchors[low + 1] * frac).astype(np.float32)


def colour_bar(path, name, low, high, label="", length=256, thickness=16):
    """A horizontal colour bar PNG from low to high (the data's units), labelled at both ends
    and the middle with Pillow's built-in font."""
    ramp = apply_colormap(np.linspace(0.0, 1.0, length)[None, :, None], name)
    bar = np.repeat((ramp * 255).round().astype(np.uint8), thickness, axis=0)
    font = ImageFont.load_default()
    canvas = Image.new("RGB", (length + 40, thickness + 28), (255, 255, 255))
    canvas.paste(Image.fromarray(bar), (20, 4))
    draw = ImageDraw.Draw(canvas)
    for frac, value in ((0.0, low), (0.5, (low + high) / 2), (1.0, high)):
        text = f"{value:.4g}"
        width = draw.textlength(text, font=font)
        x = 20 + frac * length - width / 2
        draw.text((max(0, min(x, length + 40 - width)), thickness + 8), text, fill=(0, 0, 0), font=font)
    if label:
        draw.text((2, thickness + 16), label, fill=(90, 90, 90), font=font)
    canvas.save(path, format="PNG")
    return path


def displayable(frames, colormap="viridis"):
    """Frames [T, H, W, C] in [0, 1] -> a list of [T, H, W, 1 or 3] stacks to draw: RGB and
    grey 8-bit-style frames as they are (colormap None), one channel through the colormap,
    other channel counts one grey stack per channel."""
    frames = np.asarray(frames, np.float32)
    c = frames.shape[-1]
    if c == 1 and colormap and colormap != "grey":
        return [apply_colormap(frames, colormap)]
    if c in (1, 3):
        return [frames]
    return [frames[..., k:k + 1] for k in range(c)]


def stack_vertically(paths, out_path, gap=2):
    """Several PNGs (one per channel) into one, top to bottom, white between them."""
    images = [Image.open(p).convert("RGB") for p in paths]
    width = max(im.width for im in images)
    height = sum(im.height for im in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    top = 0
    for im in images:
        canvas.paste(im, (0, top))
        top += im.height + gap
        im.close()
    canvas.save(out_path, format="PNG")
    return out_path
