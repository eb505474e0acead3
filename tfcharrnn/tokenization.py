"""Word-level tokenization with NLTK, without any downloaded NLTK data.

`nltk.word_tokenize` and `nltk.sent_tokenize` need the `punkt_tab` download, which locked-down
machines cannot fetch. Instead, sentences are split by a Punkt model trained on the corpus
itself (unsupervised, a few seconds per megabyte; its learned parameters are saved as JSON
with the vocabulary), and words by NLTK's Treebank-style `NLTKWordTokenizer`, which needs no
data. Output is detokenized with NLTK's `TreebankWordDetokenizer`.
"""

import re

from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer, PunktTrainer
from nltk.tokenize.treebank import TreebankWordDetokenizer

# Punkt learns abbreviations and sentence starters from text; this much is plenty and keeps
# training time bounded on a large corpus.
PUNKT_TRAINING_CHARS = 2_000_000
# A document is tokenized in blocks of at most this many characters, cut at a paragraph
# break after the end of a sentence (else at a line break): the unit that parallel workers
# share out (`prepare`), and a bound on the memory one tokenization takes. Every path cuts
# the same way (`blocks`), so a document's tokens do not depend on how it was read.
BLOCK_CHARS = 1 << 20
_BLOCK_END = re.compile(r"[.!?][\"')\]]*[ \t]*\n[ \t]*\n")


def blocks(pieces, size: int = 0):
    """A document given as str pieces (of any sizes) -> its blocks, the same for any cutting
    of the same text into pieces. While more than `size` characters remain, a block ends
    after the last paragraph break that follows a sentence end within the next `size`
    characters, else after the last line break there, else at `size` (default
    BLOCK_CHARS)."""
    size = size or BLOCK_CHARS
    buffer = ""
    for piece in pieces:
        buffer += piece
        while len(buffer) > size:
            cut = _block_end(buffer, size)
            yield buffer[:cut]
            buffer = buffer[cut:]
    if buffer:
        yield buffer


def _block_end(text: str, size: int) -> int:
    window = text[:size]
    last = None
    for last in _BLOCK_END.finditer(window):
        pass
    if last is not None:
        return last.end()
    newline = window.rfind("\n")
    return newline + 1 if newline > 0 else size


class WordTokenizer:
    """Text -> sentences -> word tokens, and back."""

    def __init__(self, punkt_params: PunktParameters = None, lowercase: bool = True):
        self.punkt_params = punkt_params or PunktParameters()  # untrained: split at . ! ?
        self.lowercase = lowercase
        self._sentences = PunktSentenceTokenizer(self.punkt_params)
        self._words = NLTKWordTokenizer()
        self._detokenizer = TreebankWordDetokenizer()

    @classmethod
    def train(cls, texts, lowercase: bool = True) -> "WordTokenizer":
        """Trains the sentence splitter on (the beginning of) the given texts."""
        trainer = PunktTrainer()
        budget = PUNKT_TRAINING_CHARS
        for text in texts:
            if budget <= 0:
                break
            trainer.train(text[:budget], finalize=False)
            budget -= len(text)
        trainer.finalize_training()
        return cls(trainer.get_params(), lowercase)

    def sentences(self, text: str) -> list:
        return self._sentences.tokenize(text)

    def words(self, sentence: str) -> list:
        if self.lowercase:
            sentence = sentence.lower()
        return self._words.tokenize(sentence)

    def tokenize(self, text: str) -> list:
        """Text -> list of sentences, each a list of word tokens (empty sentences dropped),
        block by block (`blocks`)."""
        return [w for block in blocks([text]) for w in self.tokenize_block(block)]

    def tokenize_block(self, block: str) -> list:
        return [w for w in (self.words(s) for s in self.sentences(block)) if w]

    def detokenize(self, words) -> str:
        return self._detokenizer.detokenize(list(words))

    def to_dict(self) -> dict:
        p = self.punkt_params
        return {"lowercase": self.lowercase,
                "punkt": {"abbrev_types": sorted(p.abbrev_types),
                          "collocations": sorted([a, b] for a, b in p.collocations),
                          "sent_starters": sorted(p.sent_starters),
                          # Punkt's defaultdict gains zero entries as it reads text: not
                          # settings, and left out so that equal models compare equal
                          "ortho_context": {k: int(v) for k, v in sorted(p.ortho_context.items())
                                            if v}}}

    @classmethod
    def from_dict(cls, d: dict) -> "WordTokenizer":
        if not isinstance(d, dict) or not isinstance(d.get("lowercase"), bool):
            raise ValueError("tokenizer settings need a boolean \"lowercase\"")
        punkt = d.get("punkt", {})
        p = PunktParameters()
        try:
            p.abbrev_types = set(_strings(punkt.get("abbrev_types", [])))
            p.collocations = {(a, b) for a, b in punkt.get("collocations", [])}
            p.sent_starters = set(_strings(punkt.get("sent_starters", [])))
            for key, value in punkt.get("ortho_context", {}).items():
                if not isinstance(value, int):
                    raise ValueError
                p.ortho_context[str(key)] = value
        except (TypeError, ValueError, AttributeError):
            raise ValueError("malformed punkt parameters") from None
        return cls(p, d["lowercase"])


def _strings(values):
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("expected a list of strings")
    return values
