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


def test_chunked_vocabulary_and_encoding_equal_the_one_shot_answer(monkeypatch):
    """The corpus is processed in chunks; a chunk boundary must change nothing."""
    from tfcharrnn import vocab as vocab_module
    rng = np.random.default_rng(0)
    alphabet = list("abcXYZ\n é€🙂İ")  # ASCII, Latin-1, BMP, astral; 'İ' lowercases to 2 chars
    text = "".join(rng.choice(alphabet, 1000))
    whole = {lc: CharVocab.from_text(text, lc) for lc in (False, True)}
    monkeypatch.setattr(vocab_module, "_CHUNK", 7)
    for lowercase in (False, True):
        vocab = CharVocab.from_text(text, lowercase)
        assert vocab.tokens == whole[lowercase].tokens
        source = text.lower() if lowercase else text
        assert vocab.tokens == sorted(set(source))
        ids = vocab.encode(text)
        assert ids.dtype == np.int32
        assert vocab.decode(ids) == source
        np.testing.assert_array_equal(vocab.encode(text, vocab.id_dtype), ids)
    with pytest.raises(UsageError, match="'q'"):
        whole[False].encode("abq")


def test_ids_are_stored_in_the_smallest_type_and_batches_are_int32():
    from tfcharrnn.batching import StreamBatches
    small = CharVocab.from_text("hello world\n")
    assert small.id_dtype == np.uint8
    assert CharVocab.from_text("".join(chr(0x4e00 + i) for i in range(300))).id_dtype \
        == np.uint16
    ids = small.encode("hello world\n" * 20, small.id_dtype)
    assert ids.dtype == np.uint8 and ids.nbytes == len(ids)
    x, y = StreamBatches(ids, batch_size=2, seq_len=5)[1]
    assert x.dtype == y.dtype == np.int32
    stream = (len(ids) - 1) // 2
    full = small.encode("hello world\n" * 20)
    np.testing.assert_array_equal(x, full[:2 * stream].reshape(2, stream)[:, 5:10])
    np.testing.assert_array_equal(y, full[1:2 * stream + 1].reshape(2, stream)[:, 5:10])
