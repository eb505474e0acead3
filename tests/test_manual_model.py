"""The manual back-end: equal to a NumPy reference, to the Keras back-end, and to finite
differences."""

import math

import numpy as np
import pytest
import tensorflow as tf

import numpy_reference
from tfcharrnn import steps
from tfcharrnn.config import ModelConfig
from tfcharrnn.models import build_model, cells, ops, stacked
from tfcharrnn.models.manual import ManualRNN, rnn_cell, rnn_logits
from tfcharrnn.models.weight_mapping import keras_to_manual, manual_to_keras

CELLS = cells.NAMES


def randomize(model, rng, scale=0.5):
    """Random weights everywhere (biases too), so no term of the equations is zero."""
    for v in model.trainable_variables:
        dtype = tf.as_dtype(v.dtype).as_numpy_dtype
        v.assign(rng.normal(0, scale, v.shape).astype(dtype))


def numpy_params(model):
    strip = lambda name: name.rsplit("_", 1)[0] if name[-1].isdigit() else name  # noqa: E731
    layers = [{strip(v.name.split(":")[0]): v.numpy() for v in p.values()}
              for p in model.layers]
    softmax = {k: v.numpy() for k, v in model.softmax.items()}
    emb = None if model.embedding is None else model.embedding.numpy()
    return layers, softmax, emb


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("embedding_size", [0, 5])
def test_logits_equal_the_numpy_reference(cell, embedding_size):
    rng = np.random.default_rng(0)
    config = ModelConfig(backend="manual", model=cell, num_layers=2, hidden_size=6,
                         embedding_size=embedding_size)
    model = build_model(config, vocab_size=9)
    randomize(model, rng)
    ids = rng.integers(0, 9, (3, 8))
    state = [rng.normal(0, 0.5, (3, 6)).astype(np.float32) for _ in model.state_shapes]
    logits, new_state = model(tf.constant(ids, tf.int32), [tf.constant(s) for s in state])
    layers, softmax, emb = numpy_params(model)
    want_logits, want_state = numpy_reference.forward(cell, layers, softmax, emb, 9, ids, state)
    np.testing.assert_allclose(logits, want_logits, atol=1e-5)
    for got, want in zip(new_state, want_state):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_rnn_cell_and_rnn_logits_are_one_step_of_the_model(cell):
    model = build_model(ModelConfig(backend="manual", model=cell, num_layers=1, hidden_size=4,
                                    embedding_size=3), vocab_size=5)
    randomize(model, np.random.default_rng(1))
    ids = tf.constant([[2], [4]], tf.int32)
    logits, state = model(ids, model.initial_state(2))
    x = tf.gather(model.embedding, ids[:, 0])
    h, cell_state = rnn_cell(model.layers[0], x, tuple(model.initial_state(2)), cell)
    np.testing.assert_allclose(rnn_logits(model.softmax, h), logits[:, 0], atol=1e-6)
    for a, b in zip(cell_state, state):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_basic_rnn_variable_names_in_the_checkpoint(tmp_path):
    for layers, names in [(1, {"W_input", "W_hidden", "b_hidden"}),
                          (2, {"W_input_0", "W_hidden_0", "b_hidden_0", "W_input_1",
                               "W_hidden_1", "b_hidden_1"})]:
        model = build_model(ModelConfig(backend="manual", model="rnn", num_layers=layers,
                                        hidden_size=4, embedding_size=0), vocab_size=7)
        path = tf.train.Checkpoint(model=model.named_variables()).write(str(tmp_path / "c"))
        keys = {k.split("/")[1] for k in tf.train.load_checkpoint(path)
                .get_variable_to_shape_map() if k.startswith("model/")}
        assert names | {"W_softmax", "b_softmax"} <= keys
        reader = tf.train.load_checkpoint(path)
        shapes = reader.get_variable_to_shape_map()
        suffix = "_0" if layers > 1 else ""
        assert shapes[f"model/W_input{suffix}/.ATTRIBUTES/VARIABLE_VALUE"] == [7, 4]
        assert shapes[f"model/W_hidden{suffix}/.ATTRIBUTES/VARIABLE_VALUE"] == [4, 4]
        assert shapes["model/W_softmax/.ATTRIBUTES/VARIABLE_VALUE"] == [4, 7]


@pytest.mark.parametrize("cell", CELLS)
def test_manual_and_keras_agree_over_windows_with_carried_state(cell):
    rng = np.random.default_rng(2)
    kwargs = dict(model=cell, num_layers=2, hidden_size=10, embedding_size=4)
    keras_model = build_model(ModelConfig(backend="keras", **kwargs), vocab_size=8)
    manual = build_model(ModelConfig(backend="manual", **kwargs), vocab_size=8)
    randomize(keras_model, rng)
    keras_to_manual(keras_model, manual)
    ks, ms = keras_model.initial_state(3), manual.initial_state(3)
    for window in range(3):
        ids = tf.constant(rng.integers(0, 8, (3, 6)), tf.int32)
        kl, ks = keras_model(ids, ks)
        ml, ms = manual(ids, ms)
        np.testing.assert_allclose(ml, kl, atol=1e-5)
        for a, b in zip(ms, ks):
            np.testing.assert_allclose(a, b, atol=1e-5)
    # And back: manual weights into a fresh Keras model give the same logits.
    other = build_model(ModelConfig(backend="keras", **kwargs), vocab_size=8)
    manual_to_keras(manual, other)
    ids = tf.constant(rng.integers(0, 8, (2, 5)), tf.int32)
    np.testing.assert_allclose(other(ids, other.initial_state(2))[0],
                               manual(ids, manual.initial_state(2))[0], atol=1e-5)


@pytest.mark.parametrize("training", [True, False], ids=["bptt-kernels", "wavefront"])
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_equal_central_finite_differences(cell, training):
    """Training runs the hand-written backward passes of cells/; evaluation runs the layers
    as one wavefront loop (autodiff), which `score` and others may differentiate too."""
    rng = np.random.default_rng(3)
    config = ModelConfig(backend="manual", model=cell, num_layers=2, hidden_size=3,
                         embedding_size=2)
    model = ManualRNN(config, vocab_size=4, seed=0, dtype=tf.float64)
    randomize(model, rng)
    ids = tf.constant(rng.integers(0, 4, (2, 5)), tf.int32)
    targets = tf.constant(rng.integers(0, 4, (2, 5)), tf.int32)
    # The initial state is a variable too, and the loss also reads the final state, so the
    # gradients flowing into and out of the state (across windows) are checked as well.
    state = [tf.Variable(rng.normal(0, 0.5, (2, 3))) for _ in model.state_shapes]
    probes = [tf.constant(rng.normal(0, 1, (2, 3))) for _ in model.state_shapes]

    def loss():
        logits, final = model(ids, state, training=training)
        return (tf.reduce_mean(steps.token_losses(logits, targets))
                + sum(tf.reduce_sum(p * s) for p, s in zip(probes, final)))

    variables = list(model.trainable_variables) + state
    with tf.GradientTape() as tape:
        value = loss()
    grads = tape.gradient(value, variables)
    eps = 1e-6
    for var, grad in zip(variables, grads):
        grad = tf.convert_to_tensor(grad).numpy()
        numeric = np.zeros(var.shape)
        base = var.numpy()
        for index in np.ndindex(*var.shape):
            for sign in (1, -1):
                shifted = base.copy()
                shifted[index] += sign * eps
                var.assign(shifted)
                numeric[index] += sign * float(loss()) / (2 * eps)
            var.assign(base)
        np.testing.assert_allclose(grad, numeric, atol=1e-7, rtol=1e-5, err_msg=var.name)


@pytest.mark.parametrize("cell", CELLS)
def test_loss_at_initialization_is_near_uniform(cell):
    vocab = 65
    model = build_model(ModelConfig(backend="manual", model=cell, num_layers=2,
                                    hidden_size=128, embedding_size=64), vocab_size=vocab)
    rng = np.random.default_rng(4)
    x = tf.constant(rng.integers(0, vocab, (8, 50)), tf.int32)
    loss_sum, n, _ = steps.eval_step(model, x, x, model.initial_state(8))
    assert abs(float(loss_sum) / int(n) - math.log(vocab)) < 0.1


def test_dropout_masks_are_reproducible_and_only_in_training():
    config = ModelConfig(backend="manual", model="gru", num_layers=2, hidden_size=8,
                         embedding_size=4, dropout=0.5)
    x = tf.constant(np.arange(12).reshape(2, 6) % 5, tf.int32)
    a, b = build_model(config, 5, seed=1), build_model(config, 5, seed=1)
    s = a.initial_state(2)
    np.testing.assert_array_equal(a(x, s)[0], a(x, s)[0])
    ta, tb = a(x, s, training=True)[0], b(x, s, training=True)[0]
    np.testing.assert_array_equal(ta, tb)
    assert not np.allclose(ta, a(x, s)[0])


def test_rnn_batch_halves_equal_one_loop_values_and_gradients(monkeypatch):
    """Large basic RNNs run the two halves of the batch as two loops (cells/rnn.py); the outputs,
    final state and every gradient must equal one loop over the whole batch."""
    from tfcharrnn.models.cells import rnn as rnn_module
    rng = np.random.default_rng(11)
    xw = tf.constant(rng.normal(0, 1, (4, 6, 5)), tf.float32)        # [T, B, H]
    w_hidden = tf.constant(rng.normal(0, 0.5, (5, 5)), tf.float32)
    h0 = tf.constant(rng.normal(0, 0.5, (6, 5)), tf.float32)
    probe_hs = tf.constant(rng.normal(0, 1, (4, 6, 5)), tf.float32)
    probe_h = tf.constant(rng.normal(0, 1, (6, 5)), tf.float32)

    def run(min_units):
        monkeypatch.setattr(rnn_module, "_SPLIT_MIN_UNITS", min_units)

        @tf.function
        def values_and_grads(xw, w_hidden, h0):
            with tf.GradientTape() as tape:
                tape.watch([xw, w_hidden, h0])
                hs, (h,) = rnn_module.CELL.sequence({"W_hidden": w_hidden}, xw, (h0,))
                loss = tf.reduce_sum(probe_hs * hs) + tf.reduce_sum(probe_h * h)
            return [hs, h, *tape.gradient(loss, [xw, w_hidden, h0])]

        graph = values_and_grads.get_concrete_function(xw, w_hidden, h0).graph
        loops = sum(op.type in ("While", "StatelessWhile") for op in graph.get_operations())
        return loops, values_and_grads(xw, w_hidden, h0)

    one_loop, reference = run(10 ** 9)
    halves, split = run(1)        # halves of 3 rows x 5 units
    assert one_loop == 2 and halves == 4   # forward and backward loops, once or per half
    for a, b in zip(split, reference):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("vocab", [5, 40], ids=["table-lookup", "projected-tokens"])
@pytest.mark.parametrize("cell", CELLS)
def test_first_projection_equals_embedding_then_projection(cell, vocab):
    """The first layer projects the V rows of the embedding and looks them up when V is
    smaller than the batch's B*T tokens; values and gradients must be those of embedding the
    tokens and projecting them (also for one-hot inputs, whose table is W_input itself)."""
    rng = np.random.default_rng(12)
    cell = cells.get(cell)
    gates = cell.gates
    params = {"W_input": tf.constant(rng.normal(0, 1, (vocab, gates * 3)), tf.float32),
              "b_hidden": tf.constant(rng.normal(0, 1, gates * 3), tf.float32),
              "b_input": tf.constant(rng.normal(0, 1, gates * 3), tf.float32)}
    embedding = tf.constant(rng.normal(0, 1, (vocab, vocab)), tf.float32)
    ids = tf.constant(rng.integers(0, vocab, (4, 6)), tf.int32)             # 24 tokens
    probe = tf.constant(rng.normal(0, 1, (6, 4, gates * 3)), tf.float32)   # [T, B, G*H]

    def value_and_grads(fn):
        watched = [embedding, *params.values()]
        with tf.GradientTape() as tape:
            tape.watch(watched)
            xw = fn()
            loss = tf.reduce_sum(probe * xw)
        return [xw] + [tf.convert_to_tensor(g) for g in tape.gradient(loss, watched)
                       if g is not None]

    time_major = tf.transpose(ids)
    for table, reference_input in [(embedding, lambda: tf.gather(embedding, time_major)),
                                   (None, lambda: tf.one_hot(time_major, vocab))]:
        got = value_and_grads(lambda: stacked.first_projection(cell, params, ids, table))
        want = value_and_grads(lambda: cell.project(params, reference_input()))
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    if vocab < ids.shape.num_elements():
        # The table's gradient is one product (stacked.lookup), not tf.gather's scatter-add.
        graph = tf.function(lambda: value_and_grads(
            lambda: stacked.first_projection(cell, params, ids, embedding))
        ).get_concrete_function().graph
        kinds = {op.type for op in graph.get_operations()}
        assert "UnsortedSegmentSum" not in kinds and "MatMul" in kinds, kinds


@pytest.mark.parametrize("cell", [c for c in CELLS if cells.get(c).recurrent])
def test_weight_dropout_same_in_both_back_ends_and_only_when_training(cell, monkeypatch):
    """--weight_dropout: one DropConnect mask of W_hidden per layer and window. With the masks'
    seeds fixed, both back-ends train through the same dropped weights (parity); evaluation
    uses the full weights; each window draws new masks."""
    rng = np.random.default_rng(6)
    kwargs = dict(model=cell, num_layers=2, hidden_size=10, embedding_size=4)
    plain = build_model(ModelConfig(backend="keras", **kwargs), vocab_size=8)
    dropped = {b: build_model(ModelConfig(backend=b, weight_dropout=0.4, **kwargs), vocab_size=8)
               for b in ("keras", "manual")}
    randomize(plain, rng)
    keras_to_manual(plain, dropped["manual"])
    manual_to_keras(dropped["manual"], dropped["keras"])
    ids = tf.constant(rng.integers(0, 8, (3, 6)), tf.int32)
    state = plain.initial_state(3)
    reference, _ = plain(ids, state, training=False)
    for model in dropped.values():
        np.testing.assert_allclose(model(ids, state, training=False)[0], reference, atol=1e-5)
        a, _ = model(ids, state, training=True)
        b, _ = model(ids, state, training=True)
        assert not np.allclose(a, reference, atol=1e-3) and not np.allclose(a, b, atol=1e-3)
    drawn = []

    def fixed(w, rate, seed):
        drawn.append(rate)
        return tf.nn.experimental.stateless_dropout(w, rate, seed=tf.constant([7, len(drawn) % 2],
                                                                                tf.int64))

    monkeypatch.setattr(ops, "drop_connect", fixed)
    outputs = {}
    for backend, model in dropped.items():
        drawn.clear()
        outputs[backend] = model(ids, state, training=True)[0]
        assert drawn == [0.4, 0.4]                     # one mask per layer and window
    np.testing.assert_allclose(outputs["keras"], outputs["manual"], atol=1e-5)


@pytest.mark.parametrize("backend", ["keras", "manual"])
def test_locked_dropout_holds_one_mask_per_stream_for_the_whole_window(backend):
    """--locked_dropout: a unit dropped for a stream stays dropped at every step of the window,
    streams draw their own masks; without it the mask changes from step to step. Evaluation
    drops nothing either way."""
    for locked in (True, False):
        model = build_model(ModelConfig(backend=backend, num_layers=2, hidden_size=16,
                                        embedding_size=4, dropout=0.5, locked_dropout=locked),
                            vocab_size=8)
        model(tf.zeros([3, 5], tf.int32), model.initial_state(3))     # builds Keras' layers
        x = tf.ones([20, 3, 16])                                        # [T, B, H]
        for i in (1, 2):                        # between the layers, before the softmax
            dropped = model.dropout(i, x, training=True).numpy()
            assert set(np.unique(dropped)) == {0.0, 2.0}               # inverted: 1 / (1 - 0.5)
            kept = dropped != 0
            assert (kept == kept[:1]).all() == locked                  # the same at every step
            assert not (kept[0] == kept[0, :1]).all()                  # streams differ
        np.testing.assert_array_equal(model.dropout(1, x, training=False), x)


@pytest.mark.parametrize("backend,own_loop", [("keras", True), ("keras", False),
                                              ("manual", True)])
def test_locked_dropout_holds_the_mask_along_time_on_every_path(backend, own_loop, monkeypatch):
    """Each place the forward pass drops activations holds the mask along the axis of length
    T: time-major in the cells' loops, batch-major between Keras' own layers (own_loop=False,
    the path of masking or cuDNN)."""
    model = build_model(ModelConfig(backend=backend, num_layers=3, hidden_size=6,
                                    embedding_size=4, dropout=0.3, locked_dropout=True),
                        vocab_size=8)
    ids = tf.zeros([2, 7], tf.int32)                                     # B = 2, T = 7
    model(ids, model.initial_state(2))
    for layer in getattr(model, "rnn_layers", []):
        layer.use_bptt_kernel = own_loop
    held = []
    real = ops.dropout

    def recording(x, rate, seed, time_axis=None):
        held.append(x.shape[time_axis])
        return real(x, rate, seed, time_axis)

    monkeypatch.setattr(ops, "dropout", recording)
    logits, _ = model(ids, model.initial_state(2), training=True)
    assert logits.shape == (2, 7, 8)
    assert held == [7, 7, 7]                   # two layer boundaries and the softmax's input


def test_locked_dropout_without_dropout_is_a_usage_error():
    from tfcharrnn.errors import UsageError
    with pytest.raises(UsageError, match="--locked_dropout.*set --dropout"):
        ModelConfig(locked_dropout=True)


@pytest.mark.parametrize("cell", [c for c in CELLS if not cells.get(c).recurrent])
def test_weight_dropout_is_refused_for_a_cell_without_recurrent_weights(cell):
    from tfcharrnn.errors import UsageError
    for backend in ("keras", "manual"):
        with pytest.raises(UsageError, match=f"the {cell} cell does not have.*--dropout"):
            build_model(ModelConfig(backend=backend, model=cell, weight_dropout=0.2), 5)


def test_an_unknown_cell_is_an_error_at_the_lookup():
    with pytest.raises(ValueError, match="unknown cell 'lstmm': expected one of rnn, gru"):
        cells.get("lstmm")


def test_drop_connect_zeroes_the_rate_and_keeps_the_mean():
    w = tf.ones([200, 300])
    out = ops.drop_connect(w, 0.3, tf.constant([1, 2], tf.int64)).numpy()
    assert abs((out == 0).mean() - 0.3) < 0.01
    np.testing.assert_allclose(out[out != 0], 1 / 0.7, rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.02
