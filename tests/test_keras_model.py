import math

import numpy as np
import pytest
import tensorflow as tf

from tfcharrnn import steps
from tfcharrnn.config import ModelConfig
from tfcharrnn.models import build_model, cells, inference

CELLS = cells.NAMES


@pytest.mark.parametrize("cell", CELLS)
def test_two_windows_with_carried_state_equal_one_pass(cell):
    model = build_model(ModelConfig(backend="keras", model=cell, num_layers=2, hidden_size=12,
                                    embedding_size=6), vocab_size=11)
    ids = tf.constant(np.random.default_rng(0).integers(0, 11, size=(3, 17)), tf.int32)
    full_logits, full_state = model(ids, model.initial_state(3))
    first, state = model(ids[:, :7], model.initial_state(3))
    second, state = model(ids[:, 7:], state)
    np.testing.assert_allclose(tf.concat([first, second], 1), full_logits, atol=1e-5)
    assert len(state) == len(full_state) == 2 * cells.get(cell).state_size
    for a, b in zip(state, full_state):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_shapes_and_state_contract(cell):
    model = build_model(ModelConfig(model=cell, num_layers=3, hidden_size=10,
                                    embedding_size=0), vocab_size=7)  # one-hot input
    logits, state = model(tf.zeros([2, 5], tf.int32), model.initial_state(2), training=True)
    assert logits.shape == (2, 5, 7)
    assert [tuple(s.shape) for s in state] == [(2, 10)] * len(model.state_shapes)


@pytest.mark.parametrize("cell", CELLS)
def test_loss_at_initialization_is_near_uniform(cell):
    vocab = 65
    model = build_model(ModelConfig(model=cell, num_layers=2, hidden_size=128,
                                    embedding_size=64), vocab_size=vocab, seed=1)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.integers(0, vocab, (8, 50)), tf.int32)
    y = tf.constant(rng.integers(0, vocab, (8, 50)), tf.int32)
    loss_sum, n, _ = steps.eval_step(model, x, y, model.initial_state(8))
    assert abs(float(loss_sum) / int(n) - math.log(vocab)) < 0.1


def test_dropout_only_when_training():
    model = build_model(ModelConfig(model="lstm", num_layers=2, hidden_size=16,
                                    embedding_size=8, dropout=0.5), vocab_size=9)
    x = tf.constant(np.arange(20).reshape(2, 10) % 9, tf.int32)
    s = model.initial_state(2)
    a, _ = model(x, s, training=False)
    b, _ = model(x, s, training=False)
    c, _ = model(x, s, training=True)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("backend", ["keras", "manual"])
@pytest.mark.parametrize("cell", CELLS)
def test_step_by_step_equals_the_full_sequence(backend, cell):
    model = build_model(ModelConfig(backend=backend, model=cell, num_layers=2, hidden_size=12,
                                    embedding_size=6), vocab_size=11)
    ids = tf.constant(np.random.default_rng(5).integers(0, 11, size=(3, 9)), tf.int32)
    full, full_state = model(ids, model.initial_state(3))
    state = model.initial_state(3)
    step = inference.make_step(model)
    for t in range(9):
        logits, state = step(ids[:, t], state)
        np.testing.assert_allclose(logits, full[:, t], atol=1e-5)
    for a, b in zip(state, full_state):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_bptt_kernel_equals_keras_own_loop_values_and_gradients(cell):
    """The Keras layers run the cell's own loop (the hand-written kernels of cells/, or the
    minGRU's scan) in `inner_loop`; Keras' generic loop is the reference."""
    rng = np.random.default_rng(5)
    config = ModelConfig(backend="keras", model=cell, num_layers=2, hidden_size=6,
                         embedding_size=3)
    model = build_model(config, vocab_size=7)
    ids = tf.constant(rng.integers(0, 7, (2, 5)), tf.int32)
    targets = tf.constant(rng.integers(0, 7, (2, 5)), tf.int32)
    state = [tf.constant(rng.normal(0, 0.5, (2, 6)), tf.float32) for _ in model.state_shapes]
    probes = [tf.constant(rng.normal(0, 1, (2, 6)), tf.float32) for _ in model.state_shapes]

    def run(use_kernel):
        for layer in model.rnn_layers:
            layer.use_bptt_kernel = use_kernel
        with tf.GradientTape() as tape:
            tape.watch(state)
            logits, final = model(ids, state, training=True)
            loss = (tf.reduce_mean(steps.token_losses(logits, targets))
                    + sum(tf.reduce_sum(p * s) for p, s in zip(probes, final)))
        grads = tape.gradient(loss, model.trainable_variables + state)
        return [logits, *final, *[tf.convert_to_tensor(g) for g in grads]]

    fused, reference = run(True), run(False)
    assert len(fused) == len(reference)
    for a, b in zip(fused, reference):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
