"""The training loop: data -> model -> train step -> checkpoints and TensorBoard.

`train_and_evaluate(config)` is the whole of `python -m tfcharrnn.train`; it reads no flags,
so tests call it with a tiny config in a temporary directory.
"""

import contextlib
import dataclasses
import math
import os
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfcharrnn import averaging, checkpoints, corpus, dataset, distribute, schedule, steps
from tfcharrnn.batching import StreamBatches
from tfcharrnn.prepare import prepared
from tfcharrnn.config import RunConfig, differing_fields
from tfcharrnn.errors import RunError, UsageError
from tfcharrnn.interrupts import GracefulStop
from tfcharrnn.decoding import sampling
from tfcharrnn.models import build_model, devices
from tfcharrnn.run_lock import LOCK_FILE, RunLock
from tfcharrnn.summaries import SummaryWriter

LN2 = math.log(2.0)


@dataclasses.dataclass
class Data:
    vocab: object  # CharVocab or WordVocab
    train: StreamBatches
    val: StreamBatches = None  # None when --val_fraction=0


def prepare_data(config: RunConfig, saved_vocab=None, log=print, prepare: bool = True) -> Data:
    """The corpus as batches: memory-mapped from a prepared directory (the data path itself,
    or the run directory's copy, prepared now if need be: `prepared.ensure`), or, with
    prepare=False and a data path that is not prepared, read into memory (the same ids).
    Checks that each split is long enough."""
    dc = config.data
    if prepare or not corpus.is_plain_file(dc.resolved_data_path):
        # Another worker's copy of a folder, a glob or a compressed file: in a directory of
        # its own (it writes nothing into the run directory).
        home = config.train.checkpoint_dir if prepare else tempfile.mkdtemp(prefix="tfcharrnn-")
        directory = prepared.ensure(dc, home, log=log)
        vocab, train_ids, val_ids = prepared.load(directory)
        dataset.check_same(vocab, saved_vocab)
    else:
        documents = dataset.read_corpus(dc)
        vocab, ids = dataset.build_vocab_and_encode(dc, documents, saved_vocab, log)
        del documents
        train_ids, val_ids, _ = corpus.split(ids, dc.val_fraction, dc.test_fraction)
    if dc.val_tokens:
        val_ids = val_ids[:dc.val_tokens + 1]     # + 1: the last input's target
    need = StreamBatches.min_tokens(dc.batch_size, dc.seq_len)
    for name, part in (("training", train_ids), ("validation", val_ids)):
        if name == "validation" and dc.val_fraction == 0:
            continue
        if len(part) < need:
            raise UsageError(
                f"the {name} split has {len(part)} tokens, fewer than batch_size * seq_len + 1"
                f" = {need}; pass smaller --batch_size/--seq_len (e.g. --batch_size="
                f"{max(1, (len(part) - 1) // dc.seq_len) if len(part) > dc.seq_len else 1} "
                f"--seq_len={min(dc.seq_len, max(1, len(part) - 1))}), a longer file"
                + (", or a larger --val_fraction" if name == "validation" else ""))
    return Data(vocab=vocab,
                train=StreamBatches(train_ids, dc.batch_size, dc.seq_len),
                val=(StreamBatches(val_ids, dc.batch_size, dc.seq_len)
                     if dc.val_fraction > 0 else None))


def check_run_dir_path(run_dir: str):
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise UsageError(f"--checkpoint_dir is a file, not a directory: {run_dir}")


def prepare_run_dir(config: RunConfig, overwrite: bool = False, lock: RunLock = None):
    """Checks the run directory (not a file: see check_run_dir_path); returns the saved
    vocabulary when resuming, else None.

    An existing run is resumed only if its config matches `config` (except how long to train,
    how often to evaluate/save and where it runs). `overwrite` moves the old run aside (and
    `lock`, held on the directory, with it); nothing is deleted.
    """
    run_dir = config.train.checkpoint_dir
    # A run directory holding only its prepared data (a first start that stopped before
    # training began) is a new run, which reuses the data if it still fits.
    if not os.path.isdir(run_dir) or not set(os.listdir(run_dir)) - {LOCK_FILE,
                                                                     prepared.RUN_DATA}:
        return None
    if not os.path.isfile(os.path.join(run_dir, checkpoints.CONFIG_FILE)):
        raise UsageError(f"{run_dir} is not empty and holds no {checkpoints.CONFIG_FILE}, so it "
                         f"is not a tfcharrnn run; pass another --checkpoint_dir")
    if overwrite:
        moved = f"{run_dir.rstrip(os.sep)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
        if lock is not None:
            lock.release()
        os.rename(run_dir, moved)
        if lock is not None:
            lock.acquire()  # the new, empty run directory
        print(f"--overwrite: moved the previous run to {moved}")
        return None
    saved = checkpoints.load_run_config(run_dir)
    diffs = differing_fields(saved, config)
    if diffs:
        raise UsageError(
            f"{run_dir} holds a run with other settings ({'; '.join(diffs)}); to resume pass "
            f"the same settings, to start another run pass a new --checkpoint_dir, or pass "
            f"--overwrite to start over (the old run is kept, renamed)")
    return checkpoints.load_vocab(run_dir)


def evaluate_batches(eval_fn, state, batches: StreamBatches, rows=None) -> float:
    """Mean nats per token over all batches, carrying the state from `state` (zeros);
    `rows` (lo, hi): the streams this worker reads (`StreamBatches.rows`), default all."""
    total, count = 0.0, 0
    lo, hi = rows or (0, batches.batch_size)
    for i in range(len(batches)):
        x, y = batches.rows(i, lo, hi)
        loss_sum, n, state = eval_fn(x, y, state)
        total += float(loss_sum)
        count += int(n)
    return total / count


def check_diverged(loss: float, step: int, vocab_size: int, last_checkpoint):
    """Stops a diverged run before anything is saved from it.

    Training starts near ln(vocab_size), the loss of a uniform guess; a loss three times that,
    or not finite, means the run diverged.
    """
    start = math.log(vocab_size)
    if math.isfinite(loss) and loss <= 3 * start:
        return
    raise RunError(f"training diverged: the loss is {loss:.4g} at step {step} (it starts near "
                   f"{start:.3g}); lower --learning_rate or --grad_clip. Nothing was saved from "
                   f"the diverged state; " + (f"the last good checkpoint is {last_checkpoint}"
                                              if last_checkpoint else "there is no checkpoint yet"))


learning_rate = schedule.learning_rate  # the rate of each step (a name tests can replace)


def train_and_evaluate(config: RunConfig, overwrite: bool = False, out=None) -> dict:
    """Trains (or resumes) the run in `config.train.checkpoint_dir`.

    Every worker of a multi-worker run calls this with the same config; only the chief
    (`replicas.is_chief`) writes into the run directory and the log directory.

    Returns:
      dict with the final step, last train loss and best validation loss (nats per token).
    """
    out = out or sys.stdout
    started = time.monotonic()  # --max_minutes counts the wall time of this invocation
    replicas = distribute.replicas(config.distribute)  # before any other TensorFlow op
    replicas.check_batch_size(config.data.batch_size)
    # --precision=auto becomes what this machine runs fast, and config.json records that.
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, precision=devices.resolve_precision(config.model.precision)),
        data=prepared.adopt(config.data))      # a prepared directory's own settings
    with replicas.stop_if_a_worker_is_lost():
        if not replicas.is_chief:  # writes nothing into the run directory, so holds no lock
            return _train(config, replicas, None, out, started)
        run_dir = config.train.checkpoint_dir
        check_run_dir_path(run_dir)
        with RunLock(run_dir, log=lambda m: print(m, file=out)) as lock:
            saved_vocab = prepare_run_dir(config, overwrite, lock)
            return _train(config, replicas, saved_vocab, out, started)


def _train(config: RunConfig, replicas, saved_vocab, out, started: float) -> dict:
    tc, chief = config.train, replicas.is_chief
    # The chief prepares the corpus into the run directory; another worker, which writes
    # nothing there, reads a data path that is not prepared into memory (the same ids).
    data = prepare_data(config, saved_vocab, log=lambda m: print(m, file=out), prepare=chief)
    # Before the model: another vocabulary would make the first collective fail on shapes.
    replicas.check_same_data(lambda: prepared.fingerprint(data.vocab, data.train, data.val))
    model, optimizer, ckpt = _build(config, replicas, len(data.vocab))
    if chief:
        ckpt.restore_latest(log=lambda m: print(m, file=out))
        checkpoints.save_run_files(tc.checkpoint_dir, config,
                                   data.vocab if saved_vocab is None else None)
    replicas.broadcast_from_chief(ckpt.variables())
    step = int(ckpt.step.numpy())
    writer = SummaryWriter(tc.resolved_logdir if chief else None)
    if step == 0:
        writer.hparams(config.to_dict())
    num_batches = len(data.train)
    total_steps = num_batches * tc.num_epochs
    if tc.max_steps:
        total_steps = min(total_steps, tc.max_steps)
    print(describe(config, data, model, replicas), file=out)
    if step > 0:
        print(f"resuming {tc.checkpoint_dir} at step {step} "
              f"(epoch {step // num_batches}, batch {step % num_batches})", file=out)
    if step >= total_steps:
        print(f"nothing to do: the run is at step {step} and stops at {total_steps}; "
              f"raise --max_steps or --num_epochs to train longer", file=out)
        return {"step": step, "train_loss": None, "val_loss": None,
                "best_val_loss": float(ckpt.best_val_loss.numpy())}
    agreement = StopAgreement(tc.max_minutes * 60.0, started, replicas.num_replicas)
    loop = _Loop(config, replicas, data, model, optimizer, ckpt, writer, out)
    return loop.run(step, total_steps, agreement)


def _build(config: RunConfig, replicas, vocab_size: int):
    """(model, optimizer, training checkpoint), created under the strategy's scope."""
    tc = config.train
    keras.utils.set_random_seed(tc.seed)
    tf.config.experimental.enable_op_determinism()
    with replicas.scope():
        model = build_model(config.model, vocab_size, seed=tc.seed)
        optimizer = steps.make_optimizer(
            tc.learning_rate, tc.weight_decay, model.trainable_variables,
            loss_scaling=config.model.precision == "mixed_float16")
        # Built here, eagerly: built lazily inside the first replicated step it fails
        # (keras-team/keras#23085).
        optimizer.build(model.trainable_variables)
        if tc.ema_decay:
            optimizer.enable_weight_average(averaging.trainable(model.named_variables()),
                                            tc.ema_decay)
        ckpt = checkpoints.TrainingCheckpoint(tc.checkpoint_dir, model, optimizer,
                                              model.state_shapes, config.data.batch_size,
                                              tc.keep_checkpoints)
    return model, optimizer, ckpt


def describe(config: RunConfig, data: Data, model, replicas) -> str:
    """The first line of a run: the data, the model, where it runs."""
    dc, mc = config.data, config.model
    params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    unit = "char" if data.vocab.level == "char" else "word"
    return (f"{os.path.basename(dc.resolved_data_path)}: {len(data.vocab):,} {unit} tokens in "
            f"the vocabulary, {len(data.train) * data.train.tokens_per_batch:,} training tokens "
            f"in {len(data.train)} batches of {dc.batch_size}x{dc.seq_len}; {mc.backend} "
            f"{mc.num_layers}x{mc.hidden_size} {mc.model}, {params:,} parameters"
            + (f", {mc.precision}" if mc.precision != "float32" else "")
            + (f"; {replicas.describe()}" if replicas.describe() else ""))


class StopAgreement:
    """Why training stops early, the same on every worker.

    A stop signal (Ctrl-C, SIGTERM) reaches one worker, and each worker measures its own
    --max_minutes budget. Each step carries this worker's `requests` into the train step,
    which sums them over all replicas (`Replicas.compile_train_step`), and `agree` reads
    those sums: the same numbers on every worker, so all of them stop after the same step
    and save the same checkpoint."""

    def __init__(self, budget_seconds: float, started: float, num_replicas: int,
                 clock=time.monotonic):
        self.budget, self.started, self.num_replicas = budget_seconds, started, num_replicas
        self.clock = clock
        self.stopped_by = None      # the signal's name, or "a stop on another worker"
        self.out_of_time = False    # the budget is spent (on some worker)
        self.progress = 0.0         # fraction of the budget spent, averaged over replicas

    def requests(self, signal) -> list:
        """[a stop signal arrived here, the budget is spent here, the fraction spent]."""
        spent = (self.clock() - self.started) / self.budget if self.budget else 0.0
        return [1.0 if signal else 0.0, 1.0 if spent >= 1 else 0.0, spent]

    def agree(self, summed, signal):
        """summed: the requests summed over every replica of every worker."""
        signals, times_up, spent_sum = (float(v) for v in summed)
        if signals > 0:
            self.stopped_by = signal or "a stop on another worker"
        self.out_of_time = times_up > 0
        self.progress = spent_sum / self.num_replicas

    @property
    def stopping(self) -> bool:
        return bool(self.stopped_by) or self.out_of_time


def save_due(step: int, save_every: int, improved: bool, last: bool, stopping: bool) -> bool:
    """The save policy: a new best validation loss, every save_every steps, the last step
    and a stop (signal or budget) each save a checkpoint."""
    return improved or step % save_every == 0 or last or stopping


class _Loop:
    """The steps of one run, from where its checkpoint is to the end or an agreed stop."""

    def __init__(self, config: RunConfig, replicas, data: Data, model, optimizer, ckpt, writer,
                 out):
        self.tc, self.dc = config.train, config.data
        self.replicas, self.data, self.model, self.optimizer = replicas, data, model, optimizer
        self.ckpt, self.writer, self.out = ckpt, writer, out
        self.unit = "char" if data.vocab.level == "char" else "word"
        self.own_rows = replicas.local_rows(self.dc.batch_size)   # the streams read here
        self.train_fn = replicas.compile_train_step(model, optimizer, self.tc.grad_clip)
        self.eval_fn = replicas.compile_eval_step(model)
        self.preview = (sampling.for_model(model, "sample", seed=self.tc.seed)
                        if replicas.is_chief else None)
        self.best = float(ckpt.best_val_loss.numpy())
        self.last_val = None
        self.tokens_per_sec = 0.0

    def zero_state(self):
        return self.replicas.distribute_state(self.model.initial_state(self.dc.batch_size))

    def run(self, step: int, total_steps: int, agreement: StopAgreement) -> dict:
        state = (self.replicas.distribute_state(self.ckpt.carried_state()) if step > 0
                 else self.zero_state())
        num_batches, epoch, loss = len(self.data.train), None, float("nan")
        bar = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True,
                   file=sys.stderr, mininterval=1.0 if sys.stderr.isatty() else 30.0)
        with GracefulStop() as stop:
            try:
                while step < total_steps and not agreement.stopping:
                    batch_epoch, b = divmod(step, num_batches)
                    if batch_epoch != epoch:
                        epoch = batch_epoch
                        if b == 0:  # each epoch starts every stream from a zero state
                            state = self.zero_state()
                    lr = learning_rate(self.tc, step, epoch,
                                       max(step / total_steps, agreement.progress))
                    self.optimizer.learning_rate = lr
                    x, y = self.data.train.rows(b, *self.own_rows)
                    state_in = state
                    loss, state = self._train_step(step, x, y, state, lr, agreement, stop, bar)
                    step += 1
                    last = step == total_steps or agreement.out_of_time
                    validated = self.data.val is not None and (
                        step % self.tc.eval_every == 0 or last)
                    improved = validated and self._validate(step, loss, bar)
                    if save_due(step, self.tc.resolved_save_every, improved, last,
                                bool(agreement.stopped_by)):
                        self._save(step, improved, validated, (x, y, state_in), state)
            finally:
                bar.close()
                self.writer.close()
        return self._report(step, loss, agreement)

    def _train_step(self, step, x, y, state, lr, agreement, stop, bar):
        """One update and its measures; returns (loss, new state)."""
        t0 = time.perf_counter()
        loss, grad_norm, state, summed = self.train_fn(
            x, y, state, tf.constant(agreement.requests(stop.requested)))
        loss, grad_norm = float(loss), float(grad_norm)
        agreement.agree(summed.numpy(), stop.requested)
        rate = self.data.train.tokens_per_batch / (time.perf_counter() - t0)
        self.ckpt.step.assign(step + 1)
        check_diverged(loss, step + 1, len(self.data.vocab), self.ckpt.latest.latest_checkpoint)
        self.tokens_per_sec = (rate if not self.tokens_per_sec
                               else 0.9 * self.tokens_per_sec + 0.1 * rate)
        unit = self.unit
        # All under train/: TensorBoard shows the top-level tags first, and the first group
        # on its page should hold the loss.
        self.writer.scalars(step + 1, {"train/loss": loss, f"train/bits_per_{unit}": loss / LN2,
                                       "train/learning_rate": lr, "train/grad_norm": grad_norm,
                                       f"train/{unit}s_per_sec": rate})
        bar.set_postfix({"loss": f"{loss:.3f}", f"bits/{unit}": f"{loss / LN2:.3f}",
                         f"{unit}s/s": f"{self.tokens_per_sec:,.0f}"}, refresh=False)
        bar.update(1)
        return loss, state

    def _validate(self, step: int, loss: float, bar) -> bool:
        """Loss over the whole validation split, logged with a text sample; returns whether
        it is the best so far. With --ema_decay both come from the averaged weights (see
        averaging.py)."""
        average = self.optimizer.weight_average
        with average.applied() if average is not None else contextlib.nullcontext():
            val = evaluate_batches(self.eval_fn, self.zero_state(), self.data.val,
                                   self.own_rows)
            if self.preview is not None:
                prime = self.data.vocab.start_ids()[None, :]
                tokens = np.concatenate(list(self.preview.generate(
                    prime, self.model.initial_state(1), self.tc.sample_length)), axis=1)[0]
                self.writer.text(step, "sample", self.data.vocab.decode(tokens))
        check_diverged(val, step, len(self.data.vocab), self.ckpt.latest.latest_checkpoint)
        unit = self.unit
        self.writer.scalars(step, {"val/loss": val, f"val/bits_per_{unit}": val / LN2,
                                   "val/perplexity": math.exp(val)})
        improved = val < self.best
        self.best, self.last_val = min(self.best, val), val
        self.ckpt.best_val_loss.assign(self.best)
        bar.write(f"step {step} (epoch {step / len(self.data.train):.2f}): train loss "
                  f"{loss:.4f}, val loss {val:.4f} nats/{unit} ({val / LN2:.3f} bits/{unit}, "
                  f"perplexity {math.exp(val):.2f}){' *best*' if improved else ''}",
                  file=self.out)
        return improved

    def _save(self, step, improved, validated, batch, state):
        if not validated:
            # The training loss was that of the weights before this step's update; check the
            # updated weights before saving them (batch: the step's x, y and its state in).
            loss_sum, n, _ = self.eval_fn(*batch)
            check_diverged(float(loss_sum) / float(n), step, len(self.data.vocab),
                           self.ckpt.latest.latest_checkpoint)
        carried = self.replicas.gather_state(state)  # every worker takes part
        if self.replicas.is_chief:
            self.ckpt.save(carried, best=improved)
            self.writer.flush()

    def _report(self, step: int, loss: float, agreement: StopAgreement) -> dict:
        tc, best = self.tc, self.best
        if agreement.stopped_by:
            print(f"stopped by {agreement.stopped_by} at step {step}; a checkpoint was saved "
                  f"in {tc.checkpoint_dir}. To resume, run the same train command again.",
                  file=self.out)
        summary = {"step": step, "train_loss": loss, "stopped_by": agreement.stopped_by,
                   "out_of_time": agreement.out_of_time,
                   "best_val_loss": best if math.isfinite(best) else None,
                   "val_loss": self.last_val}
        if agreement.stopped_by:
            return summary
        print(f"done at step {step}"
              + (f" (the --max_minutes={tc.max_minutes:g} budget)"
                 if agreement.out_of_time else "")
              + f": train loss {loss:.4f}"
              + (f", best val loss {best:.4f} nats/{self.unit}" if math.isfinite(best) else "")
              + f"; checkpoints in {tc.checkpoint_dir}. Sample with: python -m tfcharrnn.sample "
              f"--checkpoint_dir={tc.checkpoint_dir}", file=self.out)
        return summary
