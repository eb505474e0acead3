"""Tensor helpers shared by the cells and the back-ends: products in a chosen precision, a
sigmoid written with tanh, DropConnect. Imports nothing of the package.
"""

import tensorflow as tf


# ---- precision ----
# Under --precision=mixed_bfloat16 (or mixed_float16) only the matrix products run in the low
# precision: their operands are rounded to it, which is what makes them fast (AMX, AVX512-BF16,
# tensor cores), and their results come back to float32 at once. Everything else stays float32:
# the variables, the gate arithmetic, the cell state c and h between steps (a recurrence
# re-rounded to 8 bits of mantissa every step drifts), the sums of the backward pass, the
# softmax and the loss. `compute` is that low dtype, or None for plain float32.

COMPUTE_DTYPES = {"float32": None, "mixed_bfloat16": tf.bfloat16, "mixed_float16": tf.float16}


def compute_dtype(precision: str):
    try:
        return COMPUTE_DTYPES[precision]
    except KeyError:
        raise ValueError(f"unknown precision {precision!r}: expected one of "
                         f"{', '.join(COMPUTE_DTYPES)}") from None


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


def tanh_sigmoid(x):
    """sigmoid(x) written with tanh, which XLA's CPU code runs faster than its logistic:
    the compiled gates of `wavefront.py`, [1,024, 1,024] LSTM step 1.49 -> 1.13 ms. Equal to
    within float32 round-off (absolute error ~6e-8, so tiny gates lose relative precision)."""
    return 0.5 * tf.tanh(0.5 * x) + 0.5


# ---- regularization ----

def drop_connect(w, rate: float, seed):
    """DropConnect of a weight matrix (Wan et al., 2013), as AWD-LSTM's WeightDrop applies it
    to the recurrent weights W_hidden (Merity et al., 2018): each weight is zeroed with
    probability `rate` and the rest scaled by 1 / (1 - rate), one mask for a whole window
    (every row and time step), drawn anew each training window. Ordinary dropout never
    touches the hidden-to-hidden path; this regularizes it without changing the loop.
    seed: int64 [2], stateless."""
    return tf.nn.experimental.stateless_dropout(w, rate, seed=seed)


def dropout(x, rate: float, seed, time_axis=None):
    """Inverted dropout of activations x (seed int64 [2], stateless). time_axis None: a new
    mask for every element, so for every time step; an axis of x: one mask per stream held
    over all the window's steps along it (AWD-LSTM's locked, or variational, dropout: a unit
    dropped for a stream stays dropped for the window, so the noise does not average out
    over the steps the recurrence reads)."""
    noise_shape = None
    if time_axis is not None:
        noise_shape = tf.tensor_scatter_nd_update(tf.shape(x), [[time_axis]], [1])
    return tf.nn.experimental.stateless_dropout(x, rate, seed=seed, noise_shape=noise_shape)
