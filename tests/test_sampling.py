import numpy as np
import pytest
import tensorflow as tf

from tfcharrnn.decoding.sampling import Sampler, choose_next

V = 6


def successor_step(tokens, state, weights=()):
    """Fake model: strongly predicts token + 1 (mod V); the state counts steps."""
    logits = 10.0 * tf.one_hot((tokens + 1) % V, V)
    return logits, [state[0] + 1.0]


def uniform_step(tokens, state, weights=()):
    return tf.zeros([tf.shape(tokens)[0], V]), state


def generate(sampler, prime, length, batch=1):
    ids = np.tile(np.array(prime, np.int32)[None], [batch, 1])
    chunks = list(sampler.generate(ids, [tf.zeros([batch, 1])], length))
    return np.concatenate(chunks, axis=1)


def test_argmax_follows_the_model_after_the_prime():
    out = generate(Sampler(successor_step, "argmax"), [0, 1, 2], 8)
    np.testing.assert_array_equal(out[0], [(3 + i) % V for i in range(8)])


def test_state_is_carried_through_prime_and_generation():
    sampler = Sampler(successor_step, "argmax", chunk=5)
    ids = np.array([[0, 1]], np.int32)
    state = [tf.zeros([1, 1])]
    logits, state = sampler._feed(ids, state, ())
    assert float(state[0][0, 0]) == 2.0
    _, _, state = sampler._sample(logits, state, (), tf.constant([0, 0], tf.int64),
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


def test_sample_draws_each_token_with_its_softmax_probability():
    logits = np.array([0.0, 1.0, 2.0, -1.0, 0.5, 3.0], np.float32)
    for temperature in (1.0, 2.0):
        expected = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
        drawn = choose_next(tf.constant(np.tile(logits, [20000, 1])), "sample", temperature, 0,
                            tf.constant([7, 8], tf.int64)).numpy()
        freq = np.bincount(drawn, minlength=V) / len(drawn)
        # 20,000 draws: the standard error of each frequency is below 0.0036.
        np.testing.assert_allclose(freq, expected, atol=0.015)


def test_the_compiled_sampler_draws_like_choose_next():
    """Two stream rows, a fake model with fixed logits: the compiled loop's draws follow the
    same distribution (and the banned token never appears)."""
    logits = tf.constant([[0.0, 1.0, 2.0, -1.0, 0.5, 3.0]])

    def fixed_step(tokens, state, weights=()):
        return tf.tile(logits, [tf.shape(tokens)[0], 1]), state

    sampler = Sampler(fixed_step, "sample", seed=1, chunk=500, banned_ids=[2])
    out = generate(sampler, [0], 5000, batch=2)
    assert out.shape == (2, 5000) and not (out == 2).any()
    allowed = np.exp(logits.numpy()[0]) * (np.arange(V) != 2)
    freq = np.bincount(out.ravel(), minlength=V) / out.size
    np.testing.assert_allclose(freq, allowed / allowed.sum(), atol=0.015)
    assert not np.array_equal(out[0], out[1])   # rows draw independently


@pytest.mark.parametrize("temperature,expect_greedy", [(0.01, True), (100.0, False)])
def test_temperature(temperature, expect_greedy):
    logits = tf.constant([[0.0, 2.0, 1.0, 0.5, 0.2, 0.1]] * 500)
    drawn = choose_next(logits, "sample", temperature, 0, tf.constant([5, 6], tf.int64)).numpy()
    assert (set(drawn.tolist()) == {1}) == expect_greedy
