"""Nucleus sampling, beam search, --stop and the interactive prompt."""

import itertools
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_command
from tfcharrnn.decoding.beam_search import BeamSearch
from tfcharrnn.decoding.sampling import Sampler, Settings, StopAt, choose_next, filtered
from test_sampling import uniform

V = 5


def test_nucleus_keeps_the_smallest_set_reaching_p():
    probs = np.array([0.05, 0.5, 0.1, 0.3, 0.05])
    logits = tf.constant(np.log(probs)[None], tf.float32)
    # 0.5 and 0.8 are reached exactly (0.5, 0.5 + 0.3): whatever the CPU rounds the softmax
    # to, no further token joins; a mass short of p by more than rounding does take one.
    for top_p, kept in [(0.01, {1}), (0.5, {1}), (0.5 + 1e-4, {1, 3}), (0.7, {1, 3}),
                        (0.8, {1, 3}), (0.8 + 1e-6, {1, 3}), (0.8 + 1e-4, {1, 3, 2}),
                        (0.85, {1, 3, 2}), (0.95, {0, 1, 2, 3, 4}), (1.0, {0, 1, 2, 3, 4})]:
        out = filtered(logits, tf.constant([0]), tf.constant([top_p], tf.float32)).numpy()[0]
        assert set(np.flatnonzero(np.isfinite(out))) == kept, top_p
        np.testing.assert_allclose(out[list(kept)], np.log(probs)[list(kept)], rtol=1e-6)


def test_top_p_draws_within_the_nucleus_in_proportion():
    probs = np.array([0.05, 0.5, 0.1, 0.3, 0.05])
    logits = tf.constant(np.tile(np.log(probs), [20000, 1]), tf.float32)
    drawn = choose_next(logits, Settings.of("top_p", top_p=0.75, rows=20000),
                        uniform(20000, seed=3, size=V)).numpy()
    freq = np.bincount(drawn, minlength=V) / len(drawn)
    # Renormalized within {1, 3}: 0.625 and 0.375; the standard error is below 0.0035.
    np.testing.assert_allclose(freq, [0, 0.625, 0, 0.375, 0], atol=0.015)


def test_the_sampler_accepts_top_p():
    def fixed_step(tokens, state, weights=()):
        logits = tf.constant(np.log([[0.05, 0.5, 0.1, 0.3, 0.05]]), tf.float32)
        return tf.tile(logits, [tf.shape(tokens)[0], 1]), state

    sampler = Sampler(fixed_step, "top_p", seed=2, top_p=0.75)
    out = np.concatenate(list(sampler.generate(np.zeros([1, 1], np.int32),
                                               [tf.zeros([1, 1])], 400)), axis=1)
    assert set(out[0].tolist()) == {1, 3}


# ---- beam search on a fake model whose log-probabilities depend on the last two tokens ----

TABLE = np.random.default_rng(0).normal(0.0, 2.0, (V, V, V)).astype(np.float32)


def pair_step(tokens, state, weights=()):
    """Logits TABLE[previous token, token]; the state holds the previous token."""
    previous = tf.cast(state[0][:, 0], tf.int32)
    logits = tf.gather_nd(TABLE, tf.stack([previous, tokens], axis=1))
    return logits, [tf.cast(tokens, tf.float32)[:, None]]


def log_prob(prime, tokens):
    """The exact log-probability of `tokens` after `prime` under pair_step."""
    log_p = TABLE - np.log(np.exp(TABLE).sum(-1, keepdims=True))
    seq = list(prime) + list(tokens)
    previous = [0] + seq[:-1]
    return sum(log_p[previous[i], seq[i], seq[i + 1]] for i in range(len(prime) - 1, len(seq) - 1))


def test_beam_of_width_one_is_greedy_and_wider_beams_score_no_lower():
    prime, length = [1, 2], 6
    greedy = np.concatenate(list(Sampler(pair_step, "argmax").generate(
        np.array([prime], np.int32), [tf.zeros([1, 1])], length)), axis=1)[0].tolist()
    scores = []
    for width in (1, 2, 4, 8):
        (tokens, score), *_ = BeamSearch(pair_step, width).continuations(
            np.array(prime), [tf.zeros([1, 1])], length)
        assert len(tokens) == length
        assert score == pytest.approx(log_prob(prime, tokens), abs=1e-4)
        if width == 1:
            assert tokens == greedy
        scores.append(score)
    assert all(b >= a - 1e-5 for a, b in zip(scores, scores[1:])), scores
    # A beam as wide as every sequence of the length finds the most likely one.
    length = 3
    best = max(log_prob(prime, seq) for seq in itertools.product(range(V), repeat=length))
    (_, score), *_ = BeamSearch(pair_step, V ** length).continuations(
        np.array(prime), [tf.zeros([1, 1])], length)
    assert score == pytest.approx(best, abs=1e-4)


def test_beam_returns_its_beams_best_first():
    found = BeamSearch(pair_step, 4).continuations(np.array([1]), [tf.zeros([1, 1])], 5)
    assert len(found) == 4
    scores = [s for _, s in found]
    assert scores == sorted(scores, reverse=True)
    assert len({tuple(t) for t, _ in found}) == 4


def test_beam_sentences_end_at_the_end_token_and_never_draw_banned_ones():
    end, banned = 4, [0]
    found = BeamSearch(pair_step, 6, banned_ids=banned).sentences(
        np.array([1]), [tf.zeros([1, 1])], end, max_length=12, count=3)
    assert len(found) == 3
    # Some hypotheses ended at the end token (the search masks it inside `tokens`, so its
    # absence there says nothing): their score is that of the tokens and the end token.
    assert sum(finished for _, _, finished in found) >= 2
    for tokens, score, finished in found:
        assert 0 not in tokens
        if finished:
            assert score == pytest.approx(log_prob([1], tokens + [end]), abs=1e-4)
    normalized = [s / (len(t) + 1) ** 0.7 for t, s, f in found if f]
    assert normalized == sorted(normalized, reverse=True)
    # min_length holds the end token back.
    long_enough = BeamSearch(pair_step, 6, banned_ids=banned).sentences(
        np.array([1]), [tf.zeros([1, 1])], end, max_length=12, min_length=5, count=2)
    assert any(f for _, _, f in long_enough)
    assert all(len(t) + 1 >= 5 for t, _, _ in long_enough)


# ---- --stop ----

def test_stop_cuts_at_the_first_marker_even_across_pieces():
    stop = StopAt("\n\n")
    shown = "".join(stop.feed(p) for p in ["ab\n", "\ncd", "ef\n\n"]) + stop.flush()
    assert shown == "ab" and stop.done
    stop = StopAt("XYZ")
    shown = "".join(stop.feed(p) for p in ["aX", "Y", "b", "XY"]) + stop.flush()
    assert shown == "aXYbXY" and not stop.done
    assert StopAt("").feed("a\n\nb") == "a\n\nb"


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # subprocesses: one back-end
def test_sample_command_stops_at_the_marker(trained_run):
    run_dir = trained_run.train.checkpoint_dir
    full = run_command("tfcharrnn.sample", f"--checkpoint_dir={run_dir}", "--length=400",
                       "--seed=3")
    cut = run_command("tfcharrnn.sample", f"--checkpoint_dir={run_dir}", "--length=400",
                      "--seed=3", "--stop=e")
    assert full.returncode == 0 and cut.returncode == 0, cut.stderr
    assert "e" in full.stdout
    assert cut.stdout.rstrip("\n") == full.stdout[:full.stdout.index("e")]


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # subprocesses: one back-end
def test_beam_command_prints_the_best_beams(trained_run):
    run_dir = trained_run.train.checkpoint_dir
    out = run_command("tfcharrnn.sample", f"--checkpoint_dir={run_dir}", "--sampling=beam",
                      "--beam_width=3", "--num_samples=2", "--length=30", "--prime=Th")
    assert out.returncode == 0, out.stderr
    headers = [line for line in out.stdout.splitlines() if line.startswith("--- beam")]
    assert len(headers) == 2
    scores = [float(h.split("log-probability ")[1].split()[0]) for h in headers]
    assert scores[0] >= scores[1]


# ---- the interactive prompt ----

def test_interactive_carries_the_state_past_what_was_shown(trained_run):
    from tfcharrnn import checkpoints
    from tfcharrnn.decoding import interactive
    from tfcharrnn.config import SampleConfig
    _, vocab, model = checkpoints.restore_model(trained_run.train.checkpoint_dir)
    config = SampleConfig(length=40, stop="e", seed=1)
    chat = interactive.Conversation(config, vocab, model)
    first = chat.respond("Th", open(os.devnull, "w"))
    second = chat.respond("an", open(os.devnull, "w"))
    # The state equals feeding the whole conversation, as shown, from a zero state.
    _, expected = chat.sampler.prime(vocab.encode("Th" + first + "an" + second)[None],
                                     model.initial_state(1))
    for a, b in zip(chat.state, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    chat.reset()
    assert chat.respond("Th", open(os.devnull, "w")) == first


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # subprocesses: one back-end
def test_interactive_prompt_through_a_pipe(trained_run, tmp_path):
    import subprocess
    import sys
    from conftest import ROOT
    run_dir = trained_run.train.checkpoint_dir
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, "-m", "tfcharrnn.sample", f"--checkpoint_dir={run_dir}",
         "--interactive", "--length=30", "--seed=5"],
        input="Th\nan\n/reset\nTh\n", capture_output=True, text=True, timeout=300, env=env,
        cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    # Three replies of 30 characters (a reply may itself hold newlines): the third, after
    # /reset, repeats the first.
    text = out.stdout
    assert len(text) == 3 * 31, repr(text)
    assert text[:31] == text[62:93]
    assert "(state reset)" in out.stderr
