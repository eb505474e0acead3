"""Generate text from a trained run: python -m tfcharrnn.sample.

Character level: `--length` characters after the prime, streamed as they come, cut at the
first `--stop` text if given.
Word level: whole sentences. Each starts from SENTENCE_START (then the prime's words, if any)
and stops at SENTENCE_END or after `--max_length` tokens; UNKNOWN_TOKEN and SENTENCE_START are
never drawn (their probability is zeroed before sampling, nothing is redrawn). A sentence
shorter than `--min_length` words is drawn again, at most MAX_ATTEMPTS times.
The samples are one `decoding/jobs.py` job run by `decoding/streams.py`'s Decoder, the same
code that serves generation requests (`tfcharrnn.serve`), so both give the same text for the
same settings and seed. `--sampling=beam` searches for the most likely text instead
(`decoding/beam_search.py`); `--interactive` reads primes from the terminal
(`decoding/interactive.py`).
"""

import sys

from tfcharrnn import checkpoints
from tfcharrnn.config import MAX_SAMPLE_TOKENS, SampleConfig
from tfcharrnn.decoding import interactive
from tfcharrnn.decoding.beam_search import BeamSearch
from tfcharrnn.decoding.jobs import MAX_ATTEMPTS, CharJob, SentenceJob, prime_ids
from tfcharrnn.decoding import sampling
from tfcharrnn.decoding.sampling import StopAt
from tfcharrnn.decoding.streams import Decoder
from tfcharrnn.errors import UsageError
from tfcharrnn.models import inference


def sample(config: SampleConfig, out=None):
    """Writes `num_samples` samples to `out`; returns them as strings."""
    out = out or sys.stdout
    run_config, vocab, model = checkpoints.restore_model(config.checkpoint_dir, config.checkpoint,
                                                         precision=config.precision)
    check_request(config, vocab)
    if config.interactive:
        if config.sampling == "beam":
            raise UsageError("--interactive draws samples; use it with --sampling=sample, "
                             "top_k, top_p or argmax, not beam")
        return interactive.run(config, vocab, model, out=out)
    if config.sampling == "beam":
        return _beam(config, vocab, model, prime_ids(vocab, config.prime, 1)[0], out)
    decoder = Decoder(sampler(model, vocab, config), model.initial_state)
    if vocab.level == "word":
        return _sample_sentences(config, vocab, decoder, out)
    return _sample_chars(config, vocab, decoder, out)


def check_request(config: SampleConfig, vocab, flag=lambda name: f"--{name}"):
    """What a sample request cannot ask of this vocabulary; `flag` names a setting in the
    messages (the server names its JSON fields)."""
    if config.sampling == "top_k" and config.top_k > len(vocab):
        raise UsageError(f"{flag('top_k')}={config.top_k} is larger than the vocabulary "
                         f"({len(vocab)} tokens); pass {flag('top_k')}={len(vocab)} or less")
    length = "length" if vocab.level == "char" else "max_length"   # tokens of each sample
    tokens = config.num_samples * getattr(config, length)
    if tokens > MAX_SAMPLE_TOKENS:
        raise UsageError(f"{flag('num_samples')} x {flag(length)} = {tokens:,} tokens, more "
                         f"than {MAX_SAMPLE_TOKENS:,}, the most one request draws (its samples "
                         f"are kept until printed); ask for fewer or shorter samples")
    if config.stop and vocab.level != "char":
        raise UsageError(f"{flag('stop')} is for character-level models; a word-level sample "
                         f"already ends at the end of its sentence")


def sampler(model, vocab, config: SampleConfig, chunk: int = 256):
    """The sampler of `config`'s settings; word level bans UNKNOWN_TOKEN and SENTENCE_START."""
    banned = [vocab.unknown_id, vocab.start_id] if vocab.level == "word" else []
    return sampling.for_model(model, config.sampling, config.temperature, config.top_k,
                             config.seed, top_p=config.top_p, banned_ids=banned, chunk=chunk)


def job(config: SampleConfig, vocab, settings, listener=None, prime_name="--prime"):
    """The `streams.Job` of a sample request: characters or sentences."""
    if vocab.level == "word":
        return SentenceJob(vocab, config.prime, config.num_samples, config.min_length,
                           config.max_length, settings, config.seed, listener, prime_name)
    return CharJob(vocab, config.prime, config.num_samples, config.length, settings,
                   config.seed, config.stop, listener, prime_name)


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


def _sample_chars(config, vocab, decoder, out):
    """Streams the sample as it is drawn when there is one; else prints each at the end."""
    stream = config.num_samples == 1

    def show(row, piece, replace):
        out.write(piece)
        out.flush()

    request = job(config, vocab, decoder.sampler.settings(config.num_samples),
                  listener=show if stream else None)
    if stream:
        out.write(config.prime)
        out.flush()
    decoder.run(request)
    if stream:
        out.write("\n")
    else:
        for i, text in enumerate(request.texts):
            out.write(f"{'' if i == 0 else chr(10)}--- sample {i + 1} ---\n{text}\n")
    out.flush()
    return request.texts


def _sample_sentences(config, vocab, decoder, out):
    request = job(config, vocab, decoder.sampler.settings(config.num_samples))
    decoder.run(request)
    for text in request.texts:
        out.write(text + "\n")
    out.flush()
    if request.short:
        print(f"note: {request.short} sentence(s) stayed shorter than --min_length="
              f"{config.min_length} after {MAX_ATTEMPTS} attempts; printed the longest attempt",
              file=sys.stderr)
    return request.texts
