"""The train step and the evaluation step, shared by every back-end and every strategy.

Both are plain functions of (model, optimizer, batch, state): no globals, no hidden state, so
the same function is compiled with `tf.function` on one device, or runs in every replica under
`strategy.run` with one carried state per replica (`tfcharrnn.distribute`). On one device the
replica context is TensorFlow's default one (one replica), and the step is the plain one.
"""

import keras
import tensorflow as tf

from tfcharrnn import averaging
from tfcharrnn.errors import RunError


def token_losses(logits, targets):
    """Cross-entropy in nats per token. logits [B, T, V], targets int32 [B, T] -> [B, T]."""
    if logits.dtype in (tf.float16, tf.bfloat16):
        logits = tf.cast(logits, tf.float32)  # the softmax of half-precision logits is lossy
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)


class Adam(keras.optimizers.Adam):
    """Keras' Adam, applying gradients that `train_step` has already summed over replicas.

    In a replica context Keras 3 sums the gradients over replicas inside `apply_gradients`
    (`_all_reduce_sum_gradients`), after any `clipnorm`/`global_clipnorm` it applies, so each
    replica's gradient would be clipped on its own. `train_step` sums first, then clips the
    global norm of the whole gradient, then applies through this class, which skips the second
    sum. The hook is private: setup.py pins the Keras range and a test checks that two
    replicas train the same model as one device.
    """

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return grads_and_vars

    @property
    def loss_scale(self):
        """The loss scale variable under --precision=mixed_float16, else None."""
        scaling = getattr(self, "_scaling", None)
        return None if scaling is None else scaling.scale

    def enable_loss_scaling(self, initial: float = 2.0 ** 15, growth_interval: int = 2000):
        """Dynamic loss scaling for float16 products, whose gradients would underflow: the
        loss is multiplied by `loss_scale` before differentiating and the gradients divided
        by it; a step whose gradients are not finite is skipped and halves the scale, and
        `growth_interval` finite steps in a row double it (Micikevicius et al., 2018; what
        Keras' LossScaleOptimizer does). Not needed for bfloat16, whose range is float32's.
        The scale lives in a plain object, which checkpoints do not track, so a checkpoint is
        the same in every precision; a resumed run starts from `initial` again."""
        self._scaling = _LossScale(initial, growth_interval)

    @property
    def weight_average(self):
        """The `averaging.WeightAverage` under --ema_decay, else None."""
        return getattr(self, "_average", None)

    def enable_weight_average(self, named: dict, decay: float):
        """Keeps an EMA of the weights `named` ({name: variable}), updated after every
        step (see averaging.py). A plain attribute, not tracked by the optimizer: the run's
        checkpoint saves the averages under their own names."""
        self._average = averaging.WeightAverage(named, decay)

    def apply_if_finite(self, grads, variables, finite):
        """Applies the (unscaled) gradients if `finite`, and updates the loss scale."""
        tf.cond(finite, lambda: self._apply_and_true(grads, variables),
                lambda: tf.constant(False))
        self._scaling.update(finite)

    def _apply_and_true(self, grads, variables):
        self.apply_gradients(zip(grads, variables))
        return tf.constant(True)


class _LossScale:
    """The state of dynamic loss scaling (see `Adam.enable_loss_scaling`)."""

    def __init__(self, initial: float, growth_interval: int):
        every = tf.VariableAggregation.ONLY_FIRST_REPLICA  # the same value in every replica
        self.scale = tf.Variable(initial, trainable=False, dtype=tf.float32, aggregation=every,
                                 name="loss_scale")
        self.good_steps = tf.Variable(0, trainable=False, dtype=tf.int64, aggregation=every,
                                      name="loss_scale_good_steps")
        self.growth_interval = growth_interval

    def update(self, finite):
        good = tf.where(finite, self.good_steps + 1, tf.zeros_like(self.good_steps))
        grow = good >= self.growth_interval
        scale = self.scale
        self.scale.assign(tf.where(finite, tf.where(grow, scale * 2.0, scale), scale / 2.0))
        self.good_steps.assign(tf.where(grow, tf.zeros_like(good), good))


def is_bias(variable) -> bool:
    """Keras names its biases "bias" (the GRU's is [2, 3H]); the manual back-end b_*."""
    name = variable.name.split(":")[0].split("/")[-1]
    return name == "bias" or name.startswith("b_")


def make_optimizer(learning_rate: float, weight_decay: float = 0.0, variables=(),
                   loss_scaling: bool = False) -> Adam:
    """Adam; with weight_decay, decoupled decay (AdamW) of the weights among `variables` but
    not the biases, the same in both back-ends; with loss_scaling, dynamic loss scaling (for
    --precision=mixed_float16; see `Adam.enable_loss_scaling`)."""
    if not hasattr(keras.optimizers.Adam, "_all_reduce_sum_gradients"):
        raise RunError(f"Keras {keras.__version__} is not supported (its optimizer no longer "
                       f"has _all_reduce_sum_gradients); install the Keras that setup.py pins: "
                       f"pip install .")
    optimizer = Adam(learning_rate=learning_rate, weight_decay=weight_decay or None)
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_list=[v for v in variables if is_bias(v)])
    if loss_scaling:
        optimizer.enable_loss_scaling()
    return optimizer


def train_step(model, optimizer, inputs, targets, state, grad_clip: float):
    """One step of truncated BPTT, in one replica (or on the one device).

    Args:
      model: a back-end (see `tfcharrnn.models`).
      optimizer: from `make_optimizer`; its learning rate is set by the caller.
      inputs, targets: int32 [b, T], this replica's rows of the global batch [B, T]
        (b = B / replicas); targets are inputs shifted one token ahead.
      state: this replica's carried state (list of [b, H]) from the previous window.
      grad_clip: global-norm clipping threshold; 0 disables clipping.
    Returns:
      loss (this replica's share of the global mean in nats per token: summed over replicas
      it is the mean over the global batch), grad_norm (global norm of the whole gradient
      before clipping, the same in every replica), new state with no gradient path back
      into this window.
    """
    ctx = tf.distribute.get_replica_context()
    replicas = ctx.num_replicas_in_sync
    # Every replica has b x T tokens, so the global batch has b x T x replicas.
    global_tokens = tf.cast(tf.size(targets) * replicas, tf.float32)
    loss_scale = getattr(optimizer, "loss_scale", None)   # mixed_float16 only
    with tf.GradientTape() as tape:
        logits, new_state = model(inputs, state, training=True)  # [b, T, V]
        loss = tf.reduce_sum(token_losses(logits, targets)) / global_tokens
        scaled = loss if loss_scale is None else loss * loss_scale
    variables = model.trainable_variables
    grads = tape.gradient(scaled, variables)
    if replicas > 1:
        # Dense first: all-reducing IndexedSlices (the embedding's gradient) concatenates
        # rows, and Adam's square and the global norm would then see unmerged duplicate rows.
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                               [tf.convert_to_tensor(g) for g in grads])
    if loss_scale is not None:
        grads = [tf.convert_to_tensor(g) / loss_scale for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
    if grad_clip > 0:
        grads, grad_norm = tf.clip_by_global_norm(grads, grad_clip)
    else:
        grad_norm = tf.linalg.global_norm(grads)
    if loss_scale is None:
        optimizer.apply_gradients(zip(grads, variables))
    else:
        optimizer.apply_if_finite(grads, variables, finite)
    average = getattr(optimizer, "weight_average", None)     # --ema_decay
    if average is not None:
        average.update()
    # Truncation: the next window starts from this state, but no gradient flows back here.
    return loss, grad_norm, [tf.stop_gradient(s) for s in new_state]


def eval_step(model, inputs, targets, state):
    """Forward only. Returns (sum of token losses in nats, token count, new state)."""
    logits, new_state = model(inputs, state, training=False)
    losses = token_losses(logits, targets)
    return tf.reduce_sum(losses), tf.size(targets), new_state


def compile_train_step(model, optimizer, grad_clip: float):
    """`train_step` bound to one model and optimizer, compiled once (one device)."""
    return tf.function(lambda x, y, s: train_step(model, optimizer, x, y, s, grad_clip))


def compile_eval_step(model):
    return tf.function(lambda x, y, s: eval_step(model, x, y, s))
