"""310 protocol, step 1: python preprocess.py --test_mindrecord=FILE --result_path=DIR [--config_path=...]

Writes DIR/00_data/seq_NNNNN.bin (model inputs), DIR/01_label/seq_NNNNN.bin (ground truth)
and DIR/manifest.json; see engine/protocol310.py for the layout.
"""
import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli


def main(argv):
    from engine.config import load_config, require_file
    from engine.protocol310 import preprocess
    cfg = load_config(argv)
    require_file(cfg, "test_mindrecord")
    preprocess(cfg, cfg.test_mindrecord, cfg.result_path, cfg.eval_max_sequences)


if __name__ == "__main__":
    run_cli(main)
