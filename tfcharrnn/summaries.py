"""TensorBoard output: scalars, text samples and the run's hyperparameters."""

import json
import math

import tensorflow as tf


class SummaryWriter:

    def __init__(self, logdir):
        """logdir None: write nothing (a worker that is not the chief)."""
        self._writer = (tf.summary.create_file_writer(logdir) if logdir is not None
                        else tf.summary.create_noop_writer())

    def scalars(self, step: int, values: dict):
        with self._writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, float(value))

    def text(self, step: int, name: str, text: str):
        with self._writer.as_default(step=step):
            # Markdown would eat newlines and indentation of the sample; a code block keeps them.
            tf.summary.text(name, "```\n" + text + "\n```")

    def hparams(self, config_dict: dict):
        """The run's settings, for TensorBoard's HParams dashboard and as readable JSON."""
        from tensorboard.plugins.hparams import api as hp
        flat = {f"{section}.{k}": v for section, fields in config_dict.items()
                for k, v in fields.items() if isinstance(v, (bool, int, float, str))}
        flat = {k: v for k, v in flat.items() if not (isinstance(v, float) and math.isinf(v))}
        with self._writer.as_default(step=0):
            hp.hparams(flat)
            tf.summary.text("config", "```\n" + json.dumps(config_dict, indent=2) + "\n```")

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()
