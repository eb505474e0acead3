"""Training throughput (characters per second) of both back-ends and all three cells.

    python benchmarks/train_speed.py                     # 2 x 512, batch 64, seq_len 100
    python benchmarks/train_speed.py --hidden_size=128 --batch_size=32 --seq_len=50

Each (back-end, cell) pair runs in its own process (no shared thread pools or caches), the
pairs take turns round after round so drift of a shared machine hits all of them alike, the
first steps (tracing, warm-up) are excluded, and the median over rounds is reported. The
train step is the real one (`tfcharrnn.steps.train_step`: forward, backward, global-norm
clipping, Adam). Not a test: nothing here passes or fails.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CELLS = ("rnn", "gru", "lstm")
BACKENDS = ("keras", "manual")


def measure(args) -> float:
    """Runs in a child process: chars/s of `args.steps` train steps after warm-up."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tfcharrnn.cli import import_tensorflow
    import_tensorflow(-1)
    import keras
    import numpy as np
    import tensorflow as tf

    from tfcharrnn import steps
    from tfcharrnn.config import ModelConfig
    from tfcharrnn.models import build_model

    vocab = 65
    model = build_model(ModelConfig(backend=args.backend, model=args.cell,
                                    num_layers=args.num_layers, hidden_size=args.hidden_size,
                                    embedding_size=args.embedding_size), vocab)
    optimizer = keras.optimizers.Adam(2e-3)
    optimizer.build(model.trainable_variables)
    train_fn = steps.compile_train_step(model, optimizer, 5.0)
    rng = np.random.default_rng(0)
    batches = [(tf.constant(rng.integers(0, vocab, (args.batch_size, args.seq_len)), tf.int32),
                tf.constant(rng.integers(0, vocab, (args.batch_size, args.seq_len)), tf.int32))
               for _ in range(4)]
    state = model.initial_state(args.batch_size)
    for i in range(args.warmup):
        loss, _, state = train_fn(*batches[i % 4], state)
    float(loss)
    start = time.perf_counter()
    for i in range(args.steps):
        loss, _, state = train_fn(*batches[i % 4], state)
    float(loss)  # wait for the last step
    return args.steps * args.batch_size * args.seq_len / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--hidden_size", type=int, default=512)
    parser.add_argument("--embedding_size", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seq_len", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=3, help="repeats; the median is reported")
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return

    cells, backends = args.cells.split(","), args.backends.split(",")
    common = [f"--{k}={getattr(args, k)}" for k in
              ("num_layers", "hidden_size", "embedding_size", "batch_size", "seq_len", "steps",
               "warmup")]
    results = {(b, c): [] for b in backends for c in cells}
    for r in range(args.rounds):
        for backend, cell in results:
            out = subprocess.run([sys.executable, __file__, "--child", f"--backend={backend}",
                                  f"--cell={cell}", *common], capture_output=True, text=True,
                                 check=True)
            results[(backend, cell)].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}/{args.rounds} {backend:6s} {cell:4s} "
                  f"{results[(backend, cell)][-1]:10,.0f} chars/s", file=sys.stderr)

    print(f"\ntraining chars/s, {args.num_layers} x {args.hidden_size}, embedding "
          f"{args.embedding_size}, batch {args.batch_size}, seq_len {args.seq_len} "
          f"(median of {args.rounds} rounds of {args.steps} steps)\n")
    print("| cell | " + " | ".join(backends) + (" | manual / keras |" if len(backends) == 2
                                                 else " |"))
    print("|---" * (len(backends) + 1 + (len(backends) == 2)) + "|")
    table = {}
    for cell in cells:
        med = {b: statistics.median(results[(b, cell)]) for b in backends}
        table[cell] = med
        row = f"| {cell} | " + " | ".join(f"{med[b]:,.0f}" for b in backends)
        if len(backends) == 2:
            ratios = [m / k for m, k in zip(results[("manual", cell)], results[("keras", cell)])]
            row += f" | {statistics.median(ratios):.2f}x"
        print(row + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": {k: getattr(args, k) for k in
                                  ("num_layers", "hidden_size", "embedding_size", "batch_size",
                                   "seq_len", "steps", "warmup", "rounds")},
                       "chars_per_sec": table,
                       "rounds": {f"{b}/{c}": v for (b, c), v in results.items()}}, f, indent=2)


if __name__ == "__main__":
    main()
