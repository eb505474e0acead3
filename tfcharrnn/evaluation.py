"""Measure a model on token ids, from a zero state.

`StreamScorer`: one stream (batch of 1), the state carried across windows: `evaluate` (a
whole file, exact and in order). `BatchScorer`: many short sequences at once, each on its own
from a zero state: `score` (one line or sentence per sequence).
"""

import math
import sys

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfcharrnn import steps


def _summary(total: float, count: int) -> dict:
    loss = total / count if count else float("nan")
    return {"total_nats": total, "tokens": count, "loss_nats_per_token": loss,
            "bits_per_token": loss / math.log(2.0),
            "perplexity": math.exp(loss) if count else float("nan")}


class StreamScorer:
    """Scores ids[1:] given everything before them, as one stream (batch of 1)."""

    def __init__(self, model, window: int = 1000):
        self.model = model
        self.window = window  # tokens per compiled forward call; only speed depends on it
        # Windows of different lengths would each trace a new graph; relax the shapes.
        self._eval = tf.function(lambda x, y, s: steps.eval_step(model, x, y, s),
                                 reduce_retracing=True)

    def score(self, ids: np.ndarray, progress: bool = False) -> dict:
        """Args: ids int32 [N]; progress: a progress bar on stderr (tokens) when the file
        spans more than a few windows. Returns total_nats (the negative log-probability of
        ids[1:]), tokens (N - 1), loss_nats_per_token, bits_per_token and perplexity."""
        state = self.model.initial_state(1)
        total, count = 0.0, 0
        bar = tqdm(total=len(ids) - 1, unit="tok", unit_scale=True, file=sys.stderr,
                   disable=not progress or len(ids) <= 5 * self.window,
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)
        for start in range(0, len(ids) - 1, self.window):
            y = ids[start + 1:start + self.window + 1][None, :]          # [1, <=window]
            x = ids[start:start + y.shape[1]][None, :]
            loss_sum, n, state = self._eval(x, y, state)
            total += float(loss_sum)
            count += int(n)
            bar.update(int(n))
        bar.close()
        return _summary(total, count)


class BatchScorer:
    """Scores many sequences at once, each as its own stream from a zero state.

    Sequences are sorted by length and cut into batches of up to `batch_size`, so each batch
    holds similar lengths; each batch is padded on the right to its longest sequence and the
    padded positions are masked out of the sums. Padding on the right cannot change a real
    position's loss: the model reads left to right. Every padded position costs as much as a
    real one, so batches are padded no further: from the second width met on,
    `reduce_retracing` traces one graph for any width, and padding to multiples of 16
    instead cost ~20% more time on lines of the corpus (mean 32 characters). Long
    batches run at most `window` columns per call with the state carried, as `StreamScorer`
    does, and fewer when the call's logits [rows, columns, vocabulary] would pass MAX_LOGITS.
    The result of each sequence equals `StreamScorer.score` of it alone up to float round-off
    (a batch's products add in another order).
    """

    # float32 logits in one call: 256 MB. At word level (8,000 words) 256 rows of 1,000
    # columns would be 8 GB; this cuts them into calls of 32 columns.
    MAX_LOGITS = 2 ** 26

    def __init__(self, model, window: int = 1000, batch_size: int = 1024):
        self.model = model
        self.window = window
        self.batch_size = batch_size
        self._eval = tf.function(self._eval_impl, reduce_retracing=True)

    def _eval_impl(self, x, y, mask, state):
        """x, y int32 [B, T], mask float32 [B, T] -> per-row loss sums [B], new state."""
        logits, state = self.model(x, state, training=False)
        return tf.reduce_sum(steps.token_losses(logits, y) * mask, axis=1), state

    def score(self, sequences: list) -> list:
        """Args: sequences, a list of int id arrays. Returns one `StreamScorer.score`-like
        dict per sequence (total_nats, tokens, ...), in the order given."""
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        totals = np.zeros(len(sequences))
        for first in range(0, len(order), self.batch_size):
            rows = order[first:first + self.batch_size]
            longest = max(len(sequences[i]) for i in rows)
            if longest < 2:
                continue                                         # nothing to predict
            width = longest - 1                                  # predicted positions
            x = np.zeros([len(rows), width], np.int32)
            y = np.zeros([len(rows), width], np.int32)
            mask = np.zeros([len(rows), width], np.float32)
            for r, i in enumerate(rows):
                ids = np.asarray(sequences[i])
                n = len(ids) - 1
                if n > 0:
                    x[r, :n], y[r, :n], mask[r, :n] = ids[:-1], ids[1:], 1.0
            state = self.model.initial_state(len(rows))
            sums = np.zeros(len(rows))
            columns = max(1, min(self.window,
                                 self.MAX_LOGITS // (len(rows) * self.model.vocab_size)))
            for start in range(0, width, columns):
                cols = slice(start, start + columns)
                part, state = self._eval(x[:, cols], y[:, cols], mask[:, cols], state)
                sums += part.numpy()
            totals[rows] = sums
        return [_summary(float(totals[i]), max(len(s) - 1, 0)) for i, s in enumerate(sequences)]
