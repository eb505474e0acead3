"""The forward pass of a stack of layers as a wavefront, for evaluation.

Layer l at time step t reads layer l-1 at step t and itself at step t-1. Run layer after layer
(`manual.run_layer`), a stack of L layers is L loops of T dependent steps, and while one layer
runs nothing else can. Here ONE loop runs over the diagonals instead: in iteration i, layer l
computes its step t = i - l from values of iteration i-1 only,

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

Forward only: training needs `bptt.py`'s hand-written backward pass, which works layer by
layer. The outputs are those of the layered pass (same operations on the same values; the
tests compare the two).
"""

import tensorflow as tf

from tfcharrnn.models import cells


# Batches of fewer rows than this run the LSTM's products one per gate (see _wavefront).
SPLIT_BELOW_ROWS = 128


def forward(cell: str, layers, xw, state, layered, compute=None):
    """Args:
      cell: "rnn", "gru" or "lstm".
      layers: per-layer params under the manual back-end's names (L >= 2 of them).
      xw: [T, B, G*H] the first layer's projected input (`manual.first_projection`; float32,
        or the compute dtype).
      state: flat list of [B, H] (per layer: h, or h and c for the LSTM).
      layered: a function () -> (outputs, new state) computing the same thing layer by layer,
        used when T is shorter than L - 1.
      compute: None (float32) or the dtype of the matrix products (see cells.py).
    Returns:
      the top layer's outputs [T, B, H] (time-major), the new flat state.
    """
    steps, shortest = xw.shape[0], len(layers) - 1
    if steps is not None:
        return _wavefront(cell, layers, xw, state, compute) if steps >= shortest else layered()
    return tf.cond(tf.shape(xw)[0] >= shortest,
                   lambda: _wavefront(cell, layers, xw, state, compute), layered)


def _wavefront(cell, layers, xw, state, compute):
    depth, per_layer = len(layers), cells.STATES_PER_LAYER[cell]
    states = [tuple(state[l * per_layer:(l + 1) * per_layer]) for l in range(depth)]
    steps = tf.shape(xw)[0]
    dtype = states[0][0].dtype   # float32; xw may be in the compute dtype (see first_projection)

    # The LSTM does each [B, K] x [K, 4H] product of a step as 4 products of [K, H], one per
    # gate (the weights split once, here, outside the loop): they are independent, so they run
    # on both cores at once, and oneDNN runs a narrow product of few rows faster ([64, 512] x
    # [512, 2048]: ~1.6 ms, 4 x [512, 512]: ~1.1 ms). Evaluation 2 x 512 LSTM 12.9k -> 16.7k
    # chars/s, 2 x 128 138k -> 171k. The GRU was slower that way (2 x 128 216k -> 192k), so
    # it, like the basic RNN, keeps one product. Many rows at once (`score`'s batches, whose
    # row count the graph may not know) fill both cores within one product, and the split
    # then only costs: scoring 10,000 lines, 2 x 256 LSTM, 256 rows ~2,190 -> ~2,560 lines/s,
    # 1,024 rows ~2,630 -> ~3,140 (one run, interleaved; noisy).
    rows = xw.shape[1]
    chunks = 4 if cell == "lstm" and rows is not None and rows < SPLIT_BELOW_ROWS else 1
    parts = [{name: [cells.lowered(w, compute) for w in tf.split(layer[name], chunks, axis=-1)]
              for name in (("W_input", "W_hidden") if l else ("W_hidden",))}  # layer 0: xw
             for l, layer in enumerate(layers)]

    def product(x, ws):                                                 # [B, K] -> [B, G*H]
        x_low = cells.lowered(x, compute)            # rounded once for all the products
        if len(ws) == 1:
            return cells.matmul(x_low, ws[0], compute, out=x.dtype)
        return tf.concat([cells.matmul(x_low, w, compute, out=x.dtype) for w in ws], axis=-1)

    def advance(states, i, active):
        """One diagonal: every layer l in `active` takes its step i - l. Reads only `states`
        (the previous diagonal): layer l's input is layer l-1's output of one iteration ago."""
        new = list(states)
        for l in active:
            projected = (tf.cast(xw[i], dtype) if l == 0                   # [B, G*H]
                         else product(states[l - 1][0], parts[l]["W_input"])
                         + cells.input_bias(layers[l], cell))
            hw = product(states[l][0], parts[l]["W_hidden"])
            new[l] = cells.gates_step(cell, layers[l], projected, hw, states[l])[1]
        return new

    for i in range(depth - 1):                      # the first diagonals: layers 0..i
        states = advance(states, i, range(i + 1))

    def body(i, outputs, states):
        states = advance(states, i, range(depth))
        return i + 1, outputs.write(i - (depth - 1), states[-1][0]), tuple(states)

    _, outputs, states = tf.while_loop(
        lambda i, *_: i < steps, body,
        (tf.constant(depth - 1), tf.TensorArray(dtype, size=steps), tuple(states)))
    states = list(states)
    for k in range(1, depth):                       # the last diagonals: layers k..L-1
        states = advance(states, None, range(k, depth))
        outputs = outputs.write(steps - depth + k, states[-1][0])
    return outputs.stack(), [s for layer_state in states for s in layer_state]  # [T, B, H]
