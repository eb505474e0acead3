"""Batched scoring (`score`) gives the numbers of scoring one text at a time."""

import json

import numpy as np
import pytest

from conftest import run_command
from tfcharrnn import checkpoints
from tfcharrnn.evaluation import BatchScorer, StreamScorer


def texts(n=40):
    """Lines of varied length, from 1 character to several windows."""
    from tfcharrnn.config import BUNDLED_CORPUS
    with open(BUNDLED_CORPUS, encoding="utf-8") as f:
        lines = [line for line in f.read(20000).splitlines() if line]
    out = [lines[i] for i in range(n)] + ["a", "To", " ".join(lines[40:48])]
    return out


def test_batched_scores_equal_one_at_a_time(trained_run):
    _, vocab, model = checkpoints.restore_model(trained_run.train.checkpoint_dir)
    sequences = [vocab.encode(t) for t in texts()]
    single = StreamScorer(model, window=7)   # one compiled function for every text
    one = [single.score(ids) for ids in sequences]
    # Small batches and windows: several batches, several windows per batch, and a last
    # batch smaller than the others.
    batched = BatchScorer(model, window=7, batch_size=6).score(sequences)
    for a, b, ids in zip(one, batched, sequences):
        assert a["tokens"] == b["tokens"] == len(ids) - 1
        assert abs(a["total_nats"] - b["total_nats"]) <= 1e-5 * max(1.0, a["total_nats"])


def test_word_level_batched_scores_equal_one_at_a_time(word_run, monkeypatch):
    _, vocab, model = checkpoints.restore_model(word_run.train.checkpoint_dir)
    sentences = ["The cat likes a dog.", "My friend sees the zebra, which was odd.",
                 "Hello.", "The farmer helps our neighbour and the bird calls the child."]
    sequences = [vocab.encode_sentences([vocab.tokenizer.words(s)]) for s in sentences]
    single = StreamScorer(model)
    one = [single.score(ids) for ids in sequences]
    batched = BatchScorer(model, batch_size=3).score(sequences)
    # A cap on the logits per call of 3 rows x 4 columns: the first batch, the 3 shorter
    # sentences (11 positions), takes 3 calls; the longest, alone, calls of 12 columns.
    monkeypatch.setattr(BatchScorer, "MAX_LOGITS", 3 * 4 * len(vocab))
    shapes = []
    capped = BatchScorer(model, batch_size=3)
    real_eval = capped._eval
    capped._eval = lambda x, *rest: shapes.append(x.shape) or real_eval(x, *rest)
    capped = capped.score(sequences)
    assert shapes[:3] == [(3, 4), (3, 4), (3, 3)]
    assert all(rows * columns <= 12 for rows, columns in shapes)
    for a, b, c in zip(one, batched, capped):
        assert b["total_nats"] == pytest.approx(c["total_nats"], rel=1e-5, abs=1e-5)
        assert a["tokens"] == b["tokens"]
        assert abs(a["total_nats"] - b["total_nats"]) <= 1e-5 * max(1.0, a["total_nats"])


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
