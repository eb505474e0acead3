"""Self-describing run directories: weights plus the config and vocabulary that made them.

Layout of a run directory:
  config.json          the RunConfig (JSON; never pickle)
  vocab.json           the vocabulary
  checkpoint, ckpt-N.* the latest `keep_checkpoints` checkpoints (tf.train.CheckpointManager)
  best/ckpt-N.*        the checkpoint with the lowest validation loss so far
  logs/                TensorBoard events (unless --logdir says otherwise)

A training checkpoint holds the model, the optimizer (Adam moments, iteration count), the
global step, the best validation loss and the carried recurrent state, so a resumed run picks
up exactly where it stopped. Sampling and evaluation rebuild the model from config.json and
vocab.json alone, never from flags.
"""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from tfcharrnn.config import RunConfig
from tfcharrnn.errors import RunError, UsageError
from tfcharrnn.vocab import vocab_from_dict

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
BEST_DIR = "best"


def write_text_atomic(path: str, text: str):
    """Writes via a temporary file and a rename, so a crash never leaves half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it a normal file's mode
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_run_files(run_dir: str, config: RunConfig, vocab):
    os.makedirs(run_dir, exist_ok=True)
    write_text_atomic(os.path.join(run_dir, CONFIG_FILE),
                      json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    write_text_atomic(os.path.join(run_dir, VOCAB_FILE), vocab.to_json() + "\n")


def _read_json(run_dir: str, name: str):
    path = os.path.join(run_dir, name)
    if not os.path.isfile(path):
        raise RunError(f"{name} is missing from {run_dir}; it is written by "
                       f"`python -m tfcharrnn.train`, point --checkpoint_dir at a training run")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise RunError(f"{path} is not valid JSON ({e}); restore it or retrain") from None


def load_run_config(run_dir: str) -> RunConfig:
    check_run_dir(run_dir)
    d = _read_json(run_dir, CONFIG_FILE)
    try:
        if not isinstance(d, dict):
            raise ValueError("expected a JSON object")
        return RunConfig.from_dict(d)
    except (ValueError, TypeError, UsageError) as e:
        raise RunError(f"{os.path.join(run_dir, CONFIG_FILE)} is not a valid run config: {e}"
                       ) from None


def load_vocab(run_dir: str):
    d = _read_json(run_dir, VOCAB_FILE)
    try:
        return vocab_from_dict(d)
    except (ValueError, TypeError) as e:
        raise RunError(f"{os.path.join(run_dir, VOCAB_FILE)} is not a valid vocabulary: {e}"
                       ) from None


def check_run_dir(run_dir: str):
    if not os.path.isdir(run_dir):
        raise UsageError(f"checkpoint directory not found: {run_dir}; train first with "
                         f"`python -m tfcharrnn.train --checkpoint_dir={run_dir}` "
                         f"or pass --checkpoint_dir=<a run directory>")


class TrainingCheckpoint:
    """Everything a resumed run needs, with a manager for the latest and one for the best."""

    def __init__(self, run_dir: str, model, optimizer, state_shapes, batch_size: int,
                 keep: int):
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.best_val_loss = tf.Variable(np.inf, dtype=tf.float64, trainable=False,
                                         name="best_val_loss")
        # The carried state of the training streams [batch, hidden] each, saved so that a
        # resumed run continues the streams exactly where they stopped.
        self.carry = [tf.Variable(tf.zeros([batch_size, h]), trainable=False, name=f"carry_{i}")
                      for i, h in enumerate(state_shapes)]
        self.checkpoint = tf.train.Checkpoint(model=model.named_variables(), optimizer=optimizer,
                                              step=self.step,
                                              best_val_loss=self.best_val_loss, carry=self.carry)
        self.latest = tf.train.CheckpointManager(self.checkpoint, run_dir, max_to_keep=keep,
                                                 checkpoint_name="ckpt")
        self.best = tf.train.CheckpointManager(self.checkpoint, os.path.join(run_dir, BEST_DIR),
                                               max_to_keep=1, checkpoint_name="ckpt")
        self._last_saved_step = None

    def restore_latest(self) -> bool:
        """Restores the latest checkpoint if there is one; returns whether it did."""
        path = self.latest.latest_checkpoint
        if path is None:
            return False
        self.checkpoint.restore(path).assert_existing_objects_matched()
        self._last_saved_step = int(self.step.numpy())
        return True

    def save(self, state, best: bool = False):
        for var, value in zip(self.carry, state):
            var.assign(value)
        step = int(self.step.numpy())
        try:
            if best:
                self.best.save(checkpoint_number=step)
            if step != self._last_saved_step:
                self.latest.save(checkpoint_number=step)
                self._last_saved_step = step
        except (OSError, tf.errors.OpError) as e:
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            kept = (f"the previous checkpoint ({self.latest.latest_checkpoint}) is kept"
                    if self.latest.latest_checkpoint else "no earlier checkpoint exists")
            raise RunError(f"could not write the checkpoint of step {step} to "
                           f"{self.latest.directory} ({reason}); is the disk full? {kept}"
                           ) from None

    def carried_state(self):
        return [tf.identity(v) for v in self.carry]


def checkpoint_path(run_dir: str, which: str = "best") -> str:
    """Path prefix of the best or latest checkpoint; "best" falls back to the latest."""
    check_run_dir(run_dir)
    latest = tf.train.latest_checkpoint(run_dir)
    best = tf.train.latest_checkpoint(os.path.join(run_dir, BEST_DIR))
    path = (best or latest) if which == "best" else latest
    if path is None:
        raise UsageError(f"no checkpoint in {run_dir}; train first with "
                         f"`python -m tfcharrnn.train --checkpoint_dir={run_dir}`")
    return path


def restore_model(run_dir: str, which: str = "best"):
    """Rebuilds the model of a run from its own files. Returns (config, vocab, model)."""
    from tfcharrnn.models import build_model
    config = load_run_config(run_dir)
    vocab = load_vocab(run_dir)
    path = checkpoint_path(run_dir, which)
    model = build_model(config.model, len(vocab), seed=config.train.seed)
    try:
        status = tf.train.Checkpoint(model=model.named_variables()).read(path)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunError(f"checkpoint {path} does not match {CONFIG_FILE}/{VOCAB_FILE} "
                       f"({first_line[:200]}); were they copied from another run?") from None
    return config, vocab, model
