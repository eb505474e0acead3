"""Generation requests as `streams.Job`s: what a row's tokens become, and when it ends.

`CharJob`: character level, `length` characters after the prime, each row cut at the first
`stop` text (the marker itself is not kept; a marker inside the prime does not count).
`SentenceJob`: word level, whole sentences. Each row starts from SENTENCE_START (then the
prime's words, if any) and stops at SENTENCE_END or after `max_length` tokens; UNKNOWN_TOKEN
and SENTENCE_START are never drawn (the sampler bans them). A sentence shorter than
`min_length` words is drawn again, at most MAX_ATTEMPTS times in all, each attempt with the
key of its own seed (seed + 7919 x attempt); the longest attempt is kept.

Both report their text as it grows to `listener(row, text, replace)`: `text` is appended to
what the row showed so far, or replaces it when `replace` (word level: the sentence so far,
detokenized again, or a new attempt). `texts` holds the final texts.
"""

import numpy as np

from tfcharrnn.decoding import noise
from tfcharrnn.decoding.sampling import Settings, StopAt
from tfcharrnn.decoding.streams import Job
from tfcharrnn.errors import UsageError

MAX_ATTEMPTS = 20
_INT64 = 2 ** 63


def prime_ids(vocab, prime: str, rows: int, name: str = "--prime") -> np.ndarray:
    """The prime as ids [rows, P]: the vocabulary's start token(s), then the prime (word
    level: its sentences, with the last one left open: generation continues it). `name` is
    what error messages call the prime."""
    if prime:
        missing = vocab.missing(prime)
        if missing:
            kind = "character(s)" if vocab.level == "char" else "word(s)"
            raise UsageError(f"{name} has {len(missing)} {kind} the model's vocabulary "
                             f"lacks: {' '.join(repr(c) for c in missing[:20])}; "
                             f"remove them from {name}")
    if vocab.level == "char":
        ids = vocab.encode(prime) if prime else vocab.start_ids()
    else:
        ids = vocab.encode(prime)[:-1] if prime else vocab.start_ids()
    return np.tile(np.asarray(ids, np.int32)[None, :], [rows, 1])


def attempt_seed(seed: int, attempt: int) -> int:
    """The seed of a sentence's attempt: seed + 7919 x attempt, wrapped to int64."""
    return (seed + 7919 * attempt + _INT64) % (2 * _INT64) - _INT64


def _no_listener(row, text, replace):
    pass


class CharJob(Job):
    def __init__(self, vocab, prime: str, rows: int, length: int, settings: Settings,
                 seed: int = 0, stop: str = "", listener=None, prime_name: str = "--prime"):
        super().__init__()
        self.vocab, self.rows, self.length, self.settings = vocab, rows, length, settings
        self.prime_ids = prime_ids(vocab, prime, rows, prime_name)
        self._keys = noise.row_keys_np(seed, rows)
        self._stops = [StopAt(stop) for _ in range(rows)]
        self._drawn = [0] * rows
        self.texts = [prime] * rows
        self.listener = listener or _no_listener

    def key(self, row, attempt):
        return self._keys[row]

    def take(self, row, tokens):
        stop = self._stops[row]
        piece = stop.feed(self.vocab.decode(tokens))
        self._drawn[row] += len(tokens)
        finished = stop.done or self._drawn[row] >= self.length
        if finished:
            piece += stop.flush()
        if piece:
            self.texts[row] += piece
            self.listener(row, piece, False)
        return finished


class SentenceJob(Job):
    def __init__(self, vocab, prime: str, rows: int, min_length: int, max_length: int,
                 settings: Settings, seed: int = 0, listener=None, prime_name: str = "--prime"):
        super().__init__()
        self.vocab, self.rows, self.length, self.settings = vocab, rows, max_length, settings
        self.min_length = min_length
        self.prime_ids = prime_ids(vocab, prime, rows, prime_name)
        specials = (vocab.start_id, vocab.end_id)
        self._prime_words = [int(t) for t in self.prime_ids[0] if t not in specials]
        self._seed = seed
        self._attempt = [0] * rows
        self._words = [[] for _ in range(rows)]       # this attempt's words
        self._reached_end = [False] * rows                  # this attempt reached SENTENCE_END
        self.best = [None] * rows                     # the longest attempt: prime words + words
        self.best_ended = [False] * rows
        self.listener = listener or _no_listener

    def key(self, row, attempt):
        return noise.row_keys_np(attempt_seed(self._seed, attempt), row + 1)[row]

    def _text(self, words) -> str:
        return self.vocab.tokenizer.detokenize(self.vocab.tokens[t] for t in words)

    def take(self, row, tokens):
        words = self._words[row]
        for t in tokens:
            if t == self.vocab.end_id:
                self._reached_end[row] = True
                break
            words.append(int(t))
        self.listener(row, self._text(self._prime_words + words), True)
        finished = self._reached_end[row] or len(words) >= self.length
        if finished:
            attempt = self._prime_words + words
            if self.best[row] is None or len(attempt) > len(self.best[row]):
                self.best[row], self.best_ended[row] = attempt, self._reached_end[row]
        return finished

    def again(self, row):
        short = len(self._prime_words) + len(self._words[row]) < self.min_length
        if not short or self._attempt[row] + 1 >= MAX_ATTEMPTS:
            if len(self.best[row]) > len(self._prime_words) + len(self._words[row]):
                self.listener(row, self._text(self.best[row]), True)   # show the longest
            return False
        self._attempt[row] += 1
        self._words[row], self._reached_end[row] = [], False
        self.listener(row, self._text(self._prime_words), True)
        return True

    @property
    def texts(self) -> list:
        return [self._text(words or []) for words in self.best]

    @property
    def short(self) -> int:
        """Rows that never reached min_length words (they keep their longest attempt)."""
        return sum(len(words or []) < self.min_length for words in self.best)
