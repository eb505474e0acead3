"""Learning curves from TensorBoard event files: python -m tfcharrnn.plot.

Every directory under --logdir that holds event files is one run, drawn as one curve of the
scalar --tag (default val/loss) against minutes since that run's first event, so the runs of
a comparison share one axis of wall time. matplotlib is an optional extra
(`pip install ".[plot]"`); without it the command says so.
"""

import os

from tfcharrnn.config import PlotConfig
from tfcharrnn.errors import UsageError, cannot_write


def event_dirs(logdir: str) -> list:
    """Directories under logdir (itself included) holding TensorBoard event files, sorted."""
    found = []
    for root, _, files in os.walk(logdir):
        if any(f.startswith("events.out.tfevents") for f in files):
            found.append(root)
    return sorted(found)


def run_name(logdir: str, directory: str) -> str:
    """The run's name: its path under logdir without the trailing "logs" (a run's events live
    in <run>/logs by default); the run directory's own name when logdir is the run."""
    parts = [p for p in os.path.relpath(directory, logdir).split(os.sep) if p != "."]
    if parts and parts[-1] == "logs":
        parts = parts[:-1]
    if parts:
        return os.sep.join(parts)
    path = os.path.abspath(directory)
    return os.path.basename(os.path.dirname(path) if os.path.basename(path) == "logs" else path)


def read_curve(directory: str, tag: str):
    """(minutes since the run's first event, values) of `tag`, in step order."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(directory, size_guidance={"tensors": 0})
    acc.Reload()
    if tag not in acc.Tags()["tensors"]:
        return None
    start = acc.FirstEventTimestamp()
    events = sorted(acc.Tensors(tag), key=lambda e: e.step)
    minutes = [(e.wall_time - start) / 60.0 for e in events]
    values = [float(tf.make_ndarray(e.tensor_proto)) for e in events]
    return minutes, values


def plot(config: PlotConfig, out=None) -> dict:
    """Draws the curves into config.out; returns {run name: (minutes, values)}."""
    if not os.path.isdir(config.logdir):
        raise UsageError(f"--logdir is not a directory: {config.logdir}; point it at a run's "
                         f"logs (e.g. checkpoints/lstm/logs) or a folder of runs")
    directories = event_dirs(config.logdir)
    if not directories:
        raise UsageError(f"no TensorBoard event files under {config.logdir}; point --logdir at "
                         f"a run's logs (e.g. checkpoints/lstm/logs) or a folder of runs")
    curves = {}
    for directory in directories:
        curve = read_curve(directory, config.tag)
        if curve is not None and curve[0]:
            curves[run_name(config.logdir, directory)] = curve
    if not curves:
        raise UsageError(f"no run under {config.logdir} logged {config.tag!r} (validation "
                         f"runs every --eval_every steps); pass another --tag, e.g. "
                         f"--tag=train/loss")
    try:
        import matplotlib
    except ImportError:
        raise UsageError("matplotlib is not installed; install it with "
                         "pip install \"tfcharrnn[plot]\" (or pip install matplotlib)") from None
    matplotlib.use("Agg")  # files only, no display needed
    from matplotlib import pyplot
    figure, axes = pyplot.subplots(figsize=(8, 5))
    for name, (minutes, values) in sorted(curves.items()):
        axes.plot(minutes, values, marker="." if len(values) < 30 else None, label=name)
    axes.set_xlabel("minutes")
    axes.set_ylabel(f"{config.tag} (nats per token)" if "loss" in config.tag else config.tag)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    try:
        os.makedirs(os.path.dirname(os.path.abspath(config.out)), exist_ok=True)
        figure.savefig(config.out, dpi=120)
    except OSError as e:
        raise cannot_write("--out", config.out, e) from None
    finally:
        pyplot.close(figure)
    if out is not None:
        print(f"wrote {config.out}: {len(curves)} curve(s) of {config.tag} "
              f"({', '.join(sorted(curves))})", file=out)
    return curves
