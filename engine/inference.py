"""Inference: the exportable graph (input frames -> predicted frames) and one Predictor
interface over a checkpoint, a MINDIR file or an ONNX file, used by eval.py,
eval_onnx.py, infer.py, export.py and the 310 protocol.

The exported graph takes the input_length known frames, patch-reshaped,
float32 [B, input_length, H/p, W/p, p*p*C], and returns the predicted frames
[B, seq_length - input_length, H/p, W/p, p*p*C]. Inside, the frames are padded with zeros
to seq_length and the evaluation mask is a constant: with it the future frames are never
read, so one graph per batch size serves every model in the registry.
"""
import os

import numpy as np
import mindspore as ms
from mindspore import nn, ops

from data_provider.sampling import eval_mask
from engine.errors import UserError
from nets.base import frame_dims


class InferenceNet(nn.Cell):
    def __init__(self, net, cfg, batch_size):
        super().__init__(auto_prefix=False)
        self.net = net
        self.net.set_train(False)
        channel, height, width = frame_dims(cfg)
        self.future = cfg.seq_length - cfg.input_length
        self.seq_length = cfg.seq_length
        self.padding = ms.Tensor(np.zeros((batch_size, self.future, height, width, channel), np.float32))
        self.mask = ms.Tensor(eval_mask(batch_size, cfg.seq_length, cfg.input_length))

    def construct(self, inputs):
        frames = ops.concat((inputs, self.padding), axis=1)
        out = self.net(frames, self.mask)
        # an explicit start: ONNX Runtime refuses the graph a negative index exports to
        start = out.shape[1] - self.future
        return out[:, start:]


def input_shape(cfg, batch_size):
    channel, height, width = frame_dims(cfg)
    return (batch_size, cfg.input_length, height, width, channel)


def build_inference_net(cfg, checkpoint, batch_size):
    from engine.checkpoint import load_weights
    from nets.registry import build_model
    net = build_model(cfg)
    load_weights(net, checkpoint)
    return InferenceNet(net, cfg, batch_size)


FORMAT_SUFFIX = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}


def export_model(cfg, checkpoint, file_format, batch_size, file_name, device_target):
    """Export the inference graph; returns the written path."""
    if file_format not in FORMAT_SUFFIX:
        raise UserError(f"config key 'file_format': must be MINDIR, ONNX or AIR, got {file_format!r}")
    if file_format == "AIR" and device_target != "Ascend":
        raise UserError(f"file_format=AIR needs an Ascend device (MindSpore exports AIR only with the Ascend "
                        f"backend); this run is on {device_target}. Use MINDIR or ONNX here")
    net = build_inference_net(cfg, checkpoint, batch_size)
    dummy = ms.Tensor(np.zeros(input_shape(cfg, batch_size), np.float32))
    base = file_name[:-len(FORMAT_SUFFIX[file_format])] if file_name.lower().endswith(FORMAT_SUFFIX[file_format]) else file_name
    directory = os.path.dirname(os.path.abspath(base))
    os.makedirs(directory, exist_ok=True)
    ms.export(net, dummy, file_name=base, file_format=file_format)
    path = base + FORMAT_SUFFIX[file_format]
    if not os.path.isfile(path):
        raise UserError(f"export wrote no {path}")
    return path


class Predictor:
    """predict(inputs) -> predicted future, numpy float32, patched layout, for any batch size:
    batches are cut or zero-padded to the batch size the backend was built for."""

    kind = "checkpoint"

    def __init__(self, cfg, batch_size):
        self.cfg = cfg
        self.batch_size = batch_size

    def _run(self, inputs):
        raise NotImplementedError

    def predict(self, inputs):
        inputs = np.ascontiguousarray(inputs, np.float32)
        expected = input_shape(self.cfg, self.batch_size)[1:]
        if tuple(inputs.shape[1:]) != expected:
            raise UserError(f"inputs of shape {tuple(inputs.shape[1:])} per sample do not fit the model, "
                            f"which takes {expected} (input_length, H/p, W/p, p*p*C)")
        outs = []
        for start in range(0, len(inputs), self.batch_size):
            part = inputs[start:start + self.batch_size]
            n = len(part)
            if n < self.batch_size:
                part = np.concatenate([part, np.zeros((self.batch_size - n,) + part.shape[1:], np.float32)])
            outs.append(self._run(part)[:n])
        return np.concatenate(outs)


class CheckpointPredictor(Predictor):
    def __init__(self, cfg, checkpoint, batch_size):
        super().__init__(cfg, batch_size)
        self.net = build_inference_net(cfg, checkpoint, batch_size)

    def _run(self, inputs):
        return self.net(ms.Tensor(inputs)).asnumpy()


def mindir_input_shape(path):
    """The first input's shape recorded in a MINDIR file (None if it cannot be read):
    the exported batch size is fixed in the file."""
    try:
        proto = ms.load_mindir(path)  # deprecated since 2.5 but the one reader of the proto
        return tuple(int(d) for d in proto.graph.input[0].tensor[0].dims)
    except Exception:
        return None


class MindIRPredictor(Predictor):
    kind = "mindir"

    def __init__(self, cfg, path, batch_size=None):
        if not os.path.isfile(path):
            raise UserError(f"MINDIR file not found: {path}")
        try:
            self.graph = nn.GraphCell(ms.load(path))
        except Exception as e:
            raise UserError(f"{path} is not a loadable MINDIR file: {str(e).splitlines()[0][:200]}") from None
        shape = mindir_input_shape(path)
        super().__init__(cfg, shape[0] if shape else (batch_size or 1))

    def _run(self, inputs):
        return self.graph(ms.Tensor(inputs)).asnumpy()


class OnnxPredictor(Predictor):
    kind = "onnx"

    def __init__(self, cfg, path, providers=None, notice=print):
        if not os.path.isfile(path):
            raise UserError(f"ONNX file not found: {path}")
        import onnxruntime as ort
        available = ort.get_available_providers()
        wanted = providers or ["CUDAExecutionProvider", "CPUExecutionProvider"]
        use = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
        # onnxruntime-gpu logs a screenful when the CUDA libraries are absent; our notice
        # below says it in one line
        ort.set_default_logger_severity(4)
        try:
            self.session = ort.InferenceSession(path, providers=use)
        except Exception as e:
            raise UserError(f"{path} is not a loadable ONNX model: {str(e).splitlines()[0][:200]}") from None
        finally:
            ort.set_default_logger_severity(2)
        self.providers = self.session.get_providers()
        if "CUDAExecutionProvider" in wanted and "CUDAExecutionProvider" not in self.providers:
            notice("notice: CUDA is not usable by onnxruntime here; running on CPUExecutionProvider")
        meta = self.session.get_inputs()[0]
        self.input_name = meta.name
        batch = meta.shape[0] if isinstance(meta.shape[0], int) else 1
        super().__init__(cfg, batch)

    def _run(self, inputs):
        return self.session.run(None, {self.input_name: inputs})[0]


def make_predictor(cfg, source, batch_size, notice=print):
    """A Predictor for a .ckpt, .mindir or .onnx path (by suffix)."""
    lower = source.lower()
    if lower.endswith(".mindir"):
        return MindIRPredictor(cfg, source, batch_size)
    if lower.endswith(".onnx"):
        return OnnxPredictor(cfg, source, notice=notice)
    if lower.endswith(".air"):
        raise UserError(f"{source}: AIR files run only on Ascend through the 310 tools, not here")
    return CheckpointPredictor(cfg, source, batch_size)
