"""Sources of 28x28 uint8 digit images, shape (N, 28, 28), for the Moving MNIST generator.

- load_idx_images: the MNIST IDX image files (train-images-idx3-ubyte[.gz]).
- builtin_digits: the UCI optdigits set bundled with scikit-learn, made MNIST-like, so
  training data can be generated on a machine with no download and no MNIST copy.
"""

import gzip
import os
import struct
import zlib

import numpy as np

from engine.errors import UserError

IDX_IMAGE_MAGIC = 2051
_GZIP_MAGIC = b"\x1f\x8b"

_builtin_cache = None


def _read_maybe_gzip(path):
    if not os.path.isfile(path):
        raise UserError(f"{path}: file not found")
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        raw = f.read()
    if head == _GZIP_MAGIC:
        # Sniff rather than trust the name: people gunzip files and keep the .gz name, or
        # the other way round.
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path}: corrupt gzip data ({e})") from None
    return raw


def load_idx_images(path):
    """Read an MNIST IDX image file (plain or gzip) -> uint8 array (N, rows, cols)."""
    path = os.fspath(path)
    data = _read_maybe_gzip(path)
    if len(data) < 16:
        raise UserError(f"{path}: too short ({len(data)} bytes) to be an IDX image file")
    magic, n, rows, cols = struct.unpack(">iiii", data[:16])
    if magic != IDX_IMAGE_MAGIC:
        raise UserError(f"{path}: bad magic number {magic}, expected {IDX_IMAGE_MAGIC} (IDX images); "
                        f"is this a label file or not MNIST?")
    if n < 0 or rows <= 0 or cols <= 0:
        raise UserError(f"{path}: invalid IDX header n={n} rows={rows} cols={cols}")
    need = 16 + n * rows * cols
    if len(data) < need:
        raise UserError(f"{path}: truncated, header promises {n} images of {rows}x{cols} "
                        f"({need} bytes) but the file has {len(data)} bytes")
    if len(data) > need:
        raise UserError(f"{path}: {len(data) - need} unexpected bytes after {n} images of {rows}x{cols}")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols).copy()


def _to_mnist_like(images8):
    """(N, 8, 8) values 0..16 -> (N, 28, 28) uint8, digit in the central 20x20 box."""
    from scipy import ndimage

    x = images8.astype(np.float64) * (255.0 / 16.0)
    # Cubic spline on the whole stack at once; the zoom factor 1 on axis 0 keeps images apart.
    # mode='nearest' avoids the dark halo a zero-padded border would add to edge strokes.
    up = ndimage.zoom(x, (1, 20 / 8, 20 / 8), order=3, mode="nearest", grid_mode=True)
    up = np.clip(np.rint(up), 0, 255).astype(np.uint8)
    out = np.zeros((len(images8), 28, 28), np.uint8)
    out[:, 4:24, 4:24] = up
    return out


def builtin_digits():
    """The 1797 scikit-learn optdigits images as MNIST-like (1797, 28, 28) uint8. Cached."""
    global _builtin_cache
    if _builtin_cache is None:
        from sklearn.datasets import load_digits

        imgs = load_digits().images  # float (1797, 8, 8), values 0..16
        _builtin_cache = _to_mnist_like(imgs)
        _builtin_cache.setflags(write=False)
    return _builtin_cache
