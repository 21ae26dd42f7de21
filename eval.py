"""Evaluate a checkpoint: python eval.py --pretrained_model=CKPT --test_mindrecord=FILE [--config_path=...]

Prints per-frame MSE / MAE / SSIM / PSNR (conventions in docs/training.md) and the same for the
copy-last-frame and all-black baselines; writes eval_dir/log.txt and eval_dir/metrics.json.
"""
import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli


def main(argv):
    from engine.config import load_config
    from engine.evaluator import batch_size_alias, evaluate
    cfg = load_config(argv)
    batch_size_alias(cfg)
    evaluate(cfg)


if __name__ == "__main__":
    run_cli(main)
