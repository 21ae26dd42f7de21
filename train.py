"""Train a model: python train.py [--config_path=configs/X.yaml] [--key=value ...]

Checkpoints go to save_dir every snapshot_interval steps; --resume=latest continues the newest.
"""
import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine import interrupt
from engine.cli import run_cli


def main(argv):
    from engine.config import load_config
    from engine.trainer import train
    train(load_config(argv))


if __name__ == "__main__":
    interrupt.install()  # before mindspore starts its threads
    run_cli(main)
