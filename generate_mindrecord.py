"""Convert Moving MNIST or KTH Actions to MindRecord (seed usage: python generate_mindrecord.py --dataset_path=DIR).

Without --dataset_path, Moving MNIST is generated offline from handwritten digits bundled in
scikit-learn (or --digit_source=train-images-idx3-ubyte.gz). Files go to --mindrecord_dir
as mnist_train.mindrecord and mnist_test.mindrecord (each with its .db index).

--dataset=kth --dataset_path=DIR reads the KTH videos (personNN_ACTION_dS_uncomp.avi) or
the PredRNN/E3D frame folders (personNN_ACTION_dS_uncomp/image_NNNN.png) below DIR and
writes kth_train.mindrecord (persons 1-16, clips of seq_length frames) and
kth_test.mindrecord (persons 17-25, clips of test_seq_length frames), see
data_provider/kth.py. An interrupted KTH conversion can simply be run again: finished
files whose inputs and settings are unchanged are kept (NAME.mindrecord.json records them).
"""
import engine  # noqa: F401  (CPU settings must precede the mindspore import)
from engine.cli import run_cli


def main(argv):
    from data_provider.build import build_mindrecords
    from engine.config import load_config
    build_mindrecords(load_config(argv, needs_model=False))


if __name__ == "__main__":
    run_cli(main)
