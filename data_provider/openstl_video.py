"""Human3.6M and KITTI -> Caltech Pedestrian as OpenSTL reads them (see openstl.py).

Human3.6M (openstl/datasets/dataloader_human.py, tools/prepare_data/download_human3.6m.sh):
DIR/human/train.txt and test.txt (STRPM's lists, copied from OpenSTL's
tools/prepare_data/meta/human/: 73404 and 8582 windows; not a split by subject: both take
windows of all seven subjects S1, S5-S9, S11, starting every 25 frames, about one in ten for
test, and a test window overlaps its neighbours in train) hold lines
'images/S1_Directions.54138969_,BEGIN,END';
clip frames are DIR/human/images/S1_Directions.54138969_NNNNNN.jpg (NNNNNN zero-padded to 6
digits) for NNNNNN = BEGIN, BEGIN + 5, ... (step 5, 8 frames: 4 -> 4). The images are the
256x256 JPEGs of tools/prepare_data/resize_image.py; OpenSTL's benchmark runs at 256x256
(dataset_constant.py in_shape [4, 3, 256, 256]) and resizes frames of another size with
cv2.INTER_CUBIC, which resize_cubic reproduces in float arithmetic. END is not used (nor by
OpenSTL). OpenSTL reads BGR (cv2.imread); we store RGB: MSE, MAE, SSIM (per channel) and PSNR
do not depend on the channel order.

KITTI -> Caltech (openstl/datasets/dataloader_kitticaltech.py, download_kitticaltech.sh):
train: DIR/kitti_hkl/X_train.hkl (uint8 [N, 128, 160, 3], PredNet's process_kitti.py) with
sources_train.hkl (the recording of each frame); clips of 11 frames (10 -> 1) found walking
back from the last frame, a clip where its first and last frame share a recording, then the
walk skips its frames (so clips do not overlap). X_val.hkl is not used (OpenSTL has no
validation loader for it). test: Caltech's cache DIR/caltech/data_cache.npy (uint8 [M, 128,
160, 3]) and indices_cache.npy (clip starts), which OpenSTL's loader writes the first time it
decodes the Caltech .seq videos (or the download gives): its clips as they are, so the test
set is the one OpenSTL scores (the cache came through cv2, so its channels are BGR while
KITTI's are RGB; kept, as OpenSTL trains and tests so).

The .hkl files are read with h5py: hickle 2-3 keep an array as one dataset and a list of
strings as one dataset of byte strings, hickle 4-5 a list as a group of items (equal items as
HDF5 references). hickle.load itself refuses files of other hickle versions and may unpickle.
"""
import collections
import os

import numpy as np

from data_provider.openstl import Settings, Split, clips_per_chunk, find_first, require_dataset_path
from engine.errors import UserError

HUMAN_STEP = 5
HUMAN_SIZE = (256, 256)
KITTI_SIZE = (128, 160)
_FRAME_CACHE = 64  # decoded Human3.6M frames kept (clips of one video overlap)


# ---- cv2.INTER_CUBIC ----

_CUBIC_A = -0.75  # OpenCV's cubic convolution constant


def _cubic_taps(src, dst):
    """(indices [dst, 4], weights [dst, 4]) of cv2.resize's INTER_CUBIC along one axis:
    half-pixel centres, four taps clamped to the image (BORDER_REPLICATE), no anti-aliasing."""
    x = (np.arange(dst) + 0.5) * (src / dst) - 0.5
    x0 = np.floor(x)
    t = x - x0
    a = _CUBIC_A
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    w2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    w3 = 1 - w0 - w1 - w2
    idx = np.clip(x0.astype(np.int64)[:, None] + np.arange(-1, 3), 0, src - 1)
    return idx, np.stack([w0, w1, w2, w3], axis=1)


def resize_cubic(frame, height, width):
    """uint8 [H, W, C] -> uint8 [height, width, C], bicubic as cv2.INTER_CUBIC (horizontal
    pass first) in float arithmetic, rounded."""
    f = np.asarray(frame, np.float64)
    h, w = f.shape[:2]
    if (h, w) == (height, width):
        return np.asarray(frame, np.uint8)
    ix, wx = _cubic_taps(w, width)
    g = np.einsum("hwkc,wk->hwc", f[:, ix], wx)
    iy, wy = _cubic_taps(h, height)
    out = np.einsum("hkwc,hk->hwc", g[iy], wy)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---- Human3.6M ----

def _read_list(path):
    """[(line number, prefix, begin)] of a train.txt / test.txt."""
    items = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot be read ({e})") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(",")
        try:
            if len(parts) < 2:
                raise ValueError
            items.append((number, parts[0], int(parts[1])))
        except ValueError:
            raise UserError(f"{path}, line {number}: {line!r} is not 'images/SUBJECT_ACTION.CAMERA_,BEGIN,END'") from None
    if not items:
        raise UserError(f"{path}: no clips listed")
    return items


class _Frames:
    """Decoded frames by path, the last _FRAME_CACHE kept."""

    def __init__(self, size):
        self.size = size
        self.cache = collections.OrderedDict()

    def get(self, path, where):
        if path in self.cache:
            self.cache.move_to_end(path)
            return self.cache[path]
        from PIL import Image
        if not os.path.isfile(path):
            raise UserError(f"{path}: frame not found ({where})")
        try:
            with Image.open(path) as im:
                frame = np.asarray(im.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as e:
            raise UserError(f"{path}: unreadable frame ({e}; {where})") from None
        frame = resize_cubic(frame, *self.size)
        self.cache[path] = frame
        if len(self.cache) > _FRAME_CACHE:
            self.cache.popitem(last=False)
        return frame


def human_clip_paths(root, prefix, begin, length, step):
    return [os.path.join(root, f"{prefix}{j:06d}.jpg") for j in range(begin, begin + length * step, step)]


def human_splits(cfg, log):
    data_root = require_dataset_path(cfg, "OpenSTL's data folder with human/train.txt, test.txt and images/")
    settings = Settings(cfg, "human")
    list_path = find_first(data_root, ("human/train.txt", "train.txt"), "Human3.6M train.txt")
    root = os.path.dirname(list_path)
    test_list = os.path.join(root, "test.txt")
    if not os.path.isfile(test_list):
        raise UserError(f"{test_list}: file not found (OpenSTL's test list, tools/prepare_data/meta/human/test.txt)")
    images = os.path.join(root, "images")
    if not os.path.isdir(images):
        raise UserError(f"{images}: folder not found (the frames of tools/prepare_data/resize_image.py)")
    settings.fixed("img_channel", 3, "Human3.6M frames are RGB")
    size = settings.size(HUMAN_SIZE)
    step = int(settings.get("frame_step", HUMAN_STEP))
    if step < 1:
        raise UserError(f"config key 'frame_step': must be >= 1, got {step}")
    train_len, test_len = settings.lengths(8)
    splits = []
    for split, path, length in (("train", list_path, train_len), ("test", test_list, test_len)):
        items = _read_list(path)

        def chunks(progress, items=items, path=path, length=length):
            frames = _Frames(size)
            per = clips_per_chunk(length, size, 3)
            batch = []
            for number, prefix, begin in items:
                where = f"{os.path.basename(path)} line {number}"
                batch.append(np.stack([frames.get(p, where)
                                       for p in human_clip_paths(root, prefix, begin, length, step)]))
                if len(batch) == per:
                    progress.add(len(batch))
                    yield np.stack(batch)
                    batch = []
            if batch:
                progress.add(len(batch))
                yield np.stack(batch)
        splits.append(Split(split, length, size, 3, [path, images], {"frame_step": step}, chunks, len(items),
                            source=f"{path} ({len(items)} clips, every {step}th frame)"))
    log(f"Human3.6M in {root}: frames {size[0]}x{size[1]} RGB, clips of {train_len} (train) / {test_len} (test) "
        f"frames every {step}")
    return splits


# ---- hickle files ----

def _open_hdf5(path):
    import h5py
    if not os.path.isfile(path):
        raise UserError(f"{path}: file not found")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{path}: not a readable hickle (HDF5) file ({e})") from None


def hkl_frames(handle, path):
    """The one 4-D array of a hickle file (h5py dataset, read lazily)."""
    import h5py
    found = []
    handle.visititems(lambda name, obj: found.append(obj) if isinstance(obj, h5py.Dataset) and obj.ndim == 4 else None)
    if len(found) != 1:
        raise UserError(f"{path}: expected one array of frames [N, H, W, 3], found {len(found)} 4-D arrays")
    frames = found[0]
    if frames.dtype != np.uint8 or frames.shape[-1] != 3:
        raise UserError(f"{path}: frames are {frames.dtype} {frames.shape}; expected uint8 [N, H, W, 3] "
                        f"(PredNet's process_kitti.py)")
    return frames


def _decode_item(handle, node, path):
    import h5py
    value = node[()]
    if isinstance(value, h5py.Reference):
        return _decode_item(handle, handle[value], path)
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S" and value.dtype.itemsize == 1:
            value = b"".join(value.ravel().tolist())
        elif value.size == 1:
            value = value.ravel()[0]
        else:
            raise UserError(f"{path}: item {node.name} is not a string ({value.dtype} {value.shape})")
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    raise UserError(f"{path}: item {node.name} is not a string ({type(value).__name__})")


def hkl_strings(handle, path):
    """The list of strings of a hickle file (sources_*.hkl) of any hickle version."""
    import h5py
    node = handle.get("data")
    if node is None:
        node = handle.get("data_0")
    if node is None:
        raise UserError(f"{path}: no 'data' or 'data_0' entry; not a hickle file of a list")
    if isinstance(node, h5py.Dataset):  # hickle 2-3: one dataset of strings
        values = node[()]
        if not (isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "SOU"):
            raise UserError(f"{path}: {node.name} is {getattr(values, 'dtype', type(values))} "
                            f"{getattr(values, 'shape', '')}; expected a list of strings")
        return [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v) for v in values]
    items = []
    for name, child in node.items():
        order = child.attrs.get("item_index")
        if order is None:
            digits = "".join(ch for ch in name if ch.isdigit())
            order = int(digits) if digits else len(items)
        items.append((int(order), child))
    items.sort(key=lambda pair: pair[0])
    return [_decode_item(handle, child, path) for _, child in items]


def kitti_clip_starts(sources, clip_length):
    """OpenSTL's (and PredNet's) clip starts: walking back from the last frame, a clip
    where the window's first and last frame share a recording; then jump past it."""
    starts = []
    index = len(sources) - 1
    while index >= clip_length - 1:
        if sources[index] == sources[index - clip_length + 1]:
            starts.append(index - clip_length + 1)
            index -= clip_length - 1
        index -= 1
    return starts


def _caltech(root):
    data_path = find_first(root, ("caltech/data_cache.npy", "data_cache.npy"), "Caltech test cache data_cache.npy "
                           "(OpenSTL's loader writes it beside the Caltech setXX folders, or download it)")
    index_path = os.path.join(os.path.dirname(data_path), "indices_cache.npy")
    if not os.path.isfile(index_path):
        raise UserError(f"{index_path}: file not found (the clip starts that go with {data_path})")
    try:
        data = np.load(data_path, mmap_mode="r", allow_pickle=False)
        starts = np.load(index_path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{data_path} / {index_path}: not readable .npy files ({e})") from None
    if data.ndim != 4 or data.shape[-1] != 3 or data.dtype != np.uint8:
        raise UserError(f"{data_path}: {data.dtype} {data.shape}; expected uint8 [M, 128, 160, 3]")
    if starts.ndim != 1 or starts.dtype.kind not in "iu" or len(starts) == 0:
        raise UserError(f"{index_path}: {starts.dtype} {starts.shape}; expected a list of clip starts (integers)")
    return data_path, index_path, data, starts.astype(np.int64)


def kitticaltech_splits(cfg, log):
    root = require_dataset_path(cfg, "OpenSTL's data folder with kitti_hkl/ and caltech/")
    settings = Settings(cfg, "kitticaltech")
    settings.fixed("img_channel", 3, "KITTI and Caltech frames are RGB")
    train_len, test_len = settings.lengths(11)
    x_path = find_first(root, ("kitti_hkl/X_train.hkl", "X_train.hkl"), "KITTI X_train.hkl")
    src_path = os.path.join(os.path.dirname(x_path), "sources_train.hkl")
    handle = _open_hdf5(x_path)
    try:
        shape = tuple(hkl_frames(handle, x_path).shape)
    finally:
        handle.close()
    size = shape[1:3]
    for key, value in (("img_height", size[0]), ("img_width", size[1])):
        settings.fixed(key, value, f"{x_path} holds frames of {size[0]}x{size[1]}")
    src_handle = _open_hdf5(src_path)
    try:
        sources = hkl_strings(src_handle, src_path)
    finally:
        src_handle.close()
    if len(sources) != shape[0]:
        raise UserError(f"{src_path}: {len(sources)} sources for the {shape[0]} frames of {x_path}")
    train_starts = kitti_clip_starts(sources, train_len)
    data_path, index_path, test_data, test_starts = _caltech(root)
    if tuple(test_data.shape[1:3]) != tuple(size):
        raise UserError(f"{data_path}: frames of {test_data.shape[1]}x{test_data.shape[2]} but KITTI's are "
                        f"{size[0]}x{size[1]}")
    gaps = np.diff(np.unique(test_starts))
    made_for = int(gaps.min()) if len(gaps) else test_len
    if test_len > made_for:
        raise UserError(f"{index_path}: its clips start {made_for} frames apart (made for clips of {made_for}), "
                        f"shorter than the {test_len}-frame test clips asked for")
    if test_starts.min() < 0 or test_starts.max() + test_len > len(test_data):
        raise UserError(f"{index_path}: clip starts in [{test_starts.min()}, {test_starts.max()}] do not fit "
                        f"{test_len}-frame clips in the {len(test_data)} frames of {data_path}")

    def train_chunks(progress):
        h = _open_hdf5(x_path)
        try:
            frames = hkl_frames(h, x_path)
            per = clips_per_chunk(train_len, size, 3)
            for c in range(0, len(train_starts), per):
                part = train_starts[c:c + per]
                chunk = np.stack([frames[s:s + train_len] for s in part])
                progress.add(len(chunk))
                yield chunk
        finally:
            h.close()

    def test_chunks(progress):
        per = clips_per_chunk(test_len, size, 3)
        for c in range(0, len(test_starts), per):
            chunk = np.stack([np.asarray(test_data[s:s + test_len]) for s in test_starts[c:c + per]])
            progress.add(len(chunk))
            yield chunk

    log(f"KITTI -> Caltech: {len(train_starts)} train clips of {train_len} frames from {len(set(sources))} "
        f"recordings ({x_path}); {len(test_starts)} test clips of {test_len} from {data_path}")
    return [Split("train", train_len, size, 3, [x_path, src_path], {}, train_chunks, len(train_starts),
                  source=f"{x_path} + sources_train.hkl"),
            Split("test", test_len, size, 3, [data_path, index_path], {}, test_chunks, len(test_starts),
                  source=f"{data_path} + indices_cache.npy")]
