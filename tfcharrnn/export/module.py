"""The exported module: a trained model with its vocabulary, runnable by TensorFlow alone.

Everything a caller needs is in the graph: the folded weights of `models/inference.py` (as
variables), the vocabulary as lookup tables, and the one-token step of `inference.py`, traced
here once, so the SavedModel needs no Python code of this project to run.

Signatures (strings are UTF-8):
  generate(prime: string [], length: int32 [], temperature: float32 [], seed: int64 [])
      -> text: string []. The prime then `length` drawn tokens. Tokens are drawn as `sample`
      draws them (Gumbel-max with the numbers of `decoding/noise.py`, row 0 of the seed), so
      the same seed gives the same text as `python -m tfcharrnn.sample --seed=S
      --temperature=T`; temperature <= 0 takes the most likely token each time.
  score(texts: string [N]) -> log_prob_nats: float32 [N], tokens: int32 [N]. What
      `python -m tfcharrnn.score` prints for those lines.
  step(tokens: string [B], state: float32 [B, S]) -> log_probs: float32 [B, V],
      state: float32 [B, S]. One token per stream; start from zeros [B, S]. The state is the
      model's (h, or h and c, per layer) side by side. Word level: a sentence starts with the
      token SENTENCE_START and ends with SENTENCE_END.
  vocabulary() -> tokens: string [V] (the columns of log_probs), state_size: int32 [].

Char level: a token is one character; text is lowercased first when the run lowercased, and a
character outside the vocabulary is an InvalidArgument error naming the problem.
Word level: the caller tokenizes. A text is its words separated by spaces (lowercased here when
the run lowercased), as one sentence: score wraps it in SENTENCE_START ... SENTENCE_END and
unknown words become UNKNOWN_TOKEN, as `score` does; generate returns the prime, then the drawn
words separated by spaces, with a newline where a sentence ends (SENTENCE_START and
UNKNOWN_TOKEN are never drawn).
"""

import numpy as np
import tensorflow as tf

from tfcharrnn.decoding import noise, sampling
from tfcharrnn.models import inference


def _flatten(state):
    return tf.concat(state, axis=-1)                                   # [B, S]


class ExportModule(tf.Module):

    def __init__(self, model, vocab):
        super().__init__(name="tfcharrnn")
        self.level = vocab.level
        self.vocab_size = len(vocab)
        self.state_sizes = list(model.state_shapes)
        step, weights_fn = inference.step_functions(model)
        self._step_fn = step
        # The weights as they are now, as variables of this module (not the model's).
        self.weights = tf.nest.map_structure(
            lambda t: tf.Variable(t, trainable=False), weights_fn())
        tokens = list(vocab.tokens)
        self.tokens = tf.constant(tokens)
        if vocab.level == "char":
            self.lowercase = vocab.lowercase
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant([ord(c) for c in tokens], tf.int64),
                    tf.range(len(tokens), dtype=tf.int32)), default_value=-1)
            self.display = self.tokens
            self.start_ids = tf.constant(vocab.start_ids(), tf.int32)
            self.banned = tf.zeros([len(tokens)], tf.bool)
        else:
            self.lowercase = vocab.tokenizer.lowercase
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(tokens), tf.range(len(tokens), dtype=tf.int32)),
                default_value=vocab.unknown_id)
            display = [" " + t for t in tokens]
            display[vocab.end_id] = "\n"
            self.display = tf.constant(display)
            self.start_ids = tf.constant([vocab.start_id], tf.int32)
            self.start_id, self.end_id = vocab.start_id, vocab.end_id
            self.unknown_id = vocab.unknown_id
            banned = np.zeros(len(tokens), bool)
            banned[[vocab.unknown_id, vocab.start_id]] = True
            self.banned = tf.constant(banned)

    # ---- helpers (traced into the signatures) ----

    def _zero_state(self, batch):
        return [tf.zeros([batch, size]) for size in self.state_sizes]

    def _split(self, flat):
        return list(tf.split(flat, self.state_sizes, axis=-1))

    def _encode(self, texts):
        """string [N] -> ids RaggedTensor [N, (tokens)] int32, as the run encodes text."""
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        if self.level == "char":
            codepoints = tf.strings.unicode_decode(texts, "UTF-8")
            ids = tf.ragged.map_flat_values(
                lambda c: self.table.lookup(tf.cast(c, tf.int64)), codepoints)
            tf.debugging.assert_non_negative(
                ids.flat_values, message="the text has characters the model's vocabulary "
                "lacks; remove them (vocabulary() lists the characters)")
            return ids
        words = tf.strings.split(texts)
        ids = tf.ragged.map_flat_values(self.table.lookup, words)
        n = tf.shape(texts)[0]
        start = tf.fill([n, 1], self.start_id)
        end = tf.fill([n, 1], self.end_id)
        return tf.concat([start, ids, end], axis=1)

    def _run(self, ids, state):
        """Feeds ids [B, T] (T >= 1); returns the logits after the last [B, V], state."""
        return sampling.feed(self._step_fn, ids, state, self.weights)

    # ---- signatures ----

    @tf.function(input_signature=[tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int32),
                                  tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.int64)])
    def generate(self, prime, length, temperature, seed):
        if self.level == "char":
            ids = self._encode(prime[None]).flat_values
        else:
            ids = self._encode(prime[None])[0][:-1]      # the sentence is left open
        ids = tf.cond(tf.size(ids) > 0, lambda: ids, lambda: self.start_ids)
        logits, state = self._run(ids[None], self._zero_state(1))
        keys = noise.row_keys(seed, 1)                          # the one stream's key
        greedy = tf.reshape(temperature <= 0, [1])
        settings = sampling.Settings(
            temperature=tf.where(greedy, 1.0, tf.reshape(temperature, [1])),
            top_k=tf.zeros([1], tf.int32), top_p=tf.ones([1]), greedy=greedy)
        tokens, _, _ = sampling.draw_loop(self._step_fn, self.weights, logits, state, keys,
                                          tf.zeros([1], tf.int64), settings, length,
                                          tf.maximum(length, 0), self.banned)     # [1, length]
        text = tf.strings.reduce_join(tf.gather(self.display, tokens[0]))
        return {"text": prime + text}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def score(self, texts):
        ids = self._encode(texts)
        lengths = tf.cast(ids.row_lengths(), tf.int32)                     # [N]
        dense = ids.to_tensor()                                             # [N, T]
        steps = tf.maximum(tf.shape(dense)[1] - 1, 0)
        n = tf.shape(texts)[0]
        total = tf.zeros([n])
        state = self._zero_state(n)
        for t in tf.range(steps):
            logits, state = self._step_fn(dense[:, t], state, self.weights)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=dense[:, t + 1], logits=tf.cast(logits, tf.float32))
            total += tf.where(t + 1 < lengths, losses, 0.0)
        return {"log_prob_nats": -total, "tokens": tf.maximum(lengths - 1, 0)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string),
                                  tf.TensorSpec([None, None], tf.float32)])
    def step(self, tokens, state):
        if self.level == "char":
            if self.lowercase:
                tokens = tf.strings.lower(tokens, encoding="utf-8")
            ids = self.table.lookup(tf.cast(
                tf.strings.unicode_decode(tokens, "UTF-8").to_tensor(-1)[:, 0], tf.int64))
            tf.debugging.assert_non_negative(
                ids, message="a token is not in the model's vocabulary (vocabulary() lists "
                "them); pass one character per stream")
        else:
            # A token as given (SENTENCE_START and the other special tokens are upper case),
            # else lowercased when the run lowercased, else UNKNOWN_TOKEN.
            ids = self.table.lookup(tokens)
            if self.lowercase:
                lowered = self.table.lookup(tf.strings.lower(tokens, encoding="utf-8"))
                ids = tf.where(tf.equal(ids, self.unknown_id), lowered, ids)
        logits, new_state = self._step_fn(ids, self._split(state), self.weights)
        return {"log_probs": tf.nn.log_softmax(tf.cast(logits, tf.float32)),
                "state": _flatten(new_state)}

    @tf.function(input_signature=[])
    def vocabulary(self):
        return {"tokens": self.tokens, "state_size": tf.constant(sum(self.state_sizes))}

    def signatures(self) -> dict:
        return {"generate": self.generate, "score": self.score, "step": self.step,
                "vocabulary": self.vocabulary}
