"""The loops of the hand-written backward passes through time (BPTT) of the cells' kernels.

Autodiff through a `tf.while_loop` replays the loop backwards and, at every time step, forms
a small weight-gradient product h_{t-1}^T dz_t [H, B] x [B, G*H] and adds it to an
accumulator. Here the backward loop computes only what must be sequential: the gradient of
the gate pre-activations dz_t [B, G*H] and dh_{t-1} = dz_t W_hidden^T. The weight gradient is
then ONE matrix multiply over all time steps, [H, T*B] x [T*B, G*H], and the gradient of the
hoisted input projection needs no loop at all (it is dz itself). The same structure is what
fused RNN kernels (cuDNN, PyTorch's CPU LSTM) do.

Shapes: T time steps, B batch rows, H hidden units, G fused gates (rnn 1, gru 3, lstm 4).
`xw` [T, B, G*H] is the input projection x W_input + b for every step, computed before.
Inside the loops, inputs are read as slices `x[t]` of [T, ...] tensors rather than from
TensorArrays: `TensorArray.unstack` copies the whole tensor into a list first, which cost ~8%
of an LSTM train step (nothing differentiates through these loops, so slicing does not bring
autodiff's quadratic cost). What a forward loop wrote for its backward loop only is the
other way round: read back from its array, never stacked (see lstm.py's _lstm_forward).
The kernels are in the cell modules (rnn.py, gru.py, lstm.py); a cell without one trains
through `base.Cell.sequence`, which TensorFlow differentiates.

Precision: with `compute` (tf.bfloat16 or tf.float16; see ops.py) every matrix product here
takes operands rounded to it (the weights once, before the loops) and gives float32 back; the
element-wise arithmetic, the carried h and c and every gradient stay float32. Each sequence
function is built once per compute dtype (`tf.custom_gradient` takes tensors only).
"""

import tensorflow as tf

from tfcharrnn.models.ops import matmul


def loop(steps, body, loop_vars):
    return tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0),) + loop_vars)[1:]


def reverse_loop(steps, body, loop_vars):
    return tf.while_loop(lambda t, *_: t >= 0, body, (steps - 1,) + loop_vars)[1:]


def array(dtype, steps):
    """Collects one [B, K] tensor per step; stack() gives [T, B, K]."""
    return tf.TensorArray(dtype, size=steps)


def low_copies(compute, steps, count):
    """`count` arrays for the rounded copies of per-step tensors in low precision (none in
    float32). The loops round h and dz for their products anyway; kept, they give the weight
    gradient its operands without rounding [T, B, K] tensors again after the loop: at 2 x 512
    those passes were ~13M elements per layer."""
    return () if compute is None else tuple(array(compute, steps) for _ in range(count))


def previous(h0, hs):
    """[h_0, h_1, ..., h_{T-1}]: the state each step read, [T, B, H]."""
    return tf.concat([h0[None], hs[:-1]], axis=0)


def weight_grad(h_prev, dz, compute=None):
    """sum_t h_{t-1}^T dz_t as one matmul: [T, B, H], [T, B, K] -> [H, K]."""
    hidden, k = tf.shape(h_prev)[-1], tf.shape(dz)[-1]
    return matmul(tf.reshape(h_prev, [-1, hidden]), tf.reshape(dz, [-1, k]), compute,
                  transpose_a=True, out=tf.float32)
