"""310 protocol, last step: python postprocess.py --result_dir=RESULT_FILES --label_dir=DIR/01_label

Reads the runner's result files, prints and writes per-frame MSE / MAE / SSIM / PSNR to
acc.log (same conventions and numbers as eval.py on the same samples).
"""
import os

import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli


def main(argv):
    from engine.config import load_config, require_file
    from engine.log import RunLog
    from engine.protocol310 import postprocess
    cfg = load_config(argv)
    require_file(cfg, "result_dir")
    require_file(cfg, "label_dir")
    log = RunLog(os.path.join(os.getcwd(), "acc.log"), mode="w")
    postprocess(cfg.result_dir, cfg.label_dir, log=log)


if __name__ == "__main__":
    run_cli(main)
