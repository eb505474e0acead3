"""Score sentences or lines with a trained run: python -m tfcharrnn.score.

Each text is scored on its own, from a zero state. Word level: the text is one sentence,
SENTENCE_START w1 ... wn SENTENCE_END; the first word is conditioned on SENTENCE_START and
SENTENCE_END is scored too, so `tokens` is n + 1. Character level: like `evaluate`, the first
character is read and every later one is scored, so `tokens` is len(text) - 1. Either way the
numbers equal what `evaluate` prints for a file holding just that text (up to float
round-off: the texts are scored `--batch_size` at a time, see `evaluation.BatchScorer`).
"""

import json
import sys

from tfcharrnn import checkpoints
from tfcharrnn.config import ScoreConfig
from tfcharrnn.errors import UsageError
from tfcharrnn.evaluate_lib import check_known
from tfcharrnn.evaluation import BatchScorer


def read_texts(config: ScoreConfig, vocab, stdin=None) -> list:
    if config.input:
        from tfcharrnn import corpus
        raw = corpus.read_text(config.input)
    else:
        raw = (stdin or sys.stdin).read()
    if config.unit == "sentence":
        if vocab.level == "word":
            texts = vocab.tokenizer.sentences(raw)
        else:
            from tfcharrnn.tokenization import WordTokenizer
            texts = WordTokenizer().sentences(raw)
    else:
        texts = raw.splitlines()
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise UsageError("nothing to score: the input has no non-empty lines; pass --input=<a "
                         "file> or text on standard input")
    return texts


def score(config: ScoreConfig, out=None, stdin=None) -> list:
    out = out or sys.stdout
    _, vocab, model = checkpoints.restore_model(config.checkpoint_dir, config.checkpoint,
                                                precision=config.precision)
    texts = read_texts(config, vocab, stdin)
    sequences = []
    for text in texts:
        if vocab.level == "word":
            sequences.append(vocab.encode_sentences([vocab.tokenizer.words(text)]))
        else:
            check_known(vocab, text, f"the text {text[:40]!r}")
            sequences.append(vocab.encode(text))
    scores = BatchScorer(model, config.window, config.batch_size).score(sequences)
    results = []
    for text, r in zip(texts, scores):
        results.append({"text": text, "log_prob_nats": -r["total_nats"], "tokens": r["tokens"],
                        "loss_nats_per_token": r["loss_nats_per_token"] if r["tokens"] else None,
                        "perplexity": r["perplexity"] if r["tokens"] else None})
    if config.sort:
        results.sort(key=lambda r: -r["log_prob_nats"])
    for r in results:
        out.write(json.dumps(r, ensure_ascii=False) + "\n")
    out.flush()
    return results
