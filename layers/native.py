"""Native CPU kernels as MindSpore "aot" Custom ops, compiled from layers/native/*.cc with the
machine's C++ compiler at first use and cached (one build per source, compiler and CPU).

Only the training step uses them (layers/layer_norm.py): exported graphs (MINDIR, ONNX, AIR)
and evaluation keep the plain MindSpore ops, which every runtime can load. Where the device
is not the CPU or STPL_NATIVE_OPS=0, and (after one line on stderr saying why) where there
is no compiler or the build fails, the callers use the MindSpore-op form (same maths, slower).

Environment:
  STPL_NATIVE_OPS=0   never build or use the kernels
  STPL_CACHE_DIR      where built libraries go (default $XDG_CACHE_HOME/stpl or ~/.cache/stpl)
  CXX                 the compiler (default: c++, then g++, then clang++ on PATH)
"""
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import mindspore as ms
from mindspore import ops

SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "native")
# -march=native: the cache key holds the CPU model and flags, so a library never meets another CPU;
# -fopenmp-simd vectorises the marked reductions without -ffast-math's licence elsewhere
CXXFLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-std=c++14", "-shared", "-fPIC"]

_built = {}  # (source name, cache dir) -> library path, or None when it could not be built
_warned = set()


def _warn_once(key, message):
    if key not in _warned:
        _warned.add(key)
        print(f"note: {message}", file=sys.stderr)


def enabled():
    return os.environ.get("STPL_NATIVE_OPS", "1").strip().lower() not in ("0", "false", "no", "off")


def cache_dir():
    root = os.environ.get("STPL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "stpl")
    # absolute: MindSpore loads the library by this path from wherever the process runs
    return os.path.abspath(os.path.join(root, "native"))


def compiler():
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _compiler_version(cxx):
    try:
        return subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model():
    """The CPU's model and instruction-set flags (-march=native builds for exactly these: a
    virtual machine may mask AVX-512 on a model that has it)."""
    try:
        with open("/proc/cpuinfo") as f:
            found = {}
            for line in f:
                key = line.split(":")[0].strip()
                if key in ("model name", "flags", "Features", "CPU part") and key not in found:
                    found[key] = line.strip()
            if found:
                return "\n".join(found[k] for k in sorted(found))
    except OSError:
        pass
    return platform.processor()


SYMBOLS = {"layer_norm": ("LayerNorm", "LayerNormGrad"), "softmax_grad": ("SoftmaxGrad",),
           "conv": ("Conv", "ConvGrad", "ConvDescribe"), "gelu": ("Gelu", "GeluGrad")}


def dnnl_paths():
    """(include folder, library) of the oneDNN that layers/native/conv.cc runs on: the
    onednn-cpu-gomp and onednn-devel-cpu-gomp wheels of requirements.txt, installed under the
    environment's prefix (STPL_DNNL_ROOT=DIR: DIR/include and DIR/lib of another oneDNN 3.x
    with OpenMP threads); None when they are not there."""
    roots = [os.environ["STPL_DNNL_ROOT"]] if os.environ.get("STPL_DNNL_ROOT") else [sys.prefix, sys.base_prefix]
    for root in roots:
        include, library = os.path.join(root, "include"), os.path.join(root, "lib", "libdnnl.so.3")
        if os.path.isfile(os.path.join(include, "oneapi", "dnnl", "dnnl.h")) and os.path.isfile(library):
            return include, library
    return None


def _extra_flags(name):
    """Compiler flags beyond CXXFLAGS for layers/native/<name>.cc, and text that identifies
    what they point at (for the cache key); None when a dependency is missing."""
    if name == "gelu":  # without it GCC keeps the loops' selects and rounding scalar (they could trap)
        return ["-fno-trapping-math"], b""
    if name != "conv":
        return [], b""
    paths = dnnl_paths()
    if paths is None:
        return None
    with open(os.path.join(paths[0], "oneapi", "dnnl", "dnnl_version.h"), "rb") as f:
        return ["-I" + paths[0], "-ldl"], f.read()


def _loads(library, name):
    """True when the library loads and holds every kernel of `name`."""
    try:
        lib = ctypes.CDLL(library)
        return all(hasattr(lib, symbol) for symbol in SYMBOLS[name])
    except OSError:
        return False


def build(name):
    """Path of the built library for layers/native/<name>.cc, building it when needed (and
    again when a cached one does not load); None, after one line on stderr, when it cannot
    be built."""
    key = (name, cache_dir())
    if key not in _built:
        _built[key] = _build(name)
    return _built[key]


def _build(name):
    cxx = compiler()
    if cxx is None:
        _warn_once("cxx", "no C++ compiler found (set CXX): the native kernels are off, training uses "
                          "the MindSpore-op forms (slower)")
        return None
    source = os.path.join(SOURCE_DIR, name + ".cc")
    extra = _extra_flags(name)
    if extra is None:
        _warn_once(name, f"oneDNN (the onednn-cpu-gomp and onednn-devel-cpu-gomp packages of requirements.txt) "
                         f"is not installed in {sys.prefix}: convolutions use MindSpore's kernels (slower)")
        return None
    flags, identity = extra
    with open(source, "rb") as f:
        code = f.read()
    key = hashlib.sha256(b"\0".join([code, identity, " ".join(flags).encode(), cxx.encode(), _compiler_version(cxx).encode(), " ".join(CXXFLAGS).encode(),
                                     _cpu_model().encode(), platform.machine().encode(),
                                     " ".join(platform.libc_ver()).encode()])).hexdigest()[:16]
    target_dir = os.path.join(cache_dir(), key)
    library = os.path.join(target_dir, f"lib{name}.so")
    if os.path.isfile(library) and _loads(library, name):
        return library
    partial = None
    try:
        os.makedirs(target_dir, exist_ok=True)
        # build beside the target and rename: concurrent processes (data-parallel ranks)
        # never load a half-written library, and a loaded one is never rewritten in place
        fd, partial = tempfile.mkstemp(suffix=".so", dir=target_dir)
        os.close(fd)
        done = subprocess.run([cxx, *CXXFLAGS, source, *flags, "-o", partial], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            _warn_once(name, f"building {source} failed ({reason}): training uses the MindSpore-op form (slower)")
            return None
        if not _loads(partial, name):
            _warn_once(name, f"{cxx} built {source} into a library that does not load: training uses the "
                             "MindSpore-op form (slower)")
            return None
        os.chmod(partial, 0o755)  # mkstemp's 0600 would keep other users of a shared cache out
        os.replace(partial, library)
        partial = None
    except (OSError, subprocess.SubprocessError) as e:
        _warn_once(name, f"cannot build {source} into {target_dir} ({e}): training uses the MindSpore-op form (slower)")
        return None
    finally:
        if partial is not None and os.path.exists(partial):
            os.unlink(partial)
    return library


_ops = {}  # (op name, device target, enabled, cache dir) -> the op or None


def _op(name, make, source=None):
    """The op make(library) builds from layers/native/<source or name>.cc (one per name)."""
    key = (name, ms.get_context("device_target"), enabled(), cache_dir())
    if key not in _ops:
        library = build(source or name) if key[1] == "CPU" and key[2] else None
        op = None
        if library is not None:
            try:
                op = make(library)
            except (TypeError, ValueError, RuntimeError) as e:  # e.g. MS_CUSTOM_AOT_WHITE_LIST excludes the cache
                _warn_once("custom", f"MindSpore refused the native kernels ({str(e).splitlines()[0]}): "
                                     "training uses the MindSpore-op forms (slower)")
        _ops[key] = op
    return _ops[key]


def layer_norm():
    """The Custom op (x, gamma, beta, eps) -> y of layers/native/layer_norm.cc (per-sample
    LayerNorm, per-channel or per-element affine), its backward wired in; None when native
    kernels are off or cannot be built here."""
    return _op("layer_norm", _make_layer_norm)


def softmax_grad():
    """The Custom op (y, dy) -> dx of layers/native/softmax_grad.cc, the backward of a
    softmax over the last axis; None when native kernels are off or cannot be built here."""
    return _op("softmax_grad", lambda library: ops.Custom(
        library + ":SoftmaxGrad", out_shape=lambda y, dy: y, out_dtype=lambda y, dy: y, func_type="aot"))


def gelu():
    """The Custom op x -> GELU(x) of layers/native/gelu.cc (exact GELU, erf to 1.5e-7), its
    backward wired in; None when native kernels are off or cannot be built here."""
    return _op("gelu", _make_gelu)


def _make_gelu(library):
    grad = ops.Custom(library + ":GeluGrad", out_shape=lambda x, dy: x, out_dtype=lambda x, dy: x, func_type="aot")

    def bprop(x, out, dout):
        return (grad(x, dout),)

    return ops.Custom(library + ":Gelu", out_shape=lambda x: x, out_dtype=lambda x: x, func_type="aot", bprop=bprop)


def sigmoid_gate():
    """The Custom op fg -> sigmoid(g) * f of layers/native/gelu.cc, fg [B, 2C, ...] holding f in
    its first C channels and g in the last C (gSTA's attention gate), its backward wired in;
    None when native kernels are off or cannot be built here."""
    return _op("sigmoid_gate", _make_sigmoid_gate, source="gelu")


def _make_sigmoid_gate(library):
    grad = ops.Custom(library + ":SigmoidGateGrad", out_shape=lambda fg, dy: fg, out_dtype=lambda fg, dy: fg,
                      func_type="aot")

    def bprop(fg, out, dout):
        return (grad(fg, dout),)

    def half_channels(fg):
        return [fg[0], fg[1] // 2] + list(fg[2:])

    return ops.Custom(library + ":SigmoidGate", out_shape=half_channels, out_dtype=lambda fg: fg, func_type="aot",
                      bprop=bprop)


def _make_layer_norm(library):
    grad = ops.Custom(library + ":LayerNormGrad",
                      out_shape=lambda x, gamma, dy, eps: (x, gamma, gamma),
                      out_dtype=lambda x, gamma, dy, eps: (x, gamma, gamma), func_type="aot")
    zeros_like = ops.ZerosLike()

    def bprop(x, gamma, beta, eps, out, dout):
        dx, dgamma, dbeta = grad(x, gamma, dout, eps)
        return dx, dgamma, dbeta, zeros_like(eps)

    return ops.Custom(library + ":LayerNorm",
                      out_shape=lambda x, gamma, beta, eps: x,
                      out_dtype=lambda x, gamma, beta, eps: x, func_type="aot", bprop=bprop)


def eps_tensor(eps):
    return ms.Tensor(np.array([eps], np.float32))


def conv_library():
    """Path of layers/native/conv.cc's built library (STPL_DNNL_LIBRARY set to the oneDNN it
    opens); None when native kernels are off, the device is not the CPU, or oneDNN or a
    compiler is missing (one line on stderr says which)."""
    library = _op("conv", lambda path: path)
    if library is not None:
        os.environ.setdefault("STPL_DNNL_LIBRARY", dnnl_paths()[1])
    return library


def conv(out_shape):
    """The Custom op (x, w, b, cfg) -> y of layers/native/conv.cc with its backward wired in;
    out_shape(x_shape, w_shape) gives y's shape. None where conv_library() is None."""
    library = conv_library()
    if library is None:
        return None
    grad = ops.Custom(library + ":ConvGrad", out_shape=lambda x, w, dy, cfg: (x, w, [w[0]]),
                      out_dtype=lambda x, w, dy, cfg: (x, w, w), func_type="aot")
    zeros_like = ops.ZerosLike()

    def bprop(x, w, b, cfg, out, dout):
        dx, dw, db = grad(x, w, dout, cfg)
        return dx, dw, db, zeros_like(cfg)

    return ops.Custom(library + ":Conv", out_shape=lambda x, w, b, cfg: out_shape(x, w),
                      out_dtype=lambda x, w, b, cfg: x, func_type="aot", bprop=bprop)


def conv_describe():
    """The oneDNN ISA and the implementations the native convolutions chose so far (text), or
    None when the library is not built."""
    library = conv_library()
    if library is None:
        return None
    buffer = ctypes.create_string_buffer(4096)
    if ctypes.CDLL(library).ConvDescribe(buffer, len(buffer)) != 0:
        return None
    return buffer.value.decode()

