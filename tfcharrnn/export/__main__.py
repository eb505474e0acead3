"""Export a run as a SavedModel: python -m tfcharrnn.export --checkpoint_dir=D --export_dir=E"""

import flags as tfcharrnn_flags  # the top-level flags/ package

from tfcharrnn import cli

tfcharrnn_flags.define_export_flags()


def main(argv):
    from tfcharrnn.export import export_lib  # after cli has silenced TensorFlow's start-up log
    export_lib.export(tfcharrnn_flags.export_config())


if __name__ == "__main__":
    cli.run(main)
