"""Shared machinery that is neither a cell, a net nor data: configuration, device set-up,
metrics, checkpoints, the training loop and evaluation.

Importing this package applies the CPU environment settings that must be in place before
mindspore is imported (entry points import engine first). A value the user set wins.
"""
import os
import platform

# oneDNN picks slow AVX-512 convolution kernels for MindSpore's plain NCHW tensors on these
# CPUs (measured 20-50x slower); the AVX2 GEMM path is the fast one. x86 only.
# ISA_CAP_SET_HERE: this package set the cap (benchmark.py keeps it from a PyTorch child).
ISA_CAP_SET_HERE = platform.machine().lower() in ("x86_64", "amd64") and "ONEDNN_MAX_CPU_ISA" not in os.environ
if ISA_CAP_SET_HERE:
    os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"
# The native convolutions (layers/native/conv.cc) run oneDNN on OpenMP threads. OpenMP's
# default spin-waiting between parallel regions is ruinous when more threads than cores want
# the CPU: two small trainings side by side on 2 cores took 25 s where each alone took 5 s
# (passive: 3.8 s each); one large model loses ~5% to passive waiting. A value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# MindSpore's C++ warning flood hides the progress lines.
os.environ.setdefault("GLOG_v", "3")
