"""--ema_decay: the moving average of the weights, what validation and restoring use."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config
from tfcharrnn import averaging, checkpoints, steps, train_lib


def test_the_average_follows_its_recurrence_and_is_applied_only_inside_the_block():
    w = tf.Variable([1.0, -2.0])
    average = averaging.WeightAverage({"w": w}, decay=0.5)
    expected = w.numpy().copy()
    for t, value in enumerate([[3.0, 0.0], [5.0, 4.0], [-1.0, 2.0], [0.0, 8.0]]):
        w.assign(value)
        average.update()
        d = min(0.5, (1 + t) / (10 + t))     # 0.1, 0.18..., then the decay itself
        expected = d * expected + (1 - d) * np.array(value)
        np.testing.assert_allclose(average.averages["w"].numpy(), expected, rtol=1e-6)
    with average.applied():
        np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
    np.testing.assert_array_equal(w.numpy(), [0.0, 8.0])
    with pytest.raises(RuntimeError), average.applied():
        raise RuntimeError("the weights come back even when the block fails")
    np.testing.assert_array_equal(w.numpy(), [0.0, 8.0])


@pytest.mark.parametrize("backend", ["keras", "manual"])
def test_validation_and_restored_models_use_the_averaged_weights(tmp_path, corpus_path,
                                                                 backend):
    # One validation, at the last step, so the best checkpoint is that step's.
    config = tiny_config(tmp_path, corpus_path, model__backend=backend, model__dropout=0.1,
                         train__max_steps=8, train__eval_every=8, train__ema_decay=0.9)
    summary = train_lib.train_and_evaluate(config, out=io.StringIO())
    run_dir = config.train.checkpoint_dir

    _, _, model = checkpoints.restore_model(run_dir)
    saved = tf.train.load_checkpoint(checkpoints.checkpoint_path(run_dir))
    names = averaging.trainable(model.named_variables())
    differ = 0
    for name, var in names.items():
        key = f"{name.replace('/', '.S')}/.ATTRIBUTES/VARIABLE_VALUE"
        np.testing.assert_array_equal(var.numpy(), saved.get_tensor(f"average/{key}"))
        differ += not np.array_equal(var.numpy(), saved.get_tensor(f"model/{key}"))
    assert differ == len(names)          # eight steps in, every average differs from its weight

    # The logged validation loss is the restored (averaged) model's, not the raw weights'.
    data = train_lib.prepare_data(config, log=lambda m: None)

    def val_loss(m):
        return train_lib.evaluate_batches(steps.compile_eval_step(m),
                                          m.initial_state(config.data.batch_size), data.val)
    assert val_loss(model) == pytest.approx(summary["best_val_loss"], abs=1e-5)
    for name, var in names.items():
        key = f"{name.replace('/', '.S')}/.ATTRIBUTES/VARIABLE_VALUE"
        var.assign(saved.get_tensor(f"model/{key}"))
    assert abs(val_loss(model) - summary["best_val_loss"]) > 1e-4
    assert os.path.isdir(os.path.join(run_dir, checkpoints.BEST_DIR))
