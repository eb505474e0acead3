"""Evaluate a trained run on a text file: python -m tfcharrnn.evaluate."""

import json
import sys

from tfcharrnn import checkpoints, corpus, dataset
from tfcharrnn.config import EvalConfig
from tfcharrnn.errors import UsageError
from tfcharrnn.evaluation import StreamScorer


def check_known(vocab, text: str, what: str):
    """Character level only: every character must be in the vocabulary (word level maps
    unknown words to UNKNOWN_TOKEN, as in training)."""
    if vocab.level != "char":
        return
    missing = vocab.missing(text)
    if missing:
        raise UsageError(f"{what} has {len(missing)} character(s) the model's vocabulary "
                         f"lacks: {' '.join(repr(c) for c in missing[:20])}")


def evaluate(config: EvalConfig, out=None) -> dict:
    out = out or sys.stdout
    run_config, vocab, model = checkpoints.restore_model(config.checkpoint_dir, config.checkpoint)
    documents = corpus.read_documents(config.data_path, run_config.data.encoding, "auto",
                                      run_config.data.csv_column,
                                      run_config.data.encoding_errors)
    for d in documents:
        check_known(vocab, d, config.data_path)
    ids = dataset.encode_documents(vocab, documents)
    if len(ids) < 2:
        raise UsageError(f"{config.data_path} has {len(ids)} token(s); at least 2 are needed "
                         f"(the first is only read, the rest are predicted)")
    print(f"evaluating {config.data_path}: {len(ids) - 1:,} predicted tokens", file=sys.stderr)
    result = StreamScorer(model, config.window).score(ids)
    result = {k: result[k] for k in ("loss_nats_per_token", "bits_per_token", "perplexity",
                                     "tokens")}
    print(json.dumps(result), file=out)
    return result
