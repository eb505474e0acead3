"""Corpus on disk -> vocabulary -> one array of token ids, for either level.

Character level: the documents are joined with newlines and every code point is a token.
Word level: each document is split into sentences and words (`tokenization.py`), each
sentence becomes SENTENCE_START w1 ... wn SENTENCE_END, and the documents' sentences are laid
end to end. Either way the result is one id stream, which `batching.py` cuts into parallel
streams; rows of a CSV only matter through their concatenation.
"""

import numpy as np

from tfcharrnn import corpus
from tfcharrnn.config import DataConfig
from tfcharrnn.errors import UsageError
from tfcharrnn.vocab import CharVocab, WordVocab


def read_corpus(config: DataConfig, path: str = None) -> list:
    """The documents of `path` (default: the configured data file)."""
    return corpus.read_documents(path or config.resolved_data_path, config.encoding,
                                 config.data_format, config.csv_column, config.encoding_errors)


def encode_documents(vocab, documents) -> np.ndarray:
    """Documents -> one int32 id stream, with `vocab`'s tokenization."""
    if vocab.level == "char":
        return vocab.encode("\n".join(documents))
    parts = [vocab.encode(d) for d in documents]
    return np.concatenate(parts) if parts else np.zeros([0], np.int32)


def build_vocab_and_encode(config: DataConfig, documents, saved_vocab=None, log=print):
    """Builds the vocabulary of `documents` (checking it against `saved_vocab` when resuming)
    and encodes them. Returns (vocab, ids [N]): int32 for words; for characters the
    vocabulary's compact `id_dtype` (uint8 up to 256 characters)."""
    if config.level == "char":
        text = "\n".join(documents)  # one document (a text file): the same string, no copy
        vocab = CharVocab.from_text(text, config.resolved_lowercase)
        check_same(vocab, saved_vocab)
        return vocab, vocab.encode(text, vocab.id_dtype)  # compact; batches are cast to int32

    from tfcharrnn.tokenization import WordTokenizer
    tokenizer = (saved_vocab.tokenizer if saved_vocab is not None
                 else WordTokenizer.train(documents, config.resolved_lowercase))
    tokenized = [tokenizer.tokenize(d) for d in documents]
    vocab = WordVocab.build(tokenized, config.vocab_size, tokenizer)
    check_same(vocab, saved_vocab)
    sentences = sum(len(d) for d in tokenized)
    if sentences == 0:
        raise UsageError("the corpus has no words; pass a file with text in it")
    log(f"{len(documents):,} document(s), {sentences:,} sentences parsed; {vocab.summary()}")
    ids = np.concatenate([vocab.encode_sentences(d) for d in tokenized if d])
    return vocab, ids


def check_same(vocab, saved_vocab):
    """A resumed run's data must give the vocabulary it was trained with."""
    if saved_vocab is not None and vocab != saved_vocab:
        raise UsageError(
            f"the data's vocabulary differs from the saved run's vocab.json ({len(vocab)} vs "
            f"{len(saved_vocab)} tokens): the data file changed; resume with the original file,"
            f" or train into a new --checkpoint_dir")
