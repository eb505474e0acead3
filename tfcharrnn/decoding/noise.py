"""Counter-based random numbers for sampling: a stream's draws depend on its seed alone.

Every stream (a row of a batch) has a 32-bit key made from the request's seed and the row's
index within the request, `row_keys(seed, rows)`. Its token t is drawn with the uniform numbers
u[v] = bits(key, t, v) for v = 0..V-1, `uniform(keys, counters, V)`. Nothing else enters: not
the row's position in the batch, the other rows, the batch size or how the tokens are chunked
into calls, so a request draws the same numbers alone or batched with others (the server), in
one call or many.

The bits are a hash of 32-bit words, written with operations that any language has (xor,
shifts, multiplication modulo 2^32; JavaScript's Math.imul), so another runtime can draw the
very same numbers. `mix` is Chris Wellons' lowbias32 integer hash (a bijection of the 32-bit
words with low bias); `combine(a, b) = mix(a ^ mix(b + 0x9e3779b9))`:
  key(seed, r)  = combine(combine(seed_lo, seed_hi), r)    seed as two's-complement int64
  bits(k, t, v) = combine(combine(k, t), v)
  u             = ((bits >> 9) + 0.5) / 2^23              in (0, 1), exact in float32
"""

import numpy as np
import tensorflow as tf

_GOLDEN = 0x9E3779B9


def _u32(value):
    return tf.constant(value, tf.uint32)


def mix(x):
    """lowbias32: uint32 -> uint32 (element-wise)."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(16)))
    x = x * _u32(0x7FEB352D)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(15)))
    x = x * _u32(0x846CA68B)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(16)))


def combine(a, b):
    """Two uint32 words (broadcast) -> one."""
    return mix(tf.bitwise.bitwise_xor(a, mix(b + _u32(_GOLDEN))))


def row_keys(seed, rows: int):
    """The keys of rows 0..rows-1 of a request with this seed (a Python int or an int64
    scalar tensor; any int64, negative ones included) -> uint32 [rows]."""
    seed = tf.cast(seed, tf.int64)
    low = tf.cast(tf.bitwise.bitwise_and(seed, 0xFFFFFFFF), tf.uint32)
    high = tf.cast(tf.bitwise.bitwise_and(tf.bitwise.right_shift(seed, 32), 0xFFFFFFFF),
                   tf.uint32)
    return combine(combine(low, high), tf.cast(tf.range(rows), tf.uint32))


def uniform(keys, counters, size: int):
    """Uniform numbers in (0, 1) for token `counters` [B] (int64, or int32) of the streams
    with `keys` [B] (uint32): float32 [B, size], row b the same whatever the other rows."""
    token_keys = combine(keys, tf.cast(counters, tf.uint32))                 # [B]
    bits = combine(token_keys[:, None], tf.cast(tf.range(size), tf.uint32)[None, :])   # [B, V]
    return (tf.cast(tf.bitwise.right_shift(bits, _u32(9)), tf.float32) + 0.5) * (2.0 ** -23)


# ---- the same keys in NumPy, for callers outside a graph (no TensorFlow op per request) ----

def _mix_np(x):
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def _combine_np(a, b):
    return _mix_np(a ^ _mix_np(b + np.uint32(_GOLDEN)))


def row_keys_np(seed: int, rows: int) -> np.ndarray:
    """`row_keys` in NumPy: uint32 [rows]."""
    seed = int(seed)
    low = np.array([seed & 0xFFFFFFFF], np.uint32)
    high = np.array([(seed >> 32) & 0xFFFFFFFF], np.uint32)
    with np.errstate(over="ignore"):
        return _combine_np(_combine_np(low, high), np.arange(rows, dtype=np.uint32))
