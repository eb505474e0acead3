"""Manual back-end: an RNN without abstractions.

Every weight is a named `tf.Variable` owned by `ManualRNN`, the cells are plain functions of
(params, input, state), and the sequence is an explicit loop over time steps. It answers the
same contract as the Keras back-end (`initial_state`, `__call__(x, state, training)`), so the
train step, sampling and evaluation drive either one.

Equations (x: layer input [B, I], h/c: state [B, H], gates fused along the last axis):
  rnn:  h' = tanh(x W_input + h W_hidden + b_hidden)
  gru:  [x_z, x_r, x_n] = x W_input + b_input        gate order z (update), r (reset), n
        [h_z, h_r, h_n] = h W_hidden + b_hidden      (Keras GRU with reset_after=True)
        z = sigmoid(x_z + h_z); r = sigmoid(x_r + h_r); n = tanh(x_n + r * h_n)
        h' = z * h + (1 - z) * n
  lstm: [i, f, g, o] = x W_input + h W_hidden + b_hidden   gate order i, f, g (cell), o
        c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c')
Logits: rnn_logits(params, h) = h W_softmax + b_softmax.

Weight names: W_input [I, G*H], W_hidden [H, G*H], b_hidden [G*H] (and b_input [3H] for the
GRU), with a layer suffix _0, _1, ... when there are several layers; W_softmax [H, V],
b_softmax [V]; `embedding` [V, E] unless the input is one-hot (--embedding_size=0).
G is the number of fused gates: 1, 3 and 4.

Speed: the input projection x W_input + b does not depend on the previous state, so it is one
matrix multiply over all time steps [T*B, I] x [I, G*H] before the loop; the loop itself only
does h W_hidden and the element-wise gate arithmetic. The backward pass through time is
written out (`bptt.py`) so that the weight gradients are single large matrix multiplies too.
The first layer's input is a looked-up row (of the embedding, or of the identity when one-hot),
so its projection is a lookup in a projected table (`first_projection`).
"""

import numpy as np
import tensorflow as tf

from tfcharrnn.config import ModelConfig
from tfcharrnn.models import bptt, wavefront
# The gate arithmetic lives in cells.py, which the wavefront and the sampler use too.
from tfcharrnn.models.cells import (GATES, STATES_PER_LAYER, cell_step, compute_dtype,
                                    drop_connect, input_bias, input_projection)


def rnn_cell(params, rnn_input, state, cell: str = "rnn"):
    """One time step of one layer.

    Args:
      params: this layer's weights, {"W_input", "W_hidden", "b_hidden"[, "b_input"]}.
      rnn_input: [B, I] the layer's input at this time step.
      state: tuple of [B, H]: (h,) for rnn and gru, (h, c) for lstm.
      cell: "rnn", "gru" or "lstm".
    Returns:
      output [B, H] (the new h), new state tuple.
    """
    return cell_step(cell, params, input_projection(params, cell, rnn_input), state)


def rnn_logits(params, rnn_output):
    """[..., H] -> unnormalized log-probabilities over the vocabulary [..., V]."""
    return tf.tensordot(rnn_output, params["W_softmax"], axes=1) + params["b_softmax"]


def first_projection(params, cell: str, ids, embedding=None, compute=None):
    """The first layer's input projection for every step, from token ids: [B, T] -> [T, B, G*H].

    Embedding then projecting is a lookup in the projected table:
        embedding[ids] W_input + b = (embedding W_input + b)[ids]
    and with one-hot inputs the table is W_input + b itself. Projecting the V rows of the table
    costs V/(B*T) of projecting the B*T embedded tokens, and the backward pass likewise: the
    table's gradient is a sum of the gradient rows (see `lookup`), then two products of V
    rows instead of B*T (2 x 512 LSTM, embedding 64: gradients ~800 -> ~750 ms, a whole train
    step 8.2k -> 8.4k chars/s; no measurable change at 2 x 128). A vocabulary larger than the
    batch (word level) projects the embedded tokens instead. Same values up to round-off.
    Returns xw float32, or, for the LSTM's table in low precision, in the compute dtype.
    """
    bias = input_bias(params, cell)
    ids = tf.transpose(ids)                                             # [T, B], time-major
    if embedding is None:
        return lookup(params["W_input"] + bias, ids)                    # one-hot rows of W
    tokens = ids.shape.num_elements()
    if tokens is not None and embedding.shape[0] < tokens:
        table = input_projection(params, cell, embedding, compute)      # [V, G*H]
        if cell == "lstm" and compute is not None:
            # Low precision: the table is rounded once and xw stays in the compute dtype; the
            # LSTM kernel converts each step's row (bptt.lstm_sequence) and hands back xw's
            # gradient in the compute dtype, the rounded dz its loop makes anyway, so no
            # [T, B, 4H] float32 gradient is stacked and concatenated.
            table = tf.cast(table, compute)
        return lookup(table, ids)
    return input_projection(params, cell, tf.gather(embedding, ids), compute)


# Above this many one-hot entries (V x tokens) `lookup` leaves the gradient to tf.gather.
_ONE_HOT_LIMIT = 2 ** 24


def lookup(table, ids):
    """table[ids]: table [V, K], ids int32 [...] -> [..., K], with the table's gradient as one
    matrix product, one_hot(ids)^T dy [V, N] x [N, K], instead of tf.gather's scatter-add
    (UnsortedSegmentSum, one thread): 2 x 512 LSTM, N = 6,400 tokens, K = 2,048, ~54 ms of
    a ~450 ms bfloat16 train step for the scatter (TF profiler). The same sums in another
    order. Tables of many rows (word level) keep the scatter: their one-hot would be large."""
    rows = table.shape[0]
    tokens = ids.shape.num_elements()
    if rows is None or tokens is None or rows * tokens > _ONE_HOT_LIMIT:
        return tf.gather(table, ids)
    return _lookup(table, ids)


@tf.custom_gradient
def _lookup(table, ids):
    def grad(dy):                                                       # [..., K]
        flat = tf.reshape(dy, [-1, tf.shape(dy)[-1]])                   # [N, K]
        one_hot = tf.one_hot(tf.reshape(ids, [-1]), tf.shape(table)[0], axis=0,
                             dtype=flat.dtype)                          # [V, N]
        return tf.matmul(one_hot, flat), None
    return tf.gather(table, ids), grad


def run_projected(params, cell: str, xw, state, compute=None):
    """One layer over a sequence from its projected input xw [T, B, G*H] (time-major).

    The loop and its hand-written backward pass are in `bptt.py`; `compute` is the dtype of
    its matrix products (None: float32; see cells.py).
    Returns:
      outputs [T, B, H] (time-major), final state tuple.
    """
    return bptt.run_sequence(cell, xw, params, tuple(state), compute)


def run_time_major(params, cell: str, x, state, compute=None):
    """Runs one layer over a sequence: the hoisted input projection, then the time loop.

    The loop and its hand-written backward pass are in `bptt.py`; they compute exactly
    `rnn_cell` step after step (the tests check both against a NumPy reference and the
    gradients against finite differences). The models keep their stacks time-major from the
    first projection to the logits: transposing [B, T, H] between layers cost 4 passes over
    it per layer boundary (forward and backward).

    Args:
      x: [T, B, I]; state: tuple of [B, H].
    Returns:
      outputs [T, B, H], final state tuple.
    """
    if cell == "lstm" and compute is not None:
        # Low precision: the projection inside the kernel (see bptt.lstm_layer_sequence).
        weights = (tf.convert_to_tensor(w) for w in (params["W_input"], input_bias(params, cell),
                                                     params["W_hidden"]))
        hs, h, c = bptt.lstm_layer_sequence(x, *weights, state[0], state[1], compute)
        return hs, (h, c)
    xw = input_projection(params, cell, x, compute)                       # [T, B, G*H]
    return run_projected(params, cell, xw, state, compute)


def run_layer(params, cell: str, x, state, compute=None):
    """`run_time_major` for batch-major x [B, T, I] -> outputs [B, T, H], final state (what
    a Keras layer's inner loop takes and returns)."""
    outputs, state = run_time_major(params, cell, tf.transpose(x, [1, 0, 2]), state, compute)
    return tf.transpose(outputs, [1, 0, 2]), state


class ManualRNN(tf.Module):
    """Stacked rnn/gru/lstm with explicit weights; see the module docstring for equations."""

    def __init__(self, config: ModelConfig, vocab_size: int, seed: int = 0, dtype=tf.float32):
        super().__init__(name=f"manual_{config.model}")
        self.config = config
        self.vocab_size = vocab_size
        self.dtype = dtype
        self.compute = compute_dtype(config.precision)  # of the matrix products (cells.py)
        cell, hidden, layers = config.model, config.hidden_size, config.num_layers
        gates = GATES[cell]
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
            params = {
                "W_input": var(f"W_input{suffix(i)}", uniform(input_size, gates * hidden)),
                "W_hidden": var(f"W_hidden{suffix(i)}", uniform(hidden, gates * hidden)),
                "b_hidden": var(f"b_hidden{suffix(i)}", uniform(gates * hidden)),
            }
            if cell == "gru":
                params["b_input"] = var(f"b_input{suffix(i)}", uniform(gates * hidden))
            self.layers.append(params)
            input_size = hidden
        self.softmax = {"W_softmax": var("W_softmax", uniform(hidden, vocab_size)),
                        "b_softmax": var("b_softmax", uniform(vocab_size))}
        # Dropout masks come from this generator; its state is checkpointed with the weights,
        # so a resumed run draws the same masks as an uninterrupted one.
        self.rng = tf.random.Generator.from_seed(seed)

    @property
    def state_shapes(self):
        return [self.config.hidden_size] * (STATES_PER_LAYER[self.config.model]
                                            * self.config.num_layers)

    def named_variables(self) -> dict:
        named = {} if self.embedding is None else {"embedding": self.embedding}
        for params in self.layers:
            named.update({v.name.split(":")[0]: v for v in params.values()})
        named.update({v.name.split(":")[0]: v for v in self.softmax.values()})
        named["rng_state"] = self.rng.state
        return named

    def initial_state(self, batch_size: int):
        return [tf.zeros([batch_size, h], self.dtype) for h in self.state_shapes]

    def _dropout(self, x, training):
        rate = self.config.dropout
        if not training or rate == 0:
            return x
        seed = self.rng.make_seeds(1)[:, 0]
        return tf.nn.experimental.stateless_dropout(x, rate, seed=seed)

    def _layer_params(self, params, training):
        """A layer's weights for this window: W_hidden through DropConnect when training
        with --weight_dropout (see cells.drop_connect)."""
        rate = self.config.weight_dropout
        if not training or rate == 0:
            return params
        seed = self.rng.make_seeds(1)[:, 0]
        return dict(params, W_hidden=drop_connect(params["W_hidden"], rate, seed))

    def step_weights(self):
        """(embedding [V, E] or None, per-layer params, softmax params), manual names, for
        the one-token step of `inference.py`."""
        return self.embedding, self.layers, self.softmax

    def __call__(self, inputs, state, training=False):
        """Args:
          inputs: int32 token ids [B, T].
          state: list of [B, H] (per layer: h, or h and c for the LSTM).
        Returns:
          logits [B, T, V], new state (same structure).
        """
        cell = self.config.model
        xw = first_projection(self.layers[0], cell, inputs, self.embedding,
                              self.compute)                               # [T, B, G*H]
        if not training and len(self.layers) > 1:
            # Evaluation: all layers in one loop (see wavefront.py); same outputs.
            x, new_state = wavefront.forward(cell, self.layers, xw, state,
                                             lambda: self._layer_by_layer(xw, state, False),
                                             self.compute)
        else:
            x, new_state = self._layer_by_layer(xw, state, training)        # [T, B, H]
        x = self._dropout(x, training)
        return tf.transpose(rnn_logits(self.softmax, x), [1, 0, 2]), new_state  # [B, T, V]

    def _layer_by_layer(self, xw, state, training):
        """xw [T, B, G*H] the first layer's projected input -> top layer's outputs [T, B, H],
        new state."""
        n = STATES_PER_LAYER[self.config.model]
        new_state = []
        for i, params in enumerate(self.layers):
            layer_state = state[i * n:(i + 1) * n]
            params = self._layer_params(params, training)
            if i == 0:
                x, layer_state = run_projected(params, self.config.model, xw, layer_state,
                                               self.compute)
            else:
                x = self._dropout(x, training)
                x, layer_state = run_time_major(params, self.config.model, x, layer_state,
                                                self.compute)
            new_state.extend(layer_state)
        return x, new_state
