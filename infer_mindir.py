"""310 protocol runner in Python (MindSpore loads a MINDIR; ONNX Runtime runs an .onnx file
given as --mindir_path): the same input folder and result layout as ascend310_infer's C++
program, so the protocol runs on any machine.

    python infer_mindir.py --mindir_path=MODEL.mindir --input0_path=DIR/00_data --output_dir=result_Files
                           [--input1_path=DIR/02_noise]   (a stochastic model's noise)
"""
import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli


def main(argv):
    from engine.config import load_config, require_file
    from engine.device import init_context
    from engine.protocol310 import run_python
    cfg = load_config(argv)
    require_file(cfg, "mindir_path")
    require_file(cfg, "input0_path")
    init_context(cfg)
    run_python(cfg.mindir_path, cfg.input0_path, cfg.output_dir, cfg.input1_path)


if __name__ == "__main__":
    run_cli(main)
