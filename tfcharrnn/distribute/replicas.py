"""Truncated BPTT over R replicas: each owns a contiguous block of the global batch's streams.

With R replicas in all (over every worker), replica r owns streams [r B/R, (r+1) B/R) of the
global batch [B, T] and carries their state from batch to batch, so every stream continues
exactly as on one device. Every worker builds the same global batches from the same corpus;
each replica slices its rows by its `replica_id_in_sync_group` inside the step, so the batch
never needs a distributed dataset. `steps.train_step` sums the gradients over replicas before
clipping, so the update is the one-device update of the global batch.

A checkpoint holds the carried state of all B streams in global order (`gather_state`), and
`distribute_state` cuts it again for whatever strategy resumes it.
"""

import contextlib

import tensorflow as tf

from tfcharrnn import steps
from tfcharrnn.errors import RunError, UsageError

SUM = tf.distribute.ReduceOp.SUM


def _own_rows(x):
    """In a replica: this replica's rows of a global [B, ...] tensor -> [B/R, ...]."""
    ctx = tf.distribute.get_replica_context()
    rows = tf.shape(x)[0] // ctx.num_replicas_in_sync
    start = ctx.replica_id_in_sync_group * rows
    return x[start:start + rows]


class Replicas:
    """A strategy and this process's place in it (`strategy.get_strategy`)."""

    def __init__(self, strategy, cluster):
        self.strategy = strategy
        self.cluster = cluster
        self.num_replicas = strategy.num_replicas_in_sync

    @property
    def is_chief(self) -> bool:
        """Only the chief writes checkpoints, run files and TensorBoard events."""
        return self.cluster.is_chief

    def scope(self):
        return self.strategy.scope()

    @contextlib.contextmanager
    def stop_if_a_worker_is_lost(self):
        """A worker that died makes the others' next collective fail within seconds (a killed
        peer at once, a frozen one by missed heartbeats); turn that into one error line."""
        try:
            yield
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                tf.errors.AbortedError, tf.errors.CancelledError) as e:
            if self.cluster.num_workers == 1:
                raise
            raise RunError(f"worker {self.cluster.index} lost contact with another worker "
                           f"({type(e).__name__}); every worker stops: start all of them "
                           f"again to resume from the last checkpoint") from None

    def describe(self) -> str:
        if self.cluster.num_workers > 1:
            return (f"worker {self.cluster.index} of {self.cluster.num_workers}"
                    f"{' (chief)' if self.is_chief else ''}, {self.num_replicas} replicas")
        return f"{self.num_replicas} replicas" if self.num_replicas > 1 else ""

    def check_batch_size(self, batch_size: int, what: str = "--batch_size"):
        if batch_size % self.num_replicas:
            lower = batch_size - batch_size % self.num_replicas
            raise UsageError(f"{what}={batch_size} is not divisible by the {self.num_replicas} "
                             f"replicas; pass a multiple of {self.num_replicas}, e.g. "
                             f"{what}={lower or self.num_replicas}")

    def local_rows(self, batch_size: int) -> tuple:
        """(lo, hi): the streams of the global batch that this worker's replicas own (its
        replicas are the consecutive ids index x local .. (index + 1) x local - 1)."""
        local = self.num_replicas // self.cluster.num_workers
        per = batch_size // self.num_replicas
        lo = self.cluster.index * local * per
        return lo, lo + local * per

    def check_same_data(self, fingerprint):
        """Every worker must train on the chief's data: compares this worker's fingerprint
        (fingerprint() -> an int64 of its vocabulary and ids, computed only with several
        workers) with the chief's. A collective."""
        if self.cluster.num_workers == 1:
            return
        mine = tf.Variable(tf.constant(fingerprint(), tf.int64), trainable=False)
        chiefs = tf.Variable(mine)
        self.broadcast_from_chief([chiefs])
        if int(chiefs.numpy()) != int(mine.numpy()):
            raise UsageError(f"worker {self.cluster.index}: its training data differs from the "
                             f"chief's (another corpus, vocabulary or data settings); give "
                             f"every worker the same --data_path and data flags (the same "
                             f"files, or a copy of the chief's prepared directory)")

    # ---- carried state: global [B, H] <-> per replica [B/R, H] ----

    def distribute_state(self, global_state):
        """Cuts a global state (list of [B, H]) into the replicas' own rows."""
        global_state = [tf.convert_to_tensor(s) for s in global_state]
        return self.strategy.run(lambda s: [_own_rows(t) for t in s], args=(global_state,))

    def gather_state(self, state) -> list:
        """Per-replica state -> the global state, list of [B, H] numpy arrays in stream order.
        A collective: every worker calls it at the same point."""
        # (An all_gather inside strategy.run fails here under MultiWorkerMirroredStrategy with
        # one local replica, "destinations can not be empty"; Strategy.gather works everywhere.)
        return [self.strategy.gather(s, axis=0).numpy() for s in state]

    def broadcast_from_chief(self, variables):
        """Gives every worker the chief's values of `variables` (the chief alone restores a
        checkpoint). Copies, no arithmetic, so integers and floats arrive bit for bit."""
        if self.cluster.num_workers == 1:
            return
        values = self._broadcast(list(variables))
        for var, value in zip(variables, values):
            var.assign(self.strategy.experimental_local_results(value)[0])

    @tf.function
    def _broadcast(self, variables):
        def replica():
            ctx = tf.distribute.get_replica_context()
            return [ctx.all_gather(tf.convert_to_tensor(v)[None], axis=0)[0] for v in variables]
        return self.strategy.run(replica)

    # ---- compiled steps over the global batch ----

    def compile_train_step(self, model, optimizer, grad_clip: float):
        """fn(x, y, state, requests) -> (loss, grad_norm, state, summed) for a global batch
        x, y int32 [B, T]; loss is the mean over the global batch, state stays per replica.
        requests float32 [K] are this worker's values (stop requests, the time budget spent)
        and summed [K] their sums over all replicas, the same on every worker: summed[k] > 0
        if any worker made request k, so all stop together."""
        strategy = self.strategy

        def replica(x, y, state, requests):
            loss, grad_norm, state = steps.train_step(model, optimizer, _own_rows(x),
                                                      _own_rows(y), state, grad_clip)
            return tf.concat([loss[None], requests], 0), grad_norm, state

        @tf.function
        def step(x, y, state, requests):
            summed, grad_norm, state = strategy.run(replica, args=(x, y, state, requests))
            summed = strategy.reduce(SUM, summed, axis=None)   # one collective: [1 + K]
            # The norm of the summed gradient: the same value in every replica.
            return (summed[0], strategy.experimental_local_results(grad_norm)[0], state,
                    summed[1:])
        return step

    def compile_eval_step(self, model):
        """fn(x, y, state) -> (sum of token losses, token count, state) over a global batch."""
        strategy = self.strategy

        def replica(x, y, state):
            loss_sum, count, state = steps.eval_step(model, _own_rows(x), _own_rows(y), state)
            return tf.stack([loss_sum, tf.cast(count, tf.float32)]), state

        @tf.function
        def step(x, y, state):
            sums, state = strategy.run(replica, args=(x, y, state))
            loss_sum, count = tf.unstack(strategy.reduce(SUM, sums, axis=None))
            return loss_sum, count, state
        return step

