"""The cells side by side: training and sampling speed of every registered cell.

    python benchmarks/cells.py                  # 2 x 256 (the default model), ~6 minutes
    python benchmarks/cells.py --hidden=512 --rounds=2 --json=cells.json

Each measurement runs in its own process (`measure.py`), the processes taking turns round
after round. Rows:
  - every cell at the same hidden size (the default 2 x H model, batch 64 x 100, the Keras
    back-end, float32);
  - each cell without recurrent weights (minGRU) again at the hidden size that gives it the
    LSTM's parameter count;
  - sampling, one stream and 64 streams, for each cell at the same hidden size.
The ratio column is each row's median over the LSTM's at the same hidden size. Name the CPU
and its flags beside the numbers (the table's first line does). Not a test.
"""

import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from cpu_hour import cpu_name  # noqa: E402
from run import run_child  # noqa: E402
from tfcharrnn.models import cells  # noqa: E402  (the registry: no TensorFlow)

EMBEDDING, LAYERS, VOCAB = 64, 2, 65


def parameters(cell: str, hidden: int) -> int:
    """Trainable parameters of the char model: the cell's layers and the softmax layer (the
    embedding, the same for every cell, left out)."""
    total, inputs = 0, EMBEDDING
    for _ in range(LAYERS):
        for shape in cells.get(cell).parameters(inputs, hidden).values():
            count = 1
            for n in shape:
                count *= n
            total += count
        inputs = hidden
    return total + hidden * VOCAB + VOCAB


def equal_parameters(cell: str, reference: str, hidden: int) -> int:
    """The hidden size at which `cell` has about as many parameters as `reference` at
    `hidden` (rounded to a multiple of 8)."""
    target = parameters(reference, hidden)
    size = 8
    while parameters(cell, size + 8) <= target:
        size += 8
    return size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write every measurement to this file")
    args = parser.parse_args()
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    rows = [(c, args.hidden) for c in cells.NAMES]
    rows += [(c, equal_parameters(c, "lstm", args.hidden)) for c in cells.NAMES
             if not cells.get(c).recurrent]
    common = dict(repeats=args.repeats, warmup=3, num_layers=LAYERS, embedding_size=EMBEDDING)
    train, sample = {}, {}
    for r in range(args.rounds):
        for cell, hidden in rows:
            log(f"round {r + 1}: train {cell} 2 x {hidden}")
            train.setdefault(f"{cell}/{hidden}", []).extend(run_child(
                "train", backend="keras", cell=cell, hidden_size=hidden, batch_size=64,
                seq_len=100, steps=5, **common))
        for cell in cells.NAMES:
            for streams in (1, 64):
                log(f"round {r + 1}: sample {cell} {streams} stream(s)")
                sample.setdefault(f"{cell}/{streams}", []).extend(run_child(
                    "sample", backend="keras", cell=cell, hidden_size=args.hidden,
                    streams=streams, tokens=1024, **common))
    med = statistics.median
    print(f"\n{cpu_name()}\n")
    print("| cell | hidden | parameters | train chars/s | vs LSTM | sample chars/s, 1 stream "
          "| 64 streams |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    lstm = med(train[f"lstm/{args.hidden}"])
    for cell, hidden in rows:
        t = med(train[f"{cell}/{hidden}"])
        same = hidden == args.hidden
        s1 = f"{med(sample[f'{cell}/1']):,.0f}" if same else ""
        s64 = f"{med(sample[f'{cell}/64']):,.0f}" if same else ""
        print(f"| {cell} | {hidden} | {parameters(cell, hidden):,} | {t:,.0f} | "
              f"{t / lstm:.2f}x | {s1} | {s64} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_name(), "train": train, "sample": sample}, f, indent=2)


if __name__ == "__main__":
    main()
