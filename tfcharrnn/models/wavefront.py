"""The forward pass of a stack of layers as a wavefront, for evaluation.

Layer l at time step t reads layer l-1 at step t and itself at step t-1. Run layer after
layer (`stacked.StackedRNN.layer_by_layer`), a stack of L layers is L loops of T dependent
steps, and while one layer runs nothing else can. Here ONE loop runs over the diagonals
instead: in iteration i, layer l computes its step t = i - l from values of iteration i-1
only,

    iteration:  0      1      2     ...   T-1      T     ...  T+L-2
    layer 0:    t=0    t=1    t=2         t=T-1
    layer 1:           t=0    t=1         t=T-2    t=T-1
    ...                                                        t=T-1 (layer L-1)

so the L cells of an iteration do not depend on each other and the executor runs them on
different cores, and the per-iteration cost of the loop is paid once instead of L times.
The first L-1 and last L-1 iterations (partial diagonals) are unrolled in Python, which needs
T >= L - 1; shorter windows go through the layered pass.

The price: a layer above the first can no longer have its input projection hoisted out of the
loop as one large product (its input is made inside the loop), so it does one [B, H] x [H, G*H]
product per step instead. Measured in evaluation (forward only, 2 layers): 2 x 128 / batch 32
about 10-25% faster, 2 x 512 / batch 64 basic RNN 85 -> 64 ms per window, LSTM ~245 -> ~230 ms.
How a diagonal's products and gates are laid out depends on the rows: `_few_rows_step`
(sampling, `evaluate`, validation) and `_many_rows_step` (`score`'s batches).

Forward only: training needs the cells' hand-written backward passes, which work layer by
layer. The outputs are those of the layered pass up to float32 round-off (the many-rows
steps add the products in another order and write the sigmoid with tanh); the tests compare
the two.
"""

import tensorflow as tf

from tfcharrnn.models import ops


# Batches of fewer rows than this run the "few rows" steps, at least this many (or an unknown
# number: `score`'s batches) the "many rows" steps; see _wavefront.
MANY_ROWS = 128


def _compiled_gates(cell):
    """An XLA-compiled (a, a_bias, b, b_bias, *state) -> new state tuple: the cell's
    equations on xw = a + a_bias and hw = b (+ b_bias, the GRU's recurrent bias, else None),
    the sigmoid written with tanh. XLA fuses the step into
    one or two loops over memory where TensorFlow's own ops make one pass per operation
    ([1,024, 1,024] LSTM step: 2.07 ms, compiled 1.49 ms, with the tanh sigmoid 1.13 ms). It
    compiles once per row count: `BatchScorer` keeps the row counts to a few."""
    if cell.name not in _COMPILED:
        def fn(a, a_bias, b, b_bias, *state):
            xw = tf.cast(a, b.dtype) + a_bias          # a: maybe xw in the compute dtype
            hw = b if b_bias is None else b + b_bias
            return cell.equations(xw, hw, state, ops.tanh_sigmoid)[1]
        _COMPILED[cell.name] = tf.function(fn, jit_compile=True)
    return _COMPILED[cell.name]


_COMPILED = {}


def forward(cell: str, layers, xw, state, layered, compute=None):
    """Args:
      cell: a `cells.base.Cell` with a recurrent product (`recurrent`).
      layers: per-layer params under the manual back-end's names (L >= 2 of them).
      xw: [T, B, G*H] the first layer's projected input (`stacked.first_projection`; float32,
        or the compute dtype).
      state: flat list of [B, H] (`cell.state_size` per layer).
      layered: a function () -> (outputs, new state) computing the same thing layer by layer,
        used when T is shorter than L - 1.
      compute: None (float32) or the dtype of the matrix products (see ops.py).
    Returns:
      the top layer's outputs [T, B, H] (time-major), the new flat state.
    """
    steps, shortest = xw.shape[0], len(layers) - 1
    if steps is not None:
        return _wavefront(cell, layers, xw, state, compute) if steps >= shortest else layered()
    return tf.cond(tf.shape(xw)[0] >= shortest,
                   lambda: _wavefront(cell, layers, xw, state, compute), layered)


def _few_rows_step(cell, layers, compute, dtype):
    """One diagonal's (xw_i, states, active) -> new states for a batch of few rows (sampling,
    `evaluate`'s one stream, training's validation batches), which fill the two cores only if
    independent products run side by side. The LSTM does each [B, K] x [K, 4H] product as 4
    products of [K, H], one per gate (the weights split once, outside the loop): oneDNN runs a
    narrow product of few rows faster ([64, 512] x [512, 2048]: ~1.6 ms, 4 x [512, 512]:
    ~1.1 ms). Evaluation 2 x 512 LSTM 12.9k -> 16.7k chars/s, 2 x 128 138k -> 171k. The GRU
    was slower that way (2 x 128 216k -> 192k): it, like the basic RNN, keeps one product."""
    chunks = cell.split_products
    parts = [{name: [ops.lowered(w, compute) for w in tf.split(layer[name], chunks, axis=-1)]
              for name in (("W_input", "W_hidden") if l else ("W_hidden",))}
             for l, layer in enumerate(layers)]             # layer 0's input is xw

    def product(x, ws):                                                 # [B, K] -> [B, G*H]
        x_low = ops.lowered(x, compute)            # rounded once for all the products
        if len(ws) == 1:
            return ops.matmul(x_low, ws[0], compute, out=x.dtype)
        return tf.concat([ops.matmul(x_low, w, compute, out=x.dtype) for w in ws], axis=-1)

    def step(xw_i, states, active):
        new = list(states)
        for l in active:
            projected = (tf.cast(xw_i, dtype) if l == 0                      # [B, G*H]
                         else product(states[l - 1][0], parts[l]["W_input"])
                         + cell.input_bias(layers[l]))
            hw = product(states[l][0], parts[l]["W_hidden"])
            bias = cell.recurrent_bias(layers[l])
            new[l] = cell.equations(projected, hw if bias is None else hw + bias,
                                    states[l])[1]
        return new
    return step


def _many_rows_step(cell, layers, compute, dtype):
    """The same for a batch of many rows (`score`'s), where one product already fills both
    cores: a product per layer and input (no split by gate), and the gate arithmetic of each
    layer one XLA-compiled function (_compiled_gates). A 1,024-row step of the 2 x 256 LSTM
    is then three [1,024, 256] x [256, 1,024] products, two at a time on the two cores, with
    the gates between them: ~20 core-ms, 85% of them in the products (profile, 2-core Xeon).
    Measured no faster in scoring: multiplying h_l once by [W_hidden_l | W_input_l+1] (a
    wider product), and [h_l-1, h_l] x [W_input_l; W_hidden_l] (a deeper one, after a copy).
    """
    w_input = [ops.lowered(layer["W_input"], compute) for layer in layers]
    w_hidden = [ops.lowered(layer["W_hidden"], compute) for layer in layers]
    # As tensors: a Keras variable passed to a tf.function is traced as a resource.
    biases = [tuple(None if b is None else tf.convert_to_tensor(b)              # [G*H] each
                    for b in (cell.input_bias(layer), cell.recurrent_bias(layer)))
              for layer in layers]
    gates = _compiled_gates(cell)
    # Layer 0's xw has its bias in. A zero bias of the same shape as the others' keeps to one
    # trace of `gates`, and one XLA compile per row count instead of two (~0.2 s each).
    no_bias = tf.zeros_like(biases[0][0])

    def step(xw_i, states, active):
        new = list(states)
        for l in active:
            a, a_bias = ((xw_i, no_bias) if l == 0                  # its bias is in
                         else (ops.matmul(states[l - 1][0], w_input[l], compute), biases[l][0]))
            hw = ops.matmul(states[l][0], w_hidden[l], compute)
            new[l] = tuple(gates(a, a_bias, hw, biases[l][1], *states[l]))
        return new
    return step


def _wavefront(cell, layers, xw, state, compute):
    depth, per_layer = len(layers), cell.state_size
    states = [tuple(state[l * per_layer:(l + 1) * per_layer]) for l in range(depth)]
    steps = tf.shape(xw)[0]
    dtype = states[0][0].dtype   # float32; xw may be in the compute dtype (see first_projection)
    rows = xw.shape[1]
    make_step = _few_rows_step if rows is not None and rows < MANY_ROWS else _many_rows_step
    step = make_step(cell, layers, compute, dtype)

    # One diagonal: every layer l in `active` takes its step i - l. Reads only `states` (the
    # previous diagonal): layer l's input is layer l-1's output of one iteration ago.
    for i in range(depth - 1):                      # the first diagonals: layers 0..i
        states = step(xw[i], states, range(i + 1))

    def body(i, outputs, states):
        states = step(xw[i], list(states), range(depth))
        return i + 1, outputs.write(i - (depth - 1), states[-1][0]), tuple(states)

    _, outputs, states = tf.while_loop(
        lambda i, *_: i < steps, body,
        (tf.constant(depth - 1), tf.TensorArray(dtype, size=steps), tuple(states)))
    states = list(states)
    for k in range(1, depth):                       # the last diagonals: layers k..L-1
        states = step(None, states, range(k, depth))
        outputs = outputs.write(steps - depth + k, states[-1][0])
    return outputs.stack(), [s for layer_state in states for s in layer_state]  # [T, B, H]
