"""Draw learning curves from TensorBoard event files:
python -m tfcharrnn.plot --logdir=checkpoints --out=curves.png

One curve per run found under --logdir (validation loss against minutes by default).
"""

import sys

import flags as tfcharrnn_flags  # the top-level flags/ package

from tfcharrnn import cli

tfcharrnn_flags.define_plot_flags()


def main(argv):
    from tfcharrnn import plot_lib  # imported after cli has silenced TensorFlow's log
    plot_lib.plot(tfcharrnn_flags.plot_config(), out=sys.stdout)


if __name__ == "__main__":
    cli.run(main)
