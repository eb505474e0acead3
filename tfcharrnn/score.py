"""Score sentences or lines with a trained run, one JSON line each:
python -m tfcharrnn.score --checkpoint_dir=checkpoints/words --sort < candidates.txt

Prints, per text, its total log-probability in nats, its token count, the per-token loss and
the perplexity; --sort ranks them from most to least probable.
"""

import flags as tfcharrnn_flags  # the top-level flags/ package

from tfcharrnn import cli

tfcharrnn_flags.define_score_flags()


def main(argv):
    from tfcharrnn import score_lib  # imported after cli has silenced TensorFlow's start-up log
    score_lib.score(tfcharrnn_flags.score_config())


if __name__ == "__main__":
    cli.run(main)
