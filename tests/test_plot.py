"""python -m tfcharrnn.plot: learning curves from a run's TensorBoard events."""

import builtins
import os
import shutil

import pytest

from conftest import run_command
from test_errors import assert_one_line_error
from tfcharrnn import plot_lib
from tfcharrnn.config import PlotConfig
from tfcharrnn.errors import UsageError


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # subprocesses: one back-end
def test_plot_draws_one_curve_per_run(trained_run, tmp_path):
    # Two runs in one folder: the trained one and a copy of it.
    runs = tmp_path / "runs"
    for name in ("a", "b"):
        shutil.copytree(trained_run.train.checkpoint_dir, runs / name)
    out = tmp_path / "figures" / "curves.png"
    r = run_command("tfcharrnn.plot", f"--logdir={runs}", f"--out={out}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"wrote {out}: 2 curve(s) of val/loss (a, b)"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10000
    curves = plot_lib.plot(PlotConfig(logdir=str(runs), out=str(tmp_path / "again.png")))
    minutes, values = curves["a"]
    assert len(values) == 3  # validated at steps 10, 20, 30
    assert minutes == sorted(minutes) and minutes[0] >= 0
    assert curves["a"][1] == curves["b"][1]
    # One run's own logs: the curve is named after the run directory.
    one = plot_lib.plot(PlotConfig(logdir=str(runs / "a" / "logs"),
                                   out=str(tmp_path / "one.png"), tag="train/loss"))
    assert list(one) == ["a"] and len(one["a"][1]) == 30


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # subprocesses: one back-end
def test_plot_errors_clearly(tmp_path, trained_run, monkeypatch):
    (tmp_path / "empty").mkdir()
    r = run_command("tfcharrnn.plot", f"--logdir={tmp_path / 'empty'}",
                    f"--out={tmp_path / 'x.png'}")
    assert_one_line_error(r, 2, "no TensorBoard event files under .*; point --logdir at")
    assert not (tmp_path / "x.png").exists()
    (tmp_path / "blocker").write_text("x")              # a file where a folder would go
    with pytest.raises(UsageError, match=r"cannot write --out .*blocker/x.png \(a file stands "
                                         r"where a folder would go\); pass a path you can"):
        plot_lib.plot(PlotConfig(logdir=trained_run.train.checkpoint_dir,
                                 out=str(tmp_path / "blocker" / "x.png")))
    with pytest.raises(UsageError, match="no run under .* logged 'nope'"):
        plot_lib.plot(PlotConfig(logdir=trained_run.train.checkpoint_dir, tag="nope",
                                 out=str(tmp_path / "x.png")))
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(UsageError, match=r"matplotlib is not installed; install it with pip "
                                         r"install \"tfcharrnn\[plot\]\""):
        plot_lib.plot(PlotConfig(logdir=trained_run.train.checkpoint_dir,
                                 out=str(tmp_path / "x.png")))
    assert not os.path.exists(tmp_path / "x.png")
