"""Export the inference graph of a checkpoint to MINDIR, ONNX or AIR (AIR on Ascend only).

    python export.py --device_id=0 --pretrained_model=CKPT --file_format=MINDIR [--config_path=...]
                     [--batch_size=1] [--file_name=out/predrnn_pp]

Input `frames`: the input_length known frames, patch-reshaped, float32
[batch, input_length, H/p, W/p, p*p*C] (stochastic models, SRVP: a second input `noise`,
float32 [batch, seq_length, noise_dim] ~ N(0, I)); output `predictions`: the predicted frames
float32 [batch, seq_length - input_length, H/p, W/p, p*p*C]. ONNX and MINDIR files carry
exactly these names (export renames what MindSpore writes: '<graph>:frames' and an output
named after its last node), so a C++ caller can bind them by name; AIR keeps MindSpore's
names (take its inputs and output by position).

The output is the raw model output, not clipped: eval.py, infer.py and postprocess.py clip
it to [0, 1] (normalized custom data: to the training data's range, which the graph does not
know) before scoring or saving, and a caller using the file directly must do the same.
The batch size is fixed in the file: export one file per batch size (the 310 tools use
batch 1). The final lines printed say the names, shapes and this.
"""
import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli


def main(argv):
    from engine.config import load_config, require_file
    from engine.device import init_context
    from engine.evaluator import resolve_latest
    from engine.inference import export_model, input_shape
    cfg = load_config(argv)
    resolve_latest(cfg)
    require_file(cfg, "pretrained_model")
    target = init_context(cfg)
    file_name = cfg.file_name or f"{cfg.model_name}_b{cfg.batch_size}"
    path = export_model(cfg, cfg.pretrained_model, cfg.file_format, cfg.batch_size, file_name, target)
    from nets.registry import noise_dim
    shape = input_shape(cfg, cfg.batch_size)
    print(f"exported {cfg.file_format} {path}"
          + (" (AIR keeps MindSpore's names: take inputs and output by position)" if cfg.file_format == "AIR" else ""))
    print(f"  input  frames      float32 {list(shape)}")
    if noise_dim(cfg):
        print(f"  input  noise       float32 {[shape[0], cfg.seq_length, noise_dim(cfg)]} (N(0, I))")
    print(f"  output predictions float32 {[shape[0], cfg.seq_length - cfg.input_length] + list(shape[2:])}")
    print("  the output is the raw model output, not clipped: eval.py, infer.py and postprocess.py clip it to "
          "[0, 1] (normalized custom data: to the training data's range) before scoring or saving")


if __name__ == "__main__":
    run_cli(main)
