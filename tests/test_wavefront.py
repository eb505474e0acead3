"""Evaluation runs a stack of layers as one wavefront loop (models/wavefront.py); it must give
the layer-by-layer outputs and state, for every window length and with unknown lengths."""

import numpy as np
import pytest
import tensorflow as tf

from tfcharrnn.config import ModelConfig
from tfcharrnn.models import build_model, cells, wavefront

# The wavefront runs the cells whose gates read h_{t-1}; the others evaluate layer by layer.
RECURRENT = [c for c in cells.NAMES if cells.get(c).recurrent]


@pytest.fixture
def wavefront_calls(monkeypatch):
    """Counts the windows that really went through the wavefront loop."""
    calls = []
    original = wavefront._wavefront

    def counted(*args):
        calls.append(args[2].shape)
        return original(*args)

    monkeypatch.setattr(wavefront, "_wavefront", counted)
    return calls


def _check(model, ids, state, outputs, monkeypatch):
    """`outputs` (logits, state) equal the model's with the wavefront replaced by its
    layer-by-layer fallback."""
    with monkeypatch.context() as patch:
        patch.setattr(wavefront, "forward", lambda *args: args[4]())  # the layered pass
        expected = model(ids, state, training=False)
    for a, b in zip([outputs[0], *outputs[1]], [expected[0], *expected[1]], strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["keras", "manual"])
@pytest.mark.parametrize("cell", RECURRENT)
@pytest.mark.parametrize("layers", [2, 3])
@pytest.mark.parametrize("rows", ["few", "many"])
def test_wavefront_equals_layer_by_layer(backend, cell, layers, rows, wavefront_calls,
                                         monkeypatch):
    if rows == "many":
        # What `score`'s batches of >= MANY_ROWS rows run: each h_l multiplied once by
        # [W_hidden_l | W_input_l+1], the gates compiled with XLA.
        monkeypatch.setattr(wavefront, "MANY_ROWS", 0)
    model = build_model(ModelConfig(backend=backend, model=cell, num_layers=layers,
                                    hidden_size=10, embedding_size=4), vocab_size=9)
    rng = np.random.default_rng(layers)
    state = [tf.constant(rng.normal(0, 0.5, (3, 10)), tf.float32) for _ in model.state_shapes]
    wavefront_calls.clear()
    for steps in (1, 2, 3, 7):   # shorter than, equal to and longer than the layers - 1
        ids = tf.constant(rng.integers(0, 9, (3, steps)), tf.int32)
        _check(model, ids, state, model(ids, state, training=False), monkeypatch)
    assert len(wavefront_calls) == (3 if layers == 3 else 4)   # T = 1 < 2 goes layered

    # Unknown window length (as in `evaluate`): decided inside the graph.
    dynamic = tf.function(lambda ids, s: model(ids, s, training=False),
                          input_signature=[tf.TensorSpec([3, None], tf.int32),
                                           [tf.TensorSpec([3, 10])] * len(state)])
    for steps in (1, 5):
        ids = tf.constant(rng.integers(0, 9, (3, steps)), tf.int32)
        _check(model, ids, state, dynamic(ids, state), monkeypatch)


def test_training_and_keras_fallback_layers_do_not_use_the_wavefront(wavefront_calls):
    model = build_model(ModelConfig(backend="keras", model="gru", num_layers=2, hidden_size=8,
                                    embedding_size=4), vocab_size=9)
    ids = tf.zeros([2, 4], tf.int32)
    wavefront_calls.clear()
    model(ids, model.initial_state(2), training=True)
    for layer in model.rnn_layers:   # a layer outside what the kernels compute: Keras' loop
        layer.use_bptt_kernel = False
    model(ids, model.initial_state(2), training=False)
    assert wavefront_calls == []
    for layer in model.rnn_layers:
        layer.use_bptt_kernel = True
    model(ids, model.initial_state(2), training=False)
    assert len(wavefront_calls) == 1


@pytest.mark.parametrize("cell", [c for c in cells.NAMES if c not in RECURRENT])
def test_cells_without_recurrent_products_evaluate_layer_by_layer(cell, wavefront_calls):
    model = build_model(ModelConfig(backend="manual", model=cell, num_layers=2, hidden_size=8,
                                    embedding_size=4), vocab_size=9)
    wavefront_calls.clear()
    model(tf.zeros([2, 4], tf.int32), model.initial_state(2), training=False)
    assert wavefront_calls == []


@pytest.mark.parametrize("backend", ["keras", "manual"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_many_rows_step_in_bfloat16_equals_layer_by_layer(backend, cell, monkeypatch):
    # `score` runs in the precision the run was trained in: the many-rows step's products
    # take operands rounded to bfloat16 like the layered pass's, and its compiled gates get
    # the first layer's projected input in bfloat16.
    monkeypatch.setattr(wavefront, "MANY_ROWS", 0)
    model = build_model(ModelConfig(backend=backend, model=cell, num_layers=2, hidden_size=16,
                                    embedding_size=4, precision="mixed_bfloat16"), vocab_size=9)
    rng = np.random.default_rng(5)
    state = [tf.constant(rng.normal(0, 0.5, (4, 16)), tf.float32) for _ in model.state_shapes]
    ids = tf.constant(rng.integers(0, 9, (4, 6)), tf.int32)
    outputs = model(ids, state, training=False)
    with monkeypatch.context() as patch:
        patch.setattr(wavefront, "forward", lambda *args: args[4]())  # the layered pass
        expected = model(ids, state, training=False)
    for a, b in zip([outputs[0], *outputs[1]], [expected[0], *expected[1]], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)
