"""A user's own clip in, predicted frames out (infer.py).

Clips come as
- a .npy of [T, H, W] or [T, H, W, C]: uint8 (0..255) or float in [0, 1];
- a folder of PNG / JPG frames, in natural name order (frame_2 before frame_10);
- a GIF, or a single PNG / JPG (an animated PNG gives all its frames).
Frames become float32 in [0, 1] as the MindRecord reader decodes them (x/255 rounded once
to float32), so a clip cut from the test set gets the same numbers eval.py feeds the model.

Pictures are converted to the model's channel count with Pillow (RGB -> L by its
luminance formula, grey -> RGB by repetition). A .npy is taken as it is: a wrong channel
count is an error, since guessing which axis or which conversion was meant would hide a
mistake. Every problem is a UserError naming the path.
"""
import os
import re

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from data_provider.custom import VIDEO_EXTENSIONS
from engine.errors import UserError
from engine.metrics import to_uint8
from engine.visualize import BAR_HEIGHT, BAR_INPUT, BAR_PREDICTED, GAP, GAP_VALUE, _enlarge, _save_atomic

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")
SEQUENCE_SUFFIXES = (".gif",) + FRAME_SUFFIXES
# video files decoded by the FFmpeg inside MindSpore (as generate_mindrecord.py --dataset=custom)
VIDEO_SUFFIXES = VIDEO_EXTENSIONS
SUPPORTED = ".npy, .gif, .png, .jpg, a video file (.avi, .mp4, .mkv, ...) or a folder of .png/.jpg frames"

# uint8 -> float32 exactly as data_provider/mindrecord.py decodes frames
_TO_UNIT = (np.arange(256) / 255.0).astype(np.float32)

# Pillow converts these to 8 bits by clipping, not scaling, which would silently wreck
# the frames; better to say so
_WIDE_MODES = ("I", "F")


def natural_key(name):
    """frame_2 before frame_10: digit runs compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", name) if part != ""]


def _image_to_unit(image, channels, where):
    if channels not in (1, 3):
        raise UserError(f"{where}: pictures give 1 (grey) or 3 (RGB) channels, but the model takes "
                        f"img_channel={channels}; give the clip as a .npy of [T, H, W, {channels}]")
    if image.mode.split(";")[0] in _WIDE_MODES:
        raise UserError(f"{where}: {image.mode} images (more than 8 bits per channel) are not supported; "
                        f"save 8-bit frames, or a .npy of floats in [0, 1]")
    target = "L" if channels == 1 else "RGB"
    try:
        converted = image.convert(target)
    except ValueError:  # a few modes (LAB) convert to L only through RGB
        converted = image.convert("RGB").convert(target)
    frame = np.asarray(converted, dtype=np.uint8)
    if frame.ndim == 2:
        frame = frame[..., None]
    return _TO_UNIT[frame]


def _read_image_file(path, channels):
    """Every frame of one picture file (a GIF or an animated PNG has several)."""
    try:
        with Image.open(path) as image:
            return [_image_to_unit(frame, channels, path) for frame in ImageSequence.Iterator(image)]
    except UserError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise UserError(f"cannot read image {path}: {str(e).splitlines()[0][:200] or type(e).__name__}") from None


def _read_video(path, channels):
    """Every frame of a video file, as Pillow pictures are converted (RGB -> L for grey)."""
    from mindspore.dataset.vision import read_video
    try:
        video = np.asarray(read_video(path)[0])
    except (RuntimeError, ValueError, OSError) as e:
        from data_provider.kth import _short_reason  # MindSpore's '[ERROR] ...' line
        raise UserError(f"cannot decode video {path}: {_short_reason(e)[:200]}") from None
    if video.ndim != 4 or len(video) == 0:
        raise UserError(f"cannot decode video {path}: no frames")
    if channels not in (1, 3):
        raise UserError(f"{path}: videos give 1 (grey) or 3 (RGB) channels, but the model takes img_channel={channels}")
    return [_image_to_unit(Image.fromarray(frame), channels, path) for frame in video]


def _read_folder(path, channels):
    names = sorted((n for n in os.listdir(path)
                    if not n.startswith(".") and n.lower().endswith(FRAME_SUFFIXES)
                    and os.path.isfile(os.path.join(path, n))), key=natural_key)
    if not names:
        raise UserError(f"input_clip {path}: the folder holds no .png/.jpg frames")
    frames, sources = [], []
    for name in names:
        file = os.path.join(path, name)
        got = _read_image_file(file, channels)
        frames += got
        sources += [file] * len(got)
    return frames, sources


def _read_npy(path, channels):
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"cannot read {path} as a .npy array: {str(e).splitlines()[0][:200]}") from None
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise UserError(f"{path}: expected frames shaped [T, H, W] or [T, H, W, C], got shape {array.shape}")
    if array.shape[-1] != channels:
        raise UserError(f"{path}: frames have {array.shape[-1]} channels (shape {array.shape}) but the model takes "
                        f"img_channel={channels}; a .npy is used as it is, so convert it first")
    if array.dtype == np.uint8:
        unit = _TO_UNIT[array]
    elif np.issubdtype(array.dtype, np.floating):
        if array.size and not np.isfinite(array).all():
            raise UserError(f"{path}: float frames contain NaN or Inf")
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if low < 0 or high > 1:
            raise UserError(f"{path}: float frames must lie in [0, 1], found values in [{low:g}, {high:g}] "
                            f"(for 0..255 data save uint8, or divide by 255)")
        unit = array.astype(np.float32)
    else:
        raise UserError(f"{path}: dtype {array.dtype} is not supported; save uint8 (0..255) or float in [0, 1] "
                        f"(e.g. array.astype(np.uint8))")
    return list(unit), [path] * len(unit)


def _hw(size):
    """(height, width) from an int (square) or a (height, width) pair."""
    return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


def _fit(frame, size, resize, where, clip=True):
    h, w = frame.shape[:2]
    th, tw = _hw(size)
    if (h, w) == (th, tw):
        return frame
    if not resize:
        raise UserError(f"{where}: frames are {h}x{w} (HxW) but the model takes {th}x{tw} "
                        f"(img_height x img_width); pass --resize=true to resize them (bilinear)")
    # per channel in Pillow's float mode: no rounding to 8 bits on the way
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(frame[..., c], np.float32))
                           .resize((tw, th), Image.BILINEAR)) for c in range(frame.shape[-1])]
    out = np.stack(channels, axis=-1)
    return (np.clip(out, 0.0, 1.0) if clip else out).astype(np.float32)


def _read(path, channels):
    """(frames, each float32 [H, W, C] in [0, 1]; the file each came from)."""
    path = os.fspath(path)
    if not path:
        raise UserError("no clip given: pass --input_clip=PATH (a .npy, a folder of frames or a GIF)")
    if not os.path.exists(path):
        raise UserError(f"input_clip not found: {path}")
    if os.path.isdir(path):
        frames, sources = _read_folder(path, channels)
    else:
        lower = path.lower()
        if lower.endswith(".npy"):
            frames, sources = _read_npy(path, channels)
        elif lower.endswith(SEQUENCE_SUFFIXES):
            frames = _read_image_file(path, channels)
            sources = [path] * len(frames)
        elif lower.endswith(VIDEO_SUFFIXES):
            frames = _read_video(path, channels)
            sources = [f"{path} frame {i}" for i in range(len(frames))]
        else:
            raise UserError(f"input_clip {path}: unknown file type; expected {SUPPORTED}")
    if not frames:
        raise UserError(f"input_clip {path} holds no frames")
    return frames, sources


def _stack(frames, sources, size, resize, clip=True):
    if size is not None:
        frames = [_fit(f, size, resize, src, clip) for f, src in zip(frames, sources)]
    first = frames[0].shape
    for f, src in zip(frames, sources):
        if f.shape != first:
            raise UserError(f"{src}: frame of {f.shape[0]}x{f.shape[1]} where earlier frames are "
                            f"{first[0]}x{first[1]}; all frames of a clip must have one size")
    return np.stack(frames).astype(np.float32, copy=False)


def load_clip(path, channels, width=None, resize=False):
    """float32 [T, H, W, C] in [0, 1] from a .npy, a folder of frames or a GIF.

    With width (an int for square frames or a (height, width) pair), every frame must have
    that size, or is resized to it (bilinear, stretched if need be) when resize is true."""
    frames, sources = _read(path, channels)
    return _stack(frames, sources, width, resize)


def _read_data_units(path, channels, units):
    """A .npy clip in the data's own units (non-8-bit data) -> frames in model units."""
    if not (os.path.isfile(path) and path.lower().endswith(".npy")):
        raise UserError(f"input_clip {path}: the model was trained on normalized data ({units.method}); give the clip "
                        f"as a .npy of [T, H, W(, C)] in the data's own units")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"cannot read {path} as a .npy array: {str(e).splitlines()[0][:200]}") from None
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] != channels or array.dtype.kind not in "uif":
        raise UserError(f"{path}: expected numbers shaped [T, H, W, {channels}] (or [T, H, W] for one channel), "
                        f"got {array.dtype} {array.shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise UserError(f"{path}: frames contain NaN or Inf")
    model = units.to_model(array)
    return list(model), [path] * len(model)


def input_frames(path, cfg, resize=False, notice=print, units=None):
    """The clip's last input_length frames fitted to the model, float32
    [input_length, img_height, img_width, img_channel] in [0, 1] (for normalized data,
    units: engine.data_units.DataUnits, in model units); notices say what was done."""
    if units is not None:
        frames, sources = _read_data_units(path, cfg.img_channel, units)
    else:
        frames, sources = _read(path, cfg.img_channel)
    need, have = cfg.input_length, len(frames)
    if have < need:
        raise UserError(f"input_clip {path} has {have} frame{'s' if have != 1 else ''} but the model needs "
                        f"input_length={need}")
    h, w = frames[0].shape[:2]
    notice(f"clip {path}: {have} frames of {h}x{w}x{frames[0].shape[2]}")
    if have > need:
        # only the frames just before the future matter to the prediction
        notice(f"using the last {need} of the {have} frames (frames {have - need + 1}-{have}, counting from 1)")
        frames, sources = frames[-need:], sources[-need:]
    size = (cfg.img_height, cfg.img_width)
    if resize and any(f.shape[:2] != size for f in frames):
        sizes = sorted({f.shape[:2] for f in frames})
        # stretched: the aspect ratio changes
        stretched = [f"{a}x{b}" for a, b in sizes if a * size[1] != b * size[0]]
        notice(f"resizing {', '.join(f'{a}x{b}' for a, b in sizes)} frames to {size[0]}x{size[1]} (bilinear)"
               + (f"; {', '.join(stretched)} frames are stretched" if stretched else ""))
    return _stack(frames, sources, size, resize, clip=units is None)


def _side_by_side(frames):
    """[N, T, H, W, C] -> [T, H, N*W + (N-1)*GAP, C]: N clips next to each other."""
    n, t, h, w, c = frames.shape
    out = np.full((t, h, n * w + (n - 1) * GAP, c), GAP_VALUE / 255.0, np.float32)
    for k in range(n):
        out[:, :, k * (w + GAP):k * (w + GAP) + w] = frames[k]
    return out


def save_outputs(inputs, pred, out_dir, scale=2, duration_ms=200, values=None):
    """pred_NN.png (one per predicted frame, at the model's size), prediction.gif (the
    inputs, then the predictions) and prediction.npy (float32 [future, H, W, C]: pred, or
    `values` when given: the predictions in the data's own units for normalized data).
    pred may be [N, future, H, W, C] (sampled futures): pictures show them side by side.
    Returns the written paths by kind."""
    os.makedirs(out_dir, exist_ok=True)
    pred = np.clip(np.asarray(pred, np.float32), 0.0, 1.0)
    npy_pred = pred if values is None else np.asarray(values, np.float32)
    if pred.ndim == 5:
        n = len(pred)
        pred = _side_by_side(pred)
        inputs = _side_by_side(np.repeat(np.asarray(inputs, np.float32)[None], n, axis=0))
    pred8 = to_uint8(pred)
    digits = max(2, len(str(len(pred) - 1)))
    pngs = []
    for i, frame in enumerate(pred8):
        image = Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame)
        path = os.path.join(out_dir, f"pred_{i:0{digits}d}.png")
        pngs.append(_save_atomic(path, lambda f, image=image: image.save(f, format="PNG")))
    gif = save_sequence_gif(inputs, pred, os.path.join(out_dir, "prediction.gif"), scale, duration_ms)
    npy = _save_atomic(os.path.join(out_dir, "prediction.npy"), lambda f: np.save(f, npy_pred))
    return {"png": pngs, "gif": gif, "npy": npy}


def save_sequence_gif(inputs, pred, path, scale=2, duration_ms=200):
    """Animated GIF, looping, of the inputs followed by the predicted frames. With no ground
    truth there is one picture, not visualize.save_gif's truth | prediction pair; the same
    time bar (grey over the inputs, white over the predictions) shows where prediction
    starts and keeps consecutive GIF frames distinct, so Pillow merges none of them."""
    frames = to_uint8(np.concatenate([np.asarray(inputs, np.float32), np.asarray(pred, np.float32)]))
    t_in, total = len(inputs), len(frames)
    _, h, w, c = frames.shape
    height, width = h * scale, w * scale
    images = []
    for t, frame in enumerate(frames):
        canvas = np.full((height + GAP + BAR_HEIGHT, width, c), GAP_VALUE, dtype=np.uint8)
        canvas[:height] = _enlarge(frame, scale)
        bar = canvas[height + GAP:]
        bar[...] = 0
        bar[:, :-(-width * (t + 1) // total)] = BAR_INPUT if t < t_in else BAR_PREDICTED
        images.append(Image.fromarray(canvas[..., 0] if c == 1 else canvas))

    def save(f):
        images[0].save(f, format="GIF", save_all=True, append_images=images[1:], duration=int(duration_ms), loop=0)
    return _save_atomic(path, save)
