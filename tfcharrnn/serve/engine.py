"""The model's owner in the server: lanes of batched generation, and a scorer, each a thread.

A generation request is a `streams.Job`; it joins the lane with the fewest samples. A lane is
one `streams.Decoder` run by its own thread: the requests in it are drawn together, a chunk of
up to STREAM_CHUNK tokens per compiled call for every running sample, and each chunk is handed
back as it comes. There is a lane per CPU core by default: one compiled call keeps about one
core busy (its matrix products use both cores of a 2-core machine, the rest of its loop one),
so two lanes overlap where one leaves a core idle: 32 concurrent requests of the default
2 x 256 LSTM, in-process, drew 83,000-91,000 characters/s in two lanes and about 70,000 in
one (2-core AMD EPYC, AVX-512). Score requests run in their own thread, one at a time. A
request's job reports to its own callbacks, which the server turns into events on its event
loop; a cancelled job (its client went away) leaves its batch at the next chunk.
"""

import os
import queue
import sys
import threading

import numpy as np
import tensorflow as tf

from tfcharrnn import sample_lib, score_lib
from tfcharrnn.config import SampleConfig
from tfcharrnn.decoding.streams import Decoder, bucket
from tfcharrnn.evaluation import BatchScorer

# Tokens per compiled call: what a client receives at a time. Smaller is smoother streaming
# and a quicker start for a request joining a busy batch; larger costs less per token.
STREAM_CHUNK = 64


def default_lanes() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class ScoreJob:
    """Texts to score, with a callback for the result (or the exception)."""

    def __init__(self, texts: list, per_token: bool, on_result):
        self.texts, self.per_token, self.on_result = texts, per_token, on_result


class Lane:
    """One batch of generation requests and the thread that draws it."""

    def __init__(self, sampler, model, max_rows: int, log, name: str):
        self.decoder = Decoder(sampler, model.initial_state, max_rows=max_rows)
        self.log = log
        self._inbox = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    @property
    def load(self) -> int:
        """Samples running or waiting here (read from another thread: an estimate)."""
        return (self.decoder.running_rows + self.decoder.waiting_rows
                + sum(job.rows for job in list(self._inbox.queue) if job is not None))

    def add(self, job):
        self._inbox.put(job)

    def _loop(self):
        while True:
            try:
                item = self._inbox.get(block=not self.decoder.busy)
                while True:
                    if item is None:
                        return
                    self.decoder.add(item)
                    item = self._inbox.get_nowait()
            except queue.Empty:
                pass
            if self.decoder.busy:
                self._step()

    def _step(self):
        try:
            self.decoder.step()
        except Exception as e:  # noqa: BLE001 - a failed step must not stop the server
            text = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            self.log(f"error: generation failed ({type(e).__name__}: {text}); its requests "
                     f"were answered with an error")
            for job in self.decoder.running_jobs():
                job.failed = e          # their on_done reports it when the decoder drops them
                job.cancelled = True


class Engine:
    """Runs jobs on the restored run `run` (`checkpoints.Restored`): `lanes` lanes of up to
    `max_batch` samples each (0: one per CPU core), and a scorer."""

    def __init__(self, run, max_batch: int, lanes: int = 0, log=None):
        self.run = run
        self.vocab, self.model = run.vocab, run.model
        self.max_batch = max_batch
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self.sampler = sample_lib.sampler(self.model, self.vocab, SampleConfig(),
                                          chunk=STREAM_CHUNK)
        self.lanes = [Lane(self.sampler, self.model, max_batch, self.log, f"tfcharrnn-lane-{i}")
                      for i in range(lanes or default_lanes())]
        self.scorer = BatchScorer(self.model)
        self.parameters = int(sum(np.prod(v.shape) for v in self.model.trainable_variables))
        self._scores = queue.Queue()
        self._score_thread = threading.Thread(target=self._score_loop, name="tfcharrnn-scorer",
                                              daemon=True)

    # ---- from any thread ----

    def start(self):
        for lane in self.lanes:
            lane._thread.start()
        self._score_thread.start()

    def stop(self):
        for lane in self.lanes:
            lane.add(None)
        self._scores.put(None)
        for thread in [lane._thread for lane in self.lanes] + [self._score_thread]:
            thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return (all(lane._thread.is_alive() for lane in self.lanes)
                and self._score_thread.is_alive())

    def submit(self, job):
        """Queues a generation job (`streams.Job`, to the least loaded lane) or a `ScoreJob`."""
        if isinstance(job, ScoreJob):
            self._scores.put(job)
        else:
            min(self.lanes, key=lambda lane: lane.load).add(job)

    def stats(self) -> dict:
        """What the lanes are doing, and have done."""
        decoders = [lane.decoder for lane in self.lanes]
        calls = sum(d.calls for d in decoders)
        return {"running_samples": sum(d.running_rows for d in decoders),
                "waiting_requests": (sum(d.waiting_jobs + lane._inbox.qsize()
                                         for d, lane in zip(decoders, self.lanes))
                                     + self._scores.qsize()),
                "lanes": len(self.lanes), "chunks_run": calls,
                "samples_per_chunk": (round(sum(d.row_calls for d in decoders) / calls, 2)
                                      if calls else None)}

    @property
    def peak_rows(self) -> int:
        return max(lane.decoder.peak_rows for lane in self.lanes)

    def warm_up(self):
        """Compiles the draw for every batch size the lanes will use and traces the scorer,
        so that no request waits for XLA. Call before `start`."""
        weights = self.lanes[0].decoder.weights
        for rows in sorted({bucket(n) for n in range(1, self.max_batch + 1)}):
            self.sampler.draw(tf.zeros([rows, len(self.vocab)]), self.model.initial_state(rows),
                              np.zeros(rows, np.uint32), np.zeros(rows, np.int64),
                              self.sampler.settings(rows), 1, weights,
                              np.zeros([rows, 1], np.int32), np.ones(rows, np.int64))
        self.scorer.score([np.zeros(3, np.int32), np.zeros(12, np.int32)])

    # ---- the scorer thread ----

    def _score_loop(self):
        while True:
            job = self._scores.get()
            if job is None:
                return
            try:
                results = score_lib.score_texts(self.scorer, self.vocab, job.texts,
                                                job.per_token)
            except Exception as e:  # noqa: BLE001 - reported to the request, not raised here
                job.on_result(e)
                continue
            job.on_result(results)
