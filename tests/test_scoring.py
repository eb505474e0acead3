"""Batched scoring (`score`) gives the numbers of scoring one text at a time."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import run_command
from tfcharrnn import checkpoints
from tfcharrnn.evaluation import BatchScorer, StreamScorer
from tfcharrnn.models import wavefront


def texts(n=40):
    """Lines of varied length, from 1 character to several windows."""
    from tfcharrnn.config import BUNDLED_CORPUS
    with open(BUNDLED_CORPUS, encoding="utf-8") as f:
        lines = [line for line in f.read(20000).splitlines() if line]
    out = [lines[i] for i in range(n)] + ["a", "To", " ".join(lines[40:48])]
    return out


def test_batched_scores_equal_one_at_a_time(trained_run, monkeypatch):
    _, vocab, model = checkpoints.restore_model(trained_run.train.checkpoint_dir)
    lines = texts() + ["To be, or not", "To be or", "To bed", "Tomorrow", "To"]
    sequences = [vocab.encode(t) for t in lines + lines[3:6]]   # some twice: scored once
    single = StreamScorer(model, window=7)   # one compiled function for every text
    one = [single.score(ids) for ids in sequences]
    # Small batches and windows: several batches, several windows per batch, a last batch
    # smaller than the others, segments dropping finished rows two at a time, and the
    # many-rows wavefront (XLA gates) that `score`'s batches of >= 128 rows run.
    monkeypatch.setattr(BatchScorer, "ROW_STEP", 2)
    monkeypatch.setattr(wavefront, "MANY_ROWS", 0)
    scorer = BatchScorer(model, window=7, batch_size=6)
    calls = []
    real_eval = scorer._eval
    scorer._eval = lambda x, *rest: calls.append(x.shape) or real_eval(x, *rest)
    tree_rows = []
    real_tree = scorer._tree_eval
    scorer._tree_eval = lambda x, *rest: tree_rows.append(x.shape[0]) or real_tree(x, *rest)
    batched = scorer.score(sequences)
    assert sum(rows for rows, _ in calls) < sum(6 for _ in calls)    # some rows dropped
    assert sum(rows * columns for rows, columns in calls) < sum(len(ids) for ids in sequences)
    # The first TREE_COLUMNS positions: a shared prefix runs once, however many texts share
    # it (each call pads its rows to a multiple of ROW_STEP = 2: at most one row more).
    prefixes = {tuple(ids[:t + 1]) for ids in sequences
                for t in range(min(len(ids) - 1, BatchScorer.TREE_COLUMNS))}
    assert sum(tree_rows) - len(tree_rows) <= len(prefixes) <= sum(tree_rows)
    assert len(prefixes) < sum(min(len(ids) - 1, BatchScorer.TREE_COLUMNS)   # texts share some
                               for ids in {tuple(ids) for ids in sequences})
    for a, b, ids in zip(one, batched, sequences):
        assert a["tokens"] == b["tokens"] == len(ids) - 1
        assert abs(a["total_nats"] - b["total_nats"]) <= 1e-5 * max(1.0, a["total_nats"])


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)
def test_a_long_text_runs_in_batches_of_bounded_padding(trained_run, monkeypatch):
    """A text far longer than the others does not pad a whole batch to its length: each
    batch's arrays stay within MAX_PADDED positions, and the numbers do not change."""
    _, vocab, model = checkpoints.restore_model(trained_run.train.checkpoint_dir)
    lines = texts(12)
    sequences = [vocab.encode(t) for t in [" ".join(lines) * 3] + lines]    # ~1,900 tokens
    reference = BatchScorer(model, window=50, batch_size=8)
    want_scores = reference.score(sequences)
    want_tokens = reference.token_losses(sequences)
    monkeypatch.setattr(BatchScorer, "MAX_PADDED", 2000)
    scorer = BatchScorer(model, window=50, batch_size=8)
    padded = []
    real_batches = scorer._batches
    scorer._batches = lambda order, lengths: [
        padded.append(len(b) * lengths[b[0]]) or b for b in real_batches(order, lengths)]
    got_scores, got_tokens = scorer.score(sequences), scorer.token_losses(sequences)
    assert padded and max(padded) <= 2000 < len(sequences[0]) * 2
    for a, b in zip(got_scores, want_scores):
        assert a["total_nats"] == pytest.approx(b["total_nats"], rel=1e-5)
    for a, b in zip(got_tokens, want_tokens):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_word_level_batched_scores_equal_one_at_a_time(word_run, monkeypatch):
    _, vocab, model = checkpoints.restore_model(word_run.train.checkpoint_dir)
    sentences = ["The cat likes a dog.", "My friend sees the zebra, which was odd.",
                 "Hello.", "The farmer helps our neighbour and the bird calls the child."]
    sequences = [vocab.encode_sentences([vocab.tokenizer.words(s)]) for s in sentences]
    single = StreamScorer(model)
    one = [single.score(ids) for ids in sequences]
    batched = BatchScorer(model, batch_size=3).score(sequences)
    # A cap on the logits per call of 3 rows x 4 columns: the first batch, the 3 longest
    # sentences, takes calls of 4 columns while all 3 are going; "Hello." comes alone.
    monkeypatch.setattr(BatchScorer, "MAX_LOGITS", 3 * 4 * len(vocab))
    monkeypatch.setattr(BatchScorer, "TREE_COLUMNS", 0)      # every position in rows
    shapes = []
    capped = BatchScorer(model, batch_size=3)
    real_eval = capped._eval
    capped._eval = lambda x, *rest: shapes.append(x.shape) or real_eval(x, *rest)
    capped = capped.score(sequences)
    assert shapes[0] == (3, 4)                         # the 3 longest sentences, capped
    assert all(rows * columns <= 12 for rows, columns in shapes)
    # The prefix tree's calls capped too: 2 rows of logits a call.
    monkeypatch.setattr(BatchScorer, "MAX_LOGITS", 2 * len(vocab))
    monkeypatch.setattr(BatchScorer, "TREE_COLUMNS", 8)
    tree = BatchScorer(model, batch_size=3)
    real_tree = tree._tree_eval
    tree_rows = []
    tree._tree_eval = lambda x, *rest: tree_rows.append(x.shape[0]) or real_tree(x, *rest)
    tree = tree.score(sequences)
    assert tree_rows and max(tree_rows) <= 2
    for a, b, c, d in zip(one, batched, capped, tree):
        assert b["total_nats"] == pytest.approx(c["total_nats"], rel=1e-5, abs=1e-5)
        assert b["total_nats"] == pytest.approx(d["total_nats"], rel=1e-5, abs=1e-5)
        assert a["tokens"] == b["tokens"]
        assert abs(a["total_nats"] - b["total_nats"]) <= 1e-5 * max(1.0, a["total_nats"])


def test_batch_segments_run_each_position_once_and_drop_finished_rows(monkeypatch):
    monkeypatch.setattr(BatchScorer, "ROW_STEP", 3)
    scorer = BatchScorer(SimpleNamespace(vocab_size=5, state_shapes=[4]), window=6)
    counts = np.array([20, 20, 19, 12, 12, 12, 12, 12, 5, 1, 0])   # positions per row
    runs = np.zeros([len(counts), 20], int)
    shapes = set()
    for rows, start, end in scorer.segments(counts):
        assert 0 < end - start <= 6                      # at most `window` columns
        assert rows % 3 == 0 or rows == len(counts)      # a few row counts
        assert counts[max(rows - 3, 0)] > start          # fewer than 3 finished rows run
        runs[:rows, start:end] += 1
        shapes.add(rows)
    real = np.arange(20)[None, :] < counts[:, None]
    assert (runs[real] == 1).all()                       # every real position exactly once
    assert ((runs > 0) & ~real).sum(axis=0).max() < 3   # under ROW_STEP padded rows a column
    assert shapes == {11, 9, 3}


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # subprocesses: one back-end
def test_score_command_prints_the_one_at_a_time_numbers(trained_run, tmp_path):
    _, vocab, model = checkpoints.restore_model(trained_run.train.checkpoint_dir)
    lines = texts(12)
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = run_command("tfcharrnn.score", f"--checkpoint_dir={trained_run.train.checkpoint_dir}",
                      f"--input={path}", "--batch_size=5")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["text"] for r in rows] == [t.strip() for t in lines]
    single = StreamScorer(model)
    for r in rows:
        expected = single.score(vocab.encode(r["text"]))
        assert r["tokens"] == expected["tokens"]
        np.testing.assert_allclose(r["log_prob_nats"], -expected["total_nats"], rtol=1e-5,
                                   atol=1e-5)
