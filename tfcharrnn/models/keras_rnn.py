"""Keras back-end: embedding -> num_layers x (SimpleRNN | GRU | LSTM) -> dense logits.

The recurrent state is a value, not a hidden attribute: `__call__` takes the state in and
returns the new one, so truncated BPTT, sampling and evaluation all carry it explicitly (we do
not use Keras `stateful=True`, whose semantics changed in Keras 3 and which ties the state to
a fixed batch size). The state is a flat list of [batch, hidden] tensors: per layer (h, c) for
the LSTM and (h,) for the GRU and the basic RNN.

Dropout follows char-rnn: on the input of every recurrent layer but the first, and on the
output of the top layer, only when training.

Initialization follows PyTorch (and Torch char-rnn's uniform scheme), not the Keras defaults:
embedding N(0, 1), every recurrent weight and bias U(-1/sqrt(H), 1/sqrt(H)), the softmax layer
U(-1/sqrt(H), 1/sqrt(H)). With the Keras defaults (embedding U(-0.05, 0.05), Glorot and
orthogonal weights, zero biases) a word-level LSTM sat at the unigram loss for over 1,500
steps on the Shakespeare speeches CSV, where this scheme left it within 250 steps (the
issue-4 note has the runs). The manual back-end uses the same scheme.

Speed: the layers are Keras' own (same weights, same equations, same checkpoints), but their
`inner_loop`, the hook Keras itself uses to put cuDNN behind an LSTM or GRU layer, runs the
hand-written backward-through-time kernels of `bptt.py` instead of Keras' generic
`tf.while_loop` under autodiff, which on CPU forms every weight gradient as a hundred small
per-step products. That made the 2 x 512 LSTM train step 1.7x faster. Layers configured
outside what the kernels compute (masking, go_backwards, built-in dropout, other activations)
fall back to Keras' loop; a test checks both give the same outputs and gradients. On a GPU
the LSTM and GRU leave their loop to Keras, which runs cuDNN there (`devices.py`), except
in mixed precision, where the kernels' products run in the low precision (`cells.py`) and
the Keras layers stay float32 (no Keras dtype policy).
"""

import keras
import tensorflow as tf

from tfcharrnn.config import ModelConfig
from tfcharrnn.models import devices, manual, wavefront
from tfcharrnn.models.cells import STATES_PER_LAYER, compute_dtype, drop_connect


class _BPTTKernel:
    """Mixin for a Keras recurrent layer: `inner_loop` through the `bptt.py` kernels."""

    cell_type = None  # "rnn", "gru" or "lstm"
    use_bptt_kernel = True
    compute = None    # dtype of the kernels' matrix products (cells.py); None: float32
    needs_kernel = False  # --weight_dropout: only the kernels can drop the recurrent weights

    def _kernel_applies(self, mask) -> bool:
        cell = self.cell
        if (self.cell_type in ("lstm", "gru") and self.compute is None
                and not self.needs_kernel and devices.gpu_available()):
            return False  # Keras' inner_loop runs cuDNN there (see devices.py)
        return (self.use_bptt_kernel and mask is None and not self.go_backwards
                and not self.unroll and not cell.dropout and not cell.recurrent_dropout
                and cell.use_bias and cell.activation is keras.activations.tanh
                and getattr(cell, "recurrent_activation", keras.activations.sigmoid)
                is keras.activations.sigmoid and getattr(cell, "reset_after", True))

    def params(self) -> dict:
        """This layer's weights under the manual back-end's names (see weight_mapping.py)."""
        cell = self.cell
        params = {"W_input": cell.kernel, "W_hidden": cell.recurrent_kernel}
        if self.cell_type == "gru":   # Keras' GRU bias is [2, 3H]: input row, recurrent row
            params.update(b_input=cell.bias[0], b_hidden=cell.bias[1])
        else:
            params["b_hidden"] = cell.bias
        return params

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._kernel_applies(mask):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        outputs, state = manual.run_layer(self.params(), self.cell_type, sequences,
                                          tuple(initial_state), self.compute)  # [B, T, H]
        return outputs[:, -1], outputs, list(state)


class SimpleRNN(_BPTTKernel, keras.layers.SimpleRNN):
    cell_type = "rnn"


class GRU(_BPTTKernel, keras.layers.GRU):
    cell_type = "gru"


class LSTM(_BPTTKernel, keras.layers.LSTM):
    cell_type = "lstm"


_LAYERS = {"rnn": SimpleRNN, "gru": GRU, "lstm": LSTM}


class ReplicaDropout(keras.layers.Dropout):
    """Keras' Dropout, with independent masks in every replica of a tf.distribute strategy.

    Under a strategy the layer's seed generator is one mirrored variable, so every replica
    would draw the same mask for its rows. With several replicas the replica's index is folded
    into the drawn seed; with one, this is Keras' Dropout unchanged.
    """

    def call(self, inputs, training=False):
        ctx = tf.distribute.get_replica_context()
        if not (training and self.rate > 0) or ctx is None or ctx.num_replicas_in_sync == 1:
            return super().call(inputs, training=training)
        seed = tf.cast(self.seed_generator.next(), tf.int64)                 # [2]
        seed = tf.random.experimental.stateless_fold_in(seed, ctx.replica_id_in_sync_group)
        return tf.nn.experimental.stateless_dropout(inputs, rate=self.rate, seed=seed)


def _uniform(hidden_size):
    limit = 1.0 / hidden_size ** 0.5
    return keras.initializers.RandomUniform(-limit, limit)


class KerasRNN(keras.Model):

    def __init__(self, config: ModelConfig, vocab_size: int, seed: int = 0):
        super().__init__(name=f"keras_{config.model}")
        self.config = config
        self.vocab_size = vocab_size
        hidden = config.hidden_size
        self.embedding = (keras.layers.Embedding(
            vocab_size, config.embedding_size, name="embedding",
            embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0))
            if config.embedding_size else None)
        layer_cls = _LAYERS[config.model]
        extra = {"unit_forget_bias": False} if config.model == "lstm" else {}
        self.rnn_layers = [
            layer_cls(hidden, return_sequences=True, return_state=True,
                      kernel_initializer=_uniform(hidden),
                      recurrent_initializer=_uniform(hidden),
                      bias_initializer=_uniform(hidden), name=f"{config.model}_{i}", **extra)
            for i in range(config.num_layers)]
        self.compute = compute_dtype(config.precision)
        for layer in self.rnn_layers:
            layer.compute = self.compute
            layer.needs_kernel = config.weight_dropout > 0
        # --weight_dropout masks come from this generator (its state is checkpointed).
        self.weight_seeds = (keras.random.SeedGenerator(seed + 1000, name="weight_dropout")
                             if config.weight_dropout > 0 else None)
        # One dropout per layer boundary plus one before the softmax; each gets its own seed so
        # the masks of different layers are independent.
        self.dropouts = [ReplicaDropout(config.dropout, seed=seed + i, name=f"dropout_{i}")
                         for i in range(config.num_layers)] if config.dropout > 0 else []
        self.softmax = keras.layers.Dense(vocab_size, name="softmax",
                                          kernel_initializer=_uniform(hidden),
                                          bias_initializer=_uniform(hidden))

    @property
    def state_shapes(self):
        """Widths of the state tensors, in order."""
        return [self.config.hidden_size] * (STATES_PER_LAYER[self.config.model]
                                            * self.config.num_layers)

    def named_variables(self) -> dict:
        """Every variable (weights and dropout RNG state) under a stable name, for checkpoints.

        Keras 3 layers kept in Python lists are not tracked by `tf.train.Checkpoint`, and
        Keras variable paths carry global counters, so names are built from our own layer names.
        """
        layers = ([self.embedding] if self.embedding is not None else []) + self.rnn_layers \
            + self.dropouts + [self.softmax]
        named = {}
        for layer in layers:
            for var in layer.variables:
                key = f"{layer.name}/{var.name}"
                assert key not in named, key
                named[key] = var
        if self.weight_seeds is not None:
            named["weight_dropout/seed"] = self.weight_seeds.state
        return named

    def _layer_params(self, layer, training):
        """A layer's weights for this window, W_hidden through DropConnect when training with
        --weight_dropout (see cells.drop_connect); with several replicas each draws its own
        mask, as ReplicaDropout does."""
        params = layer.params()
        rate = self.config.weight_dropout
        if not training or rate == 0:
            return params
        seed = tf.cast(self.weight_seeds.next(), tf.int64)                   # [2]
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, ctx.replica_id_in_sync_group)
        return dict(params, W_hidden=drop_connect(params["W_hidden"], rate, seed))

    def initial_state(self, batch_size: int):
        return [tf.zeros([batch_size, h]) for h in self.state_shapes]

    def step_weights(self):
        """(embedding [V, E] or None, per-layer params, softmax params), manual names, for
        the one-token step of `inference.py`."""
        embedding = self.embedding.embeddings if self.embedding is not None else None
        return (embedding, [layer.params() for layer in self.rnn_layers],
                {"W_softmax": self.softmax.kernel, "b_softmax": self.softmax.bias})

    def call(self, inputs, state, training=False):
        """Args:
          inputs: int32 token ids [B, T].
          state: list of float32 [B, hidden], as returned by `initial_state` or a previous call.
        Returns:
          logits float32 [B, T, vocab], new state (same structure as `state`).
        """
        layers, cell = self.rnn_layers, self.config.model
        if (all(layer.built and layer._kernel_applies(None) for layer in layers)
                and (self.embedding is None or self.embedding.built)):
            # The layers' own weights and equations, run by the manual back-end's functions:
            # the first layer's input projection is a lookup in a projected table (see
            # manual.first_projection), and evaluation runs all layers in one loop (see
            # wavefront.py) instead of one layer call after another. Same outputs.
            embedding = self.embedding.embeddings if self.embedding is not None else None
            xw = manual.first_projection(layers[0].params(), cell, inputs, embedding,
                                         self.compute)
            if not training and len(layers) > 1:
                x, new_state = wavefront.forward(
                    cell, [layer.params() for layer in layers], xw, state,
                    lambda: self._layer_by_layer(None, state, False, first_xw=xw),
                    self.compute)
            else:
                x, new_state = self._layer_by_layer(None, state, training, first_xw=xw)
            # x: [T, B, H], time-major from the projection to the logits (see
            # manual.run_time_major)
        else:
            # Keras' own path (it also builds the layers on the first call).
            if self.embedding is not None:
                x = self.embedding(inputs)                    # [B, T, E]
            else:
                x = tf.one_hot(inputs, self.vocab_size)       # [B, T, V]
            x, new_state = self._layer_by_layer(x, state, training)
            x = tf.transpose(x, [1, 0, 2])                    # [T, B, H]
        if self.dropouts:
            x = self.dropouts[-1](x, training=training)
        return tf.transpose(self.softmax(x), [1, 0, 2]), new_state   # [B, T, V]

    def _layer_by_layer(self, x, state, training, first_xw=None):
        """x [B, T, I] -> top layer's outputs [B, T, H], new state: the Keras layers in turn.
        With first_xw, the first layer's projected input [T, B, G*H] (the kernels' path), the
        first layer runs from it through `manual.run_projected` and the others through
        `manual.run_time_major` (what their inner_loop runs, with the same weights,
        dropped-connected when training with --weight_dropout), x is not used and the
        outputs are time-major, [T, B, H]."""
        n = STATES_PER_LAYER[self.config.model]
        new_state = []
        for i, layer in enumerate(self.rnn_layers):
            layer_state = list(state[i * n:(i + 1) * n])
            if i == 0 and first_xw is not None:
                x, layer_state = manual.run_projected(self._layer_params(layer, training),
                                                      layer.cell_type, first_xw, layer_state,
                                                      self.compute)
                new_state.extend(layer_state)
                continue
            if i > 0 and self.dropouts:
                x = self.dropouts[i - 1](x, training=training)
            if first_xw is not None:
                # The kernels' path: what the layer's inner_loop runs, with this window's
                # weights (dropped-connected when training with --weight_dropout).
                x, layer_state = manual.run_time_major(self._layer_params(layer, training),
                                                       layer.cell_type, x, tuple(layer_state),
                                                       self.compute)
                new_state.extend(layer_state)
                continue
            x, *layer_state = layer(x, initial_state=layer_state,
                                    training=training)      # x: [B, T, H]
            new_state.extend(layer_state)
        return x, new_state
