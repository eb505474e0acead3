"""Measure a model on token ids, from a zero state.

`StreamScorer`: one stream (batch of 1), the state carried across windows: `evaluate` (a
whole file, exact and in order). `BatchScorer`: many short sequences at once, each on its own
from a zero state: `score` (one line or sentence per sequence).
"""

import math
import sys

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfcharrnn import steps


def _summary(total: float, count: int) -> dict:
    loss = total / count if count else float("nan")
    return {"total_nats": total, "tokens": count, "loss_nats_per_token": loss,
            "bits_per_token": loss / math.log(2.0),
            "perplexity": math.exp(loss) if count else float("nan")}


class StreamScorer:
    """Scores ids[1:] given everything before them, as one stream (batch of 1)."""

    # float32 logits of one call, at most: 256 MB (a --window of 10M characters would be
    # 2.6 GB; at word level a window of 1,000 is 32 MB per 8,000 words).
    MAX_LOGITS = 2 ** 26

    def __init__(self, model, window: int = 1000):
        self.model = model
        # Tokens per compiled forward call; only speed depends on it.
        self.window = max(1, min(window, self.MAX_LOGITS // model.vocab_size))
        # Windows of different lengths would each trace a new graph; relax the shapes.
        self._eval = tf.function(lambda x, y, s: steps.eval_step(model, x, y, s),
                                 reduce_retracing=True)

    def score(self, ids: np.ndarray, progress: bool = False) -> dict:
        """Args: ids int32 [N]; progress: a progress bar on stderr (tokens) when the file
        spans more than a few windows. Returns total_nats (the negative log-probability of
        ids[1:]), tokens (N - 1), loss_nats_per_token, bits_per_token and perplexity."""
        state = self.model.initial_state(1)
        total, count = 0.0, 0
        bar = tqdm(total=len(ids) - 1, unit="tok", unit_scale=True, file=sys.stderr,
                   disable=not progress or len(ids) <= 5 * self.window,
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)
        for start in range(0, len(ids) - 1, self.window):
            # [1, <=window]; int32 whatever the ids' storage (a prepared file's uint8/16)
            y = np.asarray(ids[start + 1:start + self.window + 1], np.int32)[None, :]
            x = np.asarray(ids[start:start + y.shape[1]], np.int32)[None, :]
            loss_sum, n, state = self._eval(x, y, state)
            total += float(loss_sum)
            count += int(n)
            bar.update(int(n))
        bar.close()
        return _summary(total, count)


class BatchScorer:
    """Scores many sequences at once, each as its own stream from a zero state.

    Equal sequences are scored once. The first TREE_COLUMNS positions are run as a prefix
    tree, one column at a time: texts that begin alike ("The ", "KING RICHARD III:") have the
    same states there, so each distinct prefix is run once and its state handed to every
    text that continues it (`_tree`). From there on every text runs on its own row (`_rows`):
    sorted by length, longest first, and cut into batches of up to `batch_size`, so each
    batch holds similar lengths. A batch is padded on the right to its longest sequence and
    padded positions are masked out of the sums; padding on the right cannot change a real
    position's loss (the model reads left to right). Every padded position costs as much as
    a real one, so the columns of a batch are run in segments, the state carried from one to
    the next, and each segment runs only the rows still going (longest first, those are a
    prefix), rounded up to a multiple of ROW_STEP: the many-rows wavefront compiles its gates
    (XLA) once per row count, so all calls meet at most batch_size / ROW_STEP of them; the
    graphs take any shape and are traced once. Segments are at most `window` columns, and
    fewer when the call's logits [rows, columns, vocabulary] would pass MAX_LOGITS. The 10,000
    corpus lines of the benchmark (7,839 distinct) hold 314,189 positions; this runs 253,906
    (padding included) in 60 calls.

    The result of each sequence equals `StreamScorer.score` of it alone up to float
    round-off (a batch's products add in another order).
    """

    # float32 logits in one call: 256 MB. At word level (8,000 words) 256 rows of 1,000
    # columns would be 8 GB; this cuts them into calls of 32 columns.
    MAX_LOGITS = 2 ** 26
    # Segment rows are a multiple of this (or the whole batch).
    ROW_STEP = 128
    # Positions run as a prefix tree. Beyond ~8 columns few texts still share a prefix (the
    # benchmark's lines: 5,007 distinct prefixes of 6 tokens, 6,331 of 8, 7,088 of 10 among
    # 7,839 texts) and a column a call costs more than it saves.
    TREE_COLUMNS = 8
    # Positions of one batch's arrays, padding included (x, y and mask: 12 bytes each), at
    # most: 192 MB. A very long text runs with few others, or alone, instead of padding a
    # whole batch to its length (1,024 rows of a 1M-character line would be 12 GB).
    MAX_PADDED = 2 ** 24

    def __init__(self, model, window: int = 1000, batch_size: int = 1024):
        self.model = model
        self.window = window
        self.batch_size = batch_size
        # Any number of rows and columns: one graph each, traced once.
        states = [tf.TensorSpec([None, width], tf.float32) for width in model.state_shapes]
        ids = tf.TensorSpec([None, None], tf.int32)
        self._eval = tf.function(self._eval_impl, input_signature=[
            ids, ids, tf.TensorSpec([None, None], tf.float32), states])
        self._tree_eval = tf.function(self._tree_impl, input_signature=[
            tf.TensorSpec([None, 1], tf.int32), states, tf.TensorSpec([None, 2], tf.int32)])
        self._token_eval = tf.function(self._token_impl, input_signature=[ids, ids, states])

    def _eval_impl(self, x, y, mask, state):
        """x, y int32 [B, T], mask float32 [B, T] -> per-row loss sums [B], new state."""
        logits, state = self.model(x, state, training=False)
        return tf.reduce_sum(steps.token_losses(logits, y) * mask, axis=1), state

    def _token_impl(self, x, y, state):
        """x, y int32 [B, T] -> the loss of every position [B, T], new state."""
        logits, state = self.model(x, state, training=False)
        return steps.token_losses(logits, y), state

    def _tree_impl(self, x, state, pairs):
        """x int32 [R, 1] (one token per prefix), pairs int32 [P, 2] (row, next token) ->
        the losses of the P pairs [P], the new state."""
        logits, state = self.model(x, state, training=False)
        log_probs = tf.nn.log_softmax(tf.cast(logits[:, 0], tf.float32))       # [R, V]
        return -tf.gather_nd(log_probs, pairs), state

    def _rounded(self, rows, most: int):
        """Rows (an int or an int array, each <= most) rounded up to a multiple of ROW_STEP,
        or to `most`."""
        return np.minimum(-(-rows // self.ROW_STEP) * self.ROW_STEP, most)

    def segments(self, counts: np.ndarray):
        """(rows, start, end) calls for a batch whose rows predict `counts` positions each
        (descending): the first `rows` rows, columns start:end."""
        width = int(counts[0]) if len(counts) else 0
        going = (counts[:, None] > np.arange(width)[None, :]).sum(axis=0)   # [width]
        rounded = self._rounded(going, len(counts))
        start = 0
        while start < width:
            rows = int(rounded[start])
            columns = max(1, min(self.window, self.MAX_LOGITS // (rows * self.model.vocab_size)))
            end = start + 1
            while end < min(width, start + columns) and rounded[end] == rows:
                end += 1
            yield rows, start, end
            start = end

    def _tree(self, sequences: list, columns: int):
        """Runs positions 0..columns-1 of `sequences` (int32 arrays) as a prefix tree.
        Returns the loss sums of those positions [N] and a function of the indices of
        sequences with more than `columns` positions -> their states after reading `columns`
        tokens (flat list of [len(indices), H]; zero states if columns is 0)."""
        totals = np.zeros(len(sequences))
        state = self.model.initial_state(1)          # the root: one zero state
        node_of = np.zeros(len(sequences), np.int32)  # each sequence's node in the last column
        most = max(1, min(self.batch_size, self.MAX_LOGITS // self.model.vocab_size))  # rows
        for t in range(columns):
            going = [i for i, s in enumerate(sequences) if len(s) - 1 > t]
            if not going:
                break
            nodes = {}                                # prefix s[:t+1] -> its row in column t
            row = np.array([nodes.setdefault(sequences[i][:t + 1].tobytes(), len(nodes))
                            for i in going], np.int32)
            parent = np.zeros(len(nodes), np.int32)   # the node of s[:t] in column t-1
            x = np.zeros(len(nodes), np.int32)
            parent[row], x[row] = node_of[going], [sequences[i][t] for i in going]
            target = np.array([sequences[i][t + 1] for i in going], np.int32)
            state = [tf.gather(s, parent) for s in state]               # [nodes, H] each
            new_state, losses = [[] for _ in state], np.zeros(len(going))
            for first in range(0, len(nodes), most):
                last = min(first + most, len(nodes))
                pad = int(self._rounded(last - first, most)) - (last - first)   # padding rows
                chunk = [tf.pad(s[first:last], [[0, pad], [0, 0]]) for s in state]
                inside = (row >= first) & (row < last)
                pairs = np.stack([row[inside] - first, target[inside]], axis=1)
                part, chunk = self._tree_eval(np.pad(x[first:last], [0, pad])[:, None], chunk,
                                              pairs)
                losses[inside] = part.numpy()
                for kept, s in zip(new_state, chunk):
                    kept.append(s[:last - first])
            state = [tf.concat(parts, 0) for parts in new_state]
            totals[going] += losses
            node_of[going] = row
        if not columns:
            return totals, lambda indices: self.model.initial_state(len(indices))
        return totals, lambda indices: [tf.gather(s, node_of[indices]) for s in state]

    def _rows(self, sequences: list, state: list) -> np.ndarray:
        """Loss sums of all positions of `sequences`, each on its own row from its row of
        `state` (flat list of [N, H])."""
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        totals = np.zeros(len(sequences))
        for batch in self._batches(order, [len(s) for s in sequences]):
            counts = np.array([max(len(sequences[i]) - 1, 0) for i in batch])  # descending
            if counts[0] < 1:
                continue                                         # nothing to predict
            x = np.zeros([len(batch), counts[0]], np.int32)
            y = np.zeros([len(batch), counts[0]], np.int32)
            mask = np.zeros([len(batch), counts[0]], np.float32)
            for r, i in enumerate(batch):
                ids, n = sequences[i], counts[r]
                if n > 0:
                    x[r, :n], y[r, :n], mask[r, :n] = ids[:-1], ids[1:], 1.0
            rows = [tf.gather(s, batch) for s in state]
            sums = np.zeros(len(batch))
            for kept, start, end in self.segments(counts):
                rows = [s[:kept] for s in rows]                  # the rows still going
                part, rows = self._eval(x[:kept, start:end], y[:kept, start:end],
                                        mask[:kept, start:end], rows)
                sums[:kept] += part.numpy()
            totals[batch] = sums
        return totals

    def _batches(self, order, lengths):
        """`order` (indices, longest first) cut into batches of up to batch_size rows, each
        within MAX_PADDED positions (its rows x its first row's length)."""
        first = 0
        while first < len(order):
            rows = max(1, min(self.batch_size, self.MAX_PADDED // max(lengths[order[first]], 1)))
            yield order[first:first + rows]
            first += rows

    def score(self, sequences: list) -> list:
        """Args: sequences, a list of int id arrays. Returns one `StreamScorer.score`-like
        dict per sequence (total_nats, tokens, ...), in the order given."""
        first_of = {}                           # the index of each distinct sequence's first copy
        copy_of = [first_of.setdefault(np.asarray(s, np.int32).tobytes(), i)
                   for i, s in enumerate(sequences)]
        distinct = [np.asarray(sequences[i], np.int32) for i in first_of.values()]
        slot = {i: k for k, i in enumerate(first_of.values())}
        columns = min(self.TREE_COLUMNS, max((len(s) - 1 for s in distinct), default=0))
        totals, states_of = self._tree(distinct, columns)
        longer = np.array([k for k, s in enumerate(distinct) if len(s) - 1 > columns], np.int32)
        if len(longer):                              # the rest, from position `columns` on
            totals[longer] += self._rows([distinct[k][columns:] for k in longer],
                                         states_of(longer))
        return [_summary(float(totals[slot[copy_of[i]]]), max(len(s) - 1, 0))
                for i, s in enumerate(sequences)]

    def token_losses(self, sequences: list) -> list:
        """The loss of every position of each sequence: float32 [len(s) - 1], position t the
        negative log-probability of s[t + 1] after s[:t + 1] (what `score` sums). A plainer
        pass than `score` (rows padded to their batch's longest, no prefix tree), for the
        few texts a person reads a token at a time."""
        sequences = [np.asarray(s, np.int32) for s in sequences]
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        out = [np.zeros(max(len(s) - 1, 0), np.float32) for s in sequences]
        for batch in self._batches(order, [len(s) for s in sequences]):
            width = len(sequences[batch[0]]) - 1
            if width < 1:
                continue
            x = np.zeros([len(batch), width], np.int32)
            y = np.zeros([len(batch), width], np.int32)
            for r, i in enumerate(batch):
                n = max(len(sequences[i]) - 1, 0)
                x[r, :n], y[r, :n] = sequences[i][:-1], sequences[i][1:]
            state = self.model.initial_state(len(batch))
            columns = max(1, min(self.window,
                                 self.MAX_LOGITS // (len(batch) * self.model.vocab_size)))
            losses = np.zeros([len(batch), width], np.float32)
            for start in range(0, width, columns):
                part, state = self._token_eval(x[:, start:start + columns],
                                               y[:, start:start + columns], state)
                losses[:, start:start + columns] = part.numpy()
            for r, i in enumerate(batch):
                out[i] = losses[r, :len(out[i])]
        return out
