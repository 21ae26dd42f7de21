"""Build the train/test MindRecord files from whatever the user has (or from nothing).

- no dataset_path: Moving MNIST generated from digit_source (scikit-learn's bundled
  handwritten digits, or an MNIST IDX file); train and test use disjoint digit images.
- dataset_path: a folder with seed 000's train.npz/test.npz, mnist_test_seq.npy and/or
  MNIST's train-images-idx3-ubyte[.gz] (generated into sequences), see sources.py.
- dataset=kth: KTH Actions from its videos or frame folders under dataset_path, written
  as kth_train.mindrecord / kth_test.mindrecord, see kth.py.
"""
import os

import numpy as np

from data_provider.digits import builtin_digits, load_idx_images
from data_provider.mindrecord import write_mindrecord
from data_provider.moving_mnist import iter_moving_mnist
from data_provider.openstl import DATASETS as OPENSTL_DATASETS
from data_provider.sources import find_sources, load_mnist_test_seq, load_thuml_npz
from engine.errors import UserError

TRAIN_NAME = "mnist_train.mindrecord"
TEST_NAME = "mnist_test.mindrecord"
_CHUNK = 256


def split_digits(digits):
    """Disjoint digit images for train and test: the last sixth (at most 10000) is test."""
    n_test = min(10000, max(1, len(digits) // 6))
    return digits[:-n_test], digits[-n_test:]


def load_digit_source(source):
    return builtin_digits() if source == "builtin" else load_idx_images(source)


def _chunks(array):
    for start in range(0, len(array), _CHUNK):
        yield np.ascontiguousarray(array[start:start + _CHUNK])


def _generated(cfg, digits, count, seed, length=None):
    return iter_moving_mnist(digits, count, seq_length=length or cfg.seq_length,
                             image_size=(cfg.img_height, cfg.img_width),
                             num_digits=cfg.num_digits, seed=seed, chunk_size=_CHUNK,
                             stochastic=bool(cfg.get("stochastic_bounce", False)))


DATASETS = ("mmnist", "kth", "custom") + OPENSTL_DATASETS


def build_mindrecords(cfg, log=print):
    """Write mindrecord_dir/mnist_train.mindrecord and mnist_test.mindrecord (kth_*.mindrecord
    for dataset=kth); returns their paths."""
    if cfg.dataset not in DATASETS:
        raise UserError(f"config key 'dataset': unknown dataset {cfg.dataset!r}; known: {', '.join(DATASETS)}")
    if cfg.dataset == "kth":
        from data_provider.kth import build_kth
        return build_kth(cfg, log=log)
    if cfg.dataset == "custom":
        from data_provider.custom import build_custom
        return build_custom(cfg, log=log)
    if cfg.dataset in OPENSTL_DATASETS:
        from data_provider.openstl import build_openstl
        return build_openstl(cfg, log=log)
    out_dir = cfg.mindrecord_dir
    train_path = os.path.join(out_dir, TRAIN_NAME)
    test_path = os.path.join(out_dir, TEST_NAME)
    written = {}
    if not cfg.dataset_path:
        if cfg.digit_source != "builtin" and not os.path.isfile(cfg.digit_source):
            raise UserError(f"config key 'digit_source': file not found: {cfg.digit_source}")
        test_length = cfg.test_seq_length or cfg.seq_length
        if test_length < cfg.seq_length:
            raise UserError(f"config key 'test_seq_length': {cfg.test_seq_length} must be 0 (= seq_length) "
                            f"or at least seq_length ({cfg.seq_length})")
        train_digits, test_digits = split_digits(load_digit_source(cfg.digit_source))
        source = "scikit-learn handwritten digits" if cfg.digit_source == "builtin" else cfg.digit_source
        log(f"generating Moving MNIST from {source}: {cfg.num_train_sequences} train + "
            f"{cfg.num_test_sequences} test sequences of {cfg.seq_length}/{test_length} frames "
            f"{cfg.img_height}x{cfg.img_width}, {cfg.num_digits} digit(s), seed {cfg.seed}")
        plan = {"train": (train_path, _generated(cfg, train_digits, cfg.num_train_sequences, cfg.seed)),
                "test": (test_path, _generated(cfg, test_digits, cfg.num_test_sequences, cfg.seed + 1, test_length))}
    else:
        found = find_sources(cfg.dataset_path)
        plan = {}
        for split, path in (("train", train_path), ("test", test_path)):
            src = found[split]
            if src is None:
                log(f"warning: no {split} data in {cfg.dataset_path}; {path} not written")
                continue
            if src.kind == "npz":
                chunks = _chunks(load_thuml_npz(src.path))
            elif src.kind == "npy":
                chunks = _chunks(load_mnist_test_seq(src.path))
            else:  # MNIST digits: generate the sequences as Srivastava et al. did
                digits = load_idx_images(src.path)
                count = cfg.num_train_sequences if split == "train" else cfg.num_test_sequences
                seed = cfg.seed if split == "train" else cfg.seed + 1
                chunks = _generated(cfg, digits, count, seed)
            log(f"{split}: {src.path} ({src.kind})")
            plan[split] = (path, chunks)
    for split, (path, chunks) in plan.items():
        n = write_mindrecord(path, chunks, description=f"moving mnist {split}")
        log(f"wrote {path} ({n} sequences)")
        written[split] = path
    return written
