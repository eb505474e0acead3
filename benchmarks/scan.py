"""minGRU's recurrence h_t = a_t h_{t-1} + b_t two ways: step by step (what
`cells/mingru.py` runs) and as a parallel prefix scan (Hillis-Steele: log2 T passes over all of
[T, B, H]), forward and backward, in a compiled function.

    python benchmarks/scan.py

Both use the same backward pass (the scan reversed), so the difference is the scan itself.
Prints milliseconds per forward + backward, median of 30 after 5 warm-up calls. Not a test.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from tfcharrnn.models.cells import mingru  # noqa: E402


def parallel_scan(a, b, h0):
    """The same values as mingru._scan: h0 folded into the first step, then for offsets
    1, 2, 4, ...: b_t += a_t b_{t-k}, a_t *= a_{t-k}."""
    b = tf.concat([a[:1] * h0[None] + b[:1], b[1:]], axis=0)
    steps = tf.shape(a)[0]

    def body(k, a, b):
        b = b + a * tf.concat([tf.zeros_like(b[:k]), b[:-k]], axis=0)
        a = a * tf.concat([tf.ones_like(a[:k]), a[:-k]], axis=0)
        return k * 2, a, b

    _, _, b = tf.while_loop(lambda k, *_: k < steps, body, (tf.constant(1), a, b))
    return b


def timed(scan, steps, batch, hidden):
    a = tf.random.uniform([steps, batch, hidden])
    b = tf.random.normal([steps, batch, hidden])
    h0 = tf.zeros([batch, hidden])
    probe = tf.random.normal([steps, batch, hidden])

    @tf.function
    def run(a, b, h0):
        with tf.GradientTape() as tape:
            tape.watch([a, b, h0])
            loss = tf.reduce_sum(scan(a, b, h0) * probe)
        return tape.gradient(loss, [a, b, h0])

    for _ in range(5):
        run(a, b, h0)[0].numpy()
    times = []
    for _ in range(30):
        start = time.perf_counter()
        run(a, b, h0)[0].numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main():
    sequential, parallel = mingru.linear_scan, mingru.with_gradient(parallel_scan)
    a = tf.random.uniform([37, 3, 5])
    b, h0 = tf.random.normal([37, 3, 5]), tf.random.normal([3, 5])
    diff = float(tf.reduce_max(tf.abs(sequential(a, b, h0) - parallel(a, b, h0))))
    print(f"largest difference of the two scans' values: {diff:.1e}\n")
    print("| T x B x H | step by step, ms | parallel prefix scan, ms |\n|---|---:|---:|")
    for steps, batch, hidden in ((100, 64, 256), (100, 64, 512), (100, 64, 1024),
                                 (1000, 8, 256)):
        s, p = timed(sequential, steps, batch, hidden), timed(parallel, steps, batch, hidden)
        print(f"| {steps} x {batch} x {hidden} | {s:.2f} | {p:.2f} |")


if __name__ == "__main__":
    main()
