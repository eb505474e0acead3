"""Model back-ends behind one contract, picked by name.

Every back-end is a callable object with
  initial_state(batch_size) -> state            (a list of float32 [batch, hidden] tensors)
  __call__(inputs [B, T] int32, state, training) -> (logits [B, T, vocab], new state)
  step_weights() -> (embedding or None, [per-layer params], softmax params), in the manual
                    back-end's names, for the one-token step of `inference.py` (sampling)
  cell: the `cells.base.Cell` it stacks
  trainable_variables
  named_variables() -> {stable name: variable}, every variable, for checkpoints
so the train step, the sampler and evaluation never know which one they drive. Both back-ends
share their forward pass (`stacked.py`); the cells are in `cells/`, one module each.
"""


def cell_of(config):
    """The cell `config.model` names (cells.get), checked against the rest of the config."""
    from tfcharrnn.errors import UsageError
    from tfcharrnn.models import cells
    cell = cells.get(config.model)
    if config.weight_dropout > 0 and not cell.recurrent:
        raise UsageError(f"--weight_dropout drops recurrent weights, which the {cell.name} "
                         f"cell does not have: use --dropout, or leave --weight_dropout at 0")
    return cell


def build_model(config, vocab_size: int, seed: int = 0):
    """Creates the back-end named by `config.backend` (a ModelConfig), with its variables
    built (--precision=auto resolved for this machine: see devices.resolve_precision)."""
    import dataclasses
    from tfcharrnn.models.devices import resolve_precision
    config = dataclasses.replace(config, precision=resolve_precision(config.precision))
    if config.backend == "keras":
        from tfcharrnn.models.keras_rnn import KerasRNN
        model = KerasRNN(config, vocab_size, seed=seed)
    elif config.backend == "manual":
        from tfcharrnn.models.manual import ManualRNN
        model = ManualRNN(config, vocab_size, seed=seed)
    else:
        raise ValueError(f"unknown backend {config.backend!r}: expected keras or manual")
    build(model)
    return model


def build(model):
    """Creates the variables with one tiny forward pass (restoring needs them to exist)."""
    import tensorflow as tf
    model(tf.zeros([1, 1], tf.int32), model.initial_state(1), training=False)
