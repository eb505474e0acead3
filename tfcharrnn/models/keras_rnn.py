"""Keras back-end: embedding -> num_layers x (SimpleRNN | GRU | LSTM) -> dense logits.

The recurrent state is a value, not a hidden attribute: `__call__` takes the state in and
returns the new one, so truncated BPTT, sampling and evaluation all carry it explicitly (we do
not use Keras `stateful=True`, whose semantics changed in Keras 3 and which ties the state to
a fixed batch size). The state is a flat list of [batch, hidden] tensors: per layer (h, c) for
the LSTM and (h,) for the GRU and the basic RNN.

Dropout follows char-rnn: on the input of every recurrent layer but the first, and on the
output of the top layer, only when training; a new mask at every step, or with
--locked_dropout one per stream for the window (AWD-LSTM).

Initialization follows PyTorch (and Torch char-rnn's uniform scheme), not the Keras defaults:
embedding N(0, 1), every recurrent weight and bias U(-1/sqrt(H), 1/sqrt(H)), the softmax layer
U(-1/sqrt(H), 1/sqrt(H)). With the Keras defaults (embedding U(-0.05, 0.05), Glorot and
orthogonal weights, zero biases) a word-level LSTM sat at the unigram loss for over 1,500
steps on the Shakespeare speeches CSV, where this scheme left it within 250 steps (the
issue-4 note has the runs). The manual back-end uses the same scheme.

Speed: the layers are Keras' own (same weights, same equations, same checkpoints), but their
`inner_loop`, the hook Keras itself uses to put cuDNN behind an LSTM or GRU layer, runs the
cell's own loop (`cells/`: the classic cells' hand-written backward-through-time kernels)
instead of Keras' generic `tf.while_loop` under autodiff, which on CPU forms every weight
gradient as a hundred small per-step products. That made the 2 x 512 LSTM train step 1.7x
faster. Layers configured outside what the cell computes (masking, go_backwards, built-in
dropout, other activations: `Cell.keras_matches`) fall back to Keras' loop; a test checks
both give the same outputs and gradients. On a GPU the LSTM and GRU leave their loop to
Keras, which runs cuDNN there (`devices.py`), except in mixed precision, where the kernels'
products run in the low precision (`ops.py`) and the Keras layers stay float32 (no Keras
dtype policy).
"""

import functools

import keras
import tensorflow as tf

from tfcharrnn import models
from tfcharrnn.config import ModelConfig
from tfcharrnn.models import devices, ops, stacked


class _CellLoop:
    """Mixin for a cell's Keras layer: `inner_loop` through the cell's own loop."""

    rnn_cell = None   # the cells.base.Cell this layer computes
    use_bptt_kernel = True
    compute = None    # dtype of the kernels' matrix products (ops.py); None: float32
    needs_kernel = False  # --weight_dropout: only the kernels can drop the recurrent weights

    def _kernel_applies(self, mask) -> bool:
        if (self.rnn_cell.cudnn and self.compute is None
                and not self.needs_kernel and devices.gpu_available()):
            return False  # Keras' inner_loop runs cuDNN there (see devices.py)
        return (self.use_bptt_kernel and mask is None and not self.go_backwards
                and not self.unroll and self.rnn_cell.keras_matches(self.cell))

    def params(self) -> dict:
        """This layer's weights under the manual back-end's names (see weight_mapping.py)."""
        return self.rnn_cell.keras_params(self.cell)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._kernel_applies(mask):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        outputs, state = self.rnn_cell.layer_sequence(
            self.params(), tf.transpose(sequences, [1, 0, 2]), tuple(initial_state),
            self.compute)                                                  # [T, B, H]
        outputs = tf.transpose(outputs, [1, 0, 2])                         # [B, T, H]
        return outputs[:, -1], outputs, list(state)


@functools.lru_cache(maxsize=None)
def layer_class(cell):
    """The cell's Keras layer with `inner_loop` through the cell's loop (one class per cell)."""
    base = cell.keras_layer_class
    return type(base.__name__, (_CellLoop, base), {"rnn_cell": cell})


class ReplicaDropout(keras.layers.Dropout):
    """Keras' Dropout, with independent masks in every replica of a tf.distribute strategy.

    Under a strategy the layer's seed generator is one mirrored variable, so every replica
    would draw the same mask for its rows. With several replicas the replica's index is folded
    into the drawn seed; with one, this is Keras' Dropout unchanged. `time_axis` (an axis of
    inputs, for --locked_dropout) holds one mask per stream along it (ops.dropout).
    """

    def call(self, inputs, training=False, time_axis=None):
        if not (training and self.rate > 0):
            return inputs
        ctx = tf.distribute.get_replica_context()
        several = ctx is not None and ctx.num_replicas_in_sync > 1
        if time_axis is None and not several:
            return super().call(inputs, training=training)
        seed = tf.cast(self.seed_generator.next(), tf.int64)                 # [2]
        if several:
            seed = tf.random.experimental.stateless_fold_in(seed, ctx.replica_id_in_sync_group)
        return ops.dropout(inputs, self.rate, seed, time_axis)


def _uniform(hidden_size):
    limit = 1.0 / hidden_size ** 0.5
    return keras.initializers.RandomUniform(-limit, limit)


class KerasRNN(stacked.StackedRNN, keras.Model):

    def __init__(self, config: ModelConfig, vocab_size: int, seed: int = 0):
        super().__init__(name=f"keras_{config.model}")
        self.config = config
        self.vocab_size = vocab_size
        self.cell = models.cell_of(config)
        hidden = config.hidden_size
        self.embedding = (keras.layers.Embedding(
            vocab_size, config.embedding_size, name="embedding",
            embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0))
            if config.embedding_size else None)
        layer_cls = layer_class(self.cell)
        self.rnn_layers = [
            layer_cls(hidden, return_sequences=True, return_state=True,
                      name=f"{config.model}_{i}",
                      **self.cell.keras_options(lambda: _uniform(hidden)))
            for i in range(config.num_layers)]
        self.compute = ops.compute_dtype(config.precision)
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

    # ---- the hooks of stacked.StackedRNN ----

    def layer_params(self, i):
        return self.rnn_layers[i].params()

    def embedding_table(self):
        return self.embedding.embeddings if self.embedding is not None else None

    def softmax_params(self):
        return {"W_softmax": self.softmax.kernel, "b_softmax": self.softmax.bias}

    def logits(self, x):
        return self.softmax(x)

    def dropout(self, i, x, training, time_axis=0):
        if not self.dropouts:
            return x
        locked = time_axis if self.config.locked_dropout else None
        return self.dropouts[i - 1](x, training=training, time_axis=locked)

    def window_params(self, i, training):
        """With several replicas each draws its own DropConnect mask, as ReplicaDropout does."""
        params = self.layer_params(i)
        rate = self.config.weight_dropout
        if not training or rate == 0:
            return params
        seed = tf.cast(self.weight_seeds.next(), tf.int64)                   # [2]
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, ctx.replica_id_in_sync_group)
        return stacked.weight_dropped(self.cell, params, rate, seed)

    def call(self, inputs, state, training=False):
        """Args:
          inputs: int32 token ids [B, T].
          state: list of float32 [B, hidden], as returned by `initial_state` or a previous call.
        Returns:
          logits float32 [B, T, vocab], new state (same structure as `state`).
        """
        if (all(layer.built and layer._kernel_applies(None) for layer in self.rnn_layers)
                and (self.embedding is None or self.embedding.built)):
            # The layers' own weights, run by the cell's loops as the manual back-end runs
            # them (stacked.py): the first projection a table lookup, evaluation one wavefront.
            return self.forward(inputs, state, training)
        # Keras' own path (it also builds the layers on the first call).
        if self.embedding is not None:
            x = self.embedding(inputs)                                  # [B, T, E]
        else:
            x = tf.one_hot(inputs, self.vocab_size)                     # [B, T, V]
        n, new_state = self.cell.state_size, []
        for i, layer in enumerate(self.rnn_layers):
            if i > 0:
                x = self.dropout(i, x, training, time_axis=1)           # x: [B, T, H]
            x, *layer_state = layer(x, initial_state=list(state[i * n:(i + 1) * n]),
                                    training=training)                  # x: [B, T, H]
            new_state.extend(layer_state)
        x = self.dropout(self.config.num_layers, tf.transpose(x, [1, 0, 2]), training)
        return tf.transpose(self.logits(x), [1, 0, 2]), new_state       # [B, T, V]
