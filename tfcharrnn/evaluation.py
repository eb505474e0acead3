"""Measure a model on token ids: one stream from a zero state, the state carried across
windows. Shared by `evaluate` (a whole file) and `score` (one sentence or line at a time)."""

import math

import numpy as np
import tensorflow as tf

from tfcharrnn import steps


class StreamScorer:
    """Scores ids[1:] given everything before them, as one stream (batch of 1)."""

    def __init__(self, model, window: int = 1000):
        self.model = model
        self.window = window  # tokens per compiled forward call; only speed depends on it
        # Windows of different lengths would each trace a new graph; relax the shapes.
        self._eval = tf.function(lambda x, y, s: steps.eval_step(model, x, y, s),
                                 reduce_retracing=True)

    def score(self, ids: np.ndarray) -> dict:
        """Args: ids int32 [N]. Returns total_nats (the negative log-probability of ids[1:]),
        tokens (N - 1), loss_nats_per_token, bits_per_token and perplexity."""
        state = self.model.initial_state(1)
        total, count = 0.0, 0
        for start in range(0, len(ids) - 1, self.window):
            y = ids[start + 1:start + self.window + 1][None, :]          # [1, <=window]
            x = ids[start:start + y.shape[1]][None, :]
            loss_sum, n, state = self._eval(x, y, state)
            total += float(loss_sum)
            count += int(n)
        loss = total / count if count else float("nan")
        return {"total_nats": total, "tokens": count, "loss_nats_per_token": loss,
                "bits_per_token": loss / math.log(2.0),
                "perplexity": math.exp(loss) if count else float("nan")}
