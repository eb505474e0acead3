"""Restore a run and write it as a SavedModel (see module.py for the signatures) or as a
static web folder (see web.py)."""

import os
import shutil
import sys
import time

import tensorflow as tf

from tfcharrnn import checkpoints
from tfcharrnn.config import ExportConfig
from tfcharrnn.errors import UsageError, cannot_write
from tfcharrnn.export import web
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
    run = checkpoints.restore_run(config.checkpoint_dir, config.checkpoint, precision="float32")
    target = os.path.abspath(config.export_dir)
    # Written beside the target, then renamed into place: an interrupted export leaves no
    # half-written folder under the name a server would load.
    partial = f"{target}.partial-{os.getpid()}"
    _write(run, config, target, partial)
    _move_into_place(partial, target, out)
    size = directory_size(target)
    model = run.config.model
    what = (f"{config.checkpoint_dir} ({config.checkpoint} checkpoint, {model.num_layers}x"
            f"{model.hidden_size} {model.model}, {run.vocab.level} level) to "
            f"{config.export_dir}: {size / 1e6:.1f} MB")
    if config.format == "web":
        print(f"exported {what}, {config.web_weights} weights; serve the folder with any "
              f"static web server, e.g. python -m http.server --directory "
              f"{config.export_dir}, and open its index.html", file=out)
    else:
        print(f"exported {what}; signatures generate, score, step, vocabulary "
              f"(saved_model_cli show --dir {config.export_dir} --all)", file=out)
    return {"export_dir": target, "bytes": size}


def _write(run, config: ExportConfig, target: str, partial: str):
    """Writes the export into `partial`; a directory that cannot be written is a UsageError
    (and nothing is left behind)."""
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if config.format == "web":
            os.makedirs(partial)
            web.write(run, partial, config.web_weights)
        else:
            module = ExportModule(run.model, run.vocab)
            tf.saved_model.save(module, partial, signatures=module.signatures())
    except (tf.errors.PermissionDeniedError, tf.errors.NotFoundError) as e:
        shutil.rmtree(partial, ignore_errors=True)        # TensorFlow's file system said no
        raise cannot_write("--export_dir", config.export_dir,
                           e.message.splitlines()[0][:200]) from None
    except OSError as e:
        shutil.rmtree(partial, ignore_errors=True)
        where = str(e.filename or "")
        if not where or not (target.startswith(where) or where.startswith(partial)):
            raise               # not the export's own path: a bug, not the user's directory
        raise cannot_write("--export_dir", config.export_dir, e) from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _move_into_place(partial: str, target: str, out):
    if os.path.isdir(target) and os.listdir(target):
        moved = f"{target}.old-{time.strftime('%Y%m%d-%H%M%S')}"
        os.rename(target, moved)
        print(f"--overwrite: moved the previous export to {moved}", file=out)
    elif os.path.isdir(target):
        os.rmdir(target)
    os.rename(partial, target)
