"""What a cell is: its equations, its parameters, its Keras layer; the rest follows.

A cell module subclasses `Cell` and sets `CELL = TheCell()`. The one method it must write is
`equations`: one time step from the input projection xw = x W_input + input bias and the
recurrent product hw = h W_hidden (+ the recurrent bias, if it has one). From it come
  - `step`: one time step from the projected input (the manual back-end's `rnn_cell`);
  - `sequence`: a whole window, by a `tf.while_loop` over `step` that TensorFlow
    differentiates for training. A new cell trains on its first day this way; a
    hand-written backward pass (the three classic cells have one) is an override;
  - `fold` and `folded_step`: the one-token step of sampling (`inference.py`);
  - the evaluation wavefront's step (`wavefront.py`) for cells with a recurrent product;
  - `keras_layer_class` and `keras_weights`: the Keras layer and which of its variables is
    which manual-named parameter (checkpoints, `weight_mapping.py`, the kernels' path).

Parameter names (the manual back-end's variables, the web export's tensors): W_input [I, G*H],
W_hidden [H, G*H], b_hidden [G*H] and any others a cell declares in `parameters`; a name that
starts with "b_" is a bias, which weight decay leaves alone (`steps.is_bias`).
Shapes: B rows, T steps, I inputs, H hidden units, G = `gates` fused blocks.
"""

import abc

import keras
import tensorflow as tf

from tfcharrnn.models import ops


class Cell(abc.ABC):
    name = None           # the registry's name (`--model`)
    gates = 1             # G: the input projection is [.., G*H]
    gate_names = ("h",)   # the G blocks in order (the web export lists them)
    state_size = 1        # state tensors per layer: h; the LSTM's h and c
    recurrent = True      # the gates read h_{t-1} through W_hidden (--weight_dropout drops it)
    cudnn = False         # on a GPU, Keras' layer runs cuDNN (devices.py)
    low_precision_input = False  # `sequence` accepts xw in the compute dtype (first_projection)
    split_products = 1    # the few-rows wavefront splits each product into this many (per gate)
    keras_layer_class = None  # the Keras layer (built with return_sequences and return_state)

    # ---- parameters ----

    def parameters(self, input_size: int, hidden: int) -> dict:
        """{name: shape} of one layer's weights, in the order they are initialized."""
        width = self.gates * hidden
        return {"W_input": (input_size, width), "W_hidden": (hidden, width),
                "b_hidden": (width,)}

    def input_bias(self, params):
        """The bias added to the input projection."""
        return params["b_hidden"]

    def recurrent_bias(self, params):
        """The bias added to the recurrent product h W_hidden, kept apart (None: none)."""
        return None

    # ---- the equations ----

    @abc.abstractmethod
    def equations(self, xw, hw, state, sigmoid=tf.sigmoid):
        """One step: xw [B, G*H] the projected input (bias in), hw [B, G*H] the recurrent
        product (its bias in), or None when xw already holds it (the folded step);
        state tuple of [B, H] -> (output [B, H], new state tuple)."""

    def project(self, params, x, compute=None):
        """x [..., I] -> x W_input + input bias [..., G*H]; independent of the state."""
        return ops.tensordot(x, params["W_input"], compute) + self.input_bias(params)

    def recurrent_product(self, params, h, compute=None):
        """h [B, H] -> h W_hidden + recurrent bias [B, G*H], or None without recurrence."""
        if not self.recurrent:
            return None
        hw = ops.matmul(h, params["W_hidden"], compute)
        bias = self.recurrent_bias(params)
        return hw if bias is None else hw + bias

    def step(self, params, xw, state, compute=None):
        """One time step from the projected input xw [B, G*H] -> (output [B, H], state)."""
        return self.equations(xw, self.recurrent_product(params, state[0], compute), state)

    # ---- a window ----

    def sequence(self, params, xw, state, compute=None):
        """xw [T, B, G*H] (time-major) -> (outputs [T, B, H], final state tuple).

        The generic loop: `step` in a `tf.while_loop`, differentiated by TensorFlow. Inputs
        are read from a TensorArray (a slice xw[t] under autodiff would give each step a
        gradient as large as xw)."""
        steps = tf.shape(xw)[0]
        inputs = tf.TensorArray(xw.dtype, size=steps).unstack(xw)
        dtype = state[0].dtype

        def body(t, outputs, state):
            h, state = self.step(params, tf.cast(inputs.read(t), dtype), state, compute)
            return t + 1, outputs.write(t, h), state

        _, outputs, state = tf.while_loop(
            lambda t, *_: t < steps, body,
            (tf.constant(0), tf.TensorArray(dtype, size=steps), tuple(state)))
        return outputs.stack(), state

    def layer_sequence(self, params, x, state, compute=None):
        """A whole layer from its input x [T, B, I]: the projection, then `sequence`."""
        return self.sequence(params, self.project(params, x, compute), state, compute)

    # ---- the one-token step of sampling (inference.py) ----

    def fold(self, params, compute=None):
        """The layer's weights for `folded_step`, bias rows folded in: one product
        [x, h, 1] @ [W_input; W_hidden; b] (under XLA on CPU a separate bias add is fused
        into a naive loop: 2 x 512 LSTM, one stream, ~5,000 tokens/s with it, ~9,000 folded)."""
        return ops.lowered(fold_rows(params["W_input"], params["W_hidden"],
                                     self.input_bias(params)), compute)

    def folded_step(self, folded, x, state, compute=None):
        """x [B, I], state -> (output [B, H], new state) from `fold`'s weights."""
        z = ops.matmul(with_ones(tf.concat([x, state[0]], axis=-1)), folded, compute)
        return self.equations(z, None, state)

    # ---- the Keras back-end ----

    def keras_options(self, initializer) -> dict:
        """Constructor arguments of `keras_layer_class` besides units and the return flags;
        initializer() makes a new initializer for each weight (an unseeded Keras initializer
        fixes its seed when made: one object for two weights would draw them alike)."""
        return {"kernel_initializer": initializer(), "recurrent_initializer": initializer(),
                "bias_initializer": initializer()}

    def keras_weights(self, keras_cell) -> list:
        """[(manual name, Keras variable, row or None)]: a row of a variable is one parameter
        (the GRU's bias [2, 3H] holds two)."""
        return [("W_input", keras_cell.kernel, None), ("W_hidden", keras_cell.recurrent_kernel,
                                                       None), ("b_hidden", keras_cell.bias, None)]

    def keras_params(self, keras_cell) -> dict:
        """The layer's weights under the manual names (tensors for rows, else variables)."""
        return {name: var if row is None else var[row]
                for name, var, row in self.keras_weights(keras_cell)}

    def keras_matches(self, keras_cell) -> bool:
        """Whether the Keras cell computes `equations` (the kernels may replace its loop):
        no built-in dropout, tanh and sigmoid, biases (and the GRU's reset_after)."""
        return (not getattr(keras_cell, "dropout", 0)
                and not getattr(keras_cell, "recurrent_dropout", 0)
                and getattr(keras_cell, "use_bias", True)
                and getattr(keras_cell, "activation", keras.activations.tanh)
                is keras.activations.tanh
                and getattr(keras_cell, "recurrent_activation", keras.activations.sigmoid)
                is keras.activations.sigmoid
                and getattr(keras_cell, "reset_after", True))


def with_ones(x):
    """[B, K] -> [B, K + 1]: the input row that picks up a folded bias row."""
    return tf.concat([x, tf.ones_like(x[:, :1])], axis=-1)


def fold_rows(*rows):
    """Stacks weight blocks along the input axis; a 1-D block (a bias) becomes one row."""
    return tf.concat([r if len(r.shape) == 2 else r[None] for r in rows], axis=0)
