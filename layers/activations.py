"""Activations whose CPU results match PyTorch's to float rounding.

MindSpore's tanh kernels (ops.tanh, mint.tanh, nn.Tanh) on CPU are approximations with an
absolute error up to 1e-4 for 3 < |x| < 8 (see MINDSPORE_NOTES.md, Precision). Converted
PyTorch checkpoints must reproduce their predictions within 1e-5 over many recurrent
steps, where such errors accumulate; ops.sigmoid is accurate to ~1e-6 on CPU, and the
identity tanh(x) = 2 * sigmoid(2x) - 1 built on it stays within 2e-6 everywhere.
"""
from mindspore import ops


def tanh(x):
    return 2.0 * ops.sigmoid(2.0 * x) - 1.0
