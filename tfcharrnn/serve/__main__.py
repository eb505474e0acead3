"""Serve a run on a web page and a JSON API: python -m tfcharrnn.serve --checkpoint_dir=D"""

import flags as tfcharrnn_flags  # the top-level flags/ package

from tfcharrnn import cli

tfcharrnn_flags.define_serve_flags()


def main(argv):
    from tfcharrnn.serve import server  # after cli has silenced TensorFlow's start-up log
    server.serve(tfcharrnn_flags.serve_config(), verbose=cli.verbosity() >= 0)


if __name__ == "__main__":
    cli.run(main)
