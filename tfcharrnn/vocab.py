"""Vocabularies: text <-> token ids, and their JSON form (vocab.json).

CharVocab: the sorted set of Unicode code points of a corpus. Ids are positions in the sorted
list, so the vocabulary is a pure function of the text. Building and encoding work on the
UTF-32 code points of 1M-character chunks with NumPy (a bincount, a table lookup; no Python
loop over characters), and ids are stored in the smallest unsigned type that holds the
vocabulary (uint8 for up to 256 characters): a 100 MB corpus is prepared in about a second,
with a peak of about twice the file size (the text and its ids), where whole-text
temporaries (UTF-32, int64 search results) used to take 16x.

WordVocab: NLTK word tokens, capped at the most frequent, with UNKNOWN_TOKEN and sentences
wrapped in SENTENCE_START ... SENTENCE_END.

Both answer the same interface: len, encode(text), decode(ids), missing(text), to_json.
"""

import json

import numpy as np

from tfcharrnn.errors import UsageError


class CharVocab:
    """Characters as tokens: ids index the sorted code points of the corpus."""
    level = "char"

    def __init__(self, chars, lowercase: bool = False):
        self.tokens = list(chars)
        self.lowercase = lowercase  # text is lowercased before encoding (--lowercase)
        if not self.tokens:
            raise ValueError("a vocabulary needs at least one character")
        if any(not isinstance(c, str) or len(c) != 1 for c in self.tokens):
            raise ValueError("every vocabulary entry must be one character")
        if sorted(set(self.tokens)) != self.tokens:
            raise ValueError("vocabulary must be sorted and without duplicates")
        codepoints = np.array([ord(c) for c in self.tokens], dtype=np.int64)
        # Code point -> id (-1: not in the vocabulary), covering every code point up to the
        # largest one in the vocabulary; larger ones are unknown by definition.
        self._table = np.full(int(codepoints[-1]) + 1, -1, np.int32)
        self._table[codepoints] = np.arange(len(self.tokens), dtype=np.int32)
        self.id_dtype = _smallest_uint(len(self.tokens))

    @classmethod
    def from_text(cls, text: str, lowercase: bool = False) -> "CharVocab":
        return cls.from_chunks(_chunks(text, lowercase), lowercase)[0]

    @classmethod
    def from_chunks(cls, chunks, lowercase: bool = False) -> tuple:
        """(the vocabulary of text given as pieces, already lowercased if `lowercase`; the
        number of characters): one pass, memory bounded by a piece (`prepare` streams)."""
        seen, total = np.zeros(0, bool), 0                # seen[cp]: code point cp occurs
        for chunk in chunks:
            cps = _codepoints(chunk)
            total += len(cps)
            if len(cps):
                counts = np.bincount(cps, minlength=len(seen))
                counts[:len(seen)] += seen
                seen = counts > 0
        return cls((chr(c) for c in np.flatnonzero(seen)), lowercase), total

    def __len__(self):
        return len(self.tokens)

    def __eq__(self, other):
        return (isinstance(other, CharVocab) and self.tokens == other.tokens
                and self.lowercase == other.lowercase)

    def start_ids(self) -> np.ndarray:
        """Where generation starts without a prime: after a newline (else the first token)."""
        return np.array([self.tokens.index("\n") if "\n" in self.tokens else 0], np.int32)

    def missing(self, text: str) -> list:
        """Characters of `text` that are not in the vocabulary, sorted."""
        return sorted(set(text.lower() if self.lowercase else text) - set(self.tokens))

    def encode(self, text: str, dtype=np.int32) -> np.ndarray:
        """Text -> ids [len(text)] (`dtype`: int32 for the model, `id_dtype` to store a
        corpus compactly); raises UsageError naming unknown characters."""
        ids = np.empty(len(text), dtype)
        filled = 0
        for chunk in _chunks(text, self.lowercase):
            cps = _codepoints(chunk)
            known = cps < len(self._table)
            chunk_ids = self._table[np.where(known, cps, 0)]
            bad = ~known | (chunk_ids < 0)
            if bad.any():
                chars = sorted({chr(c) for c in cps[bad]})
                raise UsageError(f"text has {len(chars)} character(s) that are not in the "
                                 f"vocabulary: {' '.join(repr(c) for c in chars[:20])}")
            if filled + len(chunk_ids) > len(ids):  # lowercasing lengthened the text (rare)
                ids = np.resize(ids, filled + len(chunk_ids) + len(text) // 16)
            ids[filled:filled + len(chunk_ids)] = chunk_ids
            filled += len(chunk_ids)
        return ids[:filled]

    def decode(self, ids) -> str:
        return "".join(self.tokens[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"level": self.level, "tokens": self.tokens,
                           "lowercase": self.lowercase}, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> "CharVocab":
        if not isinstance(d, dict) or d.get("level") != cls.level:
            raise ValueError("expected an object with \"level\": \"char\"")
        tokens = d.get("tokens")
        if not isinstance(tokens, list):
            raise ValueError("expected \"tokens\" to be a list of characters")
        lowercase = d.get("lowercase", False)
        if not isinstance(lowercase, bool):
            raise ValueError("expected \"lowercase\" to be true or false")
        return cls(tokens, lowercase)


_CHUNK = 1 << 20  # characters converted at a time: bounds the temporaries to ~15 MB


def _chunks(text: str, lowercase: bool):
    for start in range(0, len(text), _CHUNK):
        chunk = text[start:start + _CHUNK]
        yield chunk.lower() if lowercase else chunk


def _smallest_uint(n: int):
    """The smallest NumPy integer type that holds ids 0 .. n - 1."""
    for dtype in (np.uint8, np.uint16):
        if n <= np.iinfo(dtype).max + 1:
            return dtype
    return np.int32


def _codepoints(text: str) -> np.ndarray:
    # UTF-32-LE is exactly one uint32 per code point, with no byte-order mark.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


UNKNOWN_TOKEN = "UNKNOWN_TOKEN"
SENTENCE_START = "SENTENCE_START"
SENTENCE_END = "SENTENCE_END"
SPECIAL_TOKENS = (UNKNOWN_TOKEN, SENTENCE_START, SENTENCE_END)


class WordVocab:
    """Word vocabulary: special tokens, then the most frequent words, capped in size.

    Ids: 0 UNKNOWN_TOKEN, 1 SENTENCE_START, 2 SENTENCE_END, then words by decreasing count,
    ties broken alphabetically (so the vocabulary is a pure function of the corpus). Every
    sentence is encoded as SENTENCE_START w1 ... wn SENTENCE_END; a word outside the
    vocabulary becomes UNKNOWN_TOKEN. The tokenizer settings travel with the vocabulary, so a
    restored run tokenizes exactly as training did.
    """
    level = "word"

    def __init__(self, words, tokenizer, counts=None):
        self.tokens = list(SPECIAL_TOKENS) + [w for w in words if w not in SPECIAL_TOKENS]
        self.tokenizer = tokenizer
        self.counts = counts  # {word: count} in the training corpus, when built from one
        self._ids = {t: i for i, t in enumerate(self.tokens)}
        if len(self._ids) != len(self.tokens):
            raise ValueError("vocabulary has duplicate words")
        self.unknown_id, self.start_id, self.end_id = 0, 1, 2

    @classmethod
    def build(cls, tokenized_documents, vocab_size: int, tokenizer) -> "WordVocab":
        """tokenized_documents: iterable of documents, each a list of sentences (word lists)."""
        from collections import Counter
        counts = Counter()
        for document in tokenized_documents:
            for sentence in document:
                counts.update(sentence)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        keep = max(0, vocab_size - len(SPECIAL_TOKENS))
        return cls([w for w, _ in ranked[:keep]], tokenizer, counts=dict(counts))

    def __len__(self):
        return len(self.tokens)

    def __eq__(self, other):
        return (isinstance(other, WordVocab) and self.tokens == other.tokens
                and self.tokenizer.to_dict() == other.tokenizer.to_dict())

    def summary(self) -> str:
        """What a user wants to know about the corpus and the cap."""
        counts = self.counts or {}
        words = self.tokens[len(SPECIAL_TOKENS):]
        text = (f"{len(counts):,} unique tokens found; vocabulary of {len(self):,} "
                f"(with {', '.join(SPECIAL_TOKENS)})")
        if words and counts:
            text += f"; least frequent kept token: {words[-1]!r} ({counts[words[-1]]:,} times)"
        return text

    def start_ids(self) -> np.ndarray:
        """Generation starts a new sentence."""
        return np.array([self.start_id], np.int32)

    def word_ids(self, words) -> list:
        return [self._ids.get(w, self.unknown_id) for w in words]

    def encode_sentences(self, sentences) -> np.ndarray:
        """[[w1, ..., wn], ...] -> ids of SENTENCE_START w1 .. wn SENTENCE_END, concatenated."""
        ids = []
        for words in sentences:
            ids.append(self.start_id)
            ids.extend(self.word_ids(words))
            ids.append(self.end_id)
        return np.array(ids, dtype=np.int32)

    def encode(self, text: str) -> np.ndarray:
        return self.encode_sentences(self.tokenizer.tokenize(text))

    def missing(self, text: str) -> list:
        """Words of `text` that the vocabulary lacks (they would become UNKNOWN_TOKEN)."""
        words = [w for s in self.tokenizer.tokenize(text) for w in s]
        return sorted({w for w in words if w not in self._ids})

    def decode(self, ids) -> str:
        """Ids -> readable text: one detokenized sentence per line."""
        lines, words = [], []
        for i in ids:
            token = self.tokens[int(i)]
            if token in (SENTENCE_START, SENTENCE_END):
                if words:
                    lines.append(self.tokenizer.detokenize(words))
                words = []
            else:
                words.append(token)
        if words:
            lines.append(self.tokenizer.detokenize(words))
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"level": self.level, "tokens": self.tokens,
                           "tokenizer": self.tokenizer.to_dict()}, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> "WordVocab":
        from tfcharrnn.tokenization import WordTokenizer
        if not isinstance(d, dict) or d.get("level") != cls.level:
            raise ValueError("expected an object with \"level\": \"word\"")
        tokens = d.get("tokens")
        if (not isinstance(tokens, list) or tokens[:len(SPECIAL_TOKENS)] != list(SPECIAL_TOKENS)
                or not all(isinstance(t, str) for t in tokens)):
            raise ValueError("expected \"tokens\": a list of strings starting with "
                             + ", ".join(SPECIAL_TOKENS))
        return cls(tokens[len(SPECIAL_TOKENS):], WordTokenizer.from_dict(d.get("tokenizer")))


def vocab_from_dict(d: dict):
    """Either vocabulary from its JSON form (as saved in vocab.json)."""
    level = d.get("level") if isinstance(d, dict) else None
    if level == "word":
        return WordVocab.from_dict(d)
    return CharVocab.from_dict(d)
