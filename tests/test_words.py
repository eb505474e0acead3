"""Word level: tokenization, vocabulary, CSV input, sentence generation and scoring."""

import json

import numpy as np
import pytest

from conftest import run_command
from tfcharrnn import checkpoints, corpus
from tfcharrnn.decoding import sampling
from tfcharrnn.decoding.jobs import SentenceJob
from tfcharrnn.decoding.streams import Decoder
from tfcharrnn.errors import UsageError
from tfcharrnn.tokenization import WordTokenizer
from tfcharrnn.vocab import SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN, WordVocab, \
    vocab_from_dict

TEXT = ("The cat sat on the mat. The dog sat on the log! Did the cat see the dog? "
        "Mr. Smith saw a bird.")


def test_tokenizer_needs_no_nltk_data_and_lowercases(monkeypatch, tmp_path):
    monkeypatch.setenv("NLTK_DATA", str(tmp_path))  # nothing to find there
    tok = WordTokenizer.train([TEXT], lowercase=True)
    sentences = tok.tokenize(TEXT)
    assert len(sentences) == 4
    assert sentences[0] == ["the", "cat", "sat", "on", "the", "mat", "."]
    assert sentences[2][-1] == "?"
    assert WordTokenizer(lowercase=False).tokenize("Hello there.")[0] == ["Hello", "there", "."]


def test_vocabulary_cap_unknown_token_and_deterministic_ties():
    tok = WordTokenizer.train([TEXT])
    docs = [tok.tokenize(TEXT)]
    vocab = WordVocab.build(docs, vocab_size=8, tokenizer=tok)
    assert vocab.tokens[:3] == [UNKNOWN_TOKEN, SENTENCE_START, SENTENCE_END]
    assert len(vocab) == 8
    # Counts: the 6, cat 2, dog 2, sat 2, on 2, . 2, ... Ties are broken alphabetically.
    assert vocab.tokens[3] == "the"
    assert vocab.tokens[4:8] == [".", "cat", "dog", "on"]
    assert WordVocab.build(list(reversed(docs)), 8, tok).tokens == vocab.tokens
    ids = vocab.encode("The cat saw a zebra.")
    words = [vocab.tokens[i] for i in ids]
    assert words == [SENTENCE_START, "the", "cat", UNKNOWN_TOKEN, UNKNOWN_TOKEN, UNKNOWN_TOKEN,
                     ".", SENTENCE_END]
    assert vocab.missing("The cat saw a zebra.") == ["a", "saw", "zebra"]
    assert "least frequent kept token: 'on' (2 times)" in vocab.summary()


def test_vocabulary_json_round_trip_keeps_the_tokenizer():
    tok = WordTokenizer.train([TEXT])
    vocab = WordVocab.build([tok.tokenize(TEXT)], 50, tok)
    again = vocab_from_dict(json.loads(vocab.to_json()))
    assert again == vocab
    assert again.tokenizer.sentences(TEXT) == tok.sentences(TEXT)
    np.testing.assert_array_equal(again.encode(TEXT), vocab.encode(TEXT))
    assert again.decode(vocab.encode(TEXT)).splitlines()[0] == "the cat sat on the mat."


CSV = ('id,comment,score\n'
       '1,"Hello, world",3\n'
       '2,"Line one\nline two",5\n'
       '3,plain,1\n')


@pytest.mark.parametrize("column", ["comment", "1"])
def test_csv_column_by_name_and_index_with_quotes_and_newlines(tmp_path, column):
    path = tmp_path / "c.csv"
    path.write_text(CSV, encoding="utf-8")
    docs = corpus.read_documents(str(path), csv_column=column)
    assert docs == ["Hello, world", "Line one\nline two", "plain"]


def test_csv_header_detection_and_default_column(tmp_path):
    with_header = tmp_path / "h.csv"
    with_header.write_text('comment,score\n"Nice, really",3\nBad one,1\n', encoding="utf-8")
    assert corpus.read_documents(str(with_header)) == ["Nice, really", "Bad one"]
    no_header = tmp_path / "n.csv"
    no_header.write_text('"Nice, really",3\nBad one,1\n', encoding="utf-8")
    assert corpus.read_documents(str(no_header)) == ["Nice, really", "Bad one"]


def test_csv_missing_column_is_a_clear_error(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(CSV, encoding="utf-8")
    with pytest.raises(UsageError, match="no column named 'text'.*'id', 'comment', 'score'"):
        corpus.read_documents(str(path), csv_column="text")
    with pytest.raises(UsageError, match="out of range"):
        corpus.read_documents(str(path), csv_column="7")


def test_generated_sentences_end_and_never_contain_unknown_tokens(word_run):
    _, vocab, model = checkpoints.restore_model(word_run.train.checkpoint_dir, "latest")
    # The cap leaves real words out, so the model has learned to predict UNKNOWN_TOKEN.
    assert vocab.encode(open(word_run.data.data_path).read()).tolist().count(0) > 100
    sampler = sampling.for_model(model, "sample", seed=3,
                                banned_ids=[vocab.unknown_id, vocab.start_id])
    job = SentenceJob(vocab, "", 16, min_length=2, max_length=30,
                      settings=sampler.settings(16), seed=3)
    Decoder(sampler, model.initial_state).run(job)
    sentences, ended, short = job.best, job.best_ended, job.short
    assert all(ended) and short == 0
    for words in sentences:
        assert len(words) >= 2
        assert vocab.unknown_id not in words and vocab.start_id not in words


def test_sample_command_prints_one_sentence_per_line(word_run):
    r = run_command("tfcharrnn.sample", f"--checkpoint_dir={word_run.train.checkpoint_dir}",
                    "--num_samples=4", "--seed=2", "--min_length=3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4
    assert all(len(line.split()) >= 3 for line in lines)
    assert not any(t in r.stdout for t in (UNKNOWN_TOKEN, SENTENCE_START, SENTENCE_END))


def test_score_ranks_a_training_sentence_above_its_shuffled_words(word_run, tmp_path):
    texts = tmp_path / "candidates.txt"
    texts.write_text("dog likes . the the cat\nThe cat likes the dog.\n", encoding="utf-8")
    r = run_command("tfcharrnn.score", f"--checkpoint_dir={word_run.train.checkpoint_dir}",
                    f"--input={texts}", "--sort")
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert [x["text"] for x in results] == ["The cat likes the dog.", "dog likes . the the cat"]
    assert results[0]["tokens"] == 7  # six words + SENTENCE_END
    assert results[0]["log_prob_nats"] > results[1]["log_prob_nats"]


@pytest.mark.parametrize("level", ["word", "char"])
@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # subprocesses: one back-end
def test_score_equals_evaluate_on_the_same_text(level, word_run, trained_run, tmp_path):
    run = word_run if level == "word" else trained_run
    text = "The cat likes the dog." if level == "word" else "First Citizen: hear me speak"
    path = tmp_path / "one.txt"
    path.write_text(text, encoding="utf-8")
    ev = run_command("tfcharrnn.evaluate", f"--checkpoint_dir={run.train.checkpoint_dir}",
                     f"--data_path={path}")
    sc = run_command("tfcharrnn.score", f"--checkpoint_dir={run.train.checkpoint_dir}",
                     f"--input={path}")
    assert ev.returncode == 0 and sc.returncode == 0, ev.stderr + sc.stderr
    e = json.loads(ev.stdout.strip().splitlines()[-1])
    s = json.loads(sc.stdout.strip())
    assert s["tokens"] == e["tokens"]
    assert s["loss_nats_per_token"] == pytest.approx(e["loss_nats_per_token"], rel=1e-6)
    assert -s["log_prob_nats"] == pytest.approx(e["loss_nats_per_token"] * e["tokens"], rel=1e-6)
