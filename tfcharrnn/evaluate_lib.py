"""Evaluate a trained run on a text file: python -m tfcharrnn.evaluate."""

import json
import sys

from tfcharrnn import checkpoints, corpus
from tfcharrnn.config import EvalConfig
from tfcharrnn.errors import UsageError
from tfcharrnn.evaluation import stream_loss


def evaluate(config: EvalConfig, out=None) -> dict:
    out = out or sys.stdout
    run_config, vocab, model = checkpoints.restore_model(config.checkpoint_dir, config.checkpoint)
    text = corpus.read_text(config.data_path, run_config.data.encoding)
    missing = vocab.missing(text)
    if missing:
        raise UsageError(f"{config.data_path} has {len(missing)} character(s) the model's "
                         f"vocabulary lacks: {' '.join(repr(c) for c in missing[:20])}")
    ids = vocab.encode(text)
    if len(ids) < 2:
        raise UsageError(f"{config.data_path} has {len(ids)} token(s); at least 2 are needed "
                         f"(the first is only read, the rest are predicted)")
    print(f"evaluating {config.data_path}: {len(ids) - 1:,} predicted tokens", file=sys.stderr)
    result = stream_loss(model, ids, config.window)
    result = {k: result[k] for k in ("loss_nats_per_token", "bits_per_token", "perplexity",
                                     "tokens")}
    print(json.dumps(result), file=out)
    return result
