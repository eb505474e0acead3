"""Generate text from a trained run: python -m tfcharrnn.sample.

Character level: `--length` characters after the prime, streamed as they come, cut at the
first `--stop` text if given.
Word level: whole sentences. Each starts from SENTENCE_START (then the prime's words, if any)
and stops at SENTENCE_END or after `--max_length` tokens; UNKNOWN_TOKEN and SENTENCE_START are
never drawn (their probability is zeroed before sampling, nothing is redrawn). A sentence
shorter than `--min_length` words is drawn again, at most MAX_ATTEMPTS times.
`--sampling=beam` searches for the most likely text instead (`decoding/beam_search.py`);
`--interactive` reads primes from the terminal (`decoding/interactive.py`).
"""

import sys

import numpy as np

from tfcharrnn import checkpoints
from tfcharrnn.decoding import interactive
from tfcharrnn.decoding.beam_search import BeamSearch
from tfcharrnn.config import SampleConfig
from tfcharrnn.errors import UsageError
from tfcharrnn.models import inference
from tfcharrnn.decoding.sampling import StopAt

MAX_ATTEMPTS = 20


def prime_ids(vocab, prime: str, num_samples: int) -> np.ndarray:
    """The prime as ids [num_samples, P]: the vocabulary's start token(s), then the prime."""
    if prime:
        missing = vocab.missing(prime)
        if missing:
            kind = "character(s)" if vocab.level == "char" else "word(s)"
            raise UsageError(f"--prime has {len(missing)} {kind} the model's vocabulary "
                             f"lacks: {' '.join(repr(c) for c in missing[:20])}; "
                             f"remove them from --prime")
    if vocab.level == "char":
        ids = vocab.encode(prime) if prime else vocab.start_ids()
    else:
        # The prime's sentences, with the last one left open: generation continues it.
        ids = vocab.encode(prime)[:-1] if prime else vocab.start_ids()
    return np.tile(ids[None, :], [num_samples, 1])


def sample(config: SampleConfig, out=None):
    """Writes `num_samples` samples to `out`; returns them as strings."""
    out = out or sys.stdout
    run_config, vocab, model = checkpoints.restore_model(config.checkpoint_dir, config.checkpoint,
                                                         precision=config.precision)
    if config.sampling == "top_k" and config.top_k > len(vocab):
        raise UsageError(f"--top_k={config.top_k} is larger than the vocabulary "
                         f"({len(vocab)} tokens); pass --top_k={len(vocab)} or less")
    if config.stop and vocab.level != "char":
        raise UsageError("--stop is for character-level models; a word-level sample already "
                         "ends at the end of its sentence")
    if config.interactive:
        if config.sampling == "beam":
            raise UsageError("--interactive draws samples; use it with --sampling=sample, "
                             "top_k, top_p or argmax, not beam")
        return interactive.run(config, vocab, model, out=out)
    ids = prime_ids(vocab, config.prime, config.num_samples)
    if config.sampling == "beam":
        return _beam(config, vocab, model, ids[0], out)
    if vocab.level == "word":
        return _sample_sentences(config, vocab, model, ids, out)
    return _sample_chars(config, vocab, model, ids, out)


def _beam(config, vocab, model, ids, out):
    """--sampling=beam: the --num_samples most likely continuations (char level, --length
    characters, cut at --stop) or whole sentences (word level), best first."""
    step, weights_fn = inference.step_functions(model)
    if vocab.level == "char":
        search = BeamSearch(step, config.beam_width, weights_fn)
        found = search.continuations(ids, model.initial_state(1), config.length)
    else:
        search = BeamSearch(step, config.beam_width, weights_fn,
                            banned_ids=[vocab.unknown_id, vocab.start_id])
        found = search.sentences(ids, model.initial_state(1), vocab.end_id, config.max_length,
                                 config.min_length, count=config.num_samples)
        prime_words = [int(t) for t in ids if t not in (vocab.start_id, vocab.end_id)]
        found = [(prime_words + tokens, log_p) for tokens, log_p, _ in found]
    texts = []
    for i, (tokens, log_p) in enumerate(found[:config.num_samples]):
        if vocab.level == "char":
            stop = StopAt(config.stop)
            text = config.prime + stop.feed(vocab.decode(tokens)) + stop.flush()
        else:
            text = vocab.tokenizer.detokenize(vocab.tokens[t] for t in tokens)
        texts.append(text)
        if config.num_samples == 1 and vocab.level == "char":
            out.write(text + "\n")
        elif vocab.level == "char":
            out.write(f"{'' if i == 0 else chr(10)}--- beam {i + 1}: log-probability "
                      f"{log_p:.2f} nats ---\n{text}\n")
        else:
            out.write(text + "\n")
    out.flush()
    return texts


def _sample_chars(config, vocab, model, ids, out):
    sampler = inference.sampler(model, config.sampling, config.temperature, config.top_k,
                                config.seed, top_p=config.top_p)
    stream = config.num_samples == 1
    texts = [config.prime] * config.num_samples
    # The prime is given, not generated: a marker inside it does not stop the sample.
    stops = [StopAt(config.stop) for _ in texts]
    if stream:
        out.write(config.prime)
        out.flush()
    for chunk in sampler.generate(ids, model.initial_state(config.num_samples), config.length):
        pieces = [stop.feed(vocab.decode(row)) for stop, row in zip(stops, chunk)]
        texts = [t + p for t, p in zip(texts, pieces)]
        if stream:
            out.write(pieces[0])
            out.flush()
        if all(stop.done for stop in stops):
            break
    rest = [stop.flush() for stop in stops]
    texts = [t + r for t, r in zip(texts, rest)]
    if stream:
        out.write(rest[0] + "\n")
    else:
        for i, text in enumerate(texts):
            out.write(f"{'' if i == 0 else chr(10)}--- sample {i + 1} ---\n{text}\n")
    out.flush()
    return texts


def generate_sentences(sampler, model, vocab, ids, min_length: int, max_length: int,
                       seed: int = 0):
    """Draws one sentence per row of `ids` [B, P] (each a prime ending inside a sentence).

    Returns:
      sentences: B token-id lists (prime words included, no SENTENCE_START/END);
      ended: B bools, whether each sentence ended with SENTENCE_END (else max_length cut it);
      short: how many rows never reached `min_length` words in MAX_ATTEMPTS attempts (those
        keep their longest attempt).
    """
    specials = (vocab.start_id, vocab.end_id)
    prime_words = [[int(t) for t in row if t not in specials] for row in ids]
    best = [None] * len(ids)
    best_ended = [False] * len(ids)
    todo = list(range(len(ids)))
    for attempt in range(MAX_ATTEMPTS):
        rows = ids[todo]
        sentences = [[] for _ in todo]
        ended = np.zeros(len(todo), bool)
        for chunk in sampler.generate(rows, model.initial_state(len(todo)), max_length,
                                      seed=seed + 7919 * attempt):
            for r, tokens in enumerate(chunk):
                for t in tokens:
                    if ended[r]:
                        break
                    if t == vocab.end_id:
                        ended[r] = True
                    else:
                        sentences[r].append(int(t))
            if ended.all():
                break
        still = []
        for r, i in enumerate(todo):
            words = prime_words[i] + sentences[r]
            if best[i] is None or len(words) > len(best[i]):
                best[i], best_ended[i] = words, bool(ended[r])
            if len(words) < min_length:
                still.append(i)
        todo = still
        if not todo:
            break
    return best, best_ended, len(todo)


def _sample_sentences(config, vocab, model, ids, out):
    banned = [vocab.unknown_id, vocab.start_id]
    sampler = inference.sampler(model, config.sampling, config.temperature, config.top_k,
                                config.seed, banned_ids=banned, top_p=config.top_p)
    sentences, _, short = generate_sentences(sampler, model, vocab, ids, config.min_length,
                                          config.max_length, config.seed)
    texts = [vocab.tokenizer.detokenize(vocab.tokens[t] for t in words) for words in sentences]
    for text in texts:
        out.write(text + "\n")
    out.flush()
    if short:
        print(f"note: {short} sentence(s) stayed shorter than --min_length={config.min_length} "
              f"after {MAX_ATTEMPTS} attempts; printed the longest attempt", file=sys.stderr)
    return texts
