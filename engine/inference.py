"""Inference: the exportable graph (input frames -> predicted frames) and one Predictor
interface over a checkpoint, a MINDIR file or an ONNX file, used by eval.py,
eval_onnx.py, infer.py, export.py and the 310 protocol.

The exported graph takes the input_length known frames, patch-reshaped,
float32 [B, input_length, H/p, W/p, p*p*C], and returns the predicted frames
[B, seq_length - input_length, H/p, W/p, p*p*C]. Inside, the frames are padded with zeros
to seq_length and the evaluation mask is a constant: with it the future frames are never
read, so one graph per batch size serves every model in the registry. In ONNX and MINDIR
files the input is named `frames` and the output `predictions` (export_model renames what
MindSpore writes); the output is raw, not clipped: callers clip it (eval, infer, postprocess).

Stochastic models (nets/registry.STOCHASTIC: SRVP) take a second input, the noise
float32 [B, seq_length, noise_dim] ~ N(0, I), so that the same noise gives the same future
in MindSpore, MINDIR and ONNX Runtime. Predictors draw it per sequence from
(seed, sequence index, draw index) unless it is given (sequence_noise). The noise input is
named `noise`.
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

    # The parameter names become the ONNX graph's input names (frames, noise); export_model
    # names both formats' inputs and output (INPUT_NAMES, OUTPUT_NAMES), which C++ callers use.
    def construct(self, frames):
        frames = ops.concat((frames, self.padding), axis=1)
        out = self.net(frames, self.mask)
        # an explicit start: ONNX Runtime refuses the graph a negative index exports to
        start = out.shape[1] - self.future
        return out[:, start:]


class StochasticInferenceNet(InferenceNet):
    """(inputs, noise [B, seq_length, noise_dim]) -> future: the sampling path of a
    stochastic model with its noise as an explicit input."""

    def construct(self, frames, noise):
        frames = ops.concat((frames, self.padding), axis=1)
        out = self.net.sample(frames, noise)
        start = out.shape[1] - self.future
        return out[:, start:]


def input_shape(cfg, batch_size):
    channel, height, width = frame_dims(cfg)
    return (batch_size, cfg.input_length, height, width, channel)


def sequence_noise(cfg, indices, draw, noise_dim):
    """N(0, I) noise [len(indices), seq_length, noise_dim] for the given test-sequence indices
    and draw number: a function of (seed, index, draw) only, so a sequence gets the same
    futures whatever the batch size or runtime."""
    shape = (cfg.seq_length, noise_dim)
    return np.stack([np.random.default_rng((int(cfg.seed), int(i), int(draw))).standard_normal(shape)
                     for i in indices]).astype(np.float32)


def build_inference_net(cfg, checkpoint, batch_size, onnx=False):
    from engine.checkpoint import load_weights
    from nets.registry import build_model, is_stochastic
    net = build_model(cfg)
    load_weights(net, checkpoint, cfg=cfg)
    if onnx and hasattr(net, "use_exportable_ops"):  # the same maths from ops ONNX export knows
        net.use_exportable_ops()
    if not is_stochastic(cfg.model_name):
        return InferenceNet(net, cfg, batch_size)
    if onnx:  # MindSpore's ONNX export has no ConvTranspose: the same maths from pad + conv
        from layers.srvp_blocks import replace_transposed_convs
        replace_transposed_convs(net)
    return StochasticInferenceNet(net, cfg, batch_size)


FORMAT_SUFFIX = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}


def export_graph(net, *inputs, file_name, file_format):
    """ms.export with MindSpore's own convolutions in place of the native CPU kernels
    (layers/conv.py), so that every exported file holds standard operators only."""
    from layers.conv import standard_operators
    with standard_operators(net):
        ms.export(net, *inputs, file_name=file_name, file_format=file_format)


def export_model(cfg, checkpoint, file_format, batch_size, file_name, device_target):
    """Export the inference graph; returns the written path."""
    if file_format not in FORMAT_SUFFIX:
        raise UserError(f"config key 'file_format': must be MINDIR, ONNX or AIR, got {file_format!r}")
    if file_format == "AIR" and device_target != "Ascend":
        raise UserError(f"file_format=AIR needs an Ascend device (MindSpore exports AIR only with the Ascend "
                        f"backend); this run is on {device_target}. Use MINDIR or ONNX here")
    net = build_inference_net(cfg, checkpoint, batch_size, onnx=file_format == "ONNX")
    dummy = (ms.Tensor(np.zeros(input_shape(cfg, batch_size), np.float32)),)
    if isinstance(net, StochasticInferenceNet):
        dummy += (ms.Tensor(np.zeros((batch_size, cfg.seq_length, net.net.noise_dim), np.float32)),)
    base = file_name[:-len(FORMAT_SUFFIX[file_format])] if file_name.lower().endswith(FORMAT_SUFFIX[file_format]) else file_name
    directory = os.path.dirname(os.path.abspath(base))
    os.makedirs(directory, exist_ok=True)
    export_graph(net, *dummy, file_name=base, file_format=file_format)
    path = base + FORMAT_SUFFIX[file_format]
    if not os.path.isfile(path):
        raise UserError(f"export wrote no {path}")
    input_names = INPUT_NAMES[:len(dummy)]
    if file_format == "ONNX":
        name_onnx_io(path, input_names, OUTPUT_NAMES)
    elif file_format == "MINDIR":
        name_mindir_io(path, input_names, OUTPUT_NAMES)
    return path  # AIR: as MindSpore writes it


INPUT_NAMES = ("frames", "noise")  # the exported graphs' inputs (noise: stochastic models only)
OUTPUT_NAMES = ("predictions",)


def _renaming(old_inputs, old_outputs, input_names, output_names, used, fixed, where):
    """{old name: new name} for the graph's inputs and outputs, by position. A value that
    already carries one of the new names (MindIR names constants after the Python variable,
    e.g. a zeros tensor 'frames' in E3D-LSTM) is renamed out of the way to NAME_1 (or _2, ...);
    `used` holds every value name in the file, `fixed` those that must not change."""
    if len(old_inputs) != len(input_names) or len(old_outputs) != len(output_names):
        raise RuntimeError(f"{where}: the graph has inputs {list(old_inputs)} and outputs {list(old_outputs)}, "
                           f"not {len(input_names)} input(s) and {len(output_names)} output(s)")
    mapping = {}
    for old, new in zip(list(old_inputs) + list(old_outputs), list(input_names) + list(output_names)):
        if old != new and old not in mapping:  # an output that is an input keeps the input's name
            mapping[old] = new
    taken = set(used) | set(mapping.values())
    for clash in sorted(set(mapping.values()) & (set(used) - set(mapping))):
        if clash in fixed:
            raise RuntimeError(f"{where}: cannot name a graph input / output {clash!r}: a parameter has that name")
        k = 1
        while f"{clash}_{k}" in taken:
            k += 1
        mapping[clash] = f"{clash}_{k}"
        taken.add(mapping[clash])
    return mapping


def _write_atomically(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def name_onnx_io(path, input_names, output_names):
    """Give an ONNX file's graph inputs and outputs stable names, by position (MindSpore names
    the inputs after construct's parameters but the output after its last node, e.g.
    '328-Default/net-ConvLSTM/StridedSlice-op9'), so that C++ callers can ask for them by
    name. Every node input / output, value_info and initializer that refers to an old name
    follows (subgraphs too); the model is checked and the file replaced atomically."""
    import onnx
    model = onnx.load(path)
    graph = model.graph

    def graphs(g):
        yield g
        for node in g.node:
            for attr in node.attribute:
                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    yield from graphs(sub)

    used = set()
    for g in graphs(graph):
        used.update(v.name for v in list(g.input) + list(g.output) + list(g.value_info) + list(g.initializer))
        for node in g.node:
            used.update(node.input)
            used.update(node.output)
    used.discard("")  # an omitted optional input
    initializers = {t.name for t in graph.initializer}
    inputs = [v.name for v in graph.input if v.name not in initializers]  # old IR versions list weights as inputs
    mapping = _renaming(inputs, [v.name for v in graph.output], input_names, output_names, used, (), path)
    if not mapping:
        return
    for g in graphs(graph):
        for value in list(g.input) + list(g.output) + list(g.value_info) + list(g.initializer):
            value.name = mapping.get(value.name, value.name)
        for node in g.node:
            node.input[:] = [mapping.get(n, n) for n in node.input]
            node.output[:] = [mapping.get(n, n) for n in node.output]
    onnx.checker.check_model(model)
    _write_atomically(path, model.SerializeToString())


def name_mindir_io(path, input_names, output_names):
    """The same for a MINDIR file. MindSpore 2.10 writes the inputs as '<graph>:frames' and
    the output after its last node ('<graph>:CNode_1234:56'); in MindIR's protobuf a value is
    named by the node that makes it (node.name == node.output[0]) and nodes refer to their
    operands by those names, so the graph's inputs / outputs, the producing node and every
    reference (in every function of the file) are renamed together. The reloaded graph
    (mindspore.load + nn.GraphCell) gives bit-identical outputs (tests/test_export.py)."""
    from mindspore.train import mind_ir_pb2
    model = mind_ir_pb2.ModelProto()
    with open(path, "rb") as f:
        model.ParseFromString(f.read())
    graph = model.graph
    graphs = [graph] + list(model.functions)
    used, fixed = set(), set()
    for g in graphs:
        used.update(v.name for v in list(g.input) + list(g.output))
        fixed.update(v.name for v in g.parameter)
        for node in g.node:
            used.add(node.name)
            used.update(node.input)
            used.update(node.output)
    used |= fixed
    mapping = _renaming([v.name for v in graph.input], [v.name for v in graph.output], input_names, output_names,
                        used, fixed, path)
    if not mapping:
        return
    for g in graphs:
        for value in list(g.input) + list(g.output):
            value.name = mapping.get(value.name, value.name)
        for node in g.node:
            node.name = mapping.get(node.name, node.name)
            node.input[:] = [mapping.get(n, n) for n in node.input]
            node.output[:] = [mapping.get(n, n) for n in node.output]
    _write_atomically(path, model.SerializeToString())


def _pad_batch(part, batch_size):
    n = len(part)
    if n == batch_size:
        return part
    return np.concatenate([part, np.zeros((batch_size - n,) + part.shape[1:], np.float32)])


class Predictor:
    """predict(inputs[, noise]) -> predicted future, numpy float32, patched layout, for any
    batch size: batches are cut or zero-padded to the batch size the backend was built for.
    noise_dim is None for deterministic models; for stochastic ones predict() draws the
    noise of each sequence (sequence_noise, counting the sequences it has seen, draw 0)
    unless it is given."""

    kind = "checkpoint"
    noise_dim = None

    def __init__(self, cfg, batch_size):
        self.cfg = cfg
        self.batch_size = batch_size
        self.sequences_seen = 0

    @property
    def stochastic(self):
        return self.noise_dim is not None

    def _run(self, inputs, noise):
        raise NotImplementedError

    def predict(self, inputs, noise=None):
        inputs = np.ascontiguousarray(inputs, np.float32)
        expected = input_shape(self.cfg, self.batch_size)[1:]
        if tuple(inputs.shape[1:]) != expected:
            raise UserError(f"inputs of shape {tuple(inputs.shape[1:])} per sample do not fit the model, "
                            f"which takes {expected} (input_length, H/p, W/p, p*p*C)")
        if self.stochastic:
            if noise is None:
                noise = sequence_noise(self.cfg, range(self.sequences_seen, self.sequences_seen + len(inputs)), 0,
                                       self.noise_dim)
            noise = np.ascontiguousarray(noise, np.float32)
            want = (len(inputs), self.cfg.seq_length, self.noise_dim)
            if noise.shape != want:
                raise UserError(f"noise of shape {noise.shape} does not fit the model, which takes {want}")
        self.sequences_seen += len(inputs)
        outs = []
        for start in range(0, len(inputs), self.batch_size):
            part = inputs[start:start + self.batch_size]
            part_noise = None if noise is None else _pad_batch(noise[start:start + self.batch_size], self.batch_size)
            outs.append(self._run(_pad_batch(part, self.batch_size), part_noise)[:len(part)])
        return np.concatenate(outs)


class CheckpointPredictor(Predictor):
    def __init__(self, cfg, checkpoint, batch_size):
        super().__init__(cfg, batch_size)
        self.net = build_inference_net(cfg, checkpoint, batch_size)
        if isinstance(self.net, StochasticInferenceNet):
            self.noise_dim = self.net.net.noise_dim

    def _run(self, inputs, noise):
        if noise is None:
            return self.net(ms.Tensor(inputs)).asnumpy()
        return self.net(ms.Tensor(inputs), ms.Tensor(noise)).asnumpy()


def mindir_input_shapes(path):
    """The input shapes recorded in a MINDIR file (None if it cannot be read): the exported
    batch size is fixed in the file; a second input is a stochastic model's noise."""
    try:
        proto = ms.load_mindir(path)  # deprecated since 2.5 but the one reader of the proto
        return [tuple(int(d) for d in inp.tensor[0].dims) for inp in proto.graph.input]
    except Exception:
        return None


def mindir_input_shape(path):
    shapes = mindir_input_shapes(path)
    return shapes[0] if shapes else None


class MindIRPredictor(Predictor):
    kind = "mindir"

    def __init__(self, cfg, path, batch_size=None):
        if not os.path.isfile(path):
            raise UserError(f"MINDIR file not found: {path}")
        try:
            self.graph = nn.GraphCell(ms.load(path))
        except Exception as e:
            raise UserError(f"{path} is not a loadable MINDIR file: {str(e).splitlines()[0][:200]}") from None
        shapes = mindir_input_shapes(path) or []
        super().__init__(cfg, shapes[0][0] if shapes else (batch_size or 1))
        if len(shapes) > 1:
            self.noise_dim = shapes[1][-1]

    def _run(self, inputs, noise):
        if noise is None:
            return self.graph(ms.Tensor(inputs)).asnumpy()
        return self.graph(ms.Tensor(inputs), ms.Tensor(noise)).asnumpy()


def session_options(ort):
    """ONNX Runtime session options for the CPU: intra-op threads that sleep instead of
    spinning while they wait. Spinning threads compete with every other process for the
    cores; on the shared 2-core CPU under other load the small PredRNN ran 30-44 ms/sequence
    without spinning and 41-56 with it, while on an idle machine spinning wins by 1-2 ms on
    tiny models (docs/performance.md, Changes kept). benchmark.py times the same options."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


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
            self.session = ort.InferenceSession(path, session_options(ort), providers=use)
        except Exception as e:
            raise UserError(f"{path} is not a loadable ONNX model: {str(e).splitlines()[0][:200]}") from None
        finally:
            ort.set_default_logger_severity(2)
        self.providers = self.session.get_providers()
        if "CUDAExecutionProvider" in wanted and "CUDAExecutionProvider" not in self.providers:
            notice("notice: CUDA is not usable by onnxruntime here; running on CPUExecutionProvider")
        metas = self.session.get_inputs()
        self.input_name = metas[0].name
        batch = metas[0].shape[0] if isinstance(metas[0].shape[0], int) else 1
        super().__init__(cfg, batch)
        if len(metas) > 1:
            self.noise_name = metas[1].name
            self.noise_dim = int(metas[1].shape[-1])

    def _run(self, inputs, noise):
        feed = {self.input_name: inputs}
        if noise is not None:
            feed[self.noise_name] = noise
        return self.session.run(None, feed)[0]


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
