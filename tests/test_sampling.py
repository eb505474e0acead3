import numpy as np
import pytest
import tensorflow as tf

from tfcharrnn.decoding import noise
from tfcharrnn.decoding.sampling import Sampler, Settings, choose_next

V = 6


def uniform(rows, seed=0, size=V):
    """Fresh uniform numbers [rows, size]: row r is stream r of `seed`, at its token 0."""
    return noise.uniform(noise.row_keys(seed, rows), tf.zeros([rows], tf.int64), size)


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
    logits, state = sampler.prime(ids, [tf.zeros([1, 1])])
    assert float(state[0][0, 0]) == 2.0
    _, _, state = sampler.draw(logits, state, noise.row_keys(0, 1), [0], sampler.settings(1), 5)
    assert float(state[0][0, 0]) == 7.0


def test_same_seed_same_text_whatever_the_chunk_size():
    a = generate(Sampler(uniform_step, "sample", seed=3, chunk=7), [0], 50)
    b = generate(Sampler(uniform_step, "sample", seed=3, chunk=64), [0], 50)
    c = generate(Sampler(uniform_step, "sample", seed=4, chunk=64), [0], 50)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(set(a[0].tolist())) > 3  # uniform logits really do sample


def test_a_row_draws_the_same_alone_or_among_other_rows_anywhere_in_the_batch():
    """Row r of seed s draws by (s, r) alone: with 1 or 9 rows, at any position, beside rows
    of other seeds and settings."""
    sampler = Sampler(uniform_step, "sample", chunk=16)
    state = [tf.zeros([1, 1])]
    alone, _, _ = sampler.draw(tf.zeros([1, V]), state, noise.row_keys(5, 3)[2:], [4],
                               Settings.of("sample", rows=1), 16)
    others = noise.row_keys(11, 8).numpy()
    keys = np.insert(others, 6, noise.row_keys(5, 3).numpy()[2])
    settings = Settings.concat([Settings.of("top_k", top_k=2, rows=6),
                                Settings.of("sample", rows=1), Settings.of("argmax", rows=2)])
    batch, _, _ = sampler.draw(tf.zeros([9, V]), [tf.zeros([9, 1])], keys,
                               [0, 1, 2, 3, 4, 5, 4, 7, 8], settings, 16)
    np.testing.assert_array_equal(batch[6], alone[0])
    assert len(set(alone[0].tolist())) > 3


def test_noise_is_uniform_and_streams_are_independent():
    u = uniform(4000, seed=9, size=50).numpy()                  # 200,000 numbers
    assert u.min() > 0 and u.max() < 1
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    # 10,000 expected per bin; the standard deviation is ~97.
    assert np.abs(counts - 10000).max() < 600
    # neighbouring rows, columns and counters are uncorrelated
    assert abs(np.corrcoef(u[:-1].ravel(), u[1:].ravel())[0, 1]) < 0.02
    assert abs(np.corrcoef(u[:, :-1].ravel(), u[:, 1:].ravel())[0, 1]) < 0.02
    keys = noise.row_keys(9, 1)
    next_token = noise.uniform(tf.tile(keys, [4000]), tf.range(1, 4001, dtype=tf.int64), 50)
    steps = noise.uniform(tf.tile(keys, [4000]), tf.range(4000, dtype=tf.int64), 50).numpy()
    assert abs(np.corrcoef(steps[1:].ravel(), next_token.numpy()[:-1].ravel())[0, 1]) > 0.999
    assert abs(np.corrcoef(steps[:-1].ravel(), steps[1:].ravel())[0, 1]) < 0.02


def test_noise_matches_its_definition_in_plain_integers():
    """The bits as the module docstring defines them, computed with Python integers (what
    another runtime reimplements)."""
    m32 = 0xFFFFFFFF

    def mix(x):
        x ^= x >> 16
        x = (x * 0x7FEB352D) & m32
        x ^= x >> 15
        x = (x * 0x846CA68B) & m32
        return x ^ (x >> 16)

    def combine(a, b):
        return mix(a ^ mix((b + 0x9E3779B9) & m32))

    for seed in (0, 1, -1, 2 ** 40 + 7, -(2 ** 63)):
        lo, hi = seed & m32, (seed >> 32) & m32
        keys = [combine(combine(lo, hi), r) for r in range(3)]
        np.testing.assert_array_equal(noise.row_keys(seed, 3).numpy(), keys)
        u = noise.uniform(tf.constant(keys, tf.uint32), tf.constant([0, 5, 2 ** 33 + 1]), 4)
        for r, t in enumerate([0, 5, 1]):         # counters are taken modulo 2^32
            bits = [combine(combine(keys[r], t), v) for v in range(4)]
            np.testing.assert_array_equal(u.numpy()[r], [((b >> 9) + 0.5) / 2 ** 23
                                                         for b in bits])


def test_top_k_only_draws_from_the_k_best():
    logits = tf.constant([[0.0, 5.0, 1.0, 4.0, 2.0, 3.0]] * 500)
    drawn = choose_next(logits, Settings.of("top_k", top_k=2, rows=500), uniform(500)).numpy()
    assert set(drawn.tolist()) == {1, 3}
    greedy = choose_next(logits, Settings.of("top_k", top_k=1, rows=500),
                         uniform(500)).numpy()
    assert set(greedy.tolist()) == {1}


def test_sample_draws_each_token_with_its_softmax_probability():
    logits = np.array([0.0, 1.0, 2.0, -1.0, 0.5, 3.0], np.float32)
    for seed, temperature in ((7, 1.0), (8, 2.0)):
        expected = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
        drawn = choose_next(tf.constant(np.tile(logits, [20000, 1])),
                            Settings.of("sample", temperature, rows=20000),
                            uniform(20000, seed)).numpy()
        freq = np.bincount(drawn, minlength=V) / len(drawn)
        # 20,000 draws: the standard error of each frequency is below 0.0036.
        np.testing.assert_allclose(freq, expected, atol=0.015)


def test_rows_with_different_settings_each_draw_by_their_own():
    """One batch, three kinds of rows: each kind's draws follow its own rule."""
    logits = tf.constant([[0.0, 5.0, 1.0, 4.0, 2.0, 3.0]] * 3000)
    settings = Settings.concat([Settings.of("argmax", rows=1000),
                                Settings.of("top_k", 1.0, top_k=2, rows=1000),
                                Settings.of("sample", 1.0, rows=1000)])
    drawn = choose_next(logits, settings, uniform(3000, seed=2)).numpy()
    assert set(drawn[:1000].tolist()) == {1}
    assert set(drawn[1000:2000].tolist()) == {1, 3}
    assert set(drawn[2000:].tolist()) == {0, 1, 2, 3, 4, 5}


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
    drawn = choose_next(logits, Settings.of("sample", temperature, rows=500),
                        uniform(500, seed=5)).numpy()
    assert (set(drawn.tolist()) == {1}) == expect_greedy


def test_an_unknown_method_is_an_error():
    from tfcharrnn.errors import UsageError
    with pytest.raises(UsageError, match="unknown sampling method 'beam'.*argmax, sample"):
        Sampler(uniform_step, "beam")


# ---- what one sample command may ask for ----

def test_sample_requests_are_bounded_and_the_line_names_the_limit():
    from tfcharrnn import config as cfg, sample_lib
    from tfcharrnn.errors import UsageError
    from tfcharrnn.vocab import CharVocab
    with pytest.raises(UsageError, match=r"--num_samples=100,000,000 is more than 10,000"):
        cfg.SampleConfig(num_samples=100_000_000, length=10)
    with pytest.raises(UsageError, match=r"--beam_width=1,000 is more than 256"):
        cfg.SampleConfig(sampling="beam", beam_width=1000)
    vocab = CharVocab.from_text("abc")
    sample_lib.check_request(cfg.SampleConfig(num_samples=10_000, length=1000), vocab)
    with pytest.raises(UsageError, match=r"--num_samples x --length = 10,010,000 tokens, more "
                                         r"than 10,000,000"):
        sample_lib.check_request(cfg.SampleConfig(num_samples=10_000, length=1001), vocab)


def test_evaluate_window_keeps_one_calls_logits_bounded():
    from types import SimpleNamespace
    from tfcharrnn.evaluation import StreamScorer
    model = SimpleNamespace(vocab_size=50_000)
    assert StreamScorer(model, window=10 ** 9).window == StreamScorer.MAX_LOGITS // 50_000
    assert StreamScorer(SimpleNamespace(vocab_size=65), window=1000).window == 1000
