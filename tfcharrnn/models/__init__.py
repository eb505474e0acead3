"""Model back-ends behind one contract, picked by name.

Every back-end is a callable object with
  initial_state(batch_size) -> state            (a list of float32 [batch, hidden] tensors)
  __call__(inputs [B, T] int32, state, training) -> (logits [B, T, vocab], new state)
  step_weights() -> (embedding or None, [per-layer params], softmax params), in the manual
                    back-end's names, for the one-token step of `inference.py` (sampling)
  trainable_variables
  named_variables() -> {stable name: variable}, every variable, for checkpoints
so the train step, the sampler and evaluation never know which one they drive.
"""

from tfcharrnn.config import ModelConfig


def build_model(config: ModelConfig, vocab_size: int, seed: int = 0):
    """Creates the back-end named by `config.backend`, with its variables built
    (--precision=auto resolved for this machine: see devices.resolve_precision)."""
    import dataclasses
    from tfcharrnn.models.devices import resolve_precision
    config = dataclasses.replace(config, precision=resolve_precision(config.precision))
    if config.backend == "keras":
        from tfcharrnn.models.keras_rnn import KerasRNN
        model = KerasRNN(config, vocab_size, seed=seed)
    else:
        from tfcharrnn.models.manual import ManualRNN
        model = ManualRNN(config, vocab_size, seed=seed)
    build(model)
    return model


def build(model):
    """Creates the variables with one tiny forward pass (restoring needs them to exist)."""
    import tensorflow as tf
    model(tf.zeros([1, 1], tf.int32), model.initial_state(1), training=False)
