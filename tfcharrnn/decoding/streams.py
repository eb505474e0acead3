"""Continuous batching: the rows of many generation requests drawn in one batch.

A request is a `Job` (`jobs.py`: characters, or sentences) with one row per sample. The
`Decoder` keeps every running row in one batch and runs up to `sampler.chunk` steps of all of
them in each compiled call (`Sampler.draw`). A job joins between two calls, from a zero state:
its prime is fed inside the same calls, as tokens the row is given rather than draws (so a long
prime does not hold the other rows up), and then it draws. A row leaves when its job says it
is finished (or the job is cancelled), and may come back for another attempt (a sentence that
came out too short), from the start of its prime. Each row draws with its own key, counter and
settings (`sampling.py`, `noise.py`), so what a row draws does not depend on when it joined or
what else runs. `python -m tfcharrnn.sample` runs its one job through a Decoder too, so the
server's answer and the command's are made by the same code.

The batch is padded to a few sizes (`bucket`), so XLA compiles the call a handful of times
however the number of rows moves.
"""

import abc

import numpy as np
import tensorflow as tf

from tfcharrnn.decoding.sampling import Settings


def bucket(rows: int) -> int:
    """The padded batch size for `rows` rows: 1, 2, 4, 8, then multiples of 8."""
    if rows <= 8:
        return 1 << max(rows - 1, 0).bit_length()
    return -(-rows // 8) * 8


class Job(abc.ABC):
    """One request's rows, as the Decoder sees them. Attributes a subclass sets:
      rows: the number of rows (samples);
      prime_ids: int32 [rows, P], P >= 1, the tokens each row starts from;
      settings: `Settings` of its rows;
      length: the most tokens a row draws in one attempt.
    """
    rows: int
    prime_ids: np.ndarray
    settings: Settings
    length: int

    def __init__(self):
        self.cancelled = False       # set by anyone; the Decoder drops the rows at its next step
        self.finished_rows = 0
        self._reported = False       # on_done has been called

    @abc.abstractmethod
    def key(self, row: int, attempt: int) -> int:
        """The uint32 key row `row` draws with in attempt `attempt`."""

    @abc.abstractmethod
    def take(self, row: int, tokens: np.ndarray) -> bool:
        """The row drew `tokens` (int32 [k], k >= 1); returns whether the row is finished."""

    def again(self, row: int) -> bool:
        """Asked once a row is finished: whether to draw it again (its next attempt)."""
        return False

    @property
    def done(self) -> bool:
        return self.cancelled or self.finished_rows == self.rows

    def on_done(self):
        """Called once, when the last row finished or the job was dropped as cancelled."""


class _Row:
    __slots__ = ("job", "index", "attempt", "drawn", "pending")

    def __init__(self, job, index, attempt=0):
        self.job, self.index, self.attempt, self.drawn = job, index, attempt, 0
        self.pending = job.prime_ids[index]      # prime tokens still to feed


class Decoder:
    """Runs jobs' rows together. `add` queues a job; each `step` admits queued jobs whose rows
    fit under `max_rows` (0: no limit) and runs one chunk of every running row.

    The batch is a set of slots, padded to a bucket size. A row that leaves frees its slot (a
    free slot keeps computing, greedily, until it is reused); a row that joins takes a free
    slot, whose state the next call sets to zeros. So rows come and go without any work outside
    the compiled call, except when the batch grows past its bucket or falls to half of it.
    """

    def __init__(self, sampler, initial_state, max_rows: int = 0):
        """initial_state: rows -> the model's zero state for that many rows."""
        self.sampler = sampler
        self.initial_state = initial_state
        self.max_rows = max_rows
        self.weights = sampler.weights()   # folded once: the weights do not change here
        self.vocab_size = sampler.vocab_size(initial_state(1), self.weights)
        self._waiting = []
        self._slots = []                    # _Row or None per slot of the batch
        self._logits = None                 # [slots, V]
        self._state = None                  # flat list of [slots, H]
        self._keys = np.zeros(0, np.uint32)
        self._settings = Settings.of("argmax", rows=0)
        self._reset = np.zeros(0, bool)     # slots taken since the last call: start from zeros
        self.peak_rows = 0                  # the most rows run together so far
        self.calls = 0                      # compiled calls made, and the rows they ran
        self.row_calls = 0

    @property
    def _rows(self):
        return [row for row in self._slots if row is not None]

    @property
    def busy(self) -> bool:
        return bool(self._waiting) or any(row is not None for row in self._slots)

    @property
    def running_rows(self) -> int:
        return sum(row is not None for row in self._slots)

    @property
    def waiting_jobs(self) -> int:
        return len(self._waiting)

    @property
    def waiting_rows(self) -> int:
        return sum(job.rows for job in list(self._waiting))

    def running_jobs(self) -> list:
        """The jobs with rows in the batch, each once."""
        return list({id(row.job): row.job for row in self._rows}.values())

    def add(self, job: Job):
        if self.max_rows and job.rows > self.max_rows:
            raise ValueError(f"a job of {job.rows} rows never fits in {self.max_rows}")
        self._waiting.append(job)

    def run(self, job: Job):
        """Adds `job` and steps until it is done."""
        self.add(job)
        while not job.done:
            self.step()

    def step(self):
        """Admits the queued jobs that fit, then runs one chunk of every running row."""
        self._drop_cancelled()
        self._admit()
        live = [(slot, row) for slot, row in enumerate(self._slots) if row is not None]
        if not live:
            return
        chunk, slots = self.sampler.chunk, len(self._slots)
        self.peak_rows = max(self.peak_rows, len(live))
        self.calls += 1
        self.row_calls += len(live)
        forced_n = np.zeros(slots, np.int64)
        forced = np.zeros([slots, chunk], np.int32)
        counters = np.zeros(slots, np.int64)
        n = 1
        for slot, row in live:
            f = min(len(row.pending), chunk)
            forced_n[slot], forced[slot, :f], counters[slot] = f, row.pending[:f], row.drawn
            n = max(n, min(chunk, f + row.job.length - row.drawn))
        tokens, self._logits, self._state = self.sampler.draw(
            self._logits, self._state, self._keys, counters, self._settings, n, self.weights,
            forced, forced_n, reset=self._reset)
        self._reset[:] = False
        dropped = []
        for slot, row in live:
            f = int(forced_n[slot])
            row.pending = row.pending[f:]
            take = min(n - f, row.job.length - row.drawn)
            row.drawn += max(take, 0)
            if row.job.cancelled:
                dropped.append(row.job)
                self._free(slot)
            elif take <= 0 or (not row.job.take(row.index, tokens[slot, f:f + take])
                               and row.drawn < row.job.length):
                continue
            elif row.job.again(row.index):
                self._place(slot, _Row(row.job, row.index, row.attempt + 1))
            else:
                self._free(slot)
                row.job.finished_rows += 1
                if row.job.done:
                    _end(row.job)
        for job in dropped:
            _end(job)
        self._shrink()

    # ---- slots ----

    def _place(self, slot: int, row: _Row):
        self._slots[slot] = row
        self._keys[slot] = row.job.key(row.index, row.attempt)
        for mine, theirs in zip(self._settings, row.job.settings):
            mine[slot] = theirs[row.index]
        self._reset[slot] = True

    def _free(self, slot: int):
        self._slots[slot] = None
        self._keys[slot] = 0
        self._settings.greedy[slot] = True      # the cheapest draw until the slot is reused

    def _drop_cancelled(self):
        for job in [j for j in self._waiting if j.cancelled]:
            self._waiting.remove(job)
            _end(job)
        cancelled = [(slot, row.job) for slot, row in enumerate(self._slots)
                     if row is not None and row.job.cancelled]
        for slot, job in cancelled:
            self._free(slot)
        for _, job in cancelled:
            _end(job)
        if cancelled:
            self._shrink()

    def _admit(self):
        new = []
        while self._waiting:
            job = self._waiting[0]
            if self.max_rows and self.running_rows + len(new) + job.rows > self.max_rows:
                break
            self._waiting.pop(0)
            new.extend(_Row(job, i) for i in range(job.rows))
        if not new:
            return
        free = [slot for slot, row in enumerate(self._slots) if row is None]
        if len(free) < len(new):
            self._resize(bucket(self.running_rows + len(new)))
            free = [slot for slot, row in enumerate(self._slots) if row is None]
        for slot, row in zip(free, new):
            self._place(slot, row)

    def _shrink(self):
        """Compacts the batch to a smaller bucket once its rows fit in half of it."""
        rows = self.running_rows
        if rows == 0:
            self._resize(0)
        elif len(self._slots) > 1 and rows <= len(self._slots) // 2:
            self._resize(bucket(rows))

    def _resize(self, size: int):
        """Rebuilds the batch with `size` slots: the running rows first, then free slots."""
        live = [slot for slot, row in enumerate(self._slots) if row is not None]
        extra = size - len(live)
        rows = [self._slots[slot] for slot in live]
        if size == 0:
            self._slots, self._logits, self._state = [], None, None
            self._keys, self._reset = np.zeros(0, np.uint32), np.zeros(0, bool)
            self._settings = Settings.of("argmax", rows=0)
            return
        index = tf.constant(live, tf.int32)
        zeros = self.initial_state(extra)
        if self._logits is None:
            self._logits, self._state = tf.zeros([extra, self.vocab_size]), zeros
        else:
            self._logits = tf.concat([tf.gather(self._logits, index),
                                      tf.zeros([extra, self.vocab_size])], 0)
            self._state = [tf.concat([tf.gather(s, index), z], 0)
                           for s, z in zip(self._state, zeros)]
        free = Settings.of("argmax", rows=extra)
        self._settings = Settings(*(np.concatenate([field[live], pad])
                                    for field, pad in zip(self._settings, free)))
        self._keys = np.concatenate([self._keys[live], np.zeros(extra, np.uint32)])
        self._reset = np.concatenate([self._reset[live], np.zeros(extra, bool)])
        self._slots = rows + [None] * extra


def _end(job: Job):
    """Calls job.on_done() once, whether it finished or was cancelled."""
    if not job._reported:
        job._reported = True
        job.on_done()
