"""Continuous batching (decoding/streams.py) and the jobs it runs (decoding/jobs.py), on a
fake model whose logits depend on everything drawn so far."""

import numpy as np
import pytest
import tensorflow as tf

from tfcharrnn.decoding.jobs import CharJob
from tfcharrnn.decoding.sampling import Sampler, Settings
from tfcharrnn.decoding.streams import Decoder, bucket
from tfcharrnn.vocab import CharVocab

VOCAB = CharVocab("abcdef")
V = len(VOCAB)


def history_step(tokens, state, weights=()):
    """Logits favour (sum of all tokens so far) mod V: a row's future depends on its past."""
    total = state[0][:, 0] + tf.cast(tokens, tf.float32)
    favoured = tf.cast(tf.math.floormod(total, V), tf.int32)
    return 1.5 * tf.one_hot(favoured, V), [total[:, None]]


def zeros(rows):
    return [tf.zeros([rows, 1])]


def char_job(prime="ab", rows=1, length=40, method="sample", seed=0, **kw):
    return CharJob(VOCAB, prime, rows, length, Settings.of(method, top_k=2, rows=rows),
                   seed=seed, **kw)


def decoder(chunk=8, max_rows=0):
    return Decoder(Sampler(history_step, chunk=chunk), zeros, max_rows=max_rows)


def test_bucket_sizes():
    assert [bucket(n) for n in (1, 2, 3, 4, 5, 8, 9, 16, 17, 32, 33)] == \
        [1, 2, 4, 4, 8, 8, 16, 16, 24, 32, 40]


def test_jobs_joining_at_different_times_draw_what_they_draw_alone():
    alone = {}
    for seed, method in [(1, "sample"), (2, "top_k"), (3, "argmax"), (4, "sample")]:
        job = char_job(rows=2, seed=seed, method=method)
        decoder(chunk=64).run(job)
        alone[seed] = job.texts
        assert all(len(t) == 2 + 40 for t in job.texts)
    assert alone[1][0] != alone[1][1] and alone[1] != alone[4]
    # The same four jobs, chunks of 8 tokens, joining one step apart
    d = decoder(chunk=8)
    jobs = {}
    for seed, method in [(1, "sample"), (2, "top_k"), (3, "argmax"), (4, "sample")]:
        jobs[seed] = char_job(rows=2, seed=seed, method=method)
        d.add(jobs[seed])
        d.step()
    while d.busy:
        d.step()
    assert {seed: job.texts for seed, job in jobs.items()} == alone


def test_stop_length_and_listener():
    full = char_job(prime="a", length=200, seed=5)
    decoder(chunk=64).run(full)
    text = full.texts[0]
    assert len(text) == 201
    at = next(i for i in range(30, 200) if text[i:i + 2] not in text[1:i + 1])
    stop = text[at:at + 2]                     # a marker that first appears at `at`
    pieces = []
    job = char_job(prime="a", length=200, seed=5, stop=stop,
                   listener=lambda row, text, replace: pieces.append((row, text, replace)))
    decoder(chunk=7).run(job)
    assert job.texts[0] == text[:at]
    assert "a" + "".join(p for _, p, _ in pieces) == job.texts[0]
    assert len(pieces) > 3 and all(row == 0 and not replace for row, _, replace in pieces)


def test_a_cancelled_job_leaves_and_the_others_are_unaffected():
    done = []
    reference = char_job(length=60, seed=8)
    decoder().run(reference)
    d = decoder(chunk=4)
    keep = char_job(length=60, seed=8)
    cancel = char_job(rows=3, length=60, seed=9)
    cancel.on_done = lambda: done.append("cancelled")
    d.add(keep)
    d.add(cancel)
    d.step()
    assert d.running_rows == 4
    cancel.cancelled = True
    d.step()
    assert d.running_rows == 1 and done == ["cancelled"]
    while d.busy:
        d.step()
    assert keep.texts == reference.texts and done == ["cancelled"]
    assert all(len(t) < 2 + 60 for t in cancel.texts)


def test_max_rows_makes_a_job_wait_for_room():
    d = decoder(chunk=8, max_rows=3)
    first, second = char_job(rows=2, length=16, seed=1), char_job(rows=2, length=16, seed=2)
    d.add(first)
    d.add(second)
    while not first.done:
        d.step()
        assert d.running_rows == (0 if first.done else 2)
        assert d.waiting_jobs == 1 and d.peak_rows == 2   # no room beside the first job
    d.step()
    assert d.running_rows == 2 and d.waiting_jobs == 0
    while d.busy:
        d.step()
    alone = char_job(rows=2, length=16, seed=2)
    decoder().run(alone)
    assert second.texts == alone.texts
    with pytest.raises(ValueError, match="never fits"):
        d.add(char_job(rows=4))


def test_rows_of_a_job_draw_independently_and_by_row_index():
    job = char_job(rows=4, length=30, seed=3)
    decoder().run(job)
    assert len(set(job.texts)) == 4
    two = char_job(rows=2, length=30, seed=3)  # the first two rows of the same seed
    decoder().run(two)
    assert two.texts == job.texts[:2]
    np.testing.assert_array_equal(two.prime_ids, job.prime_ids[:2])
