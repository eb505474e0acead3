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
`tf.random.categorical` it compiles under XLA. The numbers u come from `noise.py`: each row
(stream) has its own key, made from the seed and the row's index, and token t of a row is drawn
with the numbers of (key, t). Every row also has its own settings (`Settings`: temperature,
top-k, top-p, greedy), so rows of different requests run in one batch (`streams.py`), and a
row's text depends on its seed and settings only: not on the chunk size, the batch size or
the other rows.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfcharrnn.decoding import noise
from tfcharrnn.errors import UsageError
from tfcharrnn.models import inference

METHODS = ("argmax", "sample", "top_k", "top_p")


class Settings(NamedTuple):
    """How each row draws its next token; each field has one entry per row [B]."""
    temperature: np.ndarray  # float32: divides the logits (ignored by greedy rows)
    top_k: np.ndarray        # int32: sample among the top_k most likely only (0 = all)
    top_p: np.ndarray        # float32: sample within the nucleus of this mass (1 = all)
    greedy: np.ndarray       # bool: take the most likely token (argmax)

    @classmethod
    def of(cls, method: str, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
           rows: int = 1) -> "Settings":
        """The settings of `rows` rows that draw by `method` (one of METHODS)."""
        if method not in METHODS:
            raise UsageError(f"unknown sampling method {method!r}; use one of "
                             f"{', '.join(METHODS)}")
        return cls(temperature=np.full([rows], temperature if method != "argmax" else 1.0,
                                       np.float32),
                   top_k=np.full([rows], top_k if method == "top_k" else 0, np.int32),
                   top_p=np.full([rows], top_p if method == "top_p" else 1.0, np.float32),
                   greedy=np.full([rows], method == "argmax", bool))

    @classmethod
    def concat(cls, parts) -> "Settings":
        return cls(*(np.concatenate(field) for field in zip(*parts)))

    def take(self, rows) -> "Settings":
        return Settings(*(field[rows] for field in self))


# float32 rounding of a running sum over a vocabulary is well below this; a nucleus this much
# short of top_p is, for sampling, the same nucleus.
_MASS_ROUNDING = 1e-5


def _nucleus_threshold(ranked, top_p):
    """ranked [B, V] (descending) -> the least logit of each row's nucleus [B, 1]: the
    nucleus is the smallest set of most likely tokens whose probability adds up to at least
    top_p (Holtzman et al., 2020). The most likely token is always kept; tokens tied with the
    least likely kept one are kept too (a threshold on the logit, so no scatter back from
    sorted order). top_p: a number, or one per row [B]; a row with top_p >= 1 keeps all.
    A mass within _MASS_ROUNDING of top_p counts as reaching it: softmax and the running sum
    round differently from CPU to CPU (vector width), and a nucleus whose mass is exactly
    top_p (0.5 + 0.3 for 0.8) must not gain a token on one machine and not on another."""
    top_p = tf.reshape(tf.cast(top_p, tf.float32), [-1, 1])                 # [B or 1, 1]
    probs = tf.nn.softmax(tf.cast(ranked, tf.float32))                      # [B, V]
    before = tf.cumsum(probs, axis=-1, exclusive=True)                      # mass above each
    keep = (before < top_p - _MASS_ROUNDING) | (top_p >= 1.0)
    return tf.reduce_min(tf.where(keep, ranked, tf.constant(np.inf, ranked.dtype)),
                         axis=-1, keepdims=True)


def filtered(logits, top_k, top_p):
    """Logits [B, V] with the tokens outside each row's top_k (int [B], 0 = all) and nucleus
    (float [B], 1 = all) set to -inf."""
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")               # [B, V]
    kth_best = tf.gather(ranked, tf.maximum(top_k - 1, 0)[:, None], batch_dims=1)   # [B, 1]
    kth_best = tf.where(top_k[:, None] > 0, kth_best, tf.constant(-np.inf, logits.dtype))
    threshold = tf.maximum(kth_best, _nucleus_threshold(ranked, top_p))
    return tf.where(logits < threshold, tf.constant(-np.inf, logits.dtype), logits)


def choose_next(logits, settings: Settings, uniform, banned=None):
    """Picks the next token of each row.

    Args:
      logits: [B, V] unnormalized log-probabilities.
      settings: the rows' `Settings` (tensors or arrays, [B] each).
      uniform: float32 [B, V] numbers in (0, 1) (`noise.uniform`), used by non-greedy rows.
      banned: optional bool [V], tokens never to pick (their probability is set to zero
        before sampling, so nothing is redrawn).
    Returns:
      int32 [B] token ids.
    """
    logits = tf.cast(logits, tf.float32)  # temperature division in float32, whatever the model
    if banned is not None:
        logits = tf.where(banned, tf.constant(-np.inf, tf.float32), logits)
    greedy = tf.convert_to_tensor(settings.greedy, tf.bool)
    top_k = tf.convert_to_tensor(settings.top_k, tf.int32)
    top_p = tf.convert_to_tensor(settings.top_p, tf.float32)
    temperature = tf.where(greedy, 1.0, tf.convert_to_tensor(settings.temperature, tf.float32))
    scaled = logits / temperature[:, None]
    # Sorting costs as much as a small model's step: only when some row filters.
    scaled = tf.cond(tf.reduce_any((top_k > 0) | (top_p < 1.0)),
                     lambda: filtered(scaled, top_k, top_p), lambda: scaled)
    gumbel = -tf.math.log(-tf.math.log(uniform))                            # [B, V]
    drawn = tf.argmax(scaled + gumbel, axis=-1, output_type=tf.int32)
    return tf.where(greedy, tf.argmax(logits, axis=-1, output_type=tf.int32), drawn)


def feed(step_fn, ids, state, weights):
    """Runs ids [B, P] (P >= 1) through step_fn (in a traced function); returns the logits
    after the last one [B, V] and the state. The one prompt loop of sampling, beam search and
    the exported model."""
    logits, state = step_fn(ids[:, 0], state, weights)
    _, logits, state = tf.while_loop(
        lambda t, *_: t < tf.shape(ids)[1],
        lambda t, logits, state: (t + 1, *step_fn(ids[:, t], state, weights)),
        (tf.constant(1), logits, list(state)))
    return logits, state


def draw_loop(step_fn, weights, logits, state, keys, counters, settings: Settings, n, size,
              banned=None, forced=None, forced_n=None):
    """n steps of every row (in a traced function): row b takes forced[b, i] while
    i < forced_n[b], then draws with its settings, its j-th drawn token with the numbers of
    (keys[b], counters[b] + j), and feeds each token to step_fn. The one draw loop of the
    sampler's compiled chunks and the exported model's `generate`.

    Args: logits [B, V] and state after each row's last token; keys uint32 [B]; counters
      int64 [B]; n int32 scalar <= size; banned bool [V] or None; forced int32 [B, size] and
      forced_n int64 [B], or None (nothing forced).
    Returns: tokens int32 [B, size] of which the first n are set, the logits, the state.
    """
    vocab = logits.shape[-1]

    def body(i, tokens, logits, state):
        step = tf.cast(i, tf.int64)
        if forced is None:
            token = choose_next(logits, settings, noise.uniform(keys, counters + step, vocab),
                                banned)
        else:
            drawn_before = counters + tf.maximum(step - forced_n, 0)           # [B]
            uniform = noise.uniform(keys, drawn_before, vocab)
            token = tf.where(step < forced_n, forced[:, i],
                             choose_next(logits, settings, uniform, banned))
        logits, state = step_fn(token, state, weights)
        return i + 1, tokens.write(i, token), logits, state

    # A loop on a tensor n with no maximum_iterations: XLA would take that as a constant and
    # compile again for each n (~0.5 s each).
    _, tokens, logits, state = tf.while_loop(
        lambda i, *_: i < n, body,
        (tf.constant(0), tf.TensorArray(tf.int32, size=size, element_shape=logits.shape[:1]),
         logits, list(state)))
    return tf.transpose(tokens.stack()), logits, state                   # [B, size]


def for_model(model, *args, **kwargs) -> "Sampler":
    """A `Sampler` over a model's folded one-token step (`models/inference.py`):
    Sampler(step, *args, weights_fn=..., **kwargs)."""
    step, weights_fn = inference.step_functions(model)
    return Sampler(step, *args, weights_fn=weights_fn, **kwargs)


class Sampler:
    """Feeds prime tokens, then samples, in compiled chunks.

    Usage:
      sampler = for_model(model, "sample", temperature=0.8, seed=1)
      for tokens in sampler.generate(prime_ids, state, length=500):   # each [B, <=chunk]
          ...
    The method, temperature, top_k, top_p and seed given here are what `generate` uses; `draw`
    takes each row's own (the server's batches, `streams.py`). A prime is fed inside the same
    compiled loop as the draws (its tokens are "forced"), so a row can start while others are
    half-way through theirs.
    """

    def __init__(self, step_fn, method: str = "sample", temperature: float = 1.0,
                 top_k: int = 0, seed: int = 0, chunk: int = 256, banned_ids=(),
                 weights_fn=tuple, top_p: float = 1.0):
        Settings.of(method)  # an unknown method is an error here, not at the first draw
        self._step_fn, self._weights_fn = step_fn, weights_fn
        self._method, self._temperature, self._top_k = method, temperature, top_k
        self._top_p = top_p
        self.seed = seed
        self._banned = list(banned_ids)
        self.chunk = chunk
        # The prime's length varies from call to call: a plain graph with relaxed shapes, not
        # an XLA compile each (`prime`: the interactive prompt and beam search).
        self._feed = tf.function(self._feed_impl, reduce_retracing=True)
        self._draw = tf.function(self._draw_impl, jit_compile=True)
        # One concrete function per batch shape: calling it skips tf.function's matching of
        # the arguments to a trace, which took longer than a one-stream chunk's arithmetic.
        self._compiled = {}
        self._vocab_size = None

    def settings(self, rows: int) -> Settings:
        """This sampler's own settings, for `rows` rows."""
        return Settings.of(self._method, self._temperature, self._top_k, self._top_p, rows)

    def _feed_impl(self, ids, state, weights):
        return feed(self._step_fn, ids, state, weights)

    def _draw_impl(self, logits, state, weights, rows_int, rows_float, forced, n):
        """Runs n <= chunk steps of every row; see `draw`. The rows' settings come packed
        (one tensor per dtype: fewer arguments make a cheaper call):
          rows_int int64 [B, 6]: key, counter, top_k, greedy, forced_n, reset;
          rows_float float32 [B, 2]: temperature, top_p.
        Returns tokens [B, chunk] of which the first n are set (a fixed shape: XLA compiles
        this once per batch size), the logits, the state.
        """
        keys = tf.cast(rows_int[:, 0], tf.uint32)
        counters, forced_n = rows_int[:, 1], rows_int[:, 4]
        start = rows_int[:, 5:6] > 0                              # [B, 1]: from a zero state
        state = [tf.where(start, tf.zeros_like(s), s) for s in state]
        settings = Settings(temperature=rows_float[:, 0], top_k=tf.cast(rows_int[:, 2], tf.int32),
                            top_p=rows_float[:, 1], greedy=rows_int[:, 3] > 0)
        banned = None
        if self._banned:
            banned = tf.scatter_nd(tf.constant([[i] for i in self._banned]),
                                   tf.ones([len(self._banned)], tf.bool), tf.shape(logits)[-1:])
        return draw_loop(self._step_fn, weights, logits, state, keys, counters, settings, n,
                         self.chunk, banned, forced, forced_n)

    def prime(self, prime_ids, state, weights=None):
        """Runs prime_ids [B, P] (P >= 1) through the model from `state`; returns the logits
        after the last one [B, V] and the state."""
        weights = self._weights_fn() if weights is None else weights
        return self._feed(tf.convert_to_tensor(prime_ids, tf.int32), state, weights)

    def weights(self):
        """The model's weights as the compiled calls take them (fold once, pass to many)."""
        return self._weights_fn()

    def vocab_size(self, state, weights) -> int:
        """The width of the step's logits (one eager step of one row, the first time)."""
        if self._vocab_size is None:
            logits, _ = self._step_fn(tf.zeros([1], tf.int32), [s[:1] for s in state], weights)
            self._vocab_size = int(logits.shape[-1])
        return self._vocab_size

    def draw(self, logits, state, keys, counters, settings: Settings, n: int, weights=None,
             forced=None, forced_n=None, reset=None):
        """Runs n <= chunk steps of every row. Row b first feeds the tokens
        forced[b, :forced_n[b]] (given, e.g. its prime: nothing is drawn), then draws, each
        token with the row's own settings; its j-th drawn token uses the numbers of
        (keys[b], counters[b] + j).

        Args:
          logits [B, V], state: after each row's last token (a row that starts with a forced
            token ignores its logits); keys uint32 [B] (`noise.row_keys`); counters [B]: how
            many tokens each row has drawn so far; settings: `Settings` (NumPy, [B] each);
          forced int [B, <= chunk] and forced_n int [B] (default: none);
          reset bool [B]: rows that start from a zero state (their `state` rows are ignored).
        Returns: tokens int32 NumPy [B, n] (row b's drawn ones from forced_n[b] on), the
        logits and the state after the last step.
        """
        rows = int(logits.shape[0])
        weights = self._weights_fn() if weights is None else weights
        forced_n = np.zeros(rows, np.int64) if forced_n is None else forced_n
        reset = np.zeros(rows, np.int64) if reset is None else reset
        if forced is not None and np.shape(forced)[1] == self.chunk:
            padded = np.asarray(forced, np.int32)       # the Decoder's: already full width
        else:                                           # the compiled call's fixed width
            padded = np.zeros([rows, self.chunk], np.int32)
            if forced is not None:
                padded[:, :np.shape(forced)[1]] = forced
        rows_int = np.stack([np.asarray(keys, np.uint32).astype(np.int64),
                             np.asarray(counters, np.int64), settings.top_k, settings.greedy,
                             forced_n, reset], axis=1).astype(np.int64)
        rows_float = np.stack([settings.temperature, settings.top_p], 1).astype(np.float32)
        args = (logits, list(state), weights, tf.constant(rows_int), tf.constant(rows_float),
                tf.constant(padded), tf.constant(n, tf.int32))
        shapes = (rows,) + tuple(tuple(s.shape) for s in state)
        compiled = self._compiled.get(shapes)
        if compiled is None:
            compiled = self._compiled[shapes] = self._draw.get_concrete_function(*args)
        tokens, logits, state = compiled(*args)
        return tokens.numpy()[:, :n], logits, state

    def generate(self, prime_ids, state, length: int, seed: int = None):
        """Yields int32 NumPy arrays [B, k] of new tokens, `length` tokens in all.

        Args:
          prime_ids: int32 [B, P] with P >= 1: the text to continue (its state warms up).
          state: the model state before the prime (usually zeros).
          seed: overrides the sampler's seed for this call (no retracing): row b draws with
            the key of row b of the seed (`noise.row_keys`).
        """
        weights = self._weights_fn()
        prime_ids = np.asarray(prime_ids, np.int32)
        logits = tf.zeros([prime_ids.shape[0], self.vocab_size(state, weights)])  # unused
        yield from self._chunks(logits, state, prime_ids, length, seed, weights)

    def continue_from(self, logits, state, length: int, seed: int = None, weights=None):
        """Like `generate`, from the logits [B, V] and state a `prime` call returned."""
        weights = self._weights_fn() if weights is None else weights
        no_prime = np.zeros([int(logits.shape[0]), 0], np.int32)
        yield from self._chunks(logits, state, no_prime, length, seed, weights)

    def _chunks(self, logits, state, prime_ids, length, seed, weights):
        """Feeds prime_ids [B, P] (P >= 0), then draws `length` tokens a chunk at a time."""
        rows = prime_ids.shape[0]
        keys = noise.row_keys_np(self.seed if seed is None else seed, rows)
        settings = self.settings(rows)
        done = fed = 0
        while done < length:
            forced = prime_ids[:, fed:fed + self.chunk]
            f = forced.shape[1]
            n = min(self.chunk, f + length - done)
            tokens, logits, state = self.draw(logits, state, keys, np.full([rows], done),
                                              settings, n, weights, forced, np.full([rows], f))
            fed += f
            if n > f:
                done += n - f
                yield tokens[:, f:]


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
