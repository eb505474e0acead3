"""Keras back-end: embedding -> num_layers x (SimpleRNN | GRU | LSTM) -> dense logits.

The recurrent state is a value, not a hidden attribute: `__call__` takes the state in and
returns the new one, so truncated BPTT, sampling and evaluation all carry it explicitly (we do
not use Keras `stateful=True`, whose semantics changed in Keras 3 and which ties the state to
a fixed batch size). The state is a flat list of [batch, hidden] tensors: per layer (h, c) for
the LSTM and (h,) for the GRU and the basic RNN.

Dropout follows char-rnn: on the input of every recurrent layer but the first, and on the
output of the top layer, only when training.
"""

import keras
import tensorflow as tf

from tfcharrnn.config import ModelConfig

_LAYERS = {"rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
STATES_PER_LAYER = {"rnn": 1, "gru": 1, "lstm": 2}


class KerasRNN(keras.Model):

    def __init__(self, config: ModelConfig, vocab_size: int, seed: int = 0):
        super().__init__(name=f"keras_{config.model}")
        self.config = config
        self.vocab_size = vocab_size
        self.embedding = (keras.layers.Embedding(vocab_size, config.embedding_size,
                                                 name="embedding")
                          if config.embedding_size else None)
        layer_cls = _LAYERS[config.model]
        self.rnn_layers = [
            layer_cls(config.hidden_size, return_sequences=True, return_state=True,
                      name=f"{config.model}_{i}")
            for i in range(config.num_layers)]
        # One dropout per layer boundary plus one before the softmax; each gets its own seed so
        # the masks of different layers are independent.
        self.dropouts = [keras.layers.Dropout(config.dropout, seed=seed + i, name=f"dropout_{i}")
                         for i in range(config.num_layers)] if config.dropout > 0 else []
        self.softmax = keras.layers.Dense(vocab_size, name="softmax")

    @property
    def state_shapes(self):
        """Widths of the state tensors, in order."""
        return [self.config.hidden_size] * (STATES_PER_LAYER[self.config.model]
                                            * self.config.num_layers)

    def named_variables(self) -> dict:
        """Every variable (weights and dropout RNG state) under a stable name, for checkpoints.

        Keras 3 layers kept in Python lists are not tracked by `tf.train.Checkpoint`, and
        Keras variable paths carry global counters, so names are built from our own layer names.
        """
        layers = ([self.embedding] if self.embedding is not None else []) + self.rnn_layers \
            + self.dropouts + [self.softmax]
        named = {}
        for layer in layers:
            for var in layer.variables:
                key = f"{layer.name}/{var.name}"
                assert key not in named, key
                named[key] = var
        return named

    def initial_state(self, batch_size: int):
        return [tf.zeros([batch_size, h]) for h in self.state_shapes]

    def call(self, inputs, state, training=False):
        """Args:
          inputs: int32 token ids [B, T].
          state: list of float32 [B, hidden], as returned by `initial_state` or a previous call.
        Returns:
          logits float32 [B, T, vocab], new state (same structure as `state`).
        """
        if self.embedding is not None:
            x = self.embedding(inputs)                        # [B, T, E]
        else:
            x = tf.one_hot(inputs, self.vocab_size)           # [B, T, V]
        n = STATES_PER_LAYER[self.config.model]
        new_state = []
        for i, layer in enumerate(self.rnn_layers):
            if i > 0 and self.dropouts:
                x = self.dropouts[i - 1](x, training=training)
            x, *layer_state = layer(x, initial_state=list(state[i * n:(i + 1) * n]),
                                    training=training)      # x: [B, T, H]
            new_state.extend(layer_state)
        if self.dropouts:
            x = self.dropouts[-1](x, training=training)
        return self.softmax(x), new_state                    # [B, T, V]
