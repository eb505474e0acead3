"""Learning-rate schedules and weight decay: the same in both back-ends."""

import dataclasses
import math
import types

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config
from test_manual_model import randomize
from tfcharrnn import schedule, steps, train_lib
from tfcharrnn.config import ModelConfig, TrainConfig
from tfcharrnn.models import build_model, cells
from tfcharrnn.models.weight_mapping import keras_to_manual


def test_epoch_decay_cosine_linear_and_warmup():
    decay = TrainConfig(learning_rate=0.01, decay_rate=0.5)
    assert schedule.learning_rate(decay, 100, 3, 0.9) == pytest.approx(0.01 * 0.5 ** 3)
    cosine = TrainConfig(learning_rate=0.01, lr_schedule="cosine", min_lr_ratio=0.1)
    rates = [schedule.learning_rate(cosine, 0, 0, p) for p in np.linspace(0, 1, 11)]
    assert rates[0] == pytest.approx(0.01) and rates[-1] == pytest.approx(0.001)
    assert rates[5] == pytest.approx(0.0055) and rates == sorted(rates, reverse=True)
    assert schedule.learning_rate(cosine, 0, 0, 1.7) == pytest.approx(0.001)  # clipped
    linear = dataclasses.replace(cosine, lr_schedule="linear", min_lr_ratio=0.0)
    assert [schedule.learning_rate(linear, 0, 0, p) for p in (0, 0.25, 0.9, 1, 1.3)] == \
        pytest.approx([0.01, 0.0075, 0.001, 0.0, 0.0])
    warm = dataclasses.replace(cosine, warmup_steps=4)
    assert [schedule.learning_rate(warm, s, 0, 0.0) for s in range(5)] == pytest.approx(
        [0.0025, 0.005, 0.0075, 0.01, 0.01])


def test_an_unknown_schedule_is_an_error_not_a_default():
    # TrainConfig refuses the name first; the dispatch itself must not fall through either.
    unknown = types.SimpleNamespace(lr_schedule="step", learning_rate=0.01, decay_rate=0.5,
                                    min_lr_ratio=0.1, warmup_steps=0)
    with pytest.raises(ValueError, match="step"):
        schedule.learning_rate(unknown, 0, 0, 0.5)


def test_a_run_logs_the_scheduled_rates(tmp_path, corpus_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    config = tiny_config(tmp_path, corpus_path, train__max_steps=8, train__lr_schedule="cosine",
                         train__warmup_steps=2, train__min_lr_ratio=0.0)
    train_lib.train_and_evaluate(config, out=open("/dev/null", "w"))
    acc = EventAccumulator(config.train.resolved_logdir, size_guidance={"tensors": 0})
    acc.Reload()
    logged = [float(tf.make_ndarray(e.tensor_proto)) for e in
              sorted(acc.Tensors("train/learning_rate"), key=lambda e: e.step)]
    lr = config.train.learning_rate
    want = [lr * min(1, (s + 1) / 2) * 0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)]
    np.testing.assert_allclose(logged, want, rtol=1e-6)


@pytest.mark.parametrize("cell", cells.NAMES)
def test_weight_decay_trains_both_back_ends_alike_and_spares_the_biases(cell):
    rng = np.random.default_rng(0)
    kwargs = dict(model=cell, num_layers=2, hidden_size=8, embedding_size=4)
    keras_model = build_model(ModelConfig(backend="keras", **kwargs), vocab_size=7)
    manual = build_model(ModelConfig(backend="manual", **kwargs), vocab_size=7)
    randomize(keras_model, rng)
    keras_to_manual(keras_model, manual)
    x = tf.constant(rng.integers(0, 7, (2, 5)), tf.int32)
    y = tf.constant(rng.integers(0, 7, (2, 5)), tf.int32)
    for model in (keras_model, manual):
        optimizer = steps.make_optimizer(0.05, 0.3, model.trainable_variables)
        optimizer.build(model.trainable_variables)
        state = model.initial_state(2)
        for _ in range(3):
            _, _, state = steps.train_step(model, optimizer, x, y, state, grad_clip=1.0)
    check = build_model(ModelConfig(backend="manual", **kwargs), vocab_size=7)
    keras_to_manual(keras_model, check)
    for a, b in zip(check.trainable_variables, manual.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=b.name)


@pytest.mark.parametrize("backend", ["keras", "manual"])
def test_weight_decay_shrinks_the_weights_but_not_the_biases(backend):
    model = build_model(ModelConfig(backend=backend, model="gru", num_layers=2, hidden_size=6,
                                    embedding_size=4), vocab_size=5)
    randomize(model, np.random.default_rng(1))
    before = [v.numpy() for v in model.trainable_variables]
    optimizer = steps.make_optimizer(1.0, 0.5, model.trainable_variables)
    optimizer.build(model.trainable_variables)
    # Zero gradients: Adam's own update is zero, so only the decay moves the variables.
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
    biases = 0
    for v, old in zip(model.trainable_variables, before):
        if steps.is_bias(v):
            biases += 1
            np.testing.assert_array_equal(v.numpy(), old, err_msg=v.name)
        else:
            np.testing.assert_allclose(v.numpy(), 0.5 * old, rtol=1e-6, err_msg=v.name)
    # Manual: b_input and b_hidden per layer, b_softmax; Keras: one [2, 3H] per layer, softmax.
    assert biases == (5 if backend == "manual" else 3)
