"""Generate tokens from any model through a step function.

The sampler sees only `step_fn(tokens [B] int32, state, weights) -> (logits [B, V], state)`
and `weights_fn() -> weights` (any nest of tensors, computed once per `generate()` call and
passed into every compiled call; a model folds its weights there, `models/inference.py`), so
it works with every back-end and is tested with fake logits. Tokens are drawn inside a loop
compiled with XLA, `chunk` tokens per call, so Python is entered once per chunk rather than
once per token, and XLA fuses each step's small ops, which are most of the time of a
one-stream step (2 x 512 LSTM, one stream: ~3,600 tokens/s from per-token graph calls ->
~6,000 through `generate()` here).

Drawing is the Gumbel-max trick: argmax(logits / T + g) with g = -log(-log(u)), u ~ U(0, 1)
per token, picks token k with probability softmax(logits / T)_k exactly, and unlike
`tf.random.categorical` it compiles under XLA. Randomness is stateless: token t of a run is
drawn with the seed fold_in(seed, t). The same seed therefore gives the same text whatever the
chunk size.
"""

import numpy as np
import tensorflow as tf

from tfcharrnn.errors import UsageError


def nucleus(logits, top_p: float):
    """Keeps the nucleus of each row: the smallest set of most likely tokens whose probability
    adds up to at least top_p (Holtzman et al., 2020); the others get -inf. [B, V] -> [B, V].

    The most likely token is always kept; tokens tied with the least likely kept one are kept
    too (a threshold on the logit, so no scatter back from sorted order)."""
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")               # [B, V]
    before = tf.cumsum(tf.nn.softmax(ranked), axis=-1, exclusive=True)      # mass above each
    keep = before < top_p
    threshold = tf.reduce_min(tf.where(keep, ranked, tf.constant(np.inf, ranked.dtype)),
                              axis=-1, keepdims=True)                       # [B, 1]
    return tf.where(logits < threshold, tf.constant(-np.inf, logits.dtype), logits)


def choose_next(logits, method: str, temperature: float, top_k: int, seed, banned=None,
                top_p: float = 1.0):
    """Picks the next token of each row.

    Args:
      logits: [B, V] unnormalized log-probabilities.
      method: "argmax", "sample" (from softmax(logits / temperature)), "top_k" (sample among
        the top_k most likely only) or "top_p" (sample within the nucleus of mass top_p of
        softmax(logits / temperature), see `nucleus`).
      seed: int64 [2] stateless seed.
      banned: optional bool [V], tokens never to pick (their probability is set to zero
        before sampling, so nothing is redrawn).
    Returns:
      int32 [B] token ids.
    """
    logits = tf.cast(logits, tf.float32)  # temperature division in float32, whatever the model
    if banned is not None:
        logits = tf.where(banned, tf.constant(-np.inf, tf.float32), logits)
    if method == "argmax":
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    logits = logits / temperature
    if method == "top_k":
        kth_best = tf.math.top_k(logits, k=top_k).values[:, -1:]           # [B, 1]
        logits = tf.where(logits < kth_best, tf.constant(-np.inf, logits.dtype), logits)
    elif method == "top_p":
        logits = nucleus(logits, top_p)
    uniform = tf.random.stateless_uniform(tf.shape(logits), seed,
                                          minval=np.finfo(np.float32).tiny, maxval=1.0)
    gumbel = -tf.math.log(-tf.math.log(uniform))                            # [B, V]
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)


class Sampler:
    """Feeds prime tokens, then samples, in compiled chunks.

    Usage:
      step_fn, weights_fn = inference.step_functions(model)
      sampler = Sampler(step_fn, "sample", temperature=0.8, seed=1, weights_fn=weights_fn)
      for tokens in sampler.generate(prime_ids, state, length=500):   # each [B, <=chunk]
          ...
    """

    def __init__(self, step_fn, method: str = "sample", temperature: float = 1.0,
                 top_k: int = 0, seed: int = 0, chunk: int = 256, banned_ids=(),
                 weights_fn=tuple, top_p: float = 1.0):
        if method not in ("argmax", "sample", "top_k", "top_p"):
            raise UsageError(f"unknown sampling method {method!r}")
        self._step_fn, self._weights_fn = step_fn, weights_fn
        self._method, self._temperature, self._top_k = method, temperature, top_k
        self._top_p = top_p
        self.seed = seed
        self._banned = list(banned_ids)
        self.chunk = chunk
        # The prime's length varies from call to call: a plain graph, not an XLA compile each.
        self._feed = tf.function(self._feed_impl)
        self._sample = tf.function(self._sample_impl, jit_compile=True)

    def _feed_impl(self, ids, state, weights):
        """Runs ids [B, P] (P >= 1) through the model; returns logits after the last one."""
        logits, state = self._step_fn(ids[:, 0], state, weights)
        for t in tf.range(1, tf.shape(ids)[1]):
            logits, state = self._step_fn(ids[:, t], state, weights)
        return logits, state

    def _sample_impl(self, logits, state, weights, seed, start, n):
        """Draws n <= chunk tokens; token i uses the seed fold_in(seed, start + i).

        Returns tokens [B, chunk] of which the first n are drawn (a fixed shape, so that XLA
        compiles this once, not once per n), the logits after the last token, the state.
        """
        tokens = tf.TensorArray(tf.int32, size=self.chunk, element_shape=logits.shape[:1])
        banned = None
        if self._banned:
            banned = tf.scatter_nd(tf.constant([[i] for i in self._banned]),
                                   tf.ones([len(self._banned)], tf.bool), tf.shape(logits)[-1:])
        for i in tf.range(n):
            step_seed = tf.random.experimental.stateless_fold_in(seed, start + tf.cast(i, tf.int64))
            token = choose_next(logits, self._method, self._temperature, self._top_k, step_seed,
                                banned, self._top_p)
            tokens = tokens.write(i, token)
            logits, state = self._step_fn(token, state, weights)
        return tf.transpose(tokens.stack()), logits, state   # [B, chunk]

    def prime(self, prime_ids, state):
        """Runs prime_ids [B, P] (P >= 1) through the model from `state`; returns the logits
        after the last one [B, V] and the state."""
        return self._feed(tf.convert_to_tensor(prime_ids, tf.int32), state, self._weights_fn())

    def generate(self, prime_ids, state, length: int, seed: int = None):
        """Yields int32 NumPy arrays [B, k] of new tokens, `length` tokens in all.

        Args:
          prime_ids: int32 [B, P] with P >= 1: the text to continue (its state warms up).
          state: the model state before the prime (usually zeros).
          seed: overrides the sampler's seed for this call (no retracing).
        """
        weights = self._weights_fn()
        logits, state = self._feed(tf.convert_to_tensor(prime_ids, tf.int32), state, weights)
        yield from self.continue_from(logits, state, length, seed, weights)

    def continue_from(self, logits, state, length: int, seed: int = None, weights=None):
        """Like `generate`, from the logits [B, V] and state a `prime` call returned."""
        seed = tf.constant([self.seed if seed is None else seed, 0], tf.int64)
        weights = self._weights_fn() if weights is None else weights
        done = 0
        while done < length:
            n = min(self.chunk, length - done)
            tokens, logits, state = self._sample(logits, state, weights, seed,
                                                 tf.constant(done, tf.int64), tf.constant(n))
            done += n
            yield tokens.numpy()[:, :n]


class StopAt:
    """Cuts a stream of text pieces at the first occurrence of `stop` (which is not printed).

    feed(piece) returns the text that is final so far: up to len(stop) - 1 characters are held
    back, since they may begin the marker in the next piece.
    """

    def __init__(self, stop: str):
        self.stop, self.pending, self.done = stop, "", False

    def feed(self, piece: str) -> str:
        if self.done:
            return ""
        if not self.stop:
            return piece
        self.pending += piece
        at = self.pending.find(self.stop)
        if at >= 0:
            self.done = True
            out, self.pending = self.pending[:at], ""
            return out
        keep = len(self.stop) - 1
        cut = len(self.pending) - keep
        out, self.pending = self.pending[:max(cut, 0)], self.pending[max(cut, 0):]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.done else self.pending), ""
        return out
