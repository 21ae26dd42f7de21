"""Write a checkpoint of another code base once in our own layout.

    python convert_checkpoint.py --source=zoo --input=zoo.ckpt --output=ours.ckpt [--config_path=...] [--key=value ...]
    python convert_checkpoint.py --source=thuml|openstl --model_name=NAME --input=model.pth --output=ours.ckpt
                                 [--openstl_code=v0.3.0|current] [--config_path=...] [--key=value ...]

--source=zoo: a .ckpt of the MindSpore model zoo's PredRNN++ (research/cv/predrnn++ train.py,
with 'network.' names and optimizer state, or a bare PreRNN checkpoint). The config (default:
default_config.yaml, the zoo's own settings) must describe the same network: num_hidden,
filter_size, patch_size, img_channel, layer_norm. The output holds our predrnn_pp's tensors
only and loads like any checkpoint of ours (eval.py, export.py, train.py --pretrained_model).
eval.py, infer.py, export.py and train.py also take the zoo file directly; converting once
only saves the mapping at each start.

--source=thuml (predrnn, predrnn_v2) | openstl (convlstm, predrnn, predrnn_v2, predrnn_pp, e3d_lstm, simvp, tau, mim): a
torch.save file of thuml/predrnn-pytorch or OpenSTL, read without PyTorch (engine/torch_compat.py
explains the formats, containers and the mapping per model). Without --config_path the config is
the one with that repository's Moving MNIST settings (torch_compat.DEFAULT_CONFIGS). Where their
maths differs from our defaults the converter sets the matching config switch and prints it,
with the flags the converted checkpoint needs at run time. OpenSTL changed ConvLSTM and PredRNN++
after v0.3.0 without changing a tensor name: --openstl_code picks the maths (default: current for
a Lightning checkpoint, v0.3.0 for any other container, as its published weights).
eval.py, infer.py, export.py and train.py (--pretrained_model) also take these files directly
and convert them in memory through the same mapping (engine/checkpoint.load_weights; the
source from --checkpoint_source=auto|thuml|openstl); the config must then already hold the
switches this command would set, and they are checked.
"""
import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli

SOURCES = ("zoo", "thuml", "openstl")


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
    from engine import zoo_compat
    from engine.checkpoint import read_checkpoint
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
    if source != "zoo":
        return _convert_torch(source, src, dst, argv)
    cfg = load_config(argv)
    if cfg.model_name != "predrnn_pp":
        raise UserError(f"--source=zoo converts the zoo's PredRNN++: model_name must be predrnn_pp, not {cfg.model_name}")
    params = read_checkpoint(src)
    if not zoo_compat.is_zoo_layout(params):
        raise UserError(f"{src} does not hold the model zoo's PredRNN++ tensor names "
                        "(network.lstm.N.h_conv.weight, ...): nothing to convert")
    net = build_model(cfg)
    zoo_compat.load_zoo_weights(net, params, src)
    _save_and_check(net, cfg, dst)
    print(f"wrote {dst}: predrnn_pp num_hidden={cfg.num_hidden} filter_size={cfg.filter_size} "
          f"patch_size={cfg.patch_size} layer_norm={cfg.layer_norm}")


def _save_and_check(net, cfg, dst):
    import os

    import mindspore as ms

    from engine.checkpoint import load_into, read_checkpoint
    from nets.registry import build_model

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


def _convert_torch(source, src, dst, argv, log=print):
    import mindspore as ms

    from engine import torch_compat
    from engine.config import load_config, parse_cli
    from engine.errors import UserError
    from nets.registry import build_model

    code, argv = _take(argv, "openstl_code")
    cli = parse_cli(argv)
    model = cli.get("model_name")
    supported = torch_compat.SUPPORTED[source]
    if model not in supported:
        raise UserError(f"--source={source} converts --model_name={' | '.join(supported)}, got {model!r}")
    if code is not None and code not in torch_compat.OPENSTL_CODES:
        raise UserError(f"--openstl_code must be one of {', '.join(torch_compat.OPENSTL_CODES)}, got {code!r}")
    if "config_path" not in cli:
        argv = [f"--config_path={torch_compat.DEFAULT_CONFIGS[(source, model)]}"] + list(argv)
    cfg = load_config(argv)
    sd, kind, origin = torch_compat.network_state(torch_compat.read_torch_file(src), src)
    if source == "openstl" and model in ("convlstm", "predrnn_pp"):
        if code is None:
            code = "current" if origin == "lightning" else "v0.3.0"
            log(f"{src} is {kind}: assuming OpenSTL {code} code (its maths differ from the other version's "
                "under the same tensor names; --openstl_code=v0.3.0|current to choose)")
        log(f"converting for OpenSTL {code}'s {model}")
    else:
        log(f"{src} is {kind}")
    run_flags = []
    for key, (value, why) in torch_compat.switches(source, model, code).items():
        if cfg[key] != value:
            log(f"  setting {key}={value} (was {cfg[key]}): {why}")
            cfg[key] = value
        else:
            log(f"  {key}={value}: {why}")
        if value != load_config([f"--config_path={cfg.config_path}"] if cfg.config_path else [],
                                validate=False)[key]:
            run_flags.append(f"--{key}={str(value).lower() if isinstance(value, bool) else value}")
    net = build_model(cfg)
    mapped, notes = torch_compat.map_torch_params(source, model, sd, net, src)
    ms.load_param_into_net(net, {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in mapped.items()},
                           strict_load=True)
    for note in notes:
        log(f"  {note}")
    _save_and_check(net, cfg, dst)
    if model in torch_compat.SIMVP_MODELS:
        shape = (f"simvp_model_type={cfg.simvp_model_type} hid_S={cfg.hid_S} hid_T={cfg.hid_T} N_S={cfg.N_S} "
                 f"N_T={cfg.N_T} patch_size={cfg.patch_size}")
    else:
        shape = (f"num_hidden={cfg.num_hidden} filter_size={cfg.filter_size} patch_size={cfg.patch_size} "
                 f"layer_norm={cfg.layer_norm}")
    log(f"wrote {dst}: {model} {shape}, {len(mapped)} tensors")
    given = [a for a in argv if not a.startswith(("--config_path", "--model_name"))
             and a.split("=", 1)[0][2:] not in torch_compat.switches(source, model, code)]
    flags = " ".join(([f"--config_path={cfg.config_path}"] if cfg.config_path else []) + given + run_flags)
    log(f"run it with: {flags} --pretrained_model={dst}" if flags else f"run it with --pretrained_model={dst}")
    return cfg


if __name__ == "__main__":
    run_cli(main)
