"""Manual back-end: an RNN without abstractions.

Every weight is a named `tf.Variable` owned by `ManualRNN`, the cells are plain functions of
(params, input, state), and the sequence is an explicit loop over time steps. It answers the
same contract as the Keras back-end (`initial_state`, `__call__(x, state, training)`), so the
train step, sampling and evaluation drive either one.

Each cell's equations are in its module (`cells/rnn.py`, `gru.py`, `lstm.py`, ...):
`rnn_cell` runs one step of one layer, `rnn_logits` the softmax layer,
  rnn_logits(params, h) = h W_softmax + b_softmax.

Weight names: the cell's parameters (`Cell.parameters`: W_input [I, G*H], W_hidden [H, G*H],
b_hidden [G*H], and b_input [3H] for the GRU), with a layer suffix _0, _1, ... when there are
several layers; W_softmax [H, V], b_softmax [V]; `embedding` [V, E] unless the input is
one-hot (--embedding_size=0). G is the cell's number of fused gates.

Speed: the input projection x W_input + b does not depend on the previous state, so it is one
matrix multiply over all time steps [T*B, I] x [I, G*H] before the loop; the loop itself only
does h W_hidden and the element-wise gate arithmetic. The classic cells' backward passes
through time are written out (`cells/loops.py`) so that the weight gradients are single large
matrix multiplies too. The forward pass over the stack is the Keras back-end's too
(`stacked.py`).
"""

import numpy as np
import tensorflow as tf

from tfcharrnn import models
from tfcharrnn.config import ModelConfig
from tfcharrnn.models import cells, ops, stacked


def rnn_cell(params, rnn_input, state, cell: str = "rnn"):
    """One time step of one layer.

    Args:
      params: this layer's weights, {"W_input", "W_hidden", "b_hidden"[, "b_input"]}.
      rnn_input: [B, I] the layer's input at this time step.
      state: tuple of [B, H]: (h,) for rnn and gru, (h, c) for lstm.
      cell: a registered cell's name (`cells.NAMES`).
    Returns:
      output [B, H] (the new h), new state tuple.
    """
    cell = cells.get(cell)
    return cell.step(params, cell.project(params, rnn_input), state)


def rnn_logits(params, rnn_output):
    """[..., H] -> unnormalized log-probabilities over the vocabulary [..., V]."""
    return tf.tensordot(rnn_output, params["W_softmax"], axes=1) + params["b_softmax"]


class ManualRNN(stacked.StackedRNN, tf.Module):
    """A stack of one cell with explicit weights; the forward pass is `stacked.py`'s."""

    def __init__(self, config: ModelConfig, vocab_size: int, seed: int = 0, dtype=tf.float32):
        super().__init__(name=f"manual_{config.model}")
        self.config = config
        self.vocab_size = vocab_size
        self.state_dtype = self.dtype = dtype
        self.cell = models.cell_of(config)
        self.compute = ops.compute_dtype(config.precision)  # of the matrix products (ops.py)
        hidden, layers = config.hidden_size, config.num_layers
        rng = np.random.default_rng(seed)

        def var(name, value):
            return tf.Variable(tf.constant(value, dtype), name=name)

        def uniform(*shape):
            # Same scheme as the Keras back-end (see keras_rnn.py): U(-1/sqrt(H), 1/sqrt(H)).
            return rng.uniform(-hidden ** -0.5, hidden ** -0.5, shape)

        self.embedding = (var("embedding", rng.normal(0.0, 1.0,
                                                      (vocab_size, config.embedding_size)))
                          if config.embedding_size else None)
        input_size = config.embedding_size or vocab_size
        suffix = (lambda i: f"_{i}") if layers > 1 else (lambda i: "")
        self.layers = []
        for i in range(layers):
            shapes = self.cell.parameters(input_size, hidden)
            self.layers.append({name: var(f"{name}{suffix(i)}", uniform(*shape))
                                for name, shape in shapes.items()})
            input_size = hidden
        self.softmax = {"W_softmax": var("W_softmax", uniform(hidden, vocab_size)),
                        "b_softmax": var("b_softmax", uniform(vocab_size))}
        # Dropout masks come from this generator; its state is checkpointed with the weights,
        # so a resumed run draws the same masks as an uninterrupted one.
        self.rng = tf.random.Generator.from_seed(seed)

    def named_variables(self) -> dict:
        named = {} if self.embedding is None else {"embedding": self.embedding}
        for params in self.layers:
            named.update({v.name.split(":")[0]: v for v in params.values()})
        named.update({v.name.split(":")[0]: v for v in self.softmax.values()})
        named["rng_state"] = self.rng.state
        return named

    # ---- the hooks of stacked.StackedRNN ----

    def layer_params(self, i):
        return self.layers[i]

    def embedding_table(self):
        return self.embedding

    def softmax_params(self):
        return self.softmax

    def logits(self, x):
        return rnn_logits(self.softmax, x)

    def dropout(self, i, x, training, time_axis=0):
        rate = self.config.dropout
        if not training or rate == 0:
            return x
        seed = self.rng.make_seeds(1)[:, 0]
        return ops.dropout(x, rate, seed, time_axis if self.config.locked_dropout else None)

    def window_params(self, i, training):
        rate = self.config.weight_dropout
        if not training or rate == 0:
            return self.layers[i]
        return stacked.weight_dropped(self.cell, self.layers[i], rate,
                                      self.rng.make_seeds(1)[:, 0])

    def __call__(self, inputs, state, training=False):
        """Args:
          inputs: int32 token ids [B, T].
          state: list of [B, H] (per layer: h, or h and c for the LSTM).
        Returns:
          logits [B, T, V], new state (same structure).
        """
        return self.forward(inputs, state, training)
