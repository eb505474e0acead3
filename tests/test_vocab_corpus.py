import json

import numpy as np
import pytest

from tfcharrnn import corpus
from tfcharrnn.errors import UsageError
from tfcharrnn.vocab import CharVocab


def test_vocab_is_sorted_code_points_and_round_trips():
    text = "héllo wörld\n🙂!"
    vocab = CharVocab.from_text(text)
    assert vocab.tokens == sorted(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == np.int32 and len(ids) == len(text)
    assert vocab.decode(ids) == text
    again = CharVocab.from_dict(json.loads(vocab.to_json()))
    assert again == vocab


def test_encode_names_unknown_characters():
    vocab = CharVocab.from_text("abc")
    with pytest.raises(UsageError, match="'z'"):
        vocab.encode("abz")
    assert vocab.missing("xabcy") == ["x", "y"]


def test_read_text_errors(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        corpus.read_text(str(tmp_path / "nope.txt"))
    with pytest.raises(UsageError, match="directory"):
        corpus.read_text(str(tmp_path))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(UsageError, match="empty"):
        corpus.read_text(str(empty))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"hello \xff world")
    with pytest.raises(UsageError, match="byte 6"):
        corpus.read_text(str(bad))
    assert corpus.read_text(str(bad), "latin-1") == "hello \xff world"


def test_lowercase_char_vocabulary_lowercases_what_it_encodes():
    vocab = CharVocab.from_text("Hello World", lowercase=True)
    assert "H" not in vocab.tokens and vocab.missing("HELLO") == []
    np.testing.assert_array_equal(vocab.encode("HeLLo"), vocab.encode("hello"))
    again = CharVocab.from_dict(json.loads(vocab.to_json()))
    assert again == vocab and again.lowercase
