"""Several replicas and workers train the same model as one device; the run survives faults.

Replicas on one machine are logical CPU devices, which must be configured before TensorFlow
starts, so those runs are `train` subprocesses; the one-device references run in this process.
Workers are `train` subprocesses on free loopback ports with their own TF_CONFIG.
"""

import dataclasses
import io
import json
import math
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
from tfcharrnn.errors import UsageError
from tfcharrnn.evaluation import StreamScorer
from test_errors import assert_one_line_error
from test_train import train_losses

# Clipping binds at every step of these runs (the gradient norm starts near 1), so a wrong
# clip (per replica, or before the sum over replicas) changes the result.
SETTINGS = dict(batch_size=4, seq_len=16, hidden_size=16, embedding_size=8, learning_rate=0.01,
                grad_clip=0.1, eval_every=6, max_steps=12)


def settings_config(tmp_path, corpus_path, backend, **overrides):
    s = dict(SETTINGS, **overrides)
    return tiny_config(tmp_path, corpus_path, model__backend=backend,
                       data__batch_size=s["batch_size"], data__seq_len=s["seq_len"],
                       model__hidden_size=s["hidden_size"],
                       model__embedding_size=s["embedding_size"],
                       model__dropout=s.get("dropout", 0.0),
                       train__learning_rate=s["learning_rate"], train__grad_clip=s["grad_clip"],
                       train__eval_every=s["eval_every"], train__max_steps=s["max_steps"])


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


def start_workers(args, n=2):
    ports = free_ports(n)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(n):
        env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1",
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": i}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tfcharrnn.train", *args,
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
    return [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors("grad_norm")]


@pytest.fixture(scope="module")
def heldout(corpus_path):
    return corpus_path.read_text(encoding="utf-8")[-3000:]


@pytest.fixture(scope="module", params=["keras", "manual"])
def one_device(request, tmp_path_factory, corpus_path):
    """The reference: 12 steps on one device, in this process."""
    tmp = tmp_path_factory.mktemp(f"one-device-{request.param}")
    config = settings_config(tmp, corpus_path, request.param)
    train_lib.train_and_evaluate(config, out=open(os.devnull, "w"))
    assert min(grad_norms(config.train.resolved_logdir)) > 2 * SETTINGS["grad_clip"]
    return request.param, config.train.checkpoint_dir


def assert_same_training(run_dir, reference_dir, heldout):
    want, got = heldout_loss(reference_dir, heldout), heldout_loss(run_dir, heldout)
    assert got == pytest.approx(want, rel=2e-4), (got, want)
    # The printed/logged losses are the global batch's, step by step.
    np.testing.assert_allclose(train_losses(os.path.join(run_dir, "logs")),
                               train_losses(os.path.join(reference_dir, "logs")), rtol=1e-4)


def test_two_replicas_train_the_same_model_as_one_device(one_device, tmp_path, corpus_path,
                                                         heldout):
    backend, reference = one_device
    run_dir = tmp_path / "mirrored"
    r = run_command("tfcharrnn.train", *cli_args(corpus_path, run_dir, backend),
                    "--distribution_strategy=mirrored", "--num_replicas=2")
    assert r.returncode == 0, r.stderr
    assert "2 replicas" in r.stdout.splitlines()[0]
    assert_same_training(str(run_dir), reference, heldout)


def test_two_workers_train_the_same_model_as_one_process(one_device, tmp_path, corpus_path,
                                                          heldout):
    backend, reference = one_device
    run_dir = tmp_path / "workers"
    chief_out, worker_out = run_workers(cli_args(corpus_path, run_dir, backend))
    assert "worker 0 of 2 (chief)" in chief_out and "worker 1 of 2" in worker_out
    # Both print the same losses; only the chief wrote (one set of event files).
    assert chief_out.splitlines()[1:3] == worker_out.splitlines()[1:3]
    assert len(os.listdir(run_dir / "logs")) == 1
    assert_same_training(str(run_dir), reference, heldout)


def test_resume_under_another_strategy_lands_on_the_same_model(one_device, tmp_path,
                                                               corpus_path, heldout):
    backend, reference = one_device
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
