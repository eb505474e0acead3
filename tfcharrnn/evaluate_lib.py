"""Evaluate a trained run on a text file: python -m tfcharrnn.evaluate."""

import dataclasses
import json
import os
import sys

from tfcharrnn import checkpoints, dataset
from tfcharrnn.config import EvalConfig
from tfcharrnn.errors import UsageError
from tfcharrnn.evaluation import StreamScorer
from tfcharrnn.prepare import prepared, tokenfile


def check_known(vocab, text: str, what: str):
    """Character level only: every character must be in the vocabulary (word level maps
    unknown words to UNKNOWN_TOKEN, as in training)."""
    if vocab.level != "char":
        return
    missing = vocab.missing(text)
    if missing:
        raise UsageError(f"{what} has {len(missing)} character(s) the model's vocabulary "
                         f"lacks: {' '.join(repr(c) for c in missing[:20])}; remove or "
                         f"replace them (the model cannot score what it has never seen)")


def prepared_split(directory: str, split: str, vocab):
    """The ids of one split of a prepared directory (memory-mapped: all of it, however
    large), checked to be in the run's own vocabulary."""
    data_vocab, _, _ = prepared.load(directory)
    if data_vocab != vocab:
        raise UsageError(f"{directory} was prepared with another vocabulary than the run's; "
                         f"evaluate a text file, or the run's own prepared data")
    path = os.path.join(directory, f"{split}.bin")
    if not os.path.exists(path):
        raise UsageError(f"{directory} has no {split} split; pass --split=val or train")
    return tokenfile.read(path)


def evaluate(config: EvalConfig, out=None) -> dict:
    out = out or sys.stdout
    run_config, vocab, model = checkpoints.restore_model(config.checkpoint_dir, config.checkpoint,
                                                         precision=config.precision)
    if prepared.is_prepared(config.data_path):
        ids = prepared_split(config.data_path, config.split, vocab)
    else:
        # The run's encoding and CSV column; the format follows the file name (a .txt file is
        # read as text even if the run trained on a CSV).
        data_config = dataclasses.replace(run_config.data, data_format="auto")
        documents = dataset.read_corpus(data_config, config.data_path)
        for d in documents:
            check_known(vocab, d, config.data_path)
        ids = dataset.encode_documents(vocab, documents)
    if len(ids) < 2:
        raise UsageError(f"{config.data_path} has {len(ids)} token(s); at least 2 are needed "
                         f"(the first is only read, the rest are predicted)")
    print(f"evaluating {config.data_path}: {len(ids) - 1:,} predicted tokens", file=sys.stderr)
    result = StreamScorer(model, config.window).score(ids, progress=True)
    result = {k: result[k] for k in ("loss_nats_per_token", "bits_per_token", "perplexity",
                                     "tokens")}
    print(json.dumps(result), file=out)
    return result
