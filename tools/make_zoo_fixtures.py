"""Write tests/fixtures/zoo/ with the model zoo's own PredRNN++ code (mindspore-ai/models,
research/cv/predrnn++), so tests/test_zoo_checkpoint.py checks our mapping against what
their network really computes, not against our reading of it.

    python tools/make_zoo_fixtures.py --zoo_dir=/path/to/models/research/cv/predrnn++
    (or ZOO_PREDRNN_PP_DIR=/path/... python tools/make_zoo_fixtures.py)

Run once by hand; not part of CI. It imports THEIR `layers` and `nets` packages, which share
names with ours, so it must not import anything from this repository: run it as a script
(sys.path[0] is tools/, not the repo root).

Per configuration (3 and 4 layers) it builds their PreRNN, gives every parameter seeded
non-trivial values (their U(-0.001, 0.001) init would make every prediction ~0 and hide
mapping errors), trains two steps through exactly their train.py wrapper
(NetWithLossCell -> nn.TrainOneStepCell -> Model.train with ModelCheckpoint), then, like
their eval.py, loads that checkpoint into a fresh PreRNN and records its predictions for a
fixed clip, and its loss (NetWithLossCell, training mode) on a fixed batch.

Their code targets MindSpore 1.x; the shims for 2.10 live here, never in their files:
  - P.Pack is gone in 2.x: aliased to P.Stack (same semantics, axis 0).
  - their PreRNN sizes the output conv with num_hidden[3] whatever the depth, so fewer than
    four layers raise IndexError; for the 3-layer fixture num_hidden is a list that answers
    an index past its end with its last entry (the width conv2d actually reads).
"""
import argparse
import glob
import json
import os
import shutil
import sys
import tempfile

import numpy as np

CONFIGS = {
    "L3": "6,3,3",
    "L4": "6,3,3,3",
}
# img 8x8 with patch 2 gives 4x4x4 patched frames: H == W == C, the one shape family for
# which their eval.py's NHWC-laid-out test mask broadcasts against NCHW frames.
BATCH, SEQ, INPUT, IMG, PATCH, CHANNEL, FILTER = 2, 6, 3, 8, 2, 1, 3
LR = 1e-3


class _WidthList(list):
    """num_hidden for their PreRNN with < 4 layers (see the module docstring)."""

    def __getitem__(self, i):
        if isinstance(i, int) and i >= len(self):
            return list.__getitem__(self, len(self) - 1)
        return list.__getitem__(self, i)


def reshape_patch(frames, p):
    """[B, T, H, W, C] -> [B, T, p*p*C, H/p, W/p], as their data_provider/preprocess.py."""
    b, t, h, w, c = frames.shape
    a = frames.reshape(b, t, h // p, p, w // p, p, c).transpose(0, 1, 2, 4, 3, 5, 6)
    return a.reshape(b, t, h // p, w // p, p * p * c).transpose(0, 1, 4, 2, 3)


def make_clip(rng):
    """Smooth moving blobs, uint8 like the MindRecord frames our reader decodes (x / 255)."""
    yy, xx = np.mgrid[0:IMG, 0:IMG]
    clip = np.zeros((BATCH, SEQ, IMG, IMG, CHANNEL), np.float64)
    for b in range(BATCH):
        y0, x0 = rng.uniform(1, IMG - 2, 2)
        vy, vx = rng.uniform(-1, 1, 2)
        for t in range(SEQ):
            cy, cx = y0 + vy * t, x0 + vx * t
            clip[b, t, :, :, 0] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 4.0)
    clip += rng.uniform(0, 0.1, clip.shape)
    return np.clip(np.round(clip * 255), 0, 255).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo_dir", default=os.environ.get("ZOO_PREDRNN_PP_DIR", ""),
                        help="folder research/cv/predrnn++ of mindspore-ai/models")
    parser.add_argument("--out_dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                          "..", "tests", "fixtures", "zoo"))
    args = parser.parse_args()
    if not args.zoo_dir or not os.path.isfile(os.path.join(args.zoo_dir, "nets", "predrnn_pp.py")):
        sys.exit("give --zoo_dir (or ZOO_PREDRNN_PP_DIR): the folder research/cv/predrnn++ of mindspore-ai/models")
    sys.path.insert(0, os.path.abspath(args.zoo_dir))

    import mindspore as ms
    from mindspore import Model, context, nn
    from mindspore.ops import operations as P
    if not hasattr(P, "Pack"):
        P.Pack = P.Stack
    from mindspore.train.callback import CheckpointConfig, ModelCheckpoint
    from nets.predrnn_pp import NetWithLossCell, PreRNN

    context.set_context(mode=context.GRAPH_MODE, device_target="CPU")
    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(2024)
    test_clip = make_clip(rng)
    train_clip = make_clip(rng)
    patched_c, patched_w = PATCH * PATCH * CHANNEL, IMG // PATCH
    shape = [BATCH, SEQ, patched_c, patched_w, patched_w]
    test_ims = reshape_patch(test_clip.astype(np.float32) / 255.0, PATCH).astype(np.float32)
    train_ims = reshape_patch(train_clip.astype(np.float32) / 255.0, PATCH).astype(np.float32)
    manifest = {"batch_size": BATCH, "seq_length": SEQ, "input_length": INPUT, "img_width": IMG,
                "patch_size": PATCH, "img_channel": CHANNEL, "filter_size": FILTER, "layer_norm": True,
                "lr": LR, "mindspore": ms.__version__, "configs": {}}
    arrays = {"test_clip": test_clip, "train_clip": train_clip}

    for tag, hidden in CONFIGS.items():
        widths = [int(x) for x in hidden.split(",")]
        num_hidden = widths if len(widths) >= 4 else _WidthList(widths)

        def build():
            return PreRNN(input_shape=shape, num_layers=len(widths), num_hidden=num_hidden,
                          filter_size=FILTER, stride=1, seq_length=SEQ, input_length=INPUT, tln=True)

        ms.set_seed(7)
        network = build()
        prng = np.random.default_rng(100 + len(widths))
        for p in network.get_parameters():
            if p.name.endswith(".s"):
                value = 1.0 + prng.normal(0, 0.2, p.shape)
            elif p.name.endswith(".b") or p.name.endswith(".bias"):
                value = prng.normal(0, 0.2, p.shape)
            else:
                value = prng.normal(0, 0.3, p.shape)
            p.set_data(ms.Tensor(value.astype(np.float32)))

        # their train.py, verbatim in structure
        netwithloss = NetWithLossCell(network, BATCH, SEQ, INPUT, shape[-3], shape[-1], True, True)
        opt = nn.Adam(params=netwithloss.trainable_params(), learning_rate=LR)
        train_step = nn.TrainOneStepCell(netwithloss, opt).set_train()
        model = Model(train_step)
        dataset = ms.dataset.NumpySlicesDataset({"input_x": train_ims}, shuffle=False).batch(BATCH)
        tmp = tempfile.mkdtemp()
        try:
            ckpt_cb = ModelCheckpoint(prefix="predrnn_pp", directory=tmp,
                                      config=CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=1))
            model.train(2, dataset, callbacks=[ckpt_cb], dataset_sink_mode=False)
            saved = sorted(glob.glob(os.path.join(tmp, "*.ckpt")))[-1]
            ckpt_name = f"zoo_{tag}.ckpt"
            # ModelCheckpoint writes mode 0400: a plain copy would stop the next run overwriting it
            shutil.copyfile(saved, os.path.join(out_dir, ckpt_name))
            os.chmod(os.path.join(out_dir, ckpt_name), 0o644)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        saved_params = ms.load_checkpoint(os.path.join(out_dir, ckpt_name))

        # their eval.py: a fresh PreRNN, load_param_into_net (which finds 'network.*' names
        # by suffix), the NHWC zeros test mask
        eval_net = build()
        not_loaded = ms.load_param_into_net(eval_net, saved_params)
        not_loaded = not_loaded[0] if isinstance(not_loaded, tuple) else not_loaded
        if not_loaded:
            sys.exit(f"their eval-style load left parameters out: {not_loaded}")
        eval_net.set_train(False)
        mask = np.zeros((BATCH, SEQ - INPUT - 1, patched_w, patched_w, patched_c), np.float32)
        pred = eval_net(ms.Tensor(test_ims), ms.Tensor(mask)).asnumpy()
        arrays[f"{tag}_pred"] = pred

        # their loss on the fixed batch, before any update. The mask their construct draws
        # (all ones at eta = 1 - 2e-5) is assigned to the mask_true Parameter, but the network
        # reads the Parameter's previous value, the initial zeros: the prediction period is
        # fed with the model's own outputs (tests/test_zoo_checkpoint.py relies on this)
        losses = {}
        for reverse in (False, True):
            loss_net = build()
            ms.load_param_into_net(loss_net, saved_params)
            with_loss = NetWithLossCell(loss_net, BATCH, SEQ, INPUT, shape[-3], shape[-1], reverse, True)
            with_loss.set_train(True)
            losses["reverse" if reverse else "forward"] = float(with_loss(ms.Tensor(train_ims)).asnumpy())
        manifest["configs"][tag] = {
            "num_hidden": hidden, "checkpoint": ckpt_name,
            "loss_l2_over_batch": losses,
            "num_entries": len(saved_params),
        }
        print(tag, "loss", losses, "pred", pred.shape, float(np.abs(pred).mean()))

    np.savez_compressed(os.path.join(out_dir, "zoo_reference.npz"), **arrays)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    print("wrote", out_dir)


if __name__ == "__main__":
    main()
