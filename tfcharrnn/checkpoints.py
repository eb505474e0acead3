"""Self-describing run directories: weights plus the config and vocabulary that made them.

Layout of a run directory:
  config.json          the RunConfig (JSON; never pickle)
  vocab.json           the vocabulary
  checkpoint, ckpt-N.* the latest `keep_checkpoints` checkpoints (tf.train.CheckpointManager)
  best/ckpt-N.*        the checkpoint with the lowest validation loss so far
  logs/                TensorBoard events (unless --logdir says otherwise)

A training checkpoint holds the model, the optimizer (Adam moments, iteration count), the
global step, the best validation loss and the carried recurrent state, so a resumed run picks
up exactly where it stopped; with --ema_decay also the weights' moving averages, which are what
sampling and evaluation load (see averaging.py). Sampling and evaluation rebuild the model from
config.json and vocab.json alone, never from flags.
"""

import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfcharrnn import averaging
from tfcharrnn.config import RunConfig
from tfcharrnn.errors import RunError, UsageError
from tfcharrnn.vocab import vocab_from_dict

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
BEST_DIR = "best"
AVERAGE = "average"  # the checkpoint's averaged weights, under --ema_decay


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


def save_run_files(run_dir: str, config: RunConfig, vocab=None):
    """Writes config.json, and vocab.json when a vocabulary is given (a new run). A resumed
    run rewrites config.json only: it then records the values of this invocation (the fields
    that may change on resume, such as --precision or --max_minutes)."""
    os.makedirs(run_dir, exist_ok=True)
    write_text_atomic(os.path.join(run_dir, CONFIG_FILE),
                      json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    if vocab is not None:
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
    except RecursionError:               # valid JSON nested thousands of levels deep
        raise RunError(f"{path} is not a tfcharrnn file (its JSON is nested too deep); "
                       f"restore it or retrain") from None


def load_run_config(run_dir: str) -> RunConfig:
    check_run_dir(run_dir)
    d = _read_json(run_dir, CONFIG_FILE)
    try:
        if not isinstance(d, dict):
            raise ValueError("expected a JSON object")
        return RunConfig.from_dict(d)
    except (ValueError, TypeError, UsageError, RecursionError) as e:
        raise RunError(f"{os.path.join(run_dir, CONFIG_FILE)} is not a valid run config: {e}"
                       ) from None


def load_vocab(run_dir: str):
    d = _read_json(run_dir, VOCAB_FILE)
    try:
        return vocab_from_dict(d)
    except (ValueError, TypeError, RecursionError) as e:
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
        # With --ema_decay the weights' averages are saved under the model's names, beside
        # the weights (see averaging.py and `restore_model`).
        average = getattr(optimizer, "weight_average", None)
        extra = ({} if average is None else
                 {AVERAGE: average.averages, "average_updates": average.updates})
        self.checkpoint = tf.train.Checkpoint(model=model.named_variables(), optimizer=optimizer,
                                              step=self.step,
                                              best_val_loss=self.best_val_loss, carry=self.carry,
                                              **extra)
        self.latest = tf.train.CheckpointManager(self.checkpoint, run_dir, max_to_keep=keep,
                                                 checkpoint_name="ckpt")
        self.best = tf.train.CheckpointManager(self.checkpoint, os.path.join(run_dir, BEST_DIR),
                                               max_to_keep=1, checkpoint_name="ckpt")
        self._last_saved_step = None

    def variables(self) -> list:
        """Every variable the checkpoint holds (what a multi-worker run broadcasts)."""
        average = getattr(self.checkpoint, AVERAGE, None)
        return (list(self.checkpoint.model.values()) + list(self.checkpoint.optimizer.variables)
                + [self.step, self.best_val_loss] + self.carry
                + ([] if average is None else
                   list(average.values()) + [self.checkpoint.average_updates]))

    def restore_latest(self, log=print) -> bool:
        """Restores the newest intact checkpoint, if there is one; returns whether it did.
        A damaged one (truncated or corrupted files) is skipped with one line to `log`."""
        for path in reversed(self.latest.checkpoints):
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except DAMAGED as e:
                log(f"skipped the damaged checkpoint {path} ({_first_line(e)})")
                continue
            self._last_saved_step = int(self.step.numpy())
            return True
        return False

    def save(self, state, best: bool = False):
        """state: the carried state of every stream, list of [batch, hidden] (global order)."""
        for var, value in zip(self.carry, state):
            var.assign(value)
        step = int(self.step.numpy())
        try:
            if best:
                self.best.save(checkpoint_number=step)
                remove_orphans(self.best)
            if step != self._last_saved_step:
                self.latest.save(checkpoint_number=step)
                self._last_saved_step = step
                remove_orphans(self.latest)
        except (OSError, tf.errors.OpError) as e:
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            kept = (f"the previous checkpoint ({self.latest.latest_checkpoint}) is kept"
                    if self.latest.latest_checkpoint else "no earlier checkpoint exists")
            raise RunError(f"could not write the checkpoint of step {step} to "
                           f"{self.latest.directory} ({reason}); is the disk full? {kept}"
                           ) from None

    def carried_state(self):
        return [tf.identity(v) for v in self.carry]


_CHECKPOINT_FILE = re.compile(r"^ckpt-(\d+)(\.index|\.data-\d+-of-\d+|_temp.*)$")


def remove_orphans(manager: tf.train.CheckpointManager):
    """Removes checkpoint files in the manager's directory that no checkpoint it keeps owns:
    those left by a kill between a save and the pruning of the oldest checkpoint, or by a
    kill in the middle of writing (TensorFlow's `_temp` directories)."""
    kept = {os.path.basename(p) for p in manager.checkpoints}
    for name in os.listdir(manager.directory):
        match = _CHECKPOINT_FILE.match(name)
        if match is None or (f"ckpt-{match.group(1)}" in kept
                             and not match.group(2).startswith("_temp")):
            continue
        path = os.path.join(manager.directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)


# What reading a damaged checkpoint raises: a truncated data file IndexError ("Read less bytes
# than requested"), corrupted bytes DataLossError (checksum), a damaged index file OpError. A
# checkpoint of another model raises ValueError (shapes) or AssertionError (names) instead.
DAMAGED = (tf.errors.OpError, IndexError)


def _first_line(e) -> str:
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", str(e)).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _checkpoints_in(directory: str) -> list:
    """The checkpoints a directory's `checkpoint` file lists, newest first."""
    state = tf.train.get_checkpoint_state(directory) if os.path.isdir(directory) else None
    if state is None:
        return []
    # get_checkpoint_state has already joined relative entries with `directory`.
    paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    return list(reversed(paths))


def checkpoint_paths(run_dir: str, which: str = "best") -> list:
    """Path prefixes to try, in order: "best" is the best checkpoint, then the latest ones
    (newest first); "latest" the latest ones."""
    check_run_dir(run_dir)
    paths = _checkpoints_in(run_dir)
    if which == "best":
        paths = _checkpoints_in(os.path.join(run_dir, BEST_DIR)) + paths
    if not paths:
        raise UsageError(f"no checkpoint in {run_dir}; train first with "
                         f"`python -m tfcharrnn.train --checkpoint_dir={run_dir}`")
    return paths


def checkpoint_path(run_dir: str, which: str = "best") -> str:
    """Path prefix of the best or latest checkpoint; "best" falls back to the latest."""
    return checkpoint_paths(run_dir, which)[0]


class Restored(NamedTuple):
    """A run rebuilt from its directory (`restore_run`)."""
    config: RunConfig
    vocab: object
    model: object
    path: str                # the checkpoint's path prefix
    step: int                # the training step it was saved at
    best_val_loss: float     # the lowest validation loss of the run when it was saved


def restore_model(run_dir: str, which: str = "best", log=None, precision: str = ""):
    """Rebuilds the model of a run from its own files. Returns (config, vocab, model); see
    `restore_run`."""
    return restore_run(run_dir, which, log, precision)[:3]


def restore_run(run_dir: str, which: str = "best", log=None, precision: str = "") -> Restored:
    """Rebuilds the model of a run from its own files, with what its checkpoint says of it.

    A damaged checkpoint (truncated or corrupted files) is skipped with one line on stderr
    (or to `log`) naming it, and the next one is used: best, then latest, newest first.
    `precision` overrides the run's (the variables are float32 whatever it is).
    """
    from tfcharrnn.models import build_model
    log = log or (lambda m: print(m, file=sys.stderr))
    config = load_run_config(run_dir)
    if precision:
        config = dataclasses.replace(config, model=dataclasses.replace(config.model,
                                                                        precision=precision))
    vocab = load_vocab(run_dir)
    paths = checkpoint_paths(run_dir, which)
    model = build_model(config.model, len(vocab), seed=config.train.seed)
    named = model.named_variables()
    if config.train.ema_decay:
        # The run's averaged weights (see averaging.py) go into the model's variables; the
        # rest (dropout RNG states) are read as saved.
        weights = averaging.trainable(named)
        parts = {"model": {k: v for k, v in named.items() if k not in weights}, AVERAGE: weights}
    else:
        parts = {"model": named}
    for path in paths:
        try:
            status = tf.train.Checkpoint(**parts).read(path)
            status.expect_partial().assert_existing_objects_matched()
            step, best = _progress(path)
            return Restored(config, vocab, model, path, step, best)
        except DAMAGED as e:
            log(f"skipped the damaged checkpoint {path} ({_first_line(e)})")
        except (AssertionError, ValueError) as e:
            raise RunError(f"checkpoint {path} does not match {CONFIG_FILE}/{VOCAB_FILE} "
                           f"({_first_line(e)}); were they copied from another run?") from None
    raise RunError(f"every checkpoint in {run_dir} is damaged ({', '.join(paths)}); retrain, "
                   f"or restore the run directory from a copy")


def _progress(path: str):
    """(step, best validation loss) saved in a training checkpoint."""
    step = tf.Variable(0, dtype=tf.int64)
    best = tf.Variable(np.inf, dtype=tf.float64)
    tf.train.Checkpoint(step=step, best_val_loss=best).read(path).expect_partial()
    return int(step.numpy()), float(best.numpy())
