"""Generate text from a trained run: python -m tfcharrnn.sample --checkpoint_dir=checkpoints/lstm

The model is rebuilt from the run's config.json and vocab.json; text streams to stdout.
"""

import flags as tfcharrnn_flags  # the top-level flags/ package

from tfcharrnn import cli

tfcharrnn_flags.define_sample_flags()


def main(argv):
    from tfcharrnn import sample_lib  # imported after cli has silenced TensorFlow's start-up log
    sample_lib.sample(tfcharrnn_flags.sample_config())


if __name__ == "__main__":
    cli.run(main)
