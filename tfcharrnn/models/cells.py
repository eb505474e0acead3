"""The cells' arithmetic: gate functions and one time step, as plain functions of tensors.

Shared by the manual back-end (`manual.py`), the evaluation wavefront (`wavefront.py`) and the
one-token sampling step (`inference.py`); the equations are in `manual.py`'s docstring. It
imports nothing of the package, so every module of `models/` may depend on it.
"""

import tensorflow as tf

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
STATES_PER_LAYER = {"rnn": 1, "gru": 1, "lstm": 2}


# ---- gate arithmetic ----
# Each takes the pre-activations and the old state and returns (output [B, H], state tuple).

def rnn_gates(z, state):
    """z = x W_input + h W_hidden + b_hidden [B, H]."""
    h = tf.tanh(z)
    return h, (h,)


def gru_gates(xw, hw, state):
    """xw = x W_input + b_input, hw = h W_hidden + b_hidden, both [B, 3H] (z, r, n)."""
    (h,) = state
    x_z, x_r, x_n = tf.split(xw, 3, axis=-1)
    h_z, h_r, h_n = tf.split(hw, 3, axis=-1)
    z = tf.sigmoid(x_z + h_z)
    r = tf.sigmoid(x_r + h_r)
    n = tf.tanh(x_n + r * h_n)
    h = z * h + (1.0 - z) * n
    return h, (h,)


def lstm_gates(z, state):
    """z = x W_input + h W_hidden + b_hidden [B, 4H] (i, f, g, o); state (h, c)."""
    _, c = state
    i, f, g, o = tf.split(z, 4, axis=-1)
    c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    h = tf.sigmoid(o) * tf.tanh(c)
    return h, (h, c)


# ---- cells: (params, projected input [B, G*H], state tuple) -> (output [B, H], state tuple) ----

def gates_step(cell: str, params, xw, hw, state):
    """One time step from the projected input xw [B, G*H] (see `input_projection`) and the
    recurrent product hw = h W_hidden [B, G*H] (no bias)."""
    if cell == "gru":
        return gru_gates(xw, hw + params["b_hidden"], state)
    return (lstm_gates if cell == "lstm" else rnn_gates)(xw + hw, state)


def cell_step(cell: str, params, xw, state):
    """One time step from the projected input xw [B, G*H] (see `input_projection`)."""
    return gates_step(cell, params, xw, tf.matmul(state[0], params["W_hidden"]), state)


def input_bias(params, cell: str):
    """The bias added to the input projection: the GRU keeps its recurrent bias apart."""
    return params["b_input"] if cell == "gru" else params["b_hidden"]


def input_projection(params, cell: str, x):
    """x [..., I] -> x W_input + (input-side) bias [..., G*H]; independent of the state."""
    return tf.tensordot(x, params["W_input"], axes=1) + input_bias(params, cell)
