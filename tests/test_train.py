import dataclasses
import glob
import io
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config
from tfcharrnn import checkpoints, train_lib
from tfcharrnn.errors import RunError, UsageError
from tfcharrnn.models import build_model, cells
from tfcharrnn.vocab import CharVocab


def train(config, **kwargs):
    out = io.StringIO()
    summary = train_lib.train_and_evaluate(config, out=out, **kwargs)
    return summary, out.getvalue()


@pytest.mark.parametrize("backend", ["keras", "manual"])
def test_a_few_steps_reduce_the_loss(tmp_path, corpus_path, backend):
    config = tiny_config(tmp_path, corpus_path, train__max_steps=40, model__backend=backend)
    vocab_size = len(set(corpus_path.read_text(encoding="utf-8")))
    summary, _ = train(config)
    assert summary["step"] == 40
    # At initialization the loss is ln(vocab); 40 steps must have learned character frequencies.
    assert summary["val_loss"] < math.log(vocab_size) - 0.5


def test_same_seed_same_losses(tmp_path, corpus_path):
    a = tiny_config(tmp_path / "a", corpus_path, model__dropout=0.2)
    b = tiny_config(tmp_path / "b", corpus_path, model__dropout=0.2)
    c = tiny_config(tmp_path / "c", corpus_path, model__dropout=0.2, train__seed=7)
    sa, sb, sc = train(a)[0], train(b)[0], train(c)[0]
    assert sa["train_loss"] == sb["train_loss"] and sa["val_loss"] == sb["val_loss"]
    assert sa["train_loss"] != sc["train_loss"]


# Both back-ends with the default cell; every other registered cell once.
@pytest.mark.parametrize("backend,cell", [("keras", "lstm"), ("manual", "lstm")]
                         + [("keras", c) for c in cells.NAMES if c != "lstm"])
def test_resume_continues_the_step_counter_and_matches_an_uninterrupted_run(tmp_path,
                                                                            corpus_path,
                                                                            backend, cell):
    # 13 steps is mid-epoch (the tiny corpus has 281 batches), so the carried state matters;
    # dropout makes the saved random-number state matter too.
    # --ema_decay: the averaged weights must resume exactly too.
    straight = tiny_config(tmp_path / "straight", corpus_path, train__max_steps=26,
                           model__dropout=0.1, train__eval_every=13, model__backend=backend,
                           model__model=cell, train__ema_decay=0.9)
    resumed = dataclasses.replace(straight, train=dataclasses.replace(
        straight.train, checkpoint_dir=str(tmp_path / "resumed"), max_steps=13))
    expected, _ = train(straight)
    first, _ = train(resumed)
    assert first["step"] == 13
    second, log = train(dataclasses.replace(resumed, train=dataclasses.replace(
        resumed.train, max_steps=26)))
    assert "resuming" in log and "at step 13" in log
    assert second["step"] == 26
    assert second["train_loss"] == pytest.approx(expected["train_loss"], abs=1e-6)
    assert second["val_loss"] == pytest.approx(expected["val_loss"], abs=1e-6)
    # Same weights, bit for bit.
    a = tf.train.load_checkpoint(checkpoints.checkpoint_path(straight.train.checkpoint_dir,
                                                             "latest"))
    b = tf.train.load_checkpoint(checkpoints.checkpoint_path(str(tmp_path / "resumed"),
                                                             "latest"))
    names = [n for n in a.get_variable_to_shape_map() if n.startswith(("model/", "average"))]
    assert any(n.startswith("average/") for n in names) and "average_updates" in str(names)
    for name in names:
        np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), err_msg=name)
    # And the same loss curve, step by step, in TensorBoard.
    assert train_losses(straight.train.resolved_logdir) == pytest.approx(
        train_losses(str(tmp_path / "resumed" / "logs")), abs=1e-6)


def train_losses(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(logdir, size_guidance={"tensors": 0})
    acc.Reload()
    events = sorted(acc.Tensors("train/loss"), key=lambda e: e.step)
    assert [e.step for e in events] == list(range(1, len(events) + 1))
    return [float(tf.make_ndarray(e.tensor_proto)) for e in events]


def test_resume_refuses_different_settings_and_names_them(tmp_path, corpus_path):
    config = tiny_config(tmp_path, corpus_path, train__max_steps=5)
    train(config)
    changed = dataclasses.replace(config, model=dataclasses.replace(config.model,
                                                                    hidden_size=32))
    with pytest.raises(UsageError, match=r"model\.hidden_size: 16 on disk, 32 now"):
        train(changed)
    # How long to train and how often to evaluate may change.
    longer = dataclasses.replace(config, train=dataclasses.replace(
        config.train, max_steps=8, eval_every=4))
    assert train(longer)[0]["step"] == 8


def test_overwrite_keeps_the_old_run(tmp_path, corpus_path):
    config = tiny_config(tmp_path, corpus_path, train__max_steps=3)
    train(config)
    changed = dataclasses.replace(config, model=dataclasses.replace(config.model, model="gru"))
    summary, log = train(changed, overwrite=True)
    assert summary["step"] == 3
    old = glob.glob(str(tmp_path / "run.old-*"))
    assert len(old) == 1 and os.path.isfile(os.path.join(old[0], "config.json"))
    assert checkpoints.load_run_config(old[0]).model.model == "lstm"


def test_checkpoint_round_trip_gives_identical_logits(tmp_path, corpus_path):
    config = tiny_config(tmp_path, corpus_path, model__model="gru")
    vocab = CharVocab.from_text("abcdefg")
    model = build_model(config.model, len(vocab), seed=3)
    # Move the weights away from their initial values, so restoring them proves something.
    for v in model.trainable_variables:
        v.assign(v + tf.random.normal(v.shape, seed=1))
    optimizer = __import__("keras").optimizers.Adam()
    optimizer.build(model.trainable_variables)
    checkpoints.save_run_files(config.train.checkpoint_dir, config, vocab)
    ckpt = checkpoints.TrainingCheckpoint(config.train.checkpoint_dir, model, optimizer,
                                          model.state_shapes, 4, 2)
    ckpt.save(model.initial_state(4))
    _, restored_vocab, restored = checkpoints.restore_model(config.train.checkpoint_dir,
                                                            "latest")
    assert restored_vocab == vocab
    x = tf.constant(np.arange(12).reshape(2, 6) % 7, tf.int32)
    want, _ = model(x, model.initial_state(2))
    got, _ = restored(x, restored.initial_state(2))
    np.testing.assert_array_equal(want, got)
    fresh = build_model(config.model, len(vocab), seed=3)
    assert not np.allclose(fresh(x, fresh.initial_state(2))[0], want)


def test_tensorboard_has_the_scalars_text_and_hparams(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(trained_run.train.resolved_logdir, size_guidance={"tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["tensors"])
    for tag in ["train/loss", "train/bits_per_char", "val/loss", "val/bits_per_char",
                "val/perplexity", "train/learning_rate", "train/grad_norm",
                "train/chars_per_sec", "sample"]:
        assert tag in tags, tag
    assert len(acc.Tensors("train/loss")) == 30
    assert [e.step for e in acc.Tensors("val/loss")] == [10, 20, 30]
    assert "config" in tags and "_hparams_/session_start_info" in tags
    text = acc.Tensors("sample")[-1].tensor_proto.string_val[0].decode("utf-8")
    assert len(text.strip("`\n")) >= 20 - 1  # the logged sample (20 characters)


def test_best_and_latest_checkpoints_and_run_files(trained_run):
    run_dir = trained_run.train.checkpoint_dir
    assert os.path.isfile(os.path.join(run_dir, "config.json"))
    assert os.path.isfile(os.path.join(run_dir, "vocab.json"))
    assert checkpoints.checkpoint_path(run_dir, "latest").endswith("ckpt-30")
    assert "best" in checkpoints.checkpoint_path(run_dir, "best")
    assert checkpoints.load_run_config(run_dir) == trained_run


def test_too_short_corpus_is_a_usage_error(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("hello world", encoding="utf-8")
    with pytest.raises(UsageError, match="batch_size \\* seq_len \\+ 1"):
        train(tiny_config(tmp_path, path))


def test_divergence_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, corpus_path,
                                                                      monkeypatch):
    config = tiny_config(tmp_path, corpus_path, train__max_steps=4, train__eval_every=2)
    train(config)
    run_dir = config.train.checkpoint_dir
    files = sorted(f for f in os.listdir(run_dir) if f.startswith("ckpt-4"))
    stamps = [os.path.getmtime(os.path.join(run_dir, f)) for f in files]
    # Resume with a learning rate that blows the weights up.
    monkeypatch.setattr(train_lib, "learning_rate", lambda tc, step, epoch, progress: 1e4)
    longer = dataclasses.replace(config, train=dataclasses.replace(config.train, max_steps=30))
    with pytest.raises(RunError, match=r"training diverged: the loss is .* at step \d+ .*"
                                       r"the last good checkpoint is .*ckpt-4"):
        train(longer)
    assert checkpoints.checkpoint_path(run_dir, "latest").endswith("ckpt-4")
    assert [os.path.getmtime(os.path.join(run_dir, f)) for f in files] == stamps
    _, _, model = checkpoints.restore_model(run_dir, "latest")
    assert all(np.isfinite(v.numpy()).all() for v in model.trainable_variables)


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, corpus_path, monkeypatch):
    config = tiny_config(tmp_path, corpus_path, train__max_steps=4, train__eval_every=2)
    real_save = tf.train.CheckpointManager.save
    calls = []

    def save(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 2:  # the first evaluation saves best and latest; then the disk is full
            raise OSError(28, "No space left on device")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    with pytest.raises(RunError, match=r"could not write the checkpoint of step 4.*"
                                       r"No space left on device.*disk full.*ckpt-2"):
        train(config)
    monkeypatch.undo()
    assert checkpoints.checkpoint_path(config.train.checkpoint_dir, "latest").endswith("ckpt-2")
    checkpoints.restore_model(config.train.checkpoint_dir, "latest")


def test_run_files_get_ordinary_permissions(trained_run):
    for name in ("config.json", "vocab.json"):
        mode = os.stat(os.path.join(trained_run.train.checkpoint_dir, name)).st_mode & 0o777
        assert mode == 0o666 & ~_umask(), oct(mode)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- the stop protocol and the save policy, in-process ----

def agreed(workers, signals):
    """Each worker's StopAgreement after one step whose requests are summed as the train step
    sums them (each of a worker's replicas adds its requests); signals[i]: worker i's signal
    or None."""
    local = workers[0].num_replicas // len(workers)          # replicas per worker
    summed = np.sum([w.requests(s) for w, s in zip(workers, signals)], axis=0) * local
    for w, s in zip(workers, signals):
        w.agree(summed, s)
    return workers


def test_a_signal_on_one_worker_stops_every_worker_after_the_same_step():
    now = [100.0]
    workers = [train_lib.StopAgreement(0, 0.0, num_replicas=4, clock=lambda: now[0])
               for _ in range(2)]                           # 2 workers x 2 replicas
    agreed(workers, [None, None])
    assert not any(w.stopping for w in workers)             # no budget: never out of time
    agreed(workers, [None, "SIGTERM"])
    assert [w.stopped_by for w in workers] == ["a stop on another worker", "SIGTERM"]
    assert all(w.stopping and not w.out_of_time for w in workers)


def test_the_time_budget_of_any_worker_stops_all_and_progress_is_the_mean():
    clocks = [[0.0], [0.0]]
    workers = [train_lib.StopAgreement(60.0, 0.0, num_replicas=4, clock=lambda c=c: c[0])
               for c in clocks]
    clocks[0][0], clocks[1][0] = 30.0, 42.0               # 50% and 70% of the budget
    agreed(workers, [None, None])
    assert not any(w.stopping for w in workers)
    assert [w.progress for w in workers] == pytest.approx([0.6, 0.6])
    clocks[1][0] = 61.0                                     # one worker's budget is spent
    agreed(workers, [None, None])
    assert all(w.out_of_time and w.stopping and w.stopped_by is None for w in workers)


@pytest.mark.parametrize("step,improved,last,stopping,due", [
    (7, False, False, False, False), (10, False, False, False, True),
    (7, True, False, False, True), (7, False, True, False, True),
    (7, False, False, True, True)])
def test_save_policy(step, improved, last, stopping, due):
    assert train_lib.save_due(step, 5, improved, last, stopping) is due
