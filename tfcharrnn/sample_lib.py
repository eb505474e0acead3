"""Generate text from a trained run: python -m tfcharrnn.sample."""

import sys

import numpy as np

from tfcharrnn import checkpoints, sampling
from tfcharrnn.config import SampleConfig
from tfcharrnn.errors import UsageError


def prime_ids(vocab, prime: str, num_samples: int, seed: int) -> np.ndarray:
    """The prime text as ids [num_samples, P]; without a prime, one start token.

    The start token is a newline when the corpus has one (text after a newline is the most
    natural place to begin) and otherwise a uniformly random token.
    """
    if prime:
        missing = vocab.missing(prime)
        if missing:
            raise UsageError(f"--prime has {len(missing)} character(s) the model's vocabulary "
                             f"lacks: {' '.join(repr(c) for c in missing[:20])}; "
                             f"remove them from --prime")
        ids = vocab.encode(prime)
    elif "\n" in vocab.tokens:
        ids = vocab.encode("\n")
    else:
        ids = np.random.default_rng(seed).integers(len(vocab), size=1).astype(np.int32)
    return np.tile(ids[None, :], [num_samples, 1])


def sample(config: SampleConfig, out=None):
    """Streams `num_samples` samples of `length` tokens to `out`; returns them as strings."""
    out = out or sys.stdout
    run_config, vocab, model = checkpoints.restore_model(config.checkpoint_dir, config.checkpoint)
    if config.sampling == "top_k" and config.top_k > len(vocab):
        raise UsageError(f"--top_k={config.top_k} is larger than the vocabulary "
                         f"({len(vocab)} tokens); pass --top_k={len(vocab)} or less")
    ids = prime_ids(vocab, config.prime, config.num_samples, config.seed)
    sampler = sampling.Sampler(sampling.model_step_fn(model), config.sampling,
                               config.temperature, config.top_k, config.seed)
    stream = config.num_samples == 1
    texts = [config.prime] * config.num_samples
    if stream:
        out.write(config.prime)
        out.flush()
    for chunk in sampler.generate(ids, model.initial_state(config.num_samples), config.length):
        pieces = [vocab.decode(row) for row in chunk]
        texts = [t + p for t, p in zip(texts, pieces)]
        if stream:
            out.write(pieces[0])
            out.flush()
    if stream:
        out.write("\n")
    else:
        for i, text in enumerate(texts):
            out.write(f"{'' if i == 0 else chr(10)}--- sample {i + 1} ---\n{text}\n")
    out.flush()
    return texts
