"""What a second worker costs: the gradient all-reduce of a train step, measured on loopback.

    python benchmarks/allreduce.py --hidden_size=256 --workers=2

Starts `--workers` processes of itself on 127.0.0.1 with their own TF_CONFIG (or, with
--workers=1, one process with the default strategy), builds the Keras back-end's LSTM with the
given size and runs the real replicated train step (`Replicas.compile_train_step`) on the
global batch; worker 0 prints one JSON line:
  params, bytes_all_reduced (4 bytes per parameter: the step all-reduces dense gradients),
  step_ms (median of timed blocks, per step), allreduce_ms (the same gradients' all-reduce
  alone, between the workers). Not a test: nothing here passes or fails.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
VOCAB = 65


def _ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def launch(args, argv):
    if args.workers == 1:
        return subprocess.run([sys.executable, __file__, *argv, "--worker=0"]).returncode
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _ports(args.workers)]}
    procs = [subprocess.Popen([sys.executable, __file__, *argv, f"--worker={i}"],
                              env=dict(os.environ, TF_CONFIG=json.dumps(
                                  {"cluster": cluster, "task": {"type": "worker", "index": i}})))
             for i in range(args.workers)]
    return max(p.wait() for p in procs)


def measure(args):
    from tfcharrnn.cli import import_tensorflow
    import_tensorflow(-1)
    import numpy as np
    import tensorflow as tf
    from tfcharrnn import distribute, steps
    from tfcharrnn.config import DistributeConfig, ModelConfig
    from tfcharrnn.models import build_model

    strategy = "multi_worker_mirrored" if args.workers > 1 else "off"
    replicas = distribute.replicas(DistributeConfig(distribution_strategy=strategy))
    with replicas.scope():
        model = build_model(ModelConfig(backend="keras", model="lstm", num_layers=2,
                                        hidden_size=args.hidden_size, embedding_size=64), VOCAB)
        optimizer = steps.make_optimizer(2e-3)
        optimizer.build(model.trainable_variables)
    train = replicas.compile_train_step(model, optimizer, 5.0)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, VOCAB, (args.batch_size, args.seq_len)), tf.int32)
    y = tf.constant(rng.integers(0, VOCAB, (args.batch_size, args.seq_len)), tf.int32)
    state = replicas.distribute_state(model.initial_state(args.batch_size))
    no_stop = tf.constant([0.0, 0.0, 0.0])  # no stop requests (signal, time up, time spent)

    def steps_block(n):
        nonlocal state
        for _ in range(n):
            loss, _, state, _ = train(x, y, state, no_stop)
        float(loss)

    shapes = [v.shape for v in model.trainable_variables]

    @tf.function
    def all_reduce():
        def replica():
            grads = [tf.ones(s) for s in shapes]
            return tf.add_n([tf.reduce_sum(g) for g in tf.distribute.get_replica_context()
                             .all_reduce(tf.distribute.ReduceOp.SUM, grads)])
        return replicas.strategy.experimental_local_results(replicas.strategy.run(replica))[0]

    def reduce_block(n):
        for _ in range(n):
            total = all_reduce()
        float(total)

    def timed(block, n):
        block(args.warmup)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            block(n)
            times.append((time.perf_counter() - start) / n * 1000)
        return statistics.median(times)

    params = int(sum(np.prod(s) for s in shapes))
    result = {"hidden_size": args.hidden_size, "workers": args.workers,
              "batch_size": args.batch_size, "seq_len": args.seq_len, "params": params,
              "bytes_all_reduced": 4 * params if args.workers > 1 else 0,
              "step_ms": round(timed(steps_block, args.steps), 1),
              "allreduce_ms": (round(timed(reduce_block, 4 * args.steps), 2)
                               if args.workers > 1 else 0.0)}
    if args.worker == 0:
        print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden_size", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seq_len", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    if args.worker is None:
        sys.exit(launch(args, [a for a in sys.argv[1:] if not a.startswith("--worker=")]))
    measure(args)


if __name__ == "__main__":
    main()
