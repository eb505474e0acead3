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


def choose_next(logits, method: str, temperature: float, top_k: int, seed, banned=None):
    """Picks the next token of each row.

    Args:
      logits: [B, V] unnormalized log-probabilities.
      method: "argmax", "sample" (from softmax(logits / temperature)) or "top_k" (sample among
        the top_k most likely only).
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
                 weights_fn=tuple):
        if method not in ("argmax", "sample", "top_k"):
            raise UsageError(f"unknown sampling method {method!r}")
        self._step_fn, self._weights_fn = step_fn, weights_fn
        self._method, self._temperature, self._top_k = method, temperature, top_k
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
                                banned)
            tokens = tokens.write(i, token)
            logits, state = self._step_fn(token, state, weights)
        return tf.transpose(tokens.stack()), logits, state   # [B, chunk]

    def generate(self, prime_ids, state, length: int, seed: int = None):
        """Yields int32 NumPy arrays [B, k] of new tokens, `length` tokens in all.

        Args:
          prime_ids: int32 [B, P] with P >= 1: the text to continue (its state warms up).
          state: the model state before the prime (usually zeros).
          seed: overrides the sampler's seed for this call (no retracing).
        """
        seed = tf.constant([self.seed if seed is None else seed, 0], tf.int64)
        weights = self._weights_fn()
        logits, state = self._feed(tf.convert_to_tensor(prime_ids, tf.int32), state, weights)
        done = 0
        while done < length:
            n = min(self.chunk, length - done)
            tokens, logits, state = self._sample(logits, state, weights, seed,
                                                 tf.constant(done, tf.int64), tf.constant(n))
            done += n
            yield tokens.numpy()[:, :n]

