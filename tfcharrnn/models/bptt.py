"""One recurrent layer over a whole sequence, with its backward pass written out (BPTT).

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
other way round: read back from its array, never stacked (see _lstm_forward).
Gate order is Keras': LSTM i, f, g, o; GRU z, r, n (reset applied after the recurrent
product). The equations are in `manual.py`.

Precision: with `compute` (tf.bfloat16 or tf.float16; see cells.py) every matrix product here
takes operands rounded to it (the weights once, before the loops) and gives float32 back; the
element-wise arithmetic, the carried h and c and every gradient stay float32. Each sequence
function is built once per compute dtype (`tf.custom_gradient` takes tensors only).
"""

import functools

import tensorflow as tf

from tfcharrnn.models.cells import lowered, matmul


def _loop(steps, body, loop_vars):
    return tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0),) + loop_vars)[1:]


def _reverse_loop(steps, body, loop_vars):
    return tf.while_loop(lambda t, *_: t >= 0, body, (steps - 1,) + loop_vars)[1:]


def _array(dtype, steps):
    """Collects one [B, K] tensor per step; stack() gives [T, B, K]."""
    return tf.TensorArray(dtype, size=steps)


def _low_copies(compute, steps, count):
    """`count` arrays for the rounded copies of per-step tensors in low precision (none in
    float32). The loops round h and dz for their products anyway; kept, they give the weight
    gradient its operands without rounding [T, B, K] tensors again after the loop: at 2 x 512
    those passes were ~13M elements per layer."""
    return () if compute is None else tuple(_array(compute, steps) for _ in range(count))


def _previous(h0, hs):
    """[h_0, h_1, ..., h_{T-1}]: the state each step read, [T, B, H]."""
    return tf.concat([h0[None], hs[:-1]], axis=0)


def _weight_grad(h_prev, dz, compute=None):
    """sum_t h_{t-1}^T dz_t as one matmul: [T, B, H], [T, B, K] -> [H, K]."""
    hidden, k = tf.shape(h_prev)[-1], tf.shape(dz)[-1]
    return matmul(tf.reshape(h_prev, [-1, hidden]), tf.reshape(dz, [-1, k]), compute,
                  transpose_a=True, out=tf.float32)


# ---------------------------------------------------------------------------------------------
# Basic RNN: h_t = tanh(xw_t + h_{t-1} U)

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

    hs, h = _loop(steps, body, (_array(xw.dtype, steps), h0))
    hs = hs.stack()

    def grad(d_hs, d_h):
        w_t = lowered(tf.transpose(w_hidden), compute)  # once: transpose_b is ~3x slower here

        def back(t, dzs, dh):
            h_t = hs[t]
            dz = (d_hs[t] + dh) * (1.0 - h_t * h_t)          # [B, H]
            return t - 1, dzs.write(t, dz), matmul(dz, w_t, compute)

        dzs, dh0 = _reverse_loop(steps, back, (_array(xw.dtype, steps), d_h))
        dzs = dzs.stack()                                              # [T, B, H]
        return dzs, _weight_grad(_previous(h0, hs), dzs, compute), dh0

    return (hs, h), grad


# ---------------------------------------------------------------------------------------------
# LSTM: [i f g o] = xw_t + h_{t-1} U; c_t = f c_{t-1} + i g; h_t = o tanh(c_t)

def lstm_sequence(xw, w_hidden, h0, c0, compute=None):
    """xw [T, B, 4H] float32, or in the compute dtype (its gradient then is too).
    Returns (hs [T, B, H], h_T, c_T), float32."""
    return _lstm_sequence(compute)(xw, w_hidden, h0, c0)


def lstm_layer_sequence(x, w_input, bias, w_hidden, h0, c0, compute):
    """A whole LSTM layer in low precision, the input projection included: x [T, B, I] ->
    (hs [T, B, H], h_T, c_T). The same values as projecting x (cells.input_projection) and
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
            return dzs, _weight_grad(_previous(h0, hs), dzs), dh0, dc0
        return (dzs_low if low_input else dzs,
                _weight_grad(saved["h_prev_low"], dzs_low, compute), dh0, dc0)

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
        return (tf.reshape(d_x, tf.shape(x)), _weight_grad(x_low, dzs_low, compute), d_bias,
                _weight_grad(saved["h_prev_low"], dzs_low, compute), dh0, dc0)

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
    arrays = tuple(_array(h0.dtype, steps) for _ in range(7)) + _low_copies(compute, steps, 1)
    *arrays, h, c = _loop(steps, body, arrays + (h0, c0))
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

    arrays = tuple(_array(d_h.dtype, steps) for _ in range(kept[0])) \
        + _low_copies(compute, steps, kept[1])
    *arrays, dh0, dc0 = _reverse_loop(steps, back, arrays + (d_h, d_c))

    def stacked(part):
        return tf.concat([a.stack() for a in part], axis=-1) if part else None  # [T, B, 4H]

    return stacked(arrays[:kept[0]]), stacked(arrays[kept[0]:]), dh0, dc0


# ---------------------------------------------------------------------------------------------
# GRU: [hz hr hn] = h_{t-1} U + b_hidden; z = s(xz + hz); r = s(xr + hr);
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

    *arrays, h = _loop(steps, body, tuple(_array(xw.dtype, steps) for _ in range(5)) + (h0,))
    hs = arrays[0].stack()                                             # [T, B, H]
    zs, rs, ns, hns = arrays[1:]      # read back a step at a time, not stacked (see the LSTM)

    def grad(d_hs, d_h):
        # Transposed once: a matmul with transpose_b is ~3x slower here.
        w_ts = [lowered(tf.transpose(w), compute) for w in ws]          # 3 x [H, H]
        h_prev = _previous(h0, hs)

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

        *arrays, dh0 = _reverse_loop(steps, back,
                                     tuple(_array(xw.dtype, steps) for _ in range(4)) + (d_h,))
        dz, dr, dn, dun = (a.stack() for a in arrays)                    # each [T, B, H]
        dus = tf.concat([dz, dr, dun], axis=-1)                          # d (h U + b) [T, B, 3H]
        return (tf.concat([dz, dr, dn], axis=-1), _weight_grad(h_prev, dus, compute),
                tf.reduce_sum(dus, axis=[0, 1]), dh0)

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


def _rnn_batch_halves(w_hidden, xw, h0, compute=None):
    batch, hidden = xw.shape[1], w_hidden.shape[0]
    if batch is None or hidden is None or batch % 2 or batch // 2 * hidden < _SPLIT_MIN_UNITS:
        return rnn_sequence(xw, w_hidden, h0, compute)
    halves = [rnn_sequence(x, w_hidden, h, compute)
              for x, h in zip(tf.split(xw, 2, axis=1), tf.split(h0, 2, axis=0))]
    return (tf.concat([hs for hs, _ in halves], axis=1),               # [T, B, H]
            tf.concat([h for _, h in halves], axis=0))                 # [B, H]


def run_sequence(cell: str, xw, params, state, compute=None):
    """xw [T, B, G*H], state tuple of [B, H] -> (outputs [T, B, H], final state tuple).
    compute: None (float32) or the dtype of the matrix products (see the module doc)."""
    w_hidden = tf.convert_to_tensor(params["W_hidden"])
    if cell == "rnn":
        hs, h = _rnn_batch_halves(w_hidden, xw, state[0], compute)
        return hs, (h,)
    if cell == "gru":
        hs, h = gru_sequence(xw, w_hidden, tf.convert_to_tensor(params["b_hidden"]), state[0],
                             compute)
        return hs, (h,)
    hs, h, c = lstm_sequence(xw, w_hidden, state[0], state[1], compute)
    return hs, (h, c)
