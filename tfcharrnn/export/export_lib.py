"""Restore a run and write it as a SavedModel (see module.py for the signatures)."""

import os
import shutil
import sys
import time

import tensorflow as tf

from tfcharrnn import checkpoints
from tfcharrnn.config import ExportConfig
from tfcharrnn.errors import UsageError
from tfcharrnn.export.module import ExportModule


def check_export_dir(config: ExportConfig):
    """Refuses a file, or a non-empty directory without --overwrite (nothing is replaced
    unasked; with --overwrite the old export is renamed, not deleted)."""
    path = config.export_dir
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--export_dir is a file, not a directory: {path}; pass another "
                         f"--export_dir")
    if os.path.isdir(path) and os.listdir(path) and not config.overwrite:
        raise UsageError(f"--export_dir {path} is not empty; pass a new --export_dir, or "
                         f"--overwrite to replace it (the old one is kept, renamed)")


def directory_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


def export(config: ExportConfig, out=None) -> dict:
    out = out or sys.stdout
    check_export_dir(config)
    # The export computes in float32 whatever precision the run trained in: it must run on
    # any CPU or server, and its one-token step is reading weights, not multiplying matrices.
    run_config, vocab, model = checkpoints.restore_model(config.checkpoint_dir,
                                                         config.checkpoint,
                                                         precision="float32")
    module = ExportModule(model, vocab)
    target = os.path.abspath(config.export_dir)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    # Written beside the target, then renamed into place: an interrupted export leaves no
    # half-written SavedModel under the name a server would load.
    partial = f"{target}.partial-{os.getpid()}"
    try:
        tf.saved_model.save(module, partial, signatures=module.signatures())
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if os.path.isdir(target) and os.listdir(target):
        moved = f"{target}.old-{time.strftime('%Y%m%d-%H%M%S')}"
        os.rename(target, moved)
        print(f"--overwrite: moved the previous export to {moved}", file=out)
    elif os.path.isdir(target):
        os.rmdir(target)
    os.rename(partial, target)
    size = directory_size(target)
    print(f"exported {config.checkpoint_dir} ({config.checkpoint} checkpoint, "
          f"{run_config.model.num_layers}x{run_config.model.hidden_size} "
          f"{run_config.model.model}, {vocab.level} level) to {config.export_dir}: "
          f"{size / 1e6:.1f} MB; signatures generate, score, step, vocabulary "
          f"(saved_model_cli show --dir {config.export_dir} --all)", file=out)
    return {"export_dir": target, "bytes": size}
