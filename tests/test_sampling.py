import numpy as np
import pytest
import tensorflow as tf

from tfcharrnn.sampling import Sampler, choose_next

V = 6


def successor_step(tokens, state):
    """Fake model: strongly predicts token + 1 (mod V); the state counts steps."""
    logits = 10.0 * tf.one_hot((tokens + 1) % V, V)
    return logits, [state[0] + 1.0]


def uniform_step(tokens, state):
    return tf.zeros([tf.shape(tokens)[0], V]), state


def generate(sampler, prime, length, batch=1):
    ids = np.tile(np.array(prime, np.int32)[None], [batch, 1])
    chunks = list(sampler.generate(ids, [tf.zeros([batch, 1])], length))
    return np.concatenate(chunks, axis=1)


def test_argmax_follows_the_model_after_the_prime():
    out = generate(Sampler(successor_step, "argmax"), [0, 1, 2], 8)
    np.testing.assert_array_equal(out[0], [(3 + i) % V for i in range(8)])


def test_state_is_carried_through_prime_and_generation():
    sampler = Sampler(successor_step, "argmax", chunk=3)
    ids = np.array([[0, 1]], np.int32)
    state = [tf.zeros([1, 1])]
    logits, state = sampler._feed(ids, state)
    assert float(state[0][0, 0]) == 2.0
    _, _, state = sampler._sample(logits, state, tf.constant([0, 0], tf.int64),
                                  tf.constant(0, tf.int64), tf.constant(5))
    assert float(state[0][0, 0]) == 7.0


def test_same_seed_same_text_whatever_the_chunk_size():
    a = generate(Sampler(uniform_step, "sample", seed=3, chunk=7), [0], 50)
    b = generate(Sampler(uniform_step, "sample", seed=3, chunk=64), [0], 50)
    c = generate(Sampler(uniform_step, "sample", seed=4, chunk=64), [0], 50)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(set(a[0].tolist())) > 3  # uniform logits really do sample


def test_top_k_only_draws_from_the_k_best():
    logits = tf.constant([[0.0, 5.0, 1.0, 4.0, 2.0, 3.0]] * 500)
    drawn = choose_next(logits, "top_k", 1.0, 2, tf.constant([1, 2], tf.int64)).numpy()
    assert set(drawn.tolist()) == {1, 3}
    greedy = choose_next(logits, "top_k", 1.0, 1, tf.constant([1, 2], tf.int64)).numpy()
    assert set(greedy.tolist()) == {1}


@pytest.mark.parametrize("temperature,expect_greedy", [(0.01, True), (100.0, False)])
def test_temperature(temperature, expect_greedy):
    logits = tf.constant([[0.0, 2.0, 1.0, 0.5, 0.2, 0.1]] * 500)
    drawn = choose_next(logits, "sample", temperature, 0, tf.constant([5, 6], tf.int64)).numpy()
    assert (set(drawn.tolist()) == {1}) == expect_greedy
