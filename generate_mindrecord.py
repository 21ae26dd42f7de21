"""Convert Moving MNIST to MindRecord (seed usage: python generate_mindrecord.py --dataset_path=DIR).

Without --dataset_path, Moving MNIST is generated offline from handwritten digits bundled in
scikit-learn (or --digit_source=train-images-idx3-ubyte.gz). Files go to --mindrecord_dir
as mnist_train.mindrecord and mnist_test.mindrecord (each with its .db index).
"""
import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli


def main(argv):
    from data_provider.build import build_mindrecords
    from engine.config import load_config
    build_mindrecords(load_config(argv, needs_model=False))


if __name__ == "__main__":
    run_cli(main)
