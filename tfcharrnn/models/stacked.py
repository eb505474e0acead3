"""What both back-ends share: a stack of layers of one cell, the state carried as a value.

`StackedRNN` is a mixin for `ManualRNN` (tf.Module) and `KerasRNN` (keras.Model); each keeps
only where its weights live and how it draws dropout masks. Its forward pass runs the cell's
own loops (`cells/`) on those weights:

  ids [B, T] -> first_projection -> xw [T, B, G*H]
             -> layer 0 `cell.sequence`, then layer l: dropout, `cell.layer_sequence`
                (evaluation with several layers of a recurrent cell: one wavefront loop)
             -> dropout -> logits [T, B, V] -> [B, T, V]

Time-major from the first projection to the logits: transposing [B, T, H] between layers cost
4 passes over it per layer boundary (forward and backward). The state is a flat list of
[B, H] tensors, `cell.state_size` per layer (h; the LSTM's h and c).
"""

import tensorflow as tf

from tfcharrnn.models import ops, wavefront


class StackedRNN:
    """Mixin. A back-end sets `config`, `vocab_size`, `cell` (a `cells.base.Cell`) and
    `compute` (ops.compute_dtype), and defines:
      layer_params(i) -> layer i's weights under the manual names;
      embedding_table() -> [V, E] tensor or variable, or None for one-hot inputs;
      softmax_params() -> {"W_softmax": [H, V], "b_softmax": [V]};
      logits(x) -> x [T, B, H] through the softmax layer, [T, B, V];
      window_params(i, training) -> layer_params(i), W_hidden dropped-connected when
        training with --weight_dropout (ops.drop_connect);
      dropout(i, x, training, time_axis=0) -> x through the dropout before layer i
        (1 <= i < L) or before the softmax (i = L); with --locked_dropout one mask per stream
        held along time_axis (x is time-major here)."""

    state_dtype = tf.float32

    @property
    def state_shapes(self):
        """Widths of the state tensors, in order."""
        return [self.config.hidden_size] * (self.cell.state_size * self.config.num_layers)

    def initial_state(self, batch_size: int):
        return [tf.zeros([batch_size, h], self.state_dtype) for h in self.state_shapes]

    def step_weights(self):
        """(embedding [V, E] or None, per-layer params, softmax params), manual names, for
        the one-token step of `inference.py`."""
        return (self.embedding_table(),
                [self.layer_params(i) for i in range(self.config.num_layers)],
                self.softmax_params())

    def forward(self, inputs, state, training=False):
        """inputs int32 [B, T], state flat list of [B, H] -> (logits [B, T, V], new state)."""
        layers = self.config.num_layers
        xw = first_projection(self.cell, self.layer_params(0), inputs, self.embedding_table(),
                              self.compute)                                  # [T, B, G*H]
        if not training and layers > 1 and self.cell.recurrent:
            # Evaluation: all layers in one loop (see wavefront.py); same outputs.
            x, new_state = wavefront.forward(
                self.cell, [self.layer_params(i) for i in range(layers)], xw, state,
                lambda: self.layer_by_layer(xw, state, False), self.compute)
        else:
            x, new_state = self.layer_by_layer(xw, state, training)          # [T, B, H]
        x = self.dropout(layers, x, training)
        return tf.transpose(self.logits(x), [1, 0, 2]), new_state           # [B, T, V]

    def layer_by_layer(self, xw, state, training):
        """xw [T, B, G*H] the first layer's projected input -> the top layer's outputs
        [T, B, H], the new flat state."""
        n, new_state = self.cell.state_size, []
        for i in range(self.config.num_layers):
            layer_state = tuple(state[i * n:(i + 1) * n])
            params = self.window_params(i, training)
            if i == 0:
                x, layer_state = self.cell.sequence(params, xw, layer_state, self.compute)
            else:
                x = self.dropout(i, x, training)
                x, layer_state = self.cell.layer_sequence(params, x, layer_state, self.compute)
            new_state.extend(layer_state)
        return x, new_state


def weight_dropped(cell, params, rate: float, seed):
    """params with W_hidden through DropConnect at `rate` (seed int64 [2], stateless)."""
    if not cell.recurrent:
        raise ValueError(f"the {cell.name} cell has no recurrent weights to drop")
    return dict(params, W_hidden=ops.drop_connect(params["W_hidden"], rate, seed))


def first_projection(cell, params, ids, embedding=None, compute=None):
    """The first layer's input projection for every step, from token ids: [B, T] -> [T, B, G*H].

    Embedding then projecting is a lookup in the projected table:
        embedding[ids] W_input + b = (embedding W_input + b)[ids]
    and with one-hot inputs the table is W_input + b itself. Projecting the V rows of the table
    costs V/(B*T) of projecting the B*T embedded tokens, and the backward pass likewise: the
    table's gradient is a sum of the gradient rows (see `lookup`), then two products of V
    rows instead of B*T (2 x 512 LSTM, embedding 64: gradients ~800 -> ~750 ms, a whole train
    step 8.2k -> 8.4k chars/s; no measurable change at 2 x 128). A vocabulary larger than the
    batch (word level) projects the embedded tokens instead. Same values up to round-off.
    Returns xw float32, or, for a cell whose loop takes it so (`low_precision_input`, the
    LSTM), in the compute dtype.
    """
    bias = cell.input_bias(params)
    ids = tf.transpose(ids)                                             # [T, B], time-major
    if embedding is None:
        return lookup(params["W_input"] + bias, ids)                    # one-hot rows of W
    tokens = ids.shape.num_elements()
    if tokens is not None and embedding.shape[0] < tokens:
        table = cell.project(params, embedding, compute)                # [V, G*H]
        if cell.low_precision_input and compute is not None:
            # Low precision: the table is rounded once and xw stays in the compute dtype; the
            # LSTM kernel converts each step's row and hands back xw's gradient in the compute
            # dtype, the rounded dz its loop makes anyway, so no [T, B, 4H] float32 gradient
            # is stacked and concatenated.
            table = tf.cast(table, compute)
        return lookup(table, ids)
    return cell.project(params, tf.gather(embedding, ids), compute)


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
