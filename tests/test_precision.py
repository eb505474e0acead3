"""--precision: bfloat16 (and float16) matrix products with everything else float32.

Tolerances. bfloat16 keeps 8 significant bits, so rounding an operand moves it by up to 2^-9
(0.2%) of itself. A pre-activation is a sum of H products of rounded operands; its error is
about 2^-9 x sqrt(H) x the size of a term, well under 1% of the pre-activation, and the
recurrence passes that on from step to step, damped by the gates. Measured on these tiny
models (relative norm of the difference): one layer's outputs and gradients 0.1-0.5% from
float32's; a whole model's logits and gradients 0.3-0.7% for the LSTM and GRU, and up to 2.7%
for the basic RNN, whose recurrence with these large random weights amplifies differences;
kernels against autodiff, both bfloat16, under 0.5%. The bounds below are 2-6x that: they
catch a product left in the wrong dtype or a wrong cast (errors of 10% and more), not rounding.
"""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_command, tiny_config
from test_manual_model import randomize
from tfcharrnn import checkpoints, steps
from tfcharrnn.config import ModelConfig
from tfcharrnn.models import build_model, cells
from tfcharrnn.models.weight_mapping import keras_to_manual

CELLS = cells.NAMES


def relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_bf16_kernels_close_to_float32_values_and_gradients(cell):
    """A cell's loop with bfloat16 products: every output and gradient within 3% of
    float32's."""
    rng = np.random.default_rng(0)
    steps_, batch, hidden = 12, 4, 32
    cell = cells.get(cell)
    xw = tf.constant(rng.normal(0, 1, (steps_, batch, cell.gates * hidden)), tf.float32)
    params = {name: tf.constant(rng.uniform(-0.3, 0.3, shape), tf.float32)
              for name, shape in cell.parameters(hidden, hidden).items() if name != "W_input"}
    state = tuple(tf.constant(rng.normal(0, 0.5, (batch, hidden)), tf.float32)
                  for _ in range(cell.state_size))
    probe = tf.constant(rng.normal(0, 1, (steps_, batch, hidden)), tf.float32)
    watched = [xw, *params.values(), *state]

    def run(compute):
        with tf.GradientTape() as tape:
            tape.watch(watched)
            hs, final = cell.sequence(params, xw, state, compute)
            loss = tf.reduce_sum(hs * probe) + sum(tf.reduce_sum(s) for s in final)
        grads = [g for g in tape.gradient(loss, watched) if g is not None]
        return [hs, *final], grads

    (values32, grads32), (values16, grads16) = run(None), run(tf.bfloat16)
    for a, b in zip(values16, values32):
        assert a.dtype == tf.float32           # the state stays float32
        assert relative(a, b) < 0.03
    for a, b in zip(grads16, grads32):
        assert a.dtype == tf.float32
        assert relative(a, b) < 0.03
    # ... and the products really were rounded: not bit-equal to float32 (a cell with no
    # recurrent product has none in its loop).
    if cell.recurrent:
        assert relative(values16[0], values32[0]) > 0


def test_bf16_lstm_layer_with_its_projection_equals_projection_then_kernel():
    """lstm.lstm_layer_sequence (the input projection inside the kernel, low precision)
    computes what the projection followed by lstm.lstm_sequence computes: the same
    roundings in the same places, so equal up to float32 round-off, except the bias gradient,
    a sum it returns rounded to bfloat16 (relative 2^-9)."""
    from tfcharrnn.models.cells import lstm
    rng = np.random.default_rng(5)
    steps_, batch, inputs, hidden = 9, 4, 12, 16
    x = tf.constant(rng.normal(0, 1, (steps_, batch, inputs)), tf.float32)
    params = {"W_input": tf.constant(rng.uniform(-0.4, 0.4, (inputs, 4 * hidden)), tf.float32),
              "W_hidden": tf.constant(rng.uniform(-0.3, 0.3, (hidden, 4 * hidden)), tf.float32),
              "b_hidden": tf.constant(rng.uniform(-0.2, 0.2, (4 * hidden,)), tf.float32)}
    h0, c0 = (tf.constant(rng.normal(0, 0.5, (batch, hidden)), tf.float32) for _ in range(2))
    probe = tf.constant(rng.normal(0, 1, (steps_, batch, hidden)), tf.float32)
    watched = [x, params["W_input"], params["b_hidden"], params["W_hidden"], h0, c0]

    def run(fused):
        with tf.GradientTape() as tape:
            tape.watch(watched)
            if fused:
                hs, h, c = lstm.lstm_layer_sequence(x, params["W_input"], params["b_hidden"],
                                                    params["W_hidden"], h0, c0, tf.bfloat16)
            else:
                xw = lstm.CELL.project(params, x, tf.bfloat16)
                hs, h, c = lstm.lstm_sequence(xw, params["W_hidden"], h0, c0, tf.bfloat16)
            loss = tf.reduce_sum(hs * probe) + tf.reduce_sum(h) + tf.reduce_sum(c)
        return [hs, h, c], tape.gradient(loss, watched)

    (values, grads), (ref_values, ref_grads) = run(True), run(False)
    for a, b in zip(values, ref_values):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for name, a, b in zip(["x", "W_input", "bias", "W_hidden", "h0", "c0"], grads, ref_grads):
        assert a.dtype == tf.float32, name
        assert relative(a, b) < (2.0 ** -8 if name == "bias" else 1e-5), name


@pytest.mark.parametrize("cell", CELLS)
def test_bf16_hand_written_gradients_equal_autodiff_of_the_bf16_forward(cell):
    """The bfloat16 variant of the finite-difference test: finite differences cannot see
    through bfloat16 rounding (a step below 2^-9 of a weight rounds away), so the kernels'
    backward pass (training) is checked against autodiff of the wavefront forward pass
    (evaluation), both with bfloat16 products, and both against float32's gradient."""
    rng = np.random.default_rng(3)
    config = ModelConfig(backend="manual", model=cell, num_layers=2, hidden_size=16,
                         embedding_size=4, precision="mixed_bfloat16")
    model = build_model(config, vocab_size=6)
    randomize(model, rng)
    ids = tf.constant(rng.integers(0, 6, (3, 7)), tf.int32)
    targets = tf.constant(rng.integers(0, 6, (3, 7)), tf.int32)
    state = [tf.Variable(rng.normal(0, 0.5, (3, 16)), dtype=tf.float32)
             for _ in model.state_shapes]

    def grads(training, compute):
        model.compute = compute
        with tf.GradientTape() as tape:
            logits, final = model(ids, state, training=training)
            loss = (tf.reduce_mean(steps.token_losses(logits, targets))
                    + sum(tf.reduce_mean(s) for s in final))
        return [tf.convert_to_tensor(g) for g in
                tape.gradient(loss, list(model.trainable_variables) + state)]

    kernels, autodiff = grads(True, tf.bfloat16), grads(False, tf.bfloat16)
    float32 = grads(True, None)
    for k, a, f in zip(kernels, autodiff, float32):
        assert relative(k, a) < 0.02
        assert relative(k, f) < 0.06


@pytest.mark.parametrize("cell", CELLS)
def test_both_back_ends_agree_in_bf16_and_the_wavefront_equals_the_layered_pass(cell):
    rng = np.random.default_rng(2)
    kwargs = dict(model=cell, num_layers=2, hidden_size=24, embedding_size=8,
                  precision="mixed_bfloat16")
    keras_model = build_model(ModelConfig(backend="keras", **kwargs), vocab_size=9)
    manual = build_model(ModelConfig(backend="manual", **kwargs), vocab_size=9)
    randomize(keras_model, rng)
    keras_to_manual(keras_model, manual)
    ids = tf.constant(rng.integers(0, 9, (3, 10)), tf.int32)
    for training in (True, False):                     # kernels, then the wavefront
        kl, ks = keras_model(ids, keras_model.initial_state(3), training=training)
        ml, ms = manual(ids, manual.initial_state(3), training=training)
        # The same operations on the same values in both back-ends: equal up to float32
        # round-off of the element-wise parts.
        np.testing.assert_allclose(ml, kl, atol=1e-4)
        assert kl.dtype == tf.float32 and all(s.dtype == tf.float32 for s in ks)
    layered, _ = manual(ids, manual.initial_state(3), training=True)
    wavefront, _ = manual(ids, manual.initial_state(3), training=False)
    assert relative(wavefront, layered) < 0.02
    float32 = build_model(ModelConfig(backend="manual", **{**kwargs, "precision": "float32"}),
                          vocab_size=9)
    for a, b in zip(float32.trainable_variables, manual.trainable_variables):
        a.assign(b)
    reference, _ = float32(ids, float32.initial_state(3), training=False)
    assert 0 < relative(wavefront, reference) < 0.06


def test_bf16_sampling_step_follows_the_bf16_model():
    from tfcharrnn.models import inference
    rng = np.random.default_rng(4)
    config = ModelConfig(backend="manual", model="lstm", num_layers=2, hidden_size=16,
                         embedding_size=4, precision="mixed_bfloat16")
    model = build_model(config, vocab_size=7)
    randomize(model, rng)
    ids = rng.integers(0, 7, (2, 6)).astype(np.int32)
    full, _ = model(tf.constant(ids), model.initial_state(2))
    step = inference.make_step(model)
    state = model.initial_state(2)
    for t in range(6):
        logits, state = step(tf.constant(ids[:, t]), state)
        assert logits.dtype == tf.float32
        # The step folds the bias into the product, so it rounds the bias too: close, not equal.
        assert relative(logits, full[:, t]) < 0.03


def test_mixed_float16_skips_a_step_whose_gradients_overflow_and_halves_the_scale():
    config = ModelConfig(backend="manual", model="gru", num_layers=1, hidden_size=8,
                         embedding_size=4, precision="mixed_float16")
    model = build_model(config, vocab_size=5)
    optimizer = steps.make_optimizer(1e-2, 0.0, model.trainable_variables, loss_scaling=True)
    optimizer.build(model.trainable_variables)
    step = tf.function(lambda x, y, s: steps.train_step(model, optimizer, x, y, s, 5.0))
    x = tf.constant([[1, 2, 3, 4]], tf.int32)
    y = tf.constant([[2, 3, 4, 0]], tf.int32)
    before = [v.numpy().copy() for v in model.trainable_variables]
    optimizer.loss_scale.assign(3e38)                 # float16 gradients overflow at once
    step(x, y, model.initial_state(1))
    assert float(optimizer.loss_scale) == pytest.approx(1.5e38)
    for a, v in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(a, v.numpy())   # skipped
    optimizer.loss_scale.assign(1024.0)
    loss, grad_norm, _ = step(x, y, model.initial_state(1))
    assert np.isfinite(float(grad_norm)) and float(optimizer.loss_scale) == 1024.0
    assert any(not np.array_equal(a, v.numpy())
               for a, v in zip(before, model.trainable_variables))
    # The loss scale is not part of the checkpointed optimizer state.
    names = [v.name for v in optimizer.variables]
    assert not any("loss_scale" in n for n in names)


def test_train_in_bf16_resume_in_float32_and_back(tmp_path, corpus_path):
    from tfcharrnn import train_lib
    import dataclasses
    config = tiny_config(tmp_path, corpus_path, train__max_steps=20,
                         model__precision="mixed_bfloat16")
    first = train_lib.train_and_evaluate(config, out=open("/dev/null", "w"))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["precision"] == "mixed_bfloat16"
    again = dataclasses.replace(
        config, model=dataclasses.replace(config.model, precision="float32"),
        train=dataclasses.replace(config.train, max_steps=30))
    second = train_lib.train_and_evaluate(again, out=open("/dev/null", "w"))
    assert second["step"] == 30 and np.isfinite(second["val_loss"])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["precision"] \
        == "float32"
    back = dataclasses.replace(config, train=dataclasses.replace(config.train, max_steps=40))
    third = train_lib.train_and_evaluate(back, out=open("/dev/null", "w"))
    assert third["step"] == 40 and third["val_loss"] < first["val_loss"] + 0.5


def test_commands_use_the_runs_precision_unless_told(tmp_path, corpus_path):
    from tfcharrnn import train_lib
    config = tiny_config(tmp_path, corpus_path, train__max_steps=10,
                         model__precision="mixed_bfloat16")
    train_lib.train_and_evaluate(config, out=open("/dev/null", "w"))
    run_dir = config.train.checkpoint_dir
    _, _, model = checkpoints.restore_model(run_dir)
    assert model.config.precision == "mixed_bfloat16" and model.compute == tf.bfloat16
    _, _, model = checkpoints.restore_model(run_dir, precision="float32")
    assert model.compute is None
    text = tmp_path / "t.txt"
    text.write_text(corpus_path.read_text(encoding="utf-8")[:2000], encoding="utf-8")
    results = {}
    for precision in ("", "float32"):
        out = run_command("tfcharrnn.evaluate", f"--checkpoint_dir={run_dir}",
                          f"--data_path={text}", f"--precision={precision}")
        assert out.returncode == 0, out.stderr
        results[precision] = json.loads(out.stdout.strip().splitlines()[-1])
    a, b = results[""]["loss_nats_per_token"], results["float32"]["loss_nats_per_token"]
    assert a != b and abs(a - b) < 0.02


@pytest.mark.parametrize("flags_line, gpus, expected", [
    ("fpu sse avx2 avx512f amx_bf16 amx_tile", [], "mixed_bfloat16"),    # Intel with AMX
    ("fpu sse avx2 avx512f avx512_bf16", [], "mixed_bfloat16"),          # AMD Zen 4
    ("fpu sse avx2 fma", [], "float32"),                                 # AVX2 only
    ("fpu sse avx2 amx_bf16", [(7, 5)], "mixed_float16"),                # a T4: the GPU decides
    ("fpu sse avx2", [(8, 0), (9, 0)], "mixed_bfloat16"),                # A100 + H100
    ("fpu sse avx2", [(6, 1)], "float32"),                               # no tensor cores
])
def test_auto_precision_follows_the_hardware(tmp_path, monkeypatch, flags_line, gpus, expected):
    """--precision=auto reads the CPU's flags as lscpu shows them and the GPUs' compute
    capability (simulated here: no GPU is reachable); other values pass through."""
    from tfcharrnn.models import devices
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags_line}\n\n"
                       f"processor\t: 1\nflags\t\t: {flags_line}\n")
    real = devices.cpu_flags
    monkeypatch.setattr(devices, "cpu_flags", lambda path=str(cpuinfo): real(path))
    monkeypatch.setattr(devices, "gpu_compute_capabilities", lambda: list(gpus))
    assert devices.resolve_precision("auto") == expected
    for given in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert devices.resolve_precision(given) == given
    assert real(str(tmp_path / "missing")) == set()


def test_auto_precision_is_resolved_before_config_json_is_written(tmp_path, corpus_path,
                                                                   monkeypatch):
    """A run trained with --precision=auto records the precision it ran in, so `sample`,
    `evaluate` and `score` run in it on any machine, and resuming may pick another."""
    from tfcharrnn import train_lib
    from tfcharrnn.models import devices
    monkeypatch.setattr(devices, "cpu_flags", lambda *_: {"avx2", "amx_bf16"})
    monkeypatch.setattr(devices, "gpu_compute_capabilities", lambda: [])
    config = tiny_config(tmp_path, corpus_path, train__max_steps=3, model__precision="auto")
    train_lib.train_and_evaluate(config, out=open("/dev/null", "w"))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["precision"] == "mixed_bfloat16"
    _, _, model = checkpoints.restore_model(config.train.checkpoint_dir)
    assert model.compute == tf.bfloat16
    monkeypatch.setattr(devices, "cpu_flags", lambda *_: {"avx2"})
    resumed = train_lib.train_and_evaluate(
        dataclasses.replace(config, train=dataclasses.replace(config.train, max_steps=5)),
        out=open("/dev/null", "w"))
    assert resumed["step"] == 5
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["precision"] \
        == "float32"
    _, _, model = checkpoints.restore_model(config.train.checkpoint_dir, precision="auto")
    assert model.compute is None
