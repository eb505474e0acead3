"""The cells' arithmetic: gate functions and one time step, as plain functions of tensors.

Shared by the manual back-end (`manual.py`), the evaluation wavefront (`wavefront.py`) and the
one-token sampling step (`inference.py`); the equations are in `manual.py`'s docstring. It
imports nothing of the package, so every module of `models/` may depend on it.
"""

import tensorflow as tf

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
STATES_PER_LAYER = {"rnn": 1, "gru": 1, "lstm": 2}


# ---- precision ----
# Under --precision=mixed_bfloat16 (or mixed_float16) only the matrix products run in the low
# precision: their operands are rounded to it, which is what makes them fast (AMX, AVX512-BF16,
# tensor cores), and their results come back to float32 at once. Everything else stays float32:
# the variables, the gate arithmetic, the cell state c and h between steps (a recurrence
# re-rounded to 8 bits of mantissa every step drifts), the sums of the backward pass, the
# softmax and the loss. `compute` is that low dtype, or None for plain float32.

COMPUTE_DTYPES = {"float32": None, "mixed_bfloat16": tf.bfloat16, "mixed_float16": tf.float16}


def compute_dtype(precision: str):
    return COMPUTE_DTYPES[precision]


def lowered(w, compute):
    """A weight rounded to the compute dtype once, outside a loop (as is without one)."""
    return w if compute is None else tf.cast(w, compute)


def matmul(a, b, compute=None, transpose_a=False, out=None):
    """a @ b; with `compute`, its operands rounded to it and the product returned in `out`
    (default: a's dtype, float32). Either operand may already be `lowered` (then pass
    out=tf.float32 if a is)."""
    if compute is None:
        return tf.matmul(a, b, transpose_a=transpose_a)
    return tf.cast(tf.matmul(tf.cast(a, compute), tf.cast(b, compute), transpose_a=transpose_a),
                   out or a.dtype)


def tensordot(x, w, compute=None):
    """x [..., I] @ w [I, K] -> [..., K], like `matmul`."""
    if compute is None:
        return tf.tensordot(x, w, axes=1)
    return tf.cast(tf.tensordot(tf.cast(x, compute), tf.cast(w, compute), axes=1), x.dtype)


# ---- gate arithmetic ----
# Each takes the pre-activations and the old state and returns (output [B, H], state tuple).

def rnn_gates(z, state):
    """z = x W_input + h W_hidden + b_hidden [B, H]."""
    h = tf.tanh(z)
    return h, (h,)


def tanh_sigmoid(x):
    """sigmoid(x) written with tanh, which XLA's CPU code runs faster than its logistic:
    the compiled gates of `wavefront.py`, [1,024, 1,024] LSTM step 1.49 -> 1.13 ms. Equal to
    within float32 round-off (absolute error ~6e-8, so tiny gates lose relative precision)."""
    return 0.5 * tf.tanh(0.5 * x) + 0.5


def gru_gates(xw, hw, state, sigmoid=tf.sigmoid):
    """xw = x W_input + b_input, hw = h W_hidden + b_hidden, both [B, 3H] (z, r, n)."""
    (h,) = state
    x_z, x_r, x_n = tf.split(xw, 3, axis=-1)
    h_z, h_r, h_n = tf.split(hw, 3, axis=-1)
    z = sigmoid(x_z + h_z)
    r = sigmoid(x_r + h_r)
    n = tf.tanh(x_n + r * h_n)
    h = z * h + (1.0 - z) * n
    return h, (h,)


def lstm_gates(z, state, sigmoid=tf.sigmoid):
    """z = x W_input + h W_hidden + b_hidden [B, 4H] (i, f, g, o); state (h, c)."""
    _, c = state
    i, f, g, o = tf.split(z, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * tf.tanh(g)
    h = sigmoid(o) * tf.tanh(c)
    return h, (h, c)


# ---- regularization ----

def drop_connect(w, rate: float, seed):
    """DropConnect of a weight matrix (Wan et al., 2013), as AWD-LSTM's WeightDrop applies it
    to the recurrent weights W_hidden (Merity et al., 2018): each weight is zeroed with
    probability `rate` and the rest scaled by 1 / (1 - rate), one mask for a whole window
    (every row and time step), drawn anew each training window. Ordinary dropout never
    touches the hidden-to-hidden path; this regularizes it without changing the loop.
    seed: int64 [2], stateless."""
    return tf.nn.experimental.stateless_dropout(w, rate, seed=seed)


# ---- cells: (params, projected input [B, G*H], state tuple) -> (output [B, H], state tuple) ----

def gates_step(cell: str, params, xw, hw, state, sigmoid=tf.sigmoid):
    """One time step from the projected input xw [B, G*H] (see `input_projection`) and the
    recurrent product hw = h W_hidden [B, G*H] (no bias)."""
    if cell == "gru":
        return gru_gates(xw, hw + params["b_hidden"], state, sigmoid)
    if cell == "lstm":
        return lstm_gates(xw + hw, state, sigmoid)
    return rnn_gates(xw + hw, state)


def cell_step(cell: str, params, xw, state, compute=None):
    """One time step from the projected input xw [B, G*H] (see `input_projection`)."""
    return gates_step(cell, params, xw, matmul(state[0], params["W_hidden"], compute), state)


def input_bias(params, cell: str):
    """The bias added to the input projection: the GRU keeps its recurrent bias apart."""
    return params["b_input"] if cell == "gru" else params["b_hidden"]


def input_projection(params, cell: str, x, compute=None):
    """x [..., I] -> x W_input + (input-side) bias [..., G*H]; independent of the state."""
    return tensordot(x, params["W_input"], compute) + input_bias(params, cell)
