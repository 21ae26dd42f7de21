"""Evaluate an exported ONNX model with ONNX Runtime (CUDA where it works, else CPU):
the same per-frame table as eval.py, written to eval_dir/log_eval_onnx.txt.

    python eval_onnx.py --onnx_path=MODEL.onnx --test_mindrecord=FILE [--config_path=...]
"""
import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli


def main(argv):
    from engine.config import load_config
    from engine.evaluator import batch_size_alias, evaluate
    cfg = load_config(argv)
    batch_size_alias(cfg)
    evaluate(cfg, model_key="onnx_path", log_name="log_eval_onnx.txt")


if __name__ == "__main__":
    run_cli(main)
