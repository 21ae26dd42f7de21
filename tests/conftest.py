"""Shared fixtures. GRAPH compiles cost seconds each, so tests share shapes through the
TINY configuration below wherever they can."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import engine  # noqa: E402,F401  (CPU settings before mindspore)

# 64x64 frames of one digit, patch 8 -> 8x8x64, 5 -> 5 frames, two small layers.
TINY = ["--model_name=convlstm", "--num_hidden=16,16", "--filter_size=3", "--patch_size=8",
        "--img_width=64", "--input_length=5", "--seq_length=10", "--layer_norm=false",
        "--batch_size=8", "--eval_batch_size=8", "--reverse_input=false", "--lr=0.002",
        "--num_digits=1", "--device_target=CPU", "--log_interval=1000"]


@pytest.fixture(scope="session")
def ms_context():
    import mindspore as ms
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    return ms
