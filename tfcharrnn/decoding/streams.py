"""Continuous batching: the rows of many generation requests drawn in one batch.

A request is a `Job` (`jobs.py`: characters, or sentences) with one row per sample. The
`Decoder` keeps every running row in one batch and draws up to `sampler.chunk` tokens for all
of them in each compiled call (`Sampler.draw`). A job joins between two calls: its prime runs
through the model for its rows alone, exactly as `python -m tfcharrnn.sample` runs it, and its
rows are appended to the batch; a row leaves when its job says it is finished (or the job is
cancelled), and may come back for another attempt from the state after the prime (a sentence
that came out too short). Each row draws with its own key, counter and settings
(`sampling.py`, `noise.py`), so what a row draws does not depend on when it joined or what
else runs. `sample` runs its one job through a Decoder too, so a server's answer and the
command's are made by the same code.

The batch is padded to a few sizes (`bucket`), so XLA compiles the draw a handful of times
however the number of rows moves.
"""

import numpy as np
import tensorflow as tf

from tfcharrnn.decoding.sampling import Settings


def bucket(rows: int) -> int:
    """The padded batch size for `rows` rows: 1, 2, 4, 8, then multiples of 8."""
    if rows <= 8:
        return 1 << max(rows - 1, 0).bit_length()
    return -(-rows // 8) * 8


class Job:
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
        self.primed = None           # (logits, state) after the prime, set by the Decoder
        self._reported = False       # on_done has been called

    def key(self, row: int, attempt: int) -> int:
        """The uint32 key row `row` draws with in attempt `attempt`."""
        raise NotImplementedError

    def take(self, row: int, tokens: np.ndarray) -> bool:
        """The row drew `tokens` (int32 [k], k >= 1); returns whether the row is finished."""
        raise NotImplementedError

    def again(self, row: int) -> bool:
        """Asked once a row is finished: whether to draw it again (its next attempt)."""
        return False

    @property
    def done(self) -> bool:
        return self.cancelled or self.finished_rows == self.rows

    def on_done(self):
        """Called once, when the last row finished or the job was dropped as cancelled."""


class _Row:
    __slots__ = ("job", "index", "attempt", "drawn")

    def __init__(self, job, index, attempt=0):
        self.job, self.index, self.attempt, self.drawn = job, index, attempt, 0


class Decoder:
    """Runs jobs' rows together. `add` queues a job; each `step` admits queued jobs whose rows
    fit under `max_rows` (0: no limit) and draws one chunk for every running row."""

    def __init__(self, sampler, initial_state, max_rows: int = 0):
        """initial_state: rows -> the model's zero state for that many rows."""
        self.sampler = sampler
        self.initial_state = initial_state
        self.max_rows = max_rows
        self.weights = sampler.weights()   # folded once: the weights do not change here
        self._waiting = []
        self._rows = []                     # _Row per running row, in batch order
        self._logits = None                 # [R, V]
        self._state = None                  # flat list of [R, H]
        self._keys = np.zeros([0], np.uint32)
        self._settings = None
        self.peak_rows = 0                  # the most rows drawn together so far

    @property
    def busy(self) -> bool:
        return bool(self._rows or self._waiting)

    @property
    def running_rows(self) -> int:
        return len(self._rows)

    @property
    def waiting_jobs(self) -> int:
        return len(self._waiting)

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
        """Admits the queued jobs that fit, then draws one chunk for every running row."""
        self._drop_cancelled()
        self._admit()
        if not self._rows:
            return
        rows = len(self._rows)
        self.peak_rows = max(self.peak_rows, rows)
        padded = bucket(rows)
        n = min(self.sampler.chunk, max(row.job.length - row.drawn for row in self._rows))
        counters = np.array([row.drawn for row in self._rows], np.int64)
        tokens, logits, state = self.sampler.draw(
            _pad(self._logits, padded), [_pad(s, padded) for s in self._state],
            np.pad(self._keys, [0, padded - rows]), np.pad(counters, [0, padded - rows]),
            _pad_settings(self._settings, padded), n, self.weights)
        self._logits, self._state = logits[:rows], [s[:rows] for s in state]
        kept, again, dropped = [], [], []
        for r, row in enumerate(self._rows):
            take = min(n, row.job.length - row.drawn)
            row.drawn += take
            if row.job.cancelled:
                dropped.append(row.job)
            elif not row.job.take(row.index, tokens[r, :take]) and row.drawn < row.job.length:
                kept.append(r)
            elif row.job.again(row.index):
                again.append(row)
            else:
                row.job.finished_rows += 1
                if row.job.done:
                    _end(row.job)
        self._keep(kept)
        for row in again:
            self._rejoin(row)
        for job in dropped:
            _end(job)

    # ---- bookkeeping ----

    def _drop_cancelled(self):
        for job in [j for j in self._waiting if j.cancelled]:
            self._waiting.remove(job)
            _end(job)
        cancelled = [row.job for row in self._rows if row.job.cancelled]
        if cancelled:
            self._keep([r for r, row in enumerate(self._rows) if not row.job.cancelled])
            for job in cancelled:
                _end(job)

    def _admit(self):
        while self._waiting:
            job = self._waiting[0]
            if self.max_rows and len(self._rows) + job.rows > self.max_rows:
                break
            self._waiting.pop(0)
            job.primed = self.sampler.prime(job.prime_ids, self.initial_state(job.rows),
                                            self.weights)
            self._append([_Row(job, i) for i in range(job.rows)], *job.primed)

    def _rejoin(self, row):
        """Starts the row's next attempt from the state its job had after the prime."""
        logits, state = row.job.primed
        self._append([_Row(row.job, row.index, row.attempt + 1)],
                     logits[row.index:row.index + 1], [s[row.index:row.index + 1] for s in state])

    def _append(self, rows, logits, state):
        keys = np.array([row.job.key(row.index, row.attempt) for row in rows], np.uint32)
        settings = Settings.concat([row.job.settings.take([row.index]) for row in rows])
        if self._rows:
            self._logits = tf.concat([self._logits, logits], 0)
            self._state = [tf.concat([a, b], 0) for a, b in zip(self._state, state)]
            self._keys = np.concatenate([self._keys, keys])
            self._settings = Settings.concat([self._settings, settings])
        else:
            self._logits, self._state, self._keys, self._settings = logits, state, keys, settings
        self._rows.extend(rows)

    def _keep(self, kept: list):
        """Keeps the running rows at these batch positions, in order."""
        if len(kept) == len(self._rows):
            return
        self._rows = [self._rows[r] for r in kept]
        if not kept:
            self._logits = self._state = self._settings = None
            self._keys = np.zeros([0], np.uint32)
            return
        index = tf.constant(kept, tf.int32)
        self._logits = tf.gather(self._logits, index)
        self._state = [tf.gather(s, index) for s in self._state]
        self._keys = self._keys[kept]
        self._settings = self._settings.take(kept)


def _end(job: Job):
    """Calls job.on_done() once, whether it finished or was cancelled."""
    if not job._reported:
        job._reported = True
        job.on_done()


def _pad(x, rows: int):
    extra = rows - int(x.shape[0])
    return x if extra == 0 else tf.pad(x, [[0, extra], [0, 0]])


def _pad_settings(settings: Settings, rows: int) -> Settings:
    extra = rows - len(settings.greedy)
    if extra == 0:
        return settings
    return Settings.concat([settings, Settings.of("argmax", rows=extra)])
