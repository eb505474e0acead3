"""python -m tfcharrnn.sample --interactive: a prompt that continues what you type.

Each line read is a prime: it is run through the model from the state the conversation has
reached, and the continuation is printed (char level: `--length` characters, cut at `--stop`;
word level: the rest of the sentence). The model's state then moves past exactly what was
shown (the prime and the continuation as printed, so a cut sample does not leave unseen
characters in the state), and the next line continues from there. `/reset` starts again
from a zero state; end of input (Ctrl-D) or Ctrl-C ends the session with exit status 0.
"""

import sys

import numpy as np

from tfcharrnn.decoding import sampling
from tfcharrnn.decoding.sampling import StopAt

PROMPT = "> "
RESET = "/reset"


class Conversation:
    """The model's state across turns, as a value this object carries between them."""

    def __init__(self, config, vocab, model):
        self.config, self.vocab, self.model = config, vocab, model
        banned = [vocab.unknown_id, vocab.start_id] if vocab.level == "word" else []
        self.sampler = sampling.for_model(model, config.sampling, config.temperature,
                                         config.top_k, config.seed, banned_ids=banned,
                                         top_p=config.top_p)
        self.reset()

    def reset(self):
        self.state = self.model.initial_state(1)
        self.logits = None   # the next token's logits, after the last token fed
        self.turn = 0

    def _prime_ids(self, line: str):
        vocab = self.vocab
        if vocab.level == "char":
            return vocab.encode(line) if line else np.zeros(0, np.int32)
        return vocab.encode(line)[:-1]       # START, the words; the sentence is left open

    def _feed(self, ids):
        if len(ids):
            self.logits, self.state = self.sampler.prime(np.asarray(ids, np.int32)[None],
                                                         self.state)

    def respond(self, line: str, out):
        """Feeds the line, writes its continuation to `out` as it comes; returns the text."""
        vocab = self.vocab
        ids = self._prime_ids(line)
        if self.logits is None and not len(ids):
            ids = vocab.start_ids()
        self._feed(ids)
        state, logits = self.state, self.logits
        seed = self.config.seed + 7919 * self.turn
        self.turn += 1
        kept = []
        if vocab.level == "char":
            stop = StopAt(self.config.stop)
            text = ""
            for chunk in self.sampler.continue_from(logits, state, self.config.length, seed):
                piece = stop.feed(vocab.decode(chunk[0]))
                text += piece
                out.write(piece)
                out.flush()
                if stop.done:
                    break
            rest = stop.flush()
            text += rest
            out.write(rest + "\n")
            kept = vocab.encode(text) if text else []
        else:
            words = []
            ended = False
            for chunk in self.sampler.continue_from(logits, state, self.config.max_length, seed):
                for t in chunk[0]:
                    if t == vocab.end_id:
                        ended = True
                        break
                    words.append(int(t))
                if ended:
                    break
            kept = words + [vocab.end_id]   # the sentence is closed either way
            prime_words = [int(t) for t in ids if t not in (vocab.start_id, vocab.end_id)]
            text = vocab.tokenizer.detokenize(vocab.tokens[t] for t in prime_words + words)
            out.write(text + "\n")
        out.flush()
        # Move the state past what was shown, from the state after the prime.
        self.state, self.logits = state, logits
        self._feed(kept)
        return text


def run(config, vocab, model, inp=None, out=None):
    """Reads primes from `inp` until end of input; returns the continuations printed."""
    inp, out = inp or sys.stdin, out or sys.stdout
    conversation = Conversation(config, vocab, model)
    tty = inp.isatty()
    if tty:
        print(f"type a prime and press Enter; {RESET} starts over; Ctrl-D or Ctrl-C ends",
              file=sys.stderr)
    texts = []
    try:
        while True:
            if tty:
                out.write(PROMPT)
                out.flush()
            line = inp.readline()
            if not line:
                break
            line = line.rstrip("\r\n")
            if line.strip() == RESET:
                conversation.reset()
                print("(state reset)", file=sys.stderr)
                continue
            missing = vocab.missing(line) if vocab.level == "char" else []
            if missing:
                print(f"the model's vocabulary lacks {' '.join(repr(c) for c in missing[:20])}"
                      f"; type the line without them", file=sys.stderr)
                continue
            texts.append(conversation.respond(line, out))
    except KeyboardInterrupt:
        out.write("\n")
        out.flush()
    return texts
