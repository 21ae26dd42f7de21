"""The one configuration loader.

Order of precedence: default_config.yaml < --config_path YAML < --key=value on the command
line. Every key must exist in default_config.yaml; command-line values are typed like the
default. Mistakes raise UserError naming the key, which the entry points turn into one line
and exit code 2.
"""
import os
import re

import yaml

from engine.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "default_config.yaml")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class Config(dict):
    """A dict with attribute access (cfg.lr) that refuses unknown attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'") from None

    def __setattr__(self, name, value):
        self[name] = value

    def hidden_list(self):
        """num_hidden as a list of ints ('128,64' or [128, 64] in the YAML)."""
        return parse_int_list(self["num_hidden"], "num_hidden")


def parse_int_list(value, key):
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    else:
        items = [v for v in str(value).replace(" ", "").split(",") if v != ""]
    try:
        out = [int(v) for v in items]
    except (TypeError, ValueError):
        raise UserError(f"config key '{key}': expected comma-separated integers, got {value!r}") from None
    return out


def _read_yaml(path):
    if not os.path.isfile(path):
        raise UserError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise UserError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of key: value")
    return data


def _coerce(key, value, default, source):
    """Convert value to the type of the default (bool, int, float, str)."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise UserError(f"config key '{key}' ({source}): expected true/false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, bool):
            raise UserError(f"config key '{key}' ({source}): expected an integer, got {value!r}")
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise UserError(f"config key '{key}' ({source}): expected an integer, got {value!r}") from None
        if as_float != int(as_float):
            raise UserError(f"config key '{key}' ({source}): expected an integer, got {value!r}")
        return int(as_float)
    if isinstance(default, float):
        if isinstance(value, bool):
            raise UserError(f"config key '{key}' ({source}): expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UserError(f"config key '{key}' ({source}): expected a number, got {value!r}") from None
    if isinstance(default, str):
        if isinstance(value, (list, tuple)):
            return ",".join(str(v) for v in value)
        return str(value)
    return value


def parse_cli(argv):
    """['--a=1', '--b', '2', '--flag'] -> {'a': '1', 'b': '2', 'flag': 'true'}."""
    out = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise UserError(f"unexpected argument {arg!r}: options look like --key=value")
        body = arg[2:]
        if "=" in body:
            key, value = body.split("=", 1)
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            key, value = body, argv[i + 1]
            i += 1
        else:
            key, value = body, "true"
        out[key.replace("-", "_")] = value
        i += 1
    return out


# keys that were renamed: the old name in a user's YAML or command line gets the new one
RENAMED = {"causal_tanh": "activations", "e3d_activations": "activations"}


def _unknown(key, where):
    if key in RENAMED:
        return UserError(f"config key '{key}' {where} was renamed to '{RENAMED[key]}' "
                         f"(same values: ops | exact)")
    return UserError(f"unknown config key '{key}' {where}" if where.startswith("in ")
                     else f"unknown option --{key} (not a key of default_config.yaml)")


def load_config(argv=None, defaults_path=DEFAULT_CONFIG, validate=True, needs_model=True):
    """Build the Config from the defaults, an optional --config_path YAML and CLI overrides."""
    cli = parse_cli(list(argv) if argv is not None else [])
    defaults = _read_yaml(defaults_path)
    cfg = Config(defaults)
    config_path = cli.pop("config_path", "")
    if config_path:
        for key, value in _read_yaml(config_path).items():
            if key not in defaults:
                raise _unknown(key, f"in {config_path}")
            cfg[key] = _coerce(key, value, defaults[key], config_path)
    for key, value in cli.items():
        if key not in defaults:
            raise _unknown(key, "on the command line")
        cfg[key] = _coerce(key, value, defaults[key], "command line")
    cfg["config_path"] = config_path
    if not cfg.get("img_height"):  # 0: square frames, so the seed's img_width alone keeps its meaning
        cfg["img_height"] = cfg.get("img_width")
    # which keys the command line set (an attribute, not a key): eval.py takes --batch_size
    object.__setattr__(cfg, "cli_keys", frozenset(cli))
    if validate:
        validate_config(cfg, needs_model)
    return cfg


_KEY_LINE = re.compile(r"^(?P<key>[A-Za-z_]\w*):(?P<rest>.*)$")
_SECTION = re.compile(r"^#\s*-+\s*(?P<title>.*?)\s*-+\s*$")


def key_comments(defaults_path=DEFAULT_CONFIG):
    """[(section title or None, key, comment)] in the order of default_config.yaml; the
    comment is the text after '#' on the key's line ('' when it has none)."""
    out = []
    section = None
    with open(defaults_path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            head = _SECTION.match(line)
            if head:
                section = head.group("title")
                continue
            match = _KEY_LINE.match(line)
            if not match:
                continue
            rest = match.group("rest")
            # the comment starts at the first '#' outside quotes
            quote, comment = None, ""
            for i, ch in enumerate(rest):
                if quote:
                    quote = None if ch == quote else quote
                elif ch in "'\"":
                    quote = ch
                elif ch == "#":
                    comment = rest[i + 1:].strip()
                    break
            out.append((section, match.group("key"), comment))
    return out


def config_help(cfg, defaults_path=DEFAULT_CONFIG):
    """Lines listing every key with its value in cfg and its comment, by section."""
    entries = key_comments(defaults_path)
    width = max(len(f"{key}={cfg.get(key)!r}") for _, key, _ in entries) if entries else 0
    width = min(width, 44)
    lines = []
    current = object()
    for section, key, comment in entries:
        if section != current:
            if lines:
                lines.append("")
            lines.append(f"[{section}]" if section else "[keys]")
            current = section
        value = cfg.get(key)
        shown = f'"{value}"' if isinstance(value, str) else ("true" if value is True else "false" if value is False else str(value))
        item = f"  --{key}={shown}"
        lines.append(f"{item:<{width + 6}}  {comment}".rstrip() if comment else item)
    return lines


def _require(cond, key, message):
    if not cond:
        raise UserError(f"config key '{key}': {message}")


def validate_config(cfg, needs_model=True):
    """Catch inconsistent values at start-up rather than deep inside a graph compile.
    needs_model=False skips the model-only checks (for data tools)."""
    _require(cfg.input_length >= 1, "input_length", f"must be >= 1, got {cfg.input_length}")
    _require(cfg.seq_length > cfg.input_length, "seq_length",
             f"must be greater than input_length ({cfg.seq_length} <= {cfg.input_length})")
    _require(cfg.img_width > 0, "img_width", f"must be positive, got {cfg.img_width}")
    _require(cfg.img_height > 0, "img_height", f"must be positive, got {cfg.img_height}")
    _require(cfg.img_channel > 0, "img_channel", f"must be positive, got {cfg.img_channel}")
    _require(cfg.patch_size > 0, "patch_size", f"must be positive, got {cfg.patch_size}")
    _require(cfg.img_width % cfg.patch_size == 0 and cfg.img_height % cfg.patch_size == 0, "patch_size",
             f"frames of {frame_size_text(cfg)} (img_height x img_width) are not divisible by patch_size "
             f"{cfg.patch_size}")
    _require(cfg.filter_size > 0 and cfg.filter_size % 2 == 1, "filter_size",
             f"must be a positive odd number ('same' padding), got {cfg.filter_size}")
    _require(cfg.stride == 1, "stride", f"only stride 1 keeps the frame size, got {cfg.stride}")
    hidden = cfg.hidden_list()
    _require(len(hidden) >= 1 and all(h > 0 for h in hidden), "num_hidden",
             f"expected positive comma-separated channel counts like '64,64', got {cfg.num_hidden!r}")
    _require(cfg.batch_size > 0, "batch_size", f"must be positive, got {cfg.batch_size}")
    _require(cfg.eval_batch_size > 0, "eval_batch_size", f"must be positive, got {cfg.eval_batch_size}")
    _require(cfg.lr > 0, "lr", f"must be positive, got {cfg.lr}")
    _require(cfg.max_iterations > 0, "max_iterations", f"must be positive, got {cfg.max_iterations}")
    _require(cfg.snapshot_interval > 0, "snapshot_interval", f"must be positive, got {cfg.snapshot_interval}")
    _require(cfg.keep_checkpoint_max > 0, "keep_checkpoint_max", f"must be positive, got {cfg.keep_checkpoint_max}")
    _require(cfg.log_interval > 0, "log_interval", f"must be positive, got {cfg.log_interval}")
    _require(cfg.grad_clip >= 0, "grad_clip", f"must be >= 0, got {cfg.grad_clip}")
    _require(cfg.device_target in ("auto", "CPU", "GPU", "Ascend"), "device_target",
             f"must be auto, CPU, GPU or Ascend, got {cfg.device_target!r}")
    _require(cfg.mode in ("GRAPH", "PYNATIVE"), "mode", f"must be GRAPH or PYNATIVE, got {cfg.mode!r}")
    _require(cfg.file_format in ("MINDIR", "ONNX", "AIR"), "file_format",
             f"must be MINDIR, ONNX or AIR, got {cfg.file_format!r}")
    _require(cfg.lr_schedule in ("constant", "cosine", "step", "linear", "onecycle"), "lr_schedule",
             f"must be constant, cosine, step, linear or onecycle, got {cfg.lr_schedule!r}")
    _require(0 <= cfg.lr_decay_start < cfg.max_iterations or cfg.lr_schedule != "linear", "lr_decay_start",
             f"must be in [0, max_iterations) for lr_schedule linear, got {cfg.lr_decay_start}")
    parse_int_list(cfg.lr_step_iters, "lr_step_iters")
    _require(cfg.causal_output_gate in ("tanh", "sigmoid"), "causal_output_gate",
             f"must be tanh or sigmoid, got {cfg.causal_output_gate!r}")
    _require(cfg.loss in ("mse", "mse_l1"), "loss", f"must be mse or mse_l1, got {cfg.loss!r}")
    _require(cfg.loss == "mse" or cfg.model_name != "srvp", "loss",
             "SRVP trains on its ELBO, which holds its own reconstruction term: use loss: mse")
    _require(cfg.activations in ("ops", "exact"), "activations",
             f"must be ops or exact, got {cfg.activations!r}")
    _require(cfg.decouple_beta >= 0, "decouple_beta", f"must be >= 0, got {cfg.decouple_beta}")
    _require(cfg.num_samples >= 1, "num_samples", f"must be >= 1, got {cfg.num_samples}")
    _require(cfg.archi in ("dcgan", "vgg"), "archi", f"must be dcgan or vgg, got {cfg.archi!r}")
    _require(cfg.colormap in ("viridis", "radar", "grey"), "colormap",
             f"must be viridis, radar or grey, got {cfg.colormap!r}")
    _require(cfg.simvp_model_type in ("gsta", "incepu", "tau"), "simvp_model_type",
             f"must be gsta, incepu or tau, got {cfg.simvp_model_type!r}")
    _require(cfg.alpha >= 0, "alpha", f"must be >= 0, got {cfg.alpha}")
    for key in ("hid_S", "hid_T", "N_S", "spatio_kernel_enc", "spatio_kernel_dec"):
        _require(cfg[key] > 0, key, f"must be positive, got {cfg[key]}")
    _require(cfg.N_T >= 2, "N_T", f"must be at least 2, got {cfg.N_T}")
    _require(0 <= cfg.drop < 1 and 0 <= cfg.drop_path < 1, "drop_path" if cfg.drop_path >= 1 or cfg.drop_path < 0
             else "drop", f"must be in [0, 1), got drop={cfg.drop}, drop_path={cfg.drop_path}")
    _require(cfg.teacher_forcing in ("frame", "batch"), "teacher_forcing",
             f"must be frame or batch, got {cfg.teacher_forcing!r}")
    _require(cfg.mau_tau >= 1, "mau_tau", f"must be >= 1, got {cfg.mau_tau}")
    _require(cfg.sr_size >= 1 and cfg.sr_size & (cfg.sr_size - 1) == 0, "sr_size",
             f"must be a power of 2, got {cfg.sr_size}")
    _require(cfg.cell_mode in ("normal", "residual"), "cell_mode", f"must be normal or residual, got {cfg.cell_mode!r}")
    _require(cfg.model_mode in ("normal", "recall"), "model_mode", f"must be normal or recall, got {cfg.model_mode!r}")
    for key in OUTPUT_DIR_KEYS:
        check_output_dir(cfg, key)
    if not needs_model:
        return
    from nets.registry import model_names  # late import: the registry imports mindspore
    _require(cfg.model_name in model_names(), "model_name",
             f"unknown model {cfg.model_name!r}; known: {', '.join(model_names())}")


# keys naming a folder the entry points write into
OUTPUT_DIR_KEYS = ("save_dir", "eval_dir", "infer_dir", "mindrecord_dir", "result_path", "output_dir")


def check_output_dir(cfg, key):
    """A folder key must not name an existing file (os.makedirs would fail deep inside)."""
    path = cfg.get(key)
    if path and os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"config key '{key}': {path} is a file, not a folder: give --{key}=DIR "
                        "(a folder, created if missing)")


def make_output_dir(cfg, key):
    """Create the folder in cfg[key]; a file in the way or no permission is a UserError."""
    check_output_dir(cfg, key)
    path = cfg[key]
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UserError(f"config key '{key}': cannot create the folder {path}: {e.strerror or e}") from None
    return path


def frame_size_text(cfg):
    """'HxW' of the configured frames."""
    return f"{cfg.img_height}x{cfg.img_width}"


def require_file(cfg, key):
    """The path in cfg[key] must exist (a missing data file or checkpoint is a user error)."""
    path = cfg[key]
    if not path:
        raise UserError(f"config key '{key}' is empty: give --{key}=PATH")
    if not os.path.exists(path):
        raise UserError(f"config key '{key}': file not found: {path}")
    return path
