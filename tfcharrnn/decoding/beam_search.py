"""Beam search through a step function: the most likely continuations, not random ones.

Like `sampling.Sampler`, it sees only `step_fn(tokens [K] int32, state, weights) ->
(logits [K, V], state)` and `weights_fn()`, so it works with every back-end and is tested with
fake logits. The K beams are the K rows of one batch; each step is one compiled call (reorder
the state rows to follow the beams, the model's step, the log-softmax), and choosing the K best
of the K x V extensions happens in NumPy between calls.

Scores are log-probabilities in nats, summed over the generated tokens (the prime is given,
not scored).
  - `continuations(prime, length)`: exactly `length` tokens; the K most likely sequences of
    that length the search kept, best first (char level).
  - `sentences(prime, end_id, ...)`: hypotheses end when they draw `end_id`; finished ones are
    ranked by the length-normalized score log P / n ** alpha (n generated tokens, the end token
    included; alpha = 0.7, the GNMT form without its constant): with alpha = 0 the shortest
    sentences would win, with 1 the score is the mean log-probability per token. The search
    stops when no unfinished beam can still beat the K-th finished one: a beam's log P only
    falls as it grows, so log P / max_length ** alpha bounds its normalized score.
Beam search is a heuristic: a wider beam usually, not provably, finds a more likely sequence.
"""

import numpy as np
import tensorflow as tf

from tfcharrnn.decoding import sampling

ALPHA = 0.7


class BeamSearch:

    def __init__(self, step_fn, width: int, weights_fn=tuple, banned_ids=()):
        self._step_fn, self._weights_fn = step_fn, weights_fn
        self.width = width
        self._banned = list(banned_ids)
        self._feed = tf.function(self._feed_impl, reduce_retracing=True)
        self._step = tf.function(self._step_impl, reduce_retracing=True)

    def _feed_impl(self, ids, state, weights):
        """ids [1, P] -> log-probabilities [1, V] of the next token, state."""
        logits, state = sampling.feed(self._step_fn, ids, state, weights)
        return tf.nn.log_softmax(tf.cast(logits, tf.float32)), state

    def _step_impl(self, tokens, state, weights, rows):
        """Reorders the state rows to follow their beams, then one step: [K] -> [K, V]."""
        state = [tf.gather(s, rows) for s in state]
        logits, state = self._step_fn(tokens, state, weights)
        return tf.nn.log_softmax(tf.cast(logits, tf.float32)), state

    def _start(self, prime_ids, state):
        weights = self._weights_fn()
        log_p, state = self._feed(tf.constant(np.asarray(prime_ids)[None], tf.int32), state,
                                  weights)
        return weights, log_p.numpy()[0], state

    def _ban(self, log_p, extra=()):
        banned = self._banned + list(extra)
        if banned:
            log_p = log_p.copy()
            log_p[..., banned] = -np.inf
        return log_p

    def _best(self, scores, k):
        """Indices of the k largest finite entries of a flat array, best first."""
        k = min(k, int(np.isfinite(scores).sum()))
        top = np.argpartition(-scores, k - 1)[:k] if k else np.array([], int)
        return top[np.argsort(-scores[top], kind="stable")]

    def continuations(self, prime_ids, state, length: int):
        """The most likely continuations of exactly `length` tokens after prime_ids [P].

        Args:
          state: the model state of one stream before the prime.
        Returns:
          [(tokens list, log-probability in nats)], at most `width`, best first.
        """
        weights, log_p, state = self._start(prime_ids, state)
        log_p = self._ban(log_p)
        seqs, scores = [[]], np.zeros(1)
        for t in range(length):
            total = scores[:, None] + log_p.reshape(len(seqs), -1)        # [beams, V]
            top = self._best(total.ravel(), self.width)
            beam, token = np.divmod(top, total.shape[1])
            seqs = [seqs[b] + [int(v)] for b, v in zip(beam, token)]
            scores = total.ravel()[top]
            if t == length - 1:
                break
            # Row i of the state is beam i's; the new beams continue rows `beam`.
            log_p, state = self._step(tf.constant(token, tf.int32), state, weights,
                                      tf.constant(beam))
            log_p = self._ban(log_p.numpy())
        return list(zip(seqs, scores.tolist()))

    def sentences(self, prime_ids, state, end_id: int, max_length: int, min_length: int = 0,
                  count: int = 1):
        """The `count` best finished hypotheses by log P / n ** ALPHA (see the module doc).

        A hypothesis may not end before `min_length` generated tokens (the end token is
        banned until then). If fewer than `count` end within `max_length` tokens, the best
        unfinished ones fill the list.
        Returns:
          [(tokens list without end_id, log-probability in nats, finished bool)], best first.
        """
        weights, log_p, state = self._start(prime_ids, state)
        seqs, scores = [[]], np.zeros(1)
        finished = []                                      # (normalized, tokens, log P)
        for t in range(max_length):
            step_log_p = self._ban(log_p.reshape(len(seqs), -1),
                                   [end_id] if t + 1 < min_length else [])
            total = scores[:, None] + step_log_p                          # [beams, V]
            ends = total[:, end_id].copy()
            for b in np.flatnonzero(np.isfinite(ends)):
                finished.append((ends[b] / (t + 1) ** ALPHA, seqs[b], float(ends[b])))
            total[:, end_id] = -np.inf
            top = self._best(total.ravel(), self.width)
            if not len(top):
                break
            beam, token = np.divmod(top, total.shape[1])
            seqs = [seqs[b] + [int(v)] for b, v in zip(beam, token)]
            scores = total.ravel()[top]
            finished.sort(key=lambda f: -f[0])
            finished = finished[:self.width]
            if (len(finished) >= self.width
                    and finished[-1][0] >= scores[0] / max_length ** ALPHA):
                break                              # no live beam can still reach the list
            if t == max_length - 1:
                break
            log_p, state = self._step(tf.constant(token, tf.int32), state, weights,
                                      tf.constant(beam))
            log_p = log_p.numpy()
        finished.sort(key=lambda f: -f[0])
        best = [(tokens, log_prob, True) for _, tokens, log_prob in finished[:count]]
        for b in range(len(seqs)):
            if len(best) >= count:
                break
            best.append((seqs[b], float(scores[b]), False))
        return best
