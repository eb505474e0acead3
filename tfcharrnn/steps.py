"""The train step and the evaluation step, shared by every back-end.

Both are plain functions of (model, optimizer, batch, state): no globals, no hidden state, so
the same function can be compiled with `tf.function`, or run per replica under
`strategy.run` with one carried state per replica.
"""

import tensorflow as tf


def token_losses(logits, targets):
    """Cross-entropy in nats per token. logits [B, T, V], targets int32 [B, T] -> [B, T]."""
    if logits.dtype in (tf.float16, tf.bfloat16):
        logits = tf.cast(logits, tf.float32)  # the softmax of half-precision logits is lossy
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)


def train_step(model, optimizer, inputs, targets, state, grad_clip: float):
    """One step of truncated BPTT.

    Args:
      model: a back-end (see `tfcharrnn.models`).
      optimizer: a Keras optimizer; its learning rate is set by the caller.
      inputs, targets: int32 [B, T]; targets are inputs shifted one token ahead.
      state: the carried state (list of [B, H]) from the previous window of the same streams.
      grad_clip: global-norm clipping threshold; 0 disables clipping.
    Returns:
      loss (mean nats per token), grad_norm (global norm before clipping), new state with no
      gradient path back into this window.
    """
    with tf.GradientTape() as tape:
        logits, new_state = model(inputs, state, training=True)  # [B, T, V]
        loss = tf.reduce_mean(token_losses(logits, targets))
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    if grad_clip > 0:
        grads, grad_norm = tf.clip_by_global_norm(grads, grad_clip)
    else:
        grad_norm = tf.linalg.global_norm(grads)
    optimizer.apply_gradients(zip(grads, variables))
    # Truncation: the next window starts from this state, but no gradient flows back here.
    return loss, grad_norm, [tf.stop_gradient(s) for s in new_state]


def eval_step(model, inputs, targets, state):
    """Forward only. Returns (sum of token losses in nats, token count, new state)."""
    logits, new_state = model(inputs, state, training=False)
    losses = token_losses(logits, targets)
    return tf.reduce_sum(losses), tf.size(targets), new_state


def compile_train_step(model, optimizer, grad_clip: float):
    """`train_step` bound to one model and optimizer, compiled once."""
    return tf.function(lambda x, y, s: train_step(model, optimizer, x, y, s, grad_clip))


def compile_eval_step(model):
    return tf.function(lambda x, y, s: eval_step(model, x, y, s))
