"""The LSTM, as Keras computes it (gate order i, f, g, o; no forget-gate bias of 1):
    [i, f, g, o] = x W_input + h W_hidden + b_hidden
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c')
State (h, c). Training runs the hand-written backward pass below (see loops.py); in low
precision the input projection runs inside it too (`lstm_layer_sequence`) and the first
layer's projected table stays in the compute dtype (`low_precision_input`).
"""

import functools

import keras
import tensorflow as tf

from tfcharrnn.models.cells import base, loops
from tfcharrnn.models.ops import lowered, matmul


class LSTM(base.Cell):
    name = "lstm"
    gates = 4
    gate_names = ("i", "f", "g", "o")
    state_size = 2
    cudnn = True
    low_precision_input = True
    split_products = 4
    keras_layer_class = keras.layers.LSTM

    def equations(self, xw, hw, state, sigmoid=tf.sigmoid):
        _, c = state
        i, f, g, o = tf.split(xw if hw is None else xw + hw, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * tf.tanh(g)
        h = sigmoid(o) * tf.tanh(c)
        return h, (h, c)

    def sequence(self, params, xw, state, compute=None):
        hs, h, c = lstm_sequence(xw, tf.convert_to_tensor(params["W_hidden"]), state[0],
                                 state[1], compute)
        return hs, (h, c)

    def layer_sequence(self, params, x, state, compute=None):
        if compute is None:
            return super().layer_sequence(params, x, state, compute)
        # Low precision: the projection inside the kernel (see lstm_layer_sequence).
        weights = (tf.convert_to_tensor(params[name])
                   for name in ("W_input", "b_hidden", "W_hidden"))
        hs, h, c = lstm_layer_sequence(x, *weights, state[0], state[1], compute)
        return hs, (h, c)

    def keras_options(self, initializer):
        return dict(super().keras_options(initializer), unit_forget_bias=False)


CELL = LSTM()



def lstm_sequence(xw, w_hidden, h0, c0, compute=None):
    """xw [T, B, 4H] float32, or in the compute dtype (its gradient then is too).
    Returns (hs [T, B, H], h_T, c_T), float32."""
    return _lstm_sequence(compute)(xw, w_hidden, h0, c0)


def lstm_layer_sequence(x, w_input, bias, w_hidden, h0, c0, compute):
    """A whole LSTM layer in low precision, the input projection included: x [T, B, I] ->
    (hs [T, B, H], h_T, c_T). The same values as projecting x (`Cell.project`) and
    running `lstm_sequence`, but the projection stays in the compute dtype and its backward
    pass is part of this function's: the rounded dz of the loop feeds the input's and the
    weights' gradients directly. Autodiff of the projection instead rounds dz [T, B, 4H]
    again and converts the projection to float32 and back: at 2 x 512 those passes were
    ~30 ms of a ~460 ms bfloat16 train step."""
    return _lstm_layer_sequence(compute)(x, w_input, bias, w_hidden, h0, c0)


@functools.lru_cache(maxsize=None)
def _lstm_sequence(compute):
    return tf.custom_gradient(lambda xw, w_hidden, h0, c0: _lstm(xw, w_hidden, h0, c0, compute))


@functools.lru_cache(maxsize=None)
def _lstm_layer_sequence(compute):
    return tf.custom_gradient(
        lambda x, w_input, bias, w_hidden, h0, c0:
        _lstm_layer(x, w_input, bias, w_hidden, h0, c0, compute))


def _lstm(xw, w_hidden, h0, c0, compute):
    steps = tf.shape(xw)[0]
    # One product per gate, [B, H] x [H, H], instead of one [B, H] x [H, 4H] and a split: the
    # four are independent, so the executor runs them and the gate functions after them in
    # parallel on the two cores (a forward step: 86 -> 62 us at 2 x 128, 930 -> 875 us at
    # 2 x 512; in bfloat16 one fused product was slower too). Splitting xw costs one pass
    # over it, outside the loop.
    ws = tf.split(w_hidden, 4, axis=-1)                                # 4 x [H, H]
    # xw in the compute dtype (manual.first_projection's table lookup in low precision):
    # each step converts its own row, and xw's gradient is the loop's rounded dz.
    low_input = xw.dtype != h0.dtype
    if low_input:
        gate_inputs = _low_rows(xw)
    else:
        xs = tf.split(xw, 4, axis=-1)                                  # 4 x [T, B, H]
        gate_inputs = lambda t: [x[t] for x in xs]  # noqa: E731
    saved, (hs, h, c) = _lstm_forward(gate_inputs, steps, ws, h0, c0, compute)

    def grad(d_hs, d_h, d_c):
        dzs, dzs_low, dh0, dc0 = _lstm_backward(saved, ws, d_hs, d_h, d_c, compute,
                                                float_dz=not low_input)
        if compute is None:
            return dzs, loops.weight_grad(loops.previous(h0, hs), dzs), dh0, dc0
        return (dzs_low if low_input else dzs,
                loops.weight_grad(saved["h_prev_low"], dzs_low, compute), dh0, dc0)

    return (hs, h, c), grad


def _lstm_layer(x, w_input, bias, w_hidden, h0, c0, compute):
    steps = tf.shape(x)[0]
    x_low, w_input_low = lowered(x, compute), lowered(w_input, compute)
    # The projection [T, B, I] x [I, 4H] stays in the compute dtype; each step converts its
    # own [B, 4H] row to float32 and adds the bias there, as `lstm_sequence` does (one
    # conversion and one addition per step, then the split: 4 ops instead of 12 per gate).
    xw_low = tf.tensordot(x_low, w_input_low, axes=1)                  # [T, B, 4H], compute
    ws = tf.split(w_hidden, 4, axis=-1)
    saved, (hs, h, c) = _lstm_forward(
        _low_rows(xw_low, bias), steps, ws, h0, c0, compute)

    def grad(d_hs, d_h, d_c):
        _, dzs_low, dh0, dc0 = _lstm_backward(saved, ws, d_hs, d_h, d_c, compute,
                                              float_dz=False)          # dz [T, B, 4H]
        d_x = matmul(tf.reshape(dzs_low, [-1, tf.shape(dzs_low)[-1]]),
                     lowered(tf.transpose(w_input), compute), compute, out=tf.float32)
        # The sum over steps and rows accumulates in float32 (TensorFlow's bfloat16 sum does).
        d_bias = tf.cast(tf.reduce_sum(dzs_low, axis=[0, 1]), tf.float32)
        return (tf.reshape(d_x, tf.shape(x)), loops.weight_grad(x_low, dzs_low, compute), d_bias,
                loops.weight_grad(saved["h_prev_low"], dzs_low, compute), dh0, dc0)

    return (hs, h, c), grad


def _low_rows(xw_low, bias=None):
    """gate_inputs for _lstm_forward from a projection kept in the compute dtype, [T, B, 4H]:
    step t converts its own row to float32 (and adds the bias there), then splits the gates."""
    def rows(t):
        row = tf.cast(xw_low[t], tf.float32)                           # [B, 4H]
        return tf.split(row if bias is None else row + bias, 4, axis=-1)
    return rows


def _lstm_forward(gate_inputs, steps, ws, h0, c0, compute):
    """The forward loop. gate_inputs(t) -> the four gates' input parts at step t, each
    [B, H] float32. Returns (what the backward pass needs, (hs [T, B, H], h_T, c_T)).

    Besides h it keeps, per step, the factors of the backward pass that do not depend on the
    incoming gradient (see _lstm_backward), computed here while the step's gates are in
    cache, by TensorFlow's fused activation-gradient ops (SigmoidGrad(y, dy) = dy y (1 - y),
    TanhGrad(y, dy) = dy (1 - y^2)): computed after the loop over [T, B, H] they were ~16
    passes over memory, ~20 ms per 2 x 512 layer and window."""
    ws_low = [lowered(w, compute) for w in ws]
    sigmoid_grad, tanh_grad = tf.raw_ops.SigmoidGrad, tf.raw_ops.TanhGrad

    def body(t, *arrays_and_state):
        *arrays, h, c = arrays_and_state
        h_low = lowered(h, compute)                # rounded once for the four products
        i, f, g, o = (x + matmul(h_low, w, compute, out=h.dtype)
                      for x, w in zip(gate_inputs(t), ws_low))             # each [B, H]
        i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
        c_prev, c = c, f * c + i * g
        tanh_c = tf.tanh(c)
        h = o * tanh_c
        kept = (h, f,
                tanh_grad(y=tanh_c, dy=o),            # dc_t / dh_t = o (1 - tanh(c)^2)
                sigmoid_grad(y=i, dy=g),              # dc_t / dz_i = g i (1 - i)
                sigmoid_grad(y=f, dy=c_prev),         # dc_t / dz_f = c_{t-1} f (1 - f)
                tanh_grad(y=g, dy=i),                 # dc_t / dz_g = i (1 - g^2)
                sigmoid_grad(y=o, dy=tanh_c),         # dh_t / dz_o = tanh(c) o (1 - o)
                h_low)[:len(arrays)]
        # Separate arrays instead of one concatenated one: a write only keeps a reference,
        # the copy happens once in stack() after the loop.
        return (t + 1, *(a.write(t, v) for a, v in zip(arrays, kept)), h, c)

    # In low precision the rounded h_{t-1} of every step is kept too: the weight gradient
    # multiplies exactly those (see _low_copies).
    arrays = (tuple(loops.array(h0.dtype, steps) for _ in range(7))
              + loops.low_copies(compute, steps, 1))
    *arrays, h, c = loops.loop(steps, body, arrays + (h0, c0))
    names = ("hs", "f", "dc_from_dh", "di", "df", "dg", "do", "h_prev_low")
    # hs and the rounded h are used whole (the next layer's input, the weight gradient) and
    # stacked into [T, B, H]; the backward loop reads the other five one step at a time, so
    # they stay arrays: a read is a reference, a stack a copy (~13 MB each at 2 x 512, batch 64).
    whole = ("hs", "h_prev_low")
    saved = {name: a.stack() if name in whole else a for name, a in zip(names, arrays)}
    return saved, (saved["hs"], h, c)


def _lstm_backward(saved, ws, d_hs, d_h, d_c, compute, float_dz: bool):
    """The backward loop. Returns (dz [T, B, 4H] in float32 if float_dz else None, dz in the
    compute dtype (None in float32), dh_0, dc_0).
        dc_t = dc_{t+1} f_{t+1} + dh_t o_t (1 - tanh(c_t)^2)
        dz_t = [dc_t, dc_t, dc_t, dh_t] * [g i(1-i), c_{t-1} f(1-f), i(1-g^2), tanh(c_t) o(1-o)]
    with the factors that do not depend on the gradient kept by the forward loop."""
    # Arrays of T [B, H] tensors (see _lstm_forward), read at step t.
    f, dc_from_dh = saved["f"], saved["dc_from_dh"]
    factors = tuple(saved[k] for k in ("di", "df", "dg", "do"))
    steps = tf.shape(saved["hs"])[0]
    # Transposed once: a matmul with transpose_b is ~3x slower here.
    w_ts = [lowered(tf.transpose(w), compute) for w in ws]              # 4 x [H, H]
    kept = (4 if float_dz else 0, 0 if compute is None else 4)  # float32 / low arrays

    def back(t, *arrays_and_state):
        *arrays, dh, dc = arrays_and_state
        # dh: gradient reaching h_t from step t+1; dc: dc_{t+1} f_{t+1}.
        dh = d_hs[t] + dh
        dc = dc + dh * dc_from_dh.read(t)
        di, df, dg, do = (factor.read(t) for factor in factors)
        dz = (dc * di, dc * df, dc * dg, dh * do)                       # 4 x [B, H]
        dz_low = tuple(lowered(d, compute) for d in dz)  # the products' operands
        # Per gate again, for the same parallelism: dh_{t-1} = sum_k dz_k W_k^T.
        dh = tf.add_n([matmul(d, w, compute, out=dh.dtype) for d, w in zip(dz_low, w_ts)])
        values = dz[:kept[0]] + dz_low[:kept[1]]
        return (t - 1, *(a.write(t, v) for a, v in zip(arrays, values)), dh, dc * f.read(t))

    arrays = tuple(loops.array(d_h.dtype, steps) for _ in range(kept[0])) \
        + loops.low_copies(compute, steps, kept[1])
    *arrays, dh0, dc0 = loops.reverse_loop(steps, back, arrays + (d_h, d_c))

    def stacked(part):
        return tf.concat([a.stack() for a in part], axis=-1) if part else None  # [T, B, 4H]

    return stacked(arrays[:kept[0]]), stacked(arrays[kept[0]:]), dh0, dc0
