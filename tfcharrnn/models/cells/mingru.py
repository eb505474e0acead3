"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?", arXiv 2410.01201):

    [x_z, x_h] = x W_input + b_input                   gate order z, candidate
    z = sigmoid(x_z);  h~ = x_h
    h' = (1 - z) * h + z * h~

Neither gate reads h_{t-1}, so a layer has no recurrent weights: the input projection of a
whole window is one product, and what is left is the linear recurrence h_t = a_t h_{t-1} + b_t
with a = 1 - z, b = z * h~, element by element. Training runs it as a scan with a
hand-written backward pass, which is the same scan run backwards (`linear_scan`). The state
is carried across windows as every cell's is.
"""

import keras
import tensorflow as tf

from tfcharrnn.models import ops
from tfcharrnn.models.cells import base


class MinGRU(base.Cell):
    name = "mingru"
    gates = 2
    gate_names = ("z", "h")
    recurrent = False

    def parameters(self, input_size, hidden):
        return {"W_input": (input_size, 2 * hidden), "b_input": (2 * hidden,)}

    def input_bias(self, params):
        return params["b_input"]

    def equations(self, xw, hw, state, sigmoid=tf.sigmoid):
        (h,) = state
        x_z, candidate = tf.split(xw, 2, axis=-1)
        z = sigmoid(x_z)
        h = (1.0 - z) * h + z * candidate
        return h, (h,)

    def sequence(self, params, xw, state, compute=None):
        x_z, candidate = tf.split(tf.cast(xw, state[0].dtype), 2, axis=-1)   # [T, B, H] each
        z = tf.sigmoid(x_z)
        hs = linear_scan(1.0 - z, z * candidate, state[0])
        return hs, (hs[-1],)

    def fold(self, params, compute=None):
        """One product [x, 1] @ [W_input; b_input]."""
        return ops.lowered(base.fold_rows(params["W_input"], params["b_input"]), compute)

    def folded_step(self, folded, x, state, compute=None):
        return self.equations(ops.matmul(base.with_ones(x), folded, compute), None, state)

    # ---- Keras ----

    def keras_options(self, initializer):
        return {"kernel_initializer": initializer(), "bias_initializer": initializer()}

    def keras_weights(self, keras_cell):
        return [("W_input", keras_cell.kernel, None), ("b_input", keras_cell.bias, None)]


def with_gradient(scan):
    """A linear scan with its backward pass, from a forward `scan(a, b, h0)` computing
    h_t = a_t h_{t-1} + b_t for t = 0..T-1: a, b [T, B, H], h0 [B, H] -> [T, B, H].

    The gradient is the same recurrence backwards: with g_t = dL/dh_t (all paths),
        g_t = d_hs[t] + a_{t+1} g_{t+1},   da_t = g_t h_{t-1},   db_t = g_t,   dh0 = a_0 g_0."""
    @tf.custom_gradient
    def linear_scan(a, b, h0):
        hs = scan(a, b, h0)

        def grad(d_hs):
            # g_t = d_hs[t] + a_{t+1} g_{t+1}: a scan over reversed time, a shifted by one.
            a_next = tf.concat([a[1:], tf.zeros_like(a[:1])], axis=0)
            g = tf.reverse(scan(tf.reverse(a_next, [0]), tf.reverse(d_hs, [0]),
                                tf.zeros_like(h0)), [0])
            h_prev = tf.concat([h0[None], hs[:-1]], axis=0)
            return g * h_prev, g, a[0] * g[0]

        return hs, grad
    return linear_scan


def _scan(a, b, h0):
    """The recurrence one step at a time (slices read, nothing differentiated here).

    Step by step, a loop of T element-wise steps over [B, H] rows that stay in cache. A
    parallel prefix scan (Hillis-Steele) takes log2 T passes over all of [T, B, H] instead,
    memory-bound, and two cores have no idle parallelism for it to use: forward and backward
    of 100 x 64 x 256, 7.4 ms step by step against 23.7 ms (`benchmarks/scan.py`, 2-core
    Xeon with AMX)."""
    steps = tf.shape(a)[0]

    def body(t, hs, h):
        h = a[t] * h + b[t]
        return t + 1, hs.write(t, h), h

    _, hs, _ = tf.while_loop(lambda t, *_: t < steps, body,
                             (tf.constant(0), tf.TensorArray(a.dtype, size=steps), h0))
    return hs.stack()


linear_scan = with_gradient(_scan)


class MinGRUCell(keras.layers.Layer):
    """One step of minGRU for Keras' RNN layer (its own loop, and the reference the tests
    compare the scan with): weights `kernel` [I, 2H] and `bias` [2H]."""

    def __init__(self, units, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = self.output_size = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 2 * self.units), name="kernel",
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(shape=(2 * self.units,), name="bias",
                                    initializer=self.bias_initializer)

    def call(self, inputs, states, training=False):
        h = states[0] if isinstance(states, (list, tuple)) else states
        h, _ = CELL.equations(tf.matmul(inputs, self.kernel) + self.bias, None, (h,))
        return h, [h]


class MinGRULayer(keras.layers.RNN):
    """Keras' RNN layer over `MinGRUCell`, built like keras.layers.GRU(units, ...)."""

    def __init__(self, units, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 **kwargs):
        super().__init__(MinGRUCell(units, kernel_initializer, bias_initializer), **kwargs)


MinGRU.keras_layer_class = MinGRULayer
CELL = MinGRU()
