"""Measure a trained run on a text file:
python -m tfcharrnn.evaluate --checkpoint_dir=checkpoints/lstm --data_path=some.txt

Runs the model over the whole file as one stream from a zero state and prints, as its last
line, one JSON object: loss_nats_per_token, bits_per_token, perplexity, tokens.
"""

import flags as tfcharrnn_flags  # the top-level flags/ package

from tfcharrnn import cli

tfcharrnn_flags.define_eval_flags()


def main(argv):
    from tfcharrnn import evaluate_lib  # imported after cli has silenced TensorFlow's log
    evaluate_lib.evaluate(tfcharrnn_flags.eval_config())


if __name__ == "__main__":
    cli.run(main)
