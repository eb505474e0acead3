"""The GRU, as Keras computes it with reset_after=True (gate order z, r, n):
    [x_z, x_r, x_n] = x W_input + b_input;  [h_z, h_r, h_n] = h W_hidden + b_hidden
    z = sigmoid(x_z + h_z); r = sigmoid(x_r + h_r); n = tanh(x_n + r * h_n)
    h' = z * h + (1 - z) * n
The reset gate multiplies the recurrent part alone, so that part keeps its own bias
(Keras' bias [2, 3H]: row 0 b_input, row 1 b_hidden) and the folded step two products.
Training runs the hand-written backward pass below (see loops.py).
"""

import functools

import keras
import tensorflow as tf

from tfcharrnn.models import ops
from tfcharrnn.models.cells import base, loops
from tfcharrnn.models.ops import lowered, matmul


class GRU(base.Cell):
    name = "gru"
    gates = 3
    gate_names = ("z", "r", "n")
    cudnn = True
    keras_layer_class = keras.layers.GRU

    def parameters(self, input_size, hidden):
        return dict(super().parameters(input_size, hidden), b_input=(3 * hidden,))

    def input_bias(self, params):
        return params["b_input"]

    def recurrent_bias(self, params):
        return params["b_hidden"]

    def equations(self, xw, hw, state, sigmoid=tf.sigmoid):
        (h,) = state
        x_z, x_r, x_n = tf.split(xw, 3, axis=-1)
        h_z, h_r, h_n = tf.split(hw, 3, axis=-1)
        z = sigmoid(x_z + h_z)
        r = sigmoid(x_r + h_r)
        n = tf.tanh(x_n + r * h_n)
        h = z * h + (1.0 - z) * n
        return h, (h,)

    def sequence(self, params, xw, state, compute=None):
        hs, h = gru_sequence(xw, tf.convert_to_tensor(params["W_hidden"]),
                             tf.convert_to_tensor(params["b_hidden"]), state[0], compute)
        return hs, (h,)

    def fold(self, params, compute=None):
        """Two products, [x, 1] @ [W_input; b_input] and [h, 1] @ [W_hidden; b_hidden]."""
        return (ops.lowered(base.fold_rows(params["W_input"], params["b_input"]), compute),
                ops.lowered(base.fold_rows(params["W_hidden"], params["b_hidden"]), compute))

    def folded_step(self, folded, x, state, compute=None):
        w_x, w_h = folded
        return self.equations(ops.matmul(base.with_ones(x), w_x, compute),
                              ops.matmul(base.with_ones(state[0]), w_h, compute), state)

    def keras_weights(self, keras_cell):
        return [("W_input", keras_cell.kernel, None),
                ("W_hidden", keras_cell.recurrent_kernel, None),
                ("b_input", keras_cell.bias, 0), ("b_hidden", keras_cell.bias, 1)]


CELL = GRU()


#      n = tanh(xn + r hn); h_t = z h_{t-1} + (1 - z) n

def gru_sequence(xw, w_hidden, b_hidden, h0, compute=None):
    """Returns (hs [T, B, H], h_T)."""
    return _gru_sequence(compute)(xw, w_hidden, b_hidden, h0)


@functools.lru_cache(maxsize=None)
def _gru_sequence(compute):
    return tf.custom_gradient(
        lambda xw, w_hidden, b_hidden, h0: _gru(xw, w_hidden, b_hidden, h0, compute))


def _gru(xw, w_hidden, b_hidden, h0, compute):
    steps = tf.shape(xw)[0]
    # One recurrent product per gate, run in parallel, as in the LSTM. The z and r parts of
    # b_hidden are added to xw once, outside the loop; n's stays inside (r multiplies it).
    ws = tf.split(w_hidden, 3, axis=-1)                                # 3 x [H, H]
    ws_low = [lowered(w, compute) for w in ws]
    b_z, b_r, b_n = tf.split(b_hidden, 3, axis=-1)
    x_z, x_r, x_n = tf.split(xw, 3, axis=-1)                           # 3 x [T, B, H]
    x_z, x_r = x_z + b_z, x_r + b_r

    def body(t, hs, zs, rs, ns, hns, h):
        h_low = lowered(h, compute)                # rounded once for the three products
        z = tf.sigmoid(x_z[t] + matmul(h_low, ws_low[0], compute, out=h.dtype))
        r = tf.sigmoid(x_r[t] + matmul(h_low, ws_low[1], compute, out=h.dtype))
        hn = matmul(h_low, ws_low[2], compute, out=h.dtype) + b_n
        n = tf.tanh(x_n[t] + r * hn)
        h = z * h + (1.0 - z) * n
        return (t + 1, hs.write(t, h), zs.write(t, z), rs.write(t, r), ns.write(t, n),
                hns.write(t, hn), h)

    *arrays, h = loops.loop(steps, body,
                            tuple(loops.array(xw.dtype, steps) for _ in range(5)) + (h0,))
    hs = arrays[0].stack()                                             # [T, B, H]
    zs, rs, ns, hns = arrays[1:]      # read back a step at a time, not stacked (see the LSTM)

    def grad(d_hs, d_h):
        # Transposed once: a matmul with transpose_b is ~3x slower here.
        w_ts = [lowered(tf.transpose(w), compute) for w in ws]          # 3 x [H, H]
        h_prev = loops.previous(h0, hs)

        def back(t, dzs, drs, dns, duns, dh):
            z, r, n, hn = zs.read(t), rs.read(t), ns.read(t), hns.read(t)
            dh = d_hs[t] + dh
            dn = dh * (1.0 - z) * (1.0 - n * n)                          # d (xn + r hn)
            dz = dh * (h_prev[t] - n) * z * (1.0 - z)
            dr = dn * hn * r * (1.0 - r)
            dun = dn * r                                                 # d (h U_n + b_n)
            dh_prev = dh * z + tf.add_n([matmul(d, w, compute)
                                         for d, w in zip((dz, dr, dun), w_ts)])
            return (t - 1, dzs.write(t, dz), drs.write(t, dr), dns.write(t, dn),
                    duns.write(t, dun), dh_prev)

        *arrays, dh0 = loops.reverse_loop(
            steps, back, tuple(loops.array(xw.dtype, steps) for _ in range(4)) + (d_h,))
        dz, dr, dn, dun = (a.stack() for a in arrays)                    # each [T, B, H]
        dus = tf.concat([dz, dr, dun], axis=-1)                          # d (h U + b) [T, B, 3H]
        return (tf.concat([dz, dr, dn], axis=-1), loops.weight_grad(h_prev, dus, compute),
                tf.reduce_sum(dus, axis=[0, 1]), dh0)

    return (hs, h), grad
