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
        out = ops.stack(outputs, axis=1)
        return ops.transpose(out, (0, 1, 3, 4, 2))


def frame_dims(cfg):
    """(frame_channel, height, width) of the patch-reshaped frames the nets see."""
    p = cfg.patch_size
    return p * p * cfg.img_channel, cfg.img_width // p, cfg.img_width // p
