"""Measure a model on a text: one stream from a zero state, the state carried across windows."""

import math

import numpy as np
import tensorflow as tf

from tfcharrnn import steps


def stream_loss(model, ids: np.ndarray, window: int) -> dict:
    """Scores ids[1:] given everything before, as one stream (batch of 1).

    Args:
      model: a back-end.
      ids: int32 [N] token ids, N >= 2.
      window: tokens per compiled forward call; only speed depends on it.
    Returns:
      dict with loss_nats_per_token, bits_per_token, perplexity, tokens (= N - 1) and
      total_nats.
    """
    eval_fn = tf.function(lambda x, y, s: steps.eval_step(model, x, y, s), reduce_retracing=True)
    state = model.initial_state(1)
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, window):
        x = ids[start:start + window][None, :]                # [1, <=window]
        y = ids[start + 1:start + window + 1][None, :]
        x = x[:, :y.shape[1]]
        loss_sum, n, state = eval_fn(x, y, state)
        total += float(loss_sum)
        count += int(n)
    loss = total / count
    return {"loss_nats_per_token": loss, "bits_per_token": loss / math.log(2.0),
            "perplexity": math.exp(loss), "tokens": count, "total_nats": total}
