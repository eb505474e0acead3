"""Interrupting training never loses work: Ctrl-C/SIGTERM save and stop cleanly, and a
SIGKILL at any moment (even mid-save) leaves a directory that restores and resumes."""

import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_command
from tfcharrnn import checkpoints


def tiny_train_args(corpus_path, run_dir, *extra):
    return [f"--data_path={corpus_path}", f"--checkpoint_dir={run_dir}", "--batch_size=4",
            "--seq_len=16", "--hidden_size=16", "--embedding_size=8", *extra]


def start_training(args):
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "tfcharrnn.train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The header is printed once the model is built, before the first step; before it may come
    # a note that the lock of a killed run was taken over.
    header = proc.stdout.readline()
    if "took over the lock" in header:
        header = proc.stdout.readline()
    assert "parameters" in header, header
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_resume_continues(tmp_path, corpus_path, sig):
    run_dir = tmp_path / "run"
    args = tiny_train_args(corpus_path, run_dir, "--eval_every=5")
    proc = start_training([*args, "--max_steps=1000000"])
    # Signal once steps have been taken (the first validation's line), not after a fixed
    # sleep: on a loaded machine the first step's compilation can take longer than any sleep.
    lines = iter(proc.stdout.readline, "")
    assert any(line.startswith("step 5 ") for line in lines), proc.stderr.read()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    match = re.search(rf"stopped by {sig.name} at step (\d+); a checkpoint was saved", out)
    assert match, out + err
    step = int(match.group(1))
    assert step >= 5 and "Traceback" not in err
    assert checkpoints.checkpoint_path(str(run_dir), "latest").endswith(f"ckpt-{step}")
    r = run_command("tfcharrnn.train", *args, f"--max_steps={step + 3}")
    assert r.returncode == 0, r.stderr
    assert f"at step {step}" in r.stdout and f"done at step {step + 3}" in r.stdout


def test_sigkill_at_any_moment_leaves_a_restorable_run(tmp_path, corpus_path):
    run_dir = tmp_path / "run"
    rng = random.Random(0)
    # Saving after every step, so many kills land in the middle of a save.
    args = tiny_train_args(corpus_path, run_dir, "--max_steps=1000000", "--save_every=1",
                           "--eval_every=1000000", "--keep_checkpoints=2")
    last_step = 0
    for attempt in range(4):
        proc = start_training(args)
        time.sleep(rng.uniform(3.0, 7.0))
        proc.kill()
        proc.communicate(timeout=60)
        if last_step == 0 and not (run_dir / "checkpoint").exists():
            continue  # killed before the first save (a slow machine): nothing to lose yet
        path = checkpoints.checkpoint_path(str(run_dir), "latest")
        step = int(path.rsplit("-", 1)[1])
        assert step >= last_step  # resumed, never went back
        last_step = step
        checkpoints.restore_model(str(run_dir), "latest")  # restores without error
    r = run_command("tfcharrnn.train", *tiny_train_args(corpus_path, run_dir,
                                                        f"--max_steps={last_step + 2}",
                                                        "--eval_every=1000000"))
    assert r.returncode == 0, r.stderr
    assert f"done at step {last_step + 2}" in r.stdout
