"""What every frame-by-frame recurrent predictor shares: layout changes and the input
schedule. A subclass builds its cells and implements init_state() and step().

Contract of every net in the registry:
    net(frames, mask) -> predictions
    frames: float32 [B, T, H/p, W/p, p*p*C]  (patch-reshaped, NHWC, T = seq_length)
    mask:   float32 [B, T-1]; mask[:, t] is the weight of the true frame t in the input at
            step t = 0..T-2 (1: ground truth, 0: the model's own previous output); step 0
            always reads frame 0. Evaluation uses ones for t < input_length and zeros after,
            so one compiled graph serves training (scheduled sampling) and testing.
            data_provider/sampling.py makes the masks.
    predictions: [B, N, H/p, W/p, p*p*C], the predictions of the last N frames of the
            sequence (N = T-1 for frame-by-frame predictors, as thuml/OpenSTL train them).
"""
import mindspore as ms
from mindspore import nn, ops


class RecurrentPredictor(nn.Cell):
    def __init__(self, seq_length, input_length, frame_channel, height, width):
        super().__init__()
        self.seq_length = seq_length
        self.input_length = input_length
        self.frame_channel = frame_channel
        self.height = height
        self.width = width

    def init_state(self, batch):
        raise NotImplementedError

    def step(self, x, state):
        """One time step: x [B, C, H, W] -> (generated frame [B, C, H, W], new state)."""
        raise NotImplementedError

    def finish(self, predictions, state):
        """What construct returns; a net with an extra training loss term returns
        (predictions, term) while training (see engine.trainer.NetWithLoss)."""
        return predictions

    def construct(self, frames, mask):
        batch = frames.shape[0]
        frames = ops.transpose(frames, (0, 1, 4, 2, 3))
        state = self.init_state(batch)
        x_gen = frames[:, 0]
        outputs = ()
        for t in range(self.seq_length - 1):
            if t == 0:
                net_in = frames[:, 0]
            else:
                weight = ops.reshape(mask[:, t], (batch, 1, 1, 1))
                net_in = weight * frames[:, t] + (1.0 - weight) * x_gen
            x_gen, state = self.step(net_in, state)
            outputs = outputs + (x_gen,)
        out = ops.transpose(ops.stack(outputs, axis=1), (0, 1, 3, 4, 2))
        return self.finish(out, state)


def zeros_like_layers(batch, channels, height, width):
    """A tuple of zero states, one [B, C_i, H, W] per layer."""
    out = ()
    for c in channels:
        out = out + (ops.zeros((batch, c, height, width), ms.float32),)
    return out


def frame_dims(cfg):
    """(frame_channel, height, width) of the patch-reshaped frames the nets see."""
    p = cfg.patch_size
    return p * p * cfg.img_channel, cfg.img_height // p, cfg.img_width // p
