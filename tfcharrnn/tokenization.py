"""Word-level tokenization with NLTK, without any downloaded NLTK data.

`nltk.word_tokenize` and `nltk.sent_tokenize` need the `punkt_tab` download, which locked-down
machines cannot fetch. Instead, sentences are split by a Punkt model trained on the corpus
itself (unsupervised, a few seconds per megabyte; its learned parameters are saved as JSON
with the vocabulary), and words by NLTK's Treebank-style `NLTKWordTokenizer`, which needs no
data. Output is detokenized with NLTK's `TreebankWordDetokenizer`.
"""

from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer, PunktTrainer
from nltk.tokenize.treebank import TreebankWordDetokenizer

# Punkt learns abbreviations and sentence starters from text; this much is plenty and keeps
# training time bounded on a large corpus.
PUNKT_TRAINING_CHARS = 2_000_000


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
        """Text -> list of sentences, each a list of word tokens (empty sentences dropped)."""
        return [w for w in (self.words(s) for s in self.sentences(text)) if w]

    def detokenize(self, words) -> str:
        return self._detokenizer.detokenize(list(words))

    def to_dict(self) -> dict:
        p = self.punkt_params
        return {"lowercase": self.lowercase,
                "punkt": {"abbrev_types": sorted(p.abbrev_types),
                          "collocations": sorted([a, b] for a, b in p.collocations),
                          "sent_starters": sorted(p.sent_starters),
                          "ortho_context": {k: int(v) for k, v in sorted(p.ortho_context.items())}}}

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
