"""Write a checkpoint of another code base once in our own layout.

    python convert_checkpoint.py --source=zoo --input=zoo.ckpt --output=ours.ckpt [--config_path=...] [--key=value ...]

--source=zoo: a .ckpt of the MindSpore model zoo's PredRNN++ (research/cv/predrnn++ train.py,
with 'network.' names and optimizer state, or a bare PreRNN checkpoint). The config (default:
default_config.yaml, the zoo's own settings) must describe the same network: num_hidden,
filter_size, patch_size, img_channel, layer_norm. The output holds our predrnn_pp's tensors
only and loads like any checkpoint of ours (eval.py, export.py, train.py --pretrained_model).
eval.py, infer.py, export.py and train.py also take the zoo file directly; converting once
only saves the mapping at each start.
"""
import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli

SOURCES = ("zoo",)


def _take(argv, key):
    """Pull --key=value / --key value out of argv (they are not config keys)."""
    rest, value = [], None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == f"--{key}" and i + 1 < len(argv):
            value = argv[i + 1]
            i += 2
            continue
        if arg.startswith(f"--{key}="):
            value = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return value, rest


def main(argv):
    import os

    import mindspore as ms

    from engine import zoo_compat
    from engine.checkpoint import load_into, read_checkpoint
    from engine.config import load_config
    from engine.errors import UserError
    from nets.registry import build_model

    source, argv = _take(argv, "source")
    src, argv = _take(argv, "input")
    dst, argv = _take(argv, "output")
    if source not in SOURCES:
        raise UserError(f"--source must be one of {', '.join(SOURCES)}, got {source!r}")
    if not src or not dst:
        raise UserError("give --input=CHECKPOINT and --output=CHECKPOINT")
    cfg = load_config(argv)
    if cfg.model_name != "predrnn_pp":
        raise UserError(f"--source=zoo converts the zoo's PredRNN++: model_name must be predrnn_pp, not {cfg.model_name}")
    params = read_checkpoint(src)
    if not zoo_compat.is_zoo_layout(params):
        raise UserError(f"{src} does not hold the model zoo's PredRNN++ tensor names "
                        "(network.lstm.N.h_conv.weight, ...): nothing to convert")
    net = build_model(cfg)
    zoo_compat.load_zoo_weights(net, params, src)
    out_dir = os.path.dirname(os.path.abspath(dst))
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, f".tmp-{os.path.basename(dst)}")
    try:
        ms.save_checkpoint(net, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    # read back as eval.py would: the output must be a plain checkpoint of ours
    check = build_model(cfg)
    load_into(check, read_checkpoint(dst), dst)
    print(f"wrote {dst}: predrnn_pp num_hidden={cfg.num_hidden} filter_size={cfg.filter_size} "
          f"patch_size={cfg.patch_size} layer_norm={cfg.layer_norm}")


if __name__ == "__main__":
    run_cli(main)
