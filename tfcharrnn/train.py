"""Train a recurrent language model: python -m tfcharrnn.train --model=lstm

Trains on the bundled tiny-shakespeare unless --data_path is given (--preset=NAME loads a
named set of flag values, which flags on the command line override), writes checkpoints,
config.json and vocab.json to --checkpoint_dir (default checkpoints/<model>) and TensorBoard
logs to <checkpoint_dir>/logs. Running it again on the same directory resumes.
"""

import flags as tfcharrnn_flags  # the top-level flags/ package
from absl import flags

from tfcharrnn import cli

FLAGS = flags.FLAGS
tfcharrnn_flags.define_train_flags()


def main(argv):
    from tfcharrnn import train_lib  # imported after cli has silenced TensorFlow's start-up log
    train_lib.train_and_evaluate(tfcharrnn_flags.run_config(), overwrite=FLAGS.overwrite)


def expand_argv(argv):
    """--preset=NAME as its flagfiles; a preset with variants by precision (cpu_hour) picks
    the one for what --precision resolves to here, as train_lib will resolve it."""
    def resolve_precision(precision):
        cli.import_tensorflow(cli.verbosity_in(argv))  # quiet, as the command's own import
        from tfcharrnn.models import devices
        return devices.resolve_precision(precision)
    return tfcharrnn_flags.with_preset(argv, resolve_precision)


if __name__ == "__main__":
    cli.run(main, expand_argv=expand_argv)
