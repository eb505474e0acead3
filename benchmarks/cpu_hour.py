"""The README's results table: the `cpu_hour` preset for each cell, scored on the held-out tail.

    python benchmarks/cpu_hour.py --out_dir=runs/cpu_hour                # rnn, gru, lstm: ~3 h
    python benchmarks/cpu_hour.py --out_dir=runs/cpu_hour --cells=lstm   # one cell: ~1 h
    python benchmarks/cpu_hour.py --out_dir=runs/cpu_hour --skip_train   # table of runs done
    python -m tfcharrnn.plot --logdir=runs/cpu_hour --out=curves.png     # their curves

For each cell: `python -m tfcharrnn.train --preset=cpu_hour --model=CELL` into OUT_DIR/CELL
(one process, the whole machine, one after another), then `python -m tfcharrnn.evaluate` of its
best and latest checkpoints on the held-out tail: the last 10% of the bundled corpus, which
the default split keeps out of training, as one stream from a zero state. Prints a Markdown
table, then each run's validation loss at every 10 minutes (the last evaluation at or before
the mark), and writes OUT_DIR/results.json (with each run's validation curve). Train
chars/s is the median of the per-step rates the run logged (validation excluded); minutes
are the wall time of the train command.
The table's CPU kind is the widest vector unit the products use and their precision (the
preset's `--precision=auto` picks bfloat16 where the CPU multiplies it); pass
`--train_flag=--precision=float32` for the float32 row on such a CPU. An AVX2-only 2-core
machine can be stood in for by one core of a faster one with oneDNN held to AVX2 (the cores
and the cap are recorded; say so beside the figures):

    ONEDNN_MAX_CPU_ISA=AVX2 taskset -c 0 python benchmarks/cpu_hour.py --out_dir=runs/avx2 \
        --cells=lstm --train_flag=--precision=float32

Not a test: nothing here passes or fails.
"""

import argparse
import json
import os
import platform
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

CELLS = ("rnn", "gru", "lstm")   # the table's default rows (--cells: any registered cell)
MARKS = (10, 20, 30, 40, 50, 60)  # minutes at which the second table reads validation


def held_out_tail(out_dir: str) -> str:
    """Writes the last 10% of the bundled corpus (the default --val_fraction) to a file."""
    from tfcharrnn import corpus
    from tfcharrnn.config import BUNDLED_CORPUS
    with open(BUNDLED_CORPUS, encoding="utf-8") as f:
        text = f.read()
    _, tail, _ = corpus.split(list(text), 0.1)
    path = os.path.join(out_dir, "heldout_tail.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(tail))
    return path


def train(cell: str, run_dir: str, extra: list) -> float:
    """Runs the preset for one cell; returns the wall minutes. Resumes a run already there."""
    cmd = [sys.executable, "-m", "tfcharrnn.train", "--preset=cpu_hour", f"--model={cell}",
           f"--checkpoint_dir={run_dir}", *extra]
    print("$ " + " ".join(cmd[1:]), file=sys.stderr)
    start = time.monotonic()
    with open(run_dir + ".log", "a", encoding="utf-8") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
    return (time.monotonic() - start) / 60.0


def evaluate(run_dir: str, data_path: str, checkpoint: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "tfcharrnn.evaluate",
                          f"--checkpoint_dir={run_dir}", f"--checkpoint={checkpoint}",
                          f"--data_path={data_path}"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def evaluate_raw(run_dir: str, data_path: str, checkpoint: str) -> dict:
    """`evaluate` of the weights themselves of an --ema_decay run, not of their average
    (what `evaluate` loads): a copy of the run whose config.json says ema_decay=0. The
    average's effect, measured within one run."""
    with tempfile.TemporaryDirectory() as tmp:
        view = os.path.join(tmp, "raw")
        shutil.copytree(run_dir, view, ignore=shutil.ignore_patterns("logs"))
        path = os.path.join(view, "config.json")
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        config["train"]["ema_decay"] = 0.0
        with open(path, "w", encoding="utf-8") as f:
            json.dump(config, f)
        return evaluate(view, data_path, checkpoint)


def logged(run_dir: str, tag: str) -> list:
    """Values of a scalar the run logged, in step order."""
    from tfcharrnn import plot_lib
    curve = plot_lib.read_curve(os.path.join(run_dir, "logs"), tag)
    return curve[1] if curve else []


def at_marks(minutes: list, values: list, marks=MARKS) -> list:
    """The last value logged at or before each mark (None before the first): what the run
    had to show at that minute."""
    shown = []
    for mark in marks:
        before = [v for m, v in zip(minutes, values) if m <= mark]
        shown.append(before[-1] if before else None)
    return shown


def validation_curve(run_dir: str) -> dict:
    """The run's validation loss against minutes since its first event, kept in results.json
    so the by-minute table (and a figure) outlive the run's event files."""
    from tfcharrnn import plot_lib
    curve = plot_lib.read_curve(os.path.join(run_dir, "logs"), "val/loss")
    minutes, values = curve if curve else ([], [])
    return {"minutes": [round(m, 3) for m in minutes], "loss": values}


def parameters(run_dir: str) -> int:
    from tfcharrnn import checkpoints
    _, _, model = checkpoints.restore_model(run_dir, "latest")
    return sum(int(v.shape.num_elements()) for v in model.trainable_variables)


def cpu_name() -> str:
    """The CPU's model, the cores this process may run on (taskset narrows them) and the
    vector flags that decide its speed."""
    from tfcharrnn.models import devices
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = devices.cpu_flags()       # the flags cpu_kind and --precision=auto read
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    cores = len(os.sched_getaffinity(0))
    return (f"{fields.get('Model name', '?').strip()}, {cores} core{'s' * (cores != 1)}"
            f" ({' '.join(shown) or 'no AVX2'})")


def cpu_kind(precision: str, flags: set = None, isa_cap: str = None) -> str:
    """What decides the hour on a CPU: the widest vector unit the products use and the
    precision they run in, e.g. "AMX, bfloat16" or "AVX2, float32". `ONEDNN_MAX_CPU_ISA`
    (oneDNN's cap on the instructions it uses) narrows what the flags offer."""
    from tfcharrnn.models import devices
    flags = devices.cpu_flags() if flags is None else flags
    isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "") if isa_cap is None else isa_cap
    if isa_cap.upper().startswith("AVX2"):
        flags = {f for f in flags if not f.startswith(("avx512", "amx"))}
    unit = ("AMX" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags
            else "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags
            else "no AVX2")
    if precision == "float32" and unit in ("AMX", "AVX512-BF16"):
        unit = "AVX-512"   # the float32 products use neither
    names = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
    return f"{unit}{' (oneDNN capped)' if isa_cap else ''}, {names.get(precision, precision)}"


def print_by_minute(results: dict):
    """Validation loss at each mark of MARKS, and the best, for every run that kept its curve."""
    kept = {cell: r["val_curve"] for cell, r in results.items()
            if r.get("val_curve", {}).get("loss")}
    if not kept:
        return
    print("\n| cell | " + " | ".join(f"val at {m} min" for m in MARKS) + " | best val |")
    print("|---|" + "---|" * (len(MARKS) + 1))
    for cell, curve in kept.items():
        shown = at_marks(curve["minutes"], curve["loss"])
        row = ["" if v is None else f"{v:.4f}" for v in shown]
        print(f"| {cell} | " + " | ".join(row) + f" | {min(curve['loss']):.4f} |")


def measure(run_dir: str, row: dict, tail: str) -> dict:
    """A run's row of the table: `row` (its minutes and CPU) with the held-out scores of its
    best and latest checkpoints and what its logs and config.json say."""
    rates = (logged(run_dir, "train/chars_per_sec")
             or logged(run_dir, "chars_per_sec"))        # runs logged before 2026-12-03
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    row = dict(row, **{
        "best": evaluate(run_dir, tail, "best"),
        "latest": evaluate(run_dir, tail, "latest"),
        "steps": len(rates),
        "chars_per_sec": statistics.median(rates) if rates else None,
        "parameters": parameters(run_dir),
        "val_curve": validation_curve(run_dir),
        "model": config["model"],
        "train": config["train"],
    })
    shown = row["cpu"].rsplit("(", 1)[-1].rstrip(")").split() if row.get("cpu") else None
    row["cpu_kind"] = cpu_kind(config["model"]["precision"], shown, row.get("isa_cap"))
    if config["train"].get("ema_decay"):
        row["best_raw"] = evaluate_raw(run_dir, tail, "best")
        row["latest_raw"] = evaluate_raw(run_dir, tail, "latest")
    return row


def print_table(results: dict):
    """The README's results table: one row per run in results.json (--cells or not)."""
    print("| cell | CPU kind | held-out nats/char | bits/char | last checkpoint nats/char "
          "| minutes | steps | train chars/s | parameters |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cell, r in results.items():
        m = r.get("minutes")
        print(f"| {cell} | {r.get('cpu_kind', '?')} | {r['best']['loss_nats_per_token']:.4f} "
              f"| {r['best']['bits_per_token']:.4f} "
              f"| {r['latest']['loss_nats_per_token']:.4f} "
              f"| {'?' if m is None else f'{m:.1f}'} | {r['steps']:,} "
              f"| {r['chars_per_sec']:,.0f} | {r['parameters']:,} |")


def print_raw_weights(results: dict):
    """With --ema_decay the checkpoints hold the average; these are the weights themselves."""
    for cell, r in results.items():
        if "best_raw" in r:
            print(f"{cell}: --ema_decay={r['train']['ema_decay']}; the weights themselves "
                  f"instead of their average: best checkpoint "
                  f"{r['best_raw']['loss_nats_per_token']:.4f}, last "
                  f"{r['latest_raw']['loss_nats_per_token']:.4f} nats/char")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", default="runs/cpu_hour")
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--skip_train", action="store_true",
                        help="tabulate the runs already in --out_dir")
    parser.add_argument("--train_flag", action="append", default=[],
                        help="an extra train flag, e.g. --train_flag=--max_minutes=5")
    args = parser.parse_args()
    from tfcharrnn import cli
    cli.import_tensorflow(verbosity=-1)  # quiet: no TensorFlow start-up lines
    os.makedirs(args.out_dir, exist_ok=True)
    results_path = os.path.join(args.out_dir, "results.json")
    results = {}
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
    tail = held_out_tail(args.out_dir)
    for cell in args.cells.split(","):
        run_dir = os.path.join(args.out_dir, cell)
        row = results.get(cell, {})
        if not args.skip_train:
            row = {"minutes": train(cell, run_dir, args.train_flag), "cpu": cpu_name(),
                   "isa_cap": os.environ.get("ONEDNN_MAX_CPU_ISA", "")}
        results[cell] = measure(run_dir, row, tail)
        with open(results_path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    print_table(results)
    print_by_minute(results)
    print_raw_weights(results)
    cpus = {r.get("cpu") for r in results.values() if r.get("cpu")}
    print(f"\nCPU: {'; '.join(sorted(cpus)) or cpu_name()}")


if __name__ == "__main__":
    main()
