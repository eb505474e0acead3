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
from tfcharrnn.vocab import SENTENCE_END


def read_texts(config: ScoreConfig, vocab, stdin=None) -> list:
    if config.input:
        from tfcharrnn import corpus
        raw = corpus.read_text(config.input)
    else:
        raw = (stdin or sys.stdin).read()
    texts = split(raw, config.unit, vocab)
    if not texts:
        raise UsageError("nothing to score: the input has no non-empty lines; pass --input=<a "
                         "file> or text on standard input")
    return texts


def split(raw: str, unit: str, vocab) -> list:
    """The texts of `raw` to score, stripped, blank ones dropped: its lines (unit "line"), or
    its sentences as the run's Punkt model splits them ("sentence"; char level: an untrained
    Punkt model)."""
    if unit == "sentence":
        if vocab.level == "word":
            texts = vocab.tokenizer.sentences(raw)
        else:
            from tfcharrnn.tokenization import WordTokenizer
            texts = WordTokenizer().sentences(raw)
    else:
        texts = raw.splitlines()
    return [t.strip() for t in texts if t.strip()]


def score(config: ScoreConfig, out=None, stdin=None) -> list:
    out = out or sys.stdout
    _, vocab, model = checkpoints.restore_model(config.checkpoint_dir, config.checkpoint,
                                                precision=config.precision)
    texts = read_texts(config, vocab, stdin)
    results = score_texts(BatchScorer(model, config.window, config.batch_size), vocab, texts)
    if config.sort:
        results.sort(key=lambda r: -r["log_prob_nats"])
    for r in results:
        out.write(json.dumps(r, ensure_ascii=False) + "\n")
    out.flush()
    return results


def encode(vocab, text: str):
    """A text as the units a person reads and the ids it is scored on: word level one
    sentence, its words + SENTENCE_END and SENTENCE_START w1 ... wn SENTENCE_END; char level
    its characters (an unknown one is a UsageError naming it) and their ids."""
    if vocab.level == "word":
        words = vocab.tokenizer.words(text)
        return words + [SENTENCE_END], vocab.encode_sentences([words])
    check_known(vocab, text, f"the text {text[:40]!r}")
    return list(text), vocab.encode(text)


def score_texts(scorer: BatchScorer, vocab, texts: list, per_token: bool = False) -> list:
    """One result per text: text, log_prob_nats, tokens, loss_nats_per_token, perplexity (the
    last two None for a text with nothing to score); with `per_token`, also "per_token": each
    token of the text as {"token", "loss_nats"}, the loss None for the character that is read,
    not scored (char level), and "unknown": true for a word scored as UNKNOWN_TOKEN."""
    encoded = [encode(vocab, text) for text in texts]
    sequences = [ids for _, ids in encoded]
    scores = scorer.score(sequences)
    losses = scorer.token_losses(sequences) if per_token else [None] * len(texts)
    results = []
    for text, (shown, ids), r, loss in zip(texts, encoded, scores, losses):
        result = {"text": text, "log_prob_nats": -r["total_nats"], "tokens": r["tokens"],
                  "loss_nats_per_token": r["loss_nats_per_token"] if r["tokens"] else None,
                  "perplexity": r["perplexity"] if r["tokens"] else None}
        if per_token:
            result["per_token"] = _per_token(vocab, shown, ids, loss)
        results.append(result)
    return results


def _per_token(vocab, units: list, ids, losses) -> list:
    """Each unit with the loss of predicting it (losses [len(ids) - 1] predict ids[1:]). Char
    level: every character, the first read, not predicted (loss None); word level: the words
    and SENTENCE_END (SENTENCE_START, ids[0], is read)."""
    losses = [float(x) for x in losses]
    if vocab.level == "char":
        return [{"token": c, "loss_nats": loss} for c, loss in zip(units, [None] + losses)]
    tokens = []
    for word, i, loss in zip(units, ids[1:], losses):
        entry = {"token": word, "loss_nats": loss}
        if i == vocab.unknown_id:
            entry["unknown"] = True
        tokens.append(entry)
    return tokens
