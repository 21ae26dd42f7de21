"""Entry-point wrapper: --help, and user mistakes (bad input, a missing package) as one line
on stderr with exit code 2."""
import os
import sys

from engine.errors import UserError

HELP_FLAGS = ("-h", "--help", "--help=true")
# the third-party packages the entry points import: import name -> the name pip installs
DEPENDENCIES = {"mindspore": "mindspore", "numpy": "numpy", "yaml": "pyyaml", "PIL": "pillow",
                "skimage": "scikit-image", "sklearn": "scikit-learn", "scipy": "scipy",
                "onnxruntime": "onnxruntime-gpu", "onnx": "onnx", "h5py": "h5py"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def setup_hint(missing):
    """One line telling how to get an environment with the requirements."""
    venv_python = os.path.join(ROOT, ".venv", "bin", "python")
    where = sys.executable or "python"
    if os.path.abspath(where) != os.path.abspath(venv_python) and os.path.exists(venv_python):
        how = (f"this project's environment is {os.path.join(ROOT, '.venv')}: run `source .venv/bin/activate` "
               f"in {ROOT} first (or use .venv/bin/python)")
    else:
        how = (f"set it up once with `bash scripts/run_tests.sh` or `. scripts/setup_env.sh` in {ROOT} "
               f"(creates .venv and installs requirements.txt), then `source .venv/bin/activate`")
    return f"the package '{DEPENDENCIES.get(missing, missing)}' is not installed for {where}: {how}"


def help_text(main, argv):
    """Usage (the entry point's docstring) and every config key with its current value and
    the comment it has in default_config.yaml."""
    from engine.config import config_help, load_config
    doc = (main.__globals__.get("__doc__") or "").strip()
    rest = [a for a in argv if a not in HELP_FLAGS]
    note = ""
    try:
        cfg = load_config(rest, validate=False)
        if rest:
            note = " (defaults, with the --config_path and options given)"
    except UserError as e:
        cfg = load_config([], validate=False)
        note = f" (defaults: the other options were not applied: {e})"
    lines = [doc, "",
             "Options are the config keys below, as --key=value on the command line or key: value in a",
             "YAML given with --config_path=FILE (command line > that YAML > default_config.yaml).",
             f"Current values{note}:", ""]
    lines += config_help(cfg)
    return "\n".join(lines)


def run_cli(main):
    argv = sys.argv[1:]
    try:
        if any(a in HELP_FLAGS for a in argv):
            print(help_text(main, argv), flush=True)
            sys.exit(0)
        main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top not in DEPENDENCIES:
            raise
        print(f"error: {setup_hint(top)}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
