"""The basic (Elman) RNN: h_t = tanh(x_t W_input + h_{t-1} W_hidden + b_hidden).

Keras' SimpleRNN computes the same (its kernel, recurrent_kernel and bias). Training runs the
hand-written backward pass below (see loops.py) instead of autodiff of the loop.
"""

import functools

import keras
import tensorflow as tf

from tfcharrnn.models.cells import base, loops
from tfcharrnn.models.ops import lowered, matmul


class RNN(base.Cell):
    name = "rnn"
    keras_layer_class = keras.layers.SimpleRNN

    def equations(self, xw, hw, state, sigmoid=tf.sigmoid):
        h = tf.tanh(xw if hw is None else xw + hw)
        return h, (h,)

    def sequence(self, params, xw, state, compute=None):
        hs, h = rnn_batch_halves(tf.convert_to_tensor(params["W_hidden"]), xw, state[0],
                                 compute)
        return hs, (h,)


CELL = RNN()



def rnn_sequence(xw, w_hidden, h0, compute=None):
    """Returns (hs [T, B, H], h_T)."""
    return _rnn_sequence(compute)(xw, w_hidden, h0)


@functools.lru_cache(maxsize=None)
def _rnn_sequence(compute):
    return tf.custom_gradient(lambda xw, w_hidden, h0: _rnn(xw, w_hidden, h0, compute))


def _rnn(xw, w_hidden, h0, compute):
    steps = tf.shape(xw)[0]
    w = lowered(w_hidden, compute)

    def body(t, hs, h):
        h = tf.tanh(xw[t] + matmul(h, w, compute))
        return t + 1, hs.write(t, h), h

    hs, h = loops.loop(steps, body, (loops.array(xw.dtype, steps), h0))
    hs = hs.stack()

    def grad(d_hs, d_h):
        w_t = lowered(tf.transpose(w_hidden), compute)  # once: transpose_b is ~3x slower here

        def back(t, dzs, dh):
            h_t = hs[t]
            dz = (d_hs[t] + dh) * (1.0 - h_t * h_t)          # [B, H]
            return t - 1, dzs.write(t, dz), matmul(dz, w_t, compute)

        dzs, dh0 = loops.reverse_loop(steps, back, (loops.array(xw.dtype, steps), d_h))
        dzs = dzs.stack()                                              # [T, B, H]
        return dzs, loops.weight_grad(loops.previous(h0, hs), dzs, compute), dh0

    return (hs, h), grad


# The basic RNN's step is one recurrent product and one tanh, each waiting for the other, so a
# single loop leaves one of the two cores idle much of the time (the LSTM and GRU take one
# product per gate, which already run side by side). The rows of a batch are independent, so
# two loops over the two halves of the batch give the executor two chains to overlap. Measured
# (forward + backward of one layer, T 50-100): H 512 B 64 76 -> 63 ms, H 256 B 64 29 -> 20 ms,
# H 512 B 16 16 -> 12 ms; at H 128 B 32 no gain, and a whole train step was ~8% slower, hence
# the threshold on the rows x units of each half. Same values; the weight gradient becomes a
# sum of two products, equal up to round-off.
_SPLIT_MIN_UNITS = 4096


def rnn_batch_halves(w_hidden, xw, h0, compute=None):
    batch, hidden = xw.shape[1], w_hidden.shape[0]
    if batch is None or hidden is None or batch % 2 or batch // 2 * hidden < _SPLIT_MIN_UNITS:
        return rnn_sequence(xw, w_hidden, h0, compute)
    halves = [rnn_sequence(x, w_hidden, h, compute)
              for x, h in zip(tf.split(xw, 2, axis=1), tf.split(h0, 2, axis=0))]
    return (tf.concat([hs for hs, _ in halves], axis=1),               # [T, B, H]
            tf.concat([h for _, h in halves], axis=0))                 # [B, H]
