"""Several replicas and workers train the same model as one device; the run survives faults.

Replicas on one machine are logical CPU devices, which must be configured before TensorFlow
starts, so those runs are `train` subprocesses; the one-device references run in this process.
Workers are `train` subprocesses on free loopback ports with their own TF_CONFIG.
"""

import dataclasses
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, run_command, tiny_config
from tfcharrnn import checkpoints, train_lib
from tfcharrnn.config import DistributeConfig, RunConfig, differing_fields
from tfcharrnn.distribute.cluster import parse_tf_config
from tfcharrnn.errors import RunError, UsageError
from tfcharrnn.evaluation import StreamScorer
from tfcharrnn.models import cells
from test_errors import assert_one_line_error
from test_train import train_losses

# Clipping binds at every step of these runs (the gradient norm starts near 1), so a wrong
# clip (per replica, or before the sum over replicas) changes the result.
# The weights' average (--ema_decay) is updated in every replica and restored by every test.
SETTINGS = dict(batch_size=4, seq_len=16, hidden_size=16, embedding_size=8, learning_rate=0.01,
                grad_clip=0.1, eval_every=6, max_steps=12, ema_decay=0.9)


def settings_config(tmp_path, corpus_path, backend, **overrides):
    s = dict(SETTINGS, **overrides)
    return tiny_config(tmp_path, corpus_path, model__backend=backend,
                       model__model=s.get("model", "lstm"),
                       data__batch_size=s["batch_size"], data__seq_len=s["seq_len"],
                       model__hidden_size=s["hidden_size"],
                       model__embedding_size=s["embedding_size"],
                       model__dropout=s.get("dropout", 0.0),
                       train__learning_rate=s["learning_rate"], train__grad_clip=s["grad_clip"],
                       train__eval_every=s["eval_every"], train__max_steps=s["max_steps"],
                       train__ema_decay=s["ema_decay"])


def cli_args(corpus_path, run_dir, backend, **overrides):
    s = dict(SETTINGS, **overrides)
    return [f"--data_path={corpus_path}", f"--checkpoint_dir={run_dir}", f"--backend={backend}",
            *(f"--{k}={v}" for k, v in s.items())]


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(args, n=2, per_worker=None):
    """n `train` processes of one cluster; per_worker(i) -> extra args of worker i."""
    ports = free_ports(n)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(n):
        env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1",
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": i}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tfcharrnn.train", *args,
             *(per_worker(i) if per_worker else ()),
             "--distribution_strategy=multi_worker_mirrored"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def run_workers(args, n=2, timeout=240):
    procs = start_workers(args, n)
    outputs = [p.communicate(timeout=timeout) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, out + err
    return [out for out, _ in outputs]


def heldout_loss(run_dir, text):
    """The `evaluate` number: one stream over `text` with the latest weights."""
    config, vocab, model = checkpoints.restore_model(str(run_dir), "latest")
    return StreamScorer(model).score(vocab.encode(text))["loss_nats_per_token"]


def grad_norms(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    acc.Reload()
    return [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors("train/grad_norm")]


@pytest.fixture(scope="module")
def heldout(corpus_path):
    return corpus_path.read_text(encoding="utf-8")[-3000:]


@pytest.fixture(scope="module", params=["keras", "manual-mingru"])
def one_device(request, tmp_path_factory, corpus_path):
    """The reference: 12 steps on one device, in this process. "manual-mingru": the manual
    back-end with the minGRU cell (a cell with no recurrent weights, whose state is carried
    per replica all the same)."""
    backend, _, cell = request.param.partition("-")
    cell = cell or "lstm"
    tmp = tmp_path_factory.mktemp(f"one-device-{request.param}")
    config = settings_config(tmp, corpus_path, backend, model=cell)
    train_lib.train_and_evaluate(config, out=open(os.devnull, "w"))
    assert min(grad_norms(config.train.resolved_logdir)) > 2 * SETTINGS["grad_clip"]
    return backend, cell, config.train.checkpoint_dir


def assert_same_training(run_dir, reference_dir, heldout):
    want, got = heldout_loss(reference_dir, heldout), heldout_loss(run_dir, heldout)
    assert got == pytest.approx(want, rel=2e-4), (got, want)
    # The printed/logged losses are the global batch's, step by step.
    np.testing.assert_allclose(train_losses(os.path.join(run_dir, "logs")),
                               train_losses(os.path.join(reference_dir, "logs")), rtol=1e-4)


def test_two_replicas_train_the_same_model_as_one_device(one_device, tmp_path, corpus_path,
                                                         heldout):
    backend, cell, reference = one_device
    run_dir = tmp_path / "mirrored"
    r = run_command("tfcharrnn.train", *cli_args(corpus_path, run_dir, backend, model=cell),
                    "--distribution_strategy=mirrored", "--num_replicas=2")
    assert r.returncode == 0, r.stderr
    assert "2 replicas" in r.stdout.splitlines()[0]
    assert_same_training(str(run_dir), reference, heldout)


def test_a_worker_with_other_data_than_the_chiefs_stops_with_one_line(tmp_path, corpus_path):
    other = tmp_path / "other.txt"
    text = corpus_path.read_text(encoding="utf-8")
    other.write_text(text[:len(text) // 2] + text[:len(text) // 2], encoding="utf-8")
    args = cli_args(corpus_path, tmp_path / "run", "keras", max_steps=3)[1:]
    procs = start_workers(args, per_worker=lambda i: [f"--data_path={[corpus_path, other][i]}"])
    outputs = [p.communicate(timeout=240) for p in procs]
    worker_err = outputs[1][1]
    assert procs[1].returncode == 2, worker_err
    assert "error: worker 1: its training data differs from the chief's" in worker_err
    assert "Traceback" not in worker_err
    assert procs[0].returncode != 0                     # the chief stops too


@pytest.mark.parametrize("one_device", ["keras"], indirect=True)  # both: the mirrored test
def test_two_workers_train_the_same_model_as_one_process(one_device, tmp_path, corpus_path,
                                                          heldout):
    backend, _, reference = one_device
    run_dir = tmp_path / "workers"
    chief_out, worker_out = run_workers(cli_args(corpus_path, run_dir, backend))
    assert "worker 0 of 2 (chief)" in chief_out and "worker 1 of 2" in worker_out
    # Both print the same losses; only the chief wrote (one set of event files).
    assert chief_out.splitlines()[1:3] == worker_out.splitlines()[1:3]
    assert len(os.listdir(run_dir / "logs")) == 1
    assert_same_training(str(run_dir), reference, heldout)


@pytest.mark.parametrize("one_device", ["keras"], indirect=True)  # both: the mirrored test
def test_resume_under_another_strategy_lands_on_the_same_model(one_device, tmp_path,
                                                               corpus_path, heldout):
    backend, _, reference = one_device
    run_dir = tmp_path / "switch"
    r = run_command("tfcharrnn.train", *cli_args(corpus_path, run_dir, backend, max_steps=6),
                    "--distribution_strategy=mirrored", "--num_replicas=2")
    assert r.returncode == 0, r.stderr
    # The rest on one device (in this process): the carried state of all 4 streams was saved.
    config = settings_config(tmp_path, corpus_path, backend)
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, checkpoint_dir=str(run_dir)))
    out = io.StringIO()
    train_lib.train_and_evaluate(config, out=out)
    assert "resuming" in out.getvalue() and "at step 6" in out.getvalue()
    assert heldout_loss(str(run_dir), heldout) == pytest.approx(
        heldout_loss(reference, heldout), rel=2e-4)


def test_replicas_draw_independent_dropout_masks_and_resume_exactly(tmp_path, corpus_path):
    probe = r"""
import sys, json
sys.path.insert(0, sys.argv[1])
import tensorflow as tf
from tfcharrnn import distribute
from tfcharrnn.config import DistributeConfig, ModelConfig
from tfcharrnn.models import build_model
replicas = distribute.replicas(DistributeConfig(distribution_strategy="mirrored", num_replicas=2))
masks = {}
for backend in ("keras", "manual"):
    with replicas.scope():
        model = build_model(ModelConfig(backend=backend, model="gru", num_layers=2,
                                        hidden_size=32, embedding_size=8, dropout=0.5), 7)
    x = tf.zeros([4, 3], tf.int32)  # the same input rows in both replicas
    state = replicas.distribute_state(model.initial_state(4))
    out = replicas.strategy.run(lambda x, s: model(x[:2], s, training=True)[0], args=(x, state))
    a, b = [t.numpy() for t in replicas.strategy.experimental_local_results(out)]
    masks[backend] = bool((a != b).any())
print(json.dumps(masks))
"""
    r = subprocess.run([sys.executable, "-c", probe, ROOT], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"keras": True, "manual": True}

    # With dropout, resuming on the same strategy continues exactly (dropout RNG state saved).
    args = ["--dropout=0.3", "--distribution_strategy=mirrored", "--num_replicas=2"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    for run_dir, steps in ((straight, [12]), (resumed, [6, 12])):
        for n in steps:
            r = run_command("tfcharrnn.train", *cli_args(corpus_path, run_dir, "manual",
                                                         max_steps=n), *args)
            assert r.returncode == 0, r.stderr
    assert train_losses(str(resumed / "logs")) == pytest.approx(
        train_losses(str(straight / "logs")), abs=1e-6)


# ---- faults ----

def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def error_lines(stderr):
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def test_sigterm_on_the_chief_saves_and_every_worker_stops(tmp_path, corpus_path):
    run_dir = tmp_path / "run"
    chief, worker = start_workers(cli_args(corpus_path, run_dir, "keras", max_steps=100000,
                                           eval_every=100000))
    try:
        wait_for(lambda: "parameters" in chief.stdout.readline(), 120, "the chief to start")
        time.sleep(4)  # some steps
        chief.send_signal(signal.SIGTERM)
        (chief_out, chief_err), (worker_out, worker_err) = [p.communicate(timeout=120)
                                                            for p in (chief, worker)]
    finally:
        for p in (chief, worker):
            p.kill()
    assert chief.returncode == 0 and worker.returncode == 0, chief_err + worker_err
    step = int(chief_out.split("stopped by SIGTERM at step ")[1].split(";")[0])
    assert f"stopped by a stop on another worker at step {step};" in worker_out
    assert checkpoints.checkpoint_path(str(run_dir), "latest").endswith(f"ckpt-{step}")


def test_a_killed_worker_stops_the_others_and_a_restart_resumes(tmp_path, corpus_path):
    run_dir = tmp_path / "run"
    args = cli_args(corpus_path, run_dir, "manual", max_steps=100000, eval_every=100000,
                    save_every=5)
    chief, worker = start_workers(args)
    try:
        wait_for(lambda: (run_dir / "checkpoint").exists(), 180, "a first checkpoint")
        worker.kill()
        killed_at = time.time()
        _, err = chief.communicate(timeout=150)
        assert time.time() - killed_at < 120
    finally:
        for p in (chief, worker):
            p.kill()
    assert chief.returncode == 1
    lines = error_lines(err)
    assert len(lines) == 1 and "lost contact with another worker" in lines[0], err
    assert "start all of them again to resume from the last checkpoint" in lines[0]
    step = int(checkpoints.checkpoint_path(str(run_dir), "latest").rsplit("-", 1)[1])
    outs = run_workers(cli_args(corpus_path, run_dir, "manual", max_steps=step + 2,
                                eval_every=100000))
    for out in outs:
        assert f"at step {step}" in out and f"done at step {step + 2}" in out


def test_a_worker_whose_peers_never_come_up_stops_with_one_line(tmp_path, corpus_path):
    port, missing = free_ports(2)
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CONFIG=json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{port}", f"127.0.0.1:{missing}"]},
         "task": {"type": "worker", "index": 0}}))
    started = time.time()
    r = subprocess.run([sys.executable, "-m", "tfcharrnn.train",
                        *cli_args(corpus_path, tmp_path / "run", "keras"),
                        "--distribution_strategy=multi_worker_mirrored", "--startup_timeout=3"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert time.time() - started < 60
    assert r.returncode != 0
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: worker 0 waited 3 s"), r.stderr
    assert f"127.0.0.1:{missing}" in lines[0] and "--startup_timeout" in lines[0]
    assert not (tmp_path / "run").exists()  # nothing was written


def test_a_worker_whose_port_is_taken_gets_a_usage_error(tmp_path, corpus_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CONFIG=json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{port}", f"127.0.0.1:{free_ports(1)[0]}"]},
         "task": {"type": "worker", "index": 0}}))
    try:
        r = subprocess.run([sys.executable, "-m", "tfcharrnn.train",
                            *cli_args(corpus_path, tmp_path / "run", "keras"),
                            "--distribution_strategy=multi_worker_mirrored",
                            "--startup_timeout=60"],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    finally:
        taken.close()
    assert_one_line_error(r, 2, rf"could not start worker 0 at 127.0.0.1:{port} .*port is free")


@pytest.mark.parametrize("text,pattern", [
    ("", "is not set"),
    ("{not json", "is not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', 'has no "cluster"'),
    ('{"cluster": {"worker": ["a:1", "b:2"]}}', 'has no "task"'),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     r"task index 2, out of range for 2 worker\(s\)"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["c:3"]}, "task": {"index": 0}}',
     r"names job\(s\) ps"),
])
def test_bad_tf_config_is_a_usage_error(text, pattern):
    with pytest.raises(UsageError, match=pattern):
        parse_tf_config(text)


def test_tf_config_names_the_chief():
    text = '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": %d}}'
    chief, other = parse_tf_config(text % 0), parse_tf_config(text % 1)
    assert chief.is_chief and not other.is_chief and other.num_workers == 2


def test_bad_tf_config_from_the_command_line(tmp_path, corpus_path):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CONFIG="{not json")
    r = subprocess.run([sys.executable, "-m", "tfcharrnn.train",
                        *cli_args(corpus_path, tmp_path / "run", "keras"),
                        "--distribution_strategy=multi_worker_mirrored"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert_one_line_error(r, 2, "TF_CONFIG is not valid JSON")


def test_strategy_flags_are_checked(tmp_path, corpus_path):
    r = run_command("tfcharrnn.train", *cli_args(corpus_path, tmp_path / "run", "keras"),
                    "--distribution_strategy=mirrored", "--num_replicas=3")
    assert_one_line_error(r, 2, r"--batch_size=4 is not divisible by the 3 replicas; pass a "
                                r"multiple of 3")
    with pytest.raises(UsageError, match="--num_replicas applies to"):
        DistributeConfig(num_replicas=2)
    # The strategy may change on resume; nothing else may.
    a = RunConfig()
    b = dataclasses.replace(a, distribute=DistributeConfig(distribution_strategy="mirrored",
                                                           num_replicas=2))
    assert differing_fields(a, b) == []


# ---- one writer per run directory ----

HOLD_LOCK = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from tfcharrnn.run_lock import RunLock
RunLock(sys.argv[2]).acquire()
print("locked", flush=True)
time.sleep(300)
"""


def test_a_second_train_on_a_run_in_use_is_refused_and_a_stale_lock_is_taken_over(
        tmp_path, corpus_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, ROOT, str(run_dir)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = run_command("tfcharrnn.train", *cli_args(corpus_path, run_dir, "keras",
                                                     max_steps=2))
        assert_one_line_error(r, 2, rf"{run_dir} is in use by another train process "
                                    rf"\(pid {holder.pid} on ")
        assert sorted(os.listdir(run_dir)) == ["train.lock"]  # nothing else touched
    finally:
        holder.kill()  # kill -9: the lock file still names it
        holder.wait()
    assert f"pid {holder.pid}" in (run_dir / "train.lock").read_text()
    out = io.StringIO()
    config = settings_config(tmp_path, corpus_path, "keras", max_steps=2)
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, checkpoint_dir=str(run_dir)))
    assert train_lib.train_and_evaluate(config, out=out)["step"] == 2
    assert f"took over the lock of {run_dir}: its holder (pid {holder.pid}" in out.getvalue()
    assert (run_dir / "train.lock").read_text() == ""  # released


# ---- damaged and orphaned checkpoints ----

@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of a 30-step run: checkpoints 10, 20, 30 and the best one."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run.train.checkpoint_dir, run_dir)
    return trained_run, run_dir


def damage(prefix, how):
    data = [f for f in os.listdir(os.path.dirname(prefix))
            if f.startswith(os.path.basename(prefix) + ".data")][0]
    path = os.path.join(os.path.dirname(prefix), data)
    raw = open(path, "rb").read()
    if how == "truncate":
        raw = raw[:len(raw) // 2]
    else:  # flip every 16th byte, so every tensor's checksum fails (reading one that is
        # intact, e.g. only the weights for sampling, is no damage)
        raw = bytes(b ^ 0xFF if i % 16 == 0 else b for i, b in enumerate(raw))
    open(path, "wb").write(raw)


def test_a_damaged_newest_checkpoint_is_skipped(run_copy, corpus_path, capsys):
    config, run_dir = run_copy
    newest = checkpoints.checkpoint_path(str(run_dir), "latest")
    assert newest.endswith("ckpt-30")
    damage(newest, "truncate")
    skipped = f"skipped the damaged checkpoint {newest}"
    r = run_command("tfcharrnn.sample", f"--checkpoint_dir={run_dir}", "--checkpoint=latest",
                    "--length=5")
    assert r.returncode == 0 and r.stderr.strip().startswith(skipped), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    from tfcharrnn import evaluate_lib
    from tfcharrnn.config import EvalConfig
    evaluate_lib.evaluate(EvalConfig(checkpoint_dir=str(run_dir), checkpoint="latest",
                                     data_path=str(corpus_path)), out=io.StringIO())
    assert skipped in capsys.readouterr().err
    out = io.StringIO()
    resumed = dataclasses.replace(config, train=dataclasses.replace(
        config.train, checkpoint_dir=str(run_dir), max_steps=31))
    assert train_lib.train_and_evaluate(resumed, out=out)["step"] == 31
    assert skipped in out.getvalue() and "at step 20" in out.getvalue()


def test_a_corrupted_best_checkpoint_falls_back_to_the_latest(run_copy):
    _, run_dir = run_copy
    best = checkpoints.checkpoint_path(str(run_dir), "best")
    damage(best, "corrupt")
    log = []
    checkpoints.restore_model(str(run_dir), "best", log=log.append)
    assert len(log) == 1 and log[0].startswith(f"skipped the damaged checkpoint {best} ("), log
    for path in checkpoints.checkpoint_paths(str(run_dir), "latest"):
        damage(path, "corrupt")
    with pytest.raises(RunError, match="every checkpoint in .* is damaged"):
        checkpoints.restore_model(str(run_dir), "best", log=log.append)


def test_checkpoint_files_orphaned_by_a_kill_are_removed_at_the_next_save(run_copy):
    config, run_dir = run_copy
    # What a kill between a save and its pruning leaves: files of a checkpoint the index no
    # longer lists, and a half-written temporary directory.
    for name in ("ckpt-3.index", "ckpt-3.data-00000-of-00001"):
        shutil.copy(run_dir / name.replace("ckpt-3", "ckpt-10"), run_dir / name)
    (run_dir / "ckpt-31_temp").mkdir()
    (run_dir / "ckpt-31_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x")
    (run_dir / "notes.txt").write_text("mine")
    resumed = dataclasses.replace(config, train=dataclasses.replace(
        config.train, checkpoint_dir=str(run_dir), max_steps=31, save_every=1))
    train_lib.train_and_evaluate(resumed, out=open(os.devnull, "w"))
    names = set(os.listdir(run_dir))
    assert not {"ckpt-3.index", "ckpt-3.data-00000-of-00001", "ckpt-31_temp"} & names
    assert {"ckpt-31.index", "ckpt-30.index", "ckpt-20.index", "notes.txt"} <= names


# ---- GPUs: the cuDNN hand-over ----

@pytest.mark.parametrize("cell", cells.NAMES)
def test_on_a_gpu_keras_lstm_and_gru_leave_their_loop_to_keras(cell, monkeypatch):
    import keras
    from tfcharrnn.config import ModelConfig
    from tfcharrnn.models import build_model, devices
    config = ModelConfig(backend="keras", model=cell, num_layers=2, hidden_size=12,
                         embedding_size=6)
    ids = tf.constant(np.random.default_rng(0).integers(0, 9, (3, 7)), tf.int32)

    def run(model):
        with tf.GradientTape() as tape:
            logits, _ = model(ids, model.initial_state(3), training=True)
            loss = tf.reduce_sum(logits ** 2)
        return logits, tape.gradient(loss, model.trainable_variables)

    cpu_model = build_model(config, 9)
    want_logits, want_grads = run(cpu_model)
    kernels, keras_calls = [], []
    real_sequence = cells.get(cell).sequence
    monkeypatch.setattr(cells.get(cell), "sequence", lambda *a: kernels.append(1) or
                        real_sequence(*a))
    real_backend = getattr(keras.src.backend, cell, None)

    def keras_cudnn(*args, **kwargs):  # Keras' cuDNN entry point; no cuDNN here
        keras_calls.append(1)
        raise NotImplementedError

    if real_backend is not None:
        monkeypatch.setattr(keras.src.backend, cell, keras_cudnn)
    monkeypatch.setattr(devices, "gpu_available", lambda: True)
    gpu_model = build_model(config, 9)
    for a, b in zip(gpu_model.trainable_variables, cpu_model.trainable_variables):
        a.assign(b)
    kernels.clear()
    got_logits, got_grads = run(gpu_model)
    if not cells.get(cell).cudnn:   # no cuDNN path in Keras: the loop runs on the GPU
        assert kernels and not keras_calls
    else:
        assert keras_calls and not kernels
    # The same model either way, and the same checkpoint names: runs move between devices.
    np.testing.assert_allclose(got_logits, want_logits, atol=1e-5)
    for g, w in zip(got_grads, want_grads):
        np.testing.assert_allclose(tf.convert_to_tensor(g), tf.convert_to_tensor(w), atol=1e-5)
    assert {k: v.shape for k, v in gpu_model.named_variables().items()} == \
        {k: v.shape for k, v in cpu_model.named_variables().items()}


@pytest.mark.parametrize("gpu", [False, True])
def test_install_asks_for_one_tensorflow(tmp_path, gpu):
    env = dict(os.environ)
    env.pop("TFCHARRNN_GPU", None)
    if gpu:
        env["TFCHARRNN_GPU"] = "1"
    r = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base",
                        str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    requires = (tmp_path / "tfcharrnn.egg-info" / "requires.txt").read_text()
    linux_x86 = {"sys_platform": "linux", "platform_machine": "x86_64"}
    wanted = [line for line in requires.splitlines() if line.startswith("tensorflow")]
    # requires.txt groups requirements with markers under [:marker] sections.
    sections, current = {}, ""
    for line in requires.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif line.startswith("tensorflow"):
            sections.setdefault(current, []).append(line)
    from packaging.markers import Marker
    chosen = [req for marker, reqs in sections.items() for req in reqs
              if not marker or Marker(marker.lstrip(":")).evaluate(linux_x86)]
    assert wanted and chosen == (["tensorflow[and-cuda]>=2.21"] if gpu
                                 else ["tensorflow-cpu>=2.21"]), requires


def test_two_tensorflow_distributions_are_refused(monkeypatch):
    from importlib import metadata
    from tfcharrnn import cli
    from tfcharrnn.errors import TfcharrnnError
    monkeypatch.setattr(metadata, "version", lambda name: "2.21.0")
    with pytest.raises(TfcharrnnError, match=r"two TensorFlow distributions are installed "
                                             r"\(tensorflow 2.21.0, tensorflow-cpu 2.21.0\)"):
        cli._check_one_tensorflow()
