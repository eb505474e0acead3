"""The benchmark suite: one command, a Markdown table on stdout and a JSON file.

    python benchmarks/run.py --json=benchmark.json          # full suite, one round
    python benchmarks/run.py --quick                         # fewer steps and repeats
    python benchmarks/run.py --cells=lstm --configs=2x512 --rounds=3 \
        --skip=eval,sample,score,prepare,memory,quality     # the bf16 speed-up alone

One round without `quality` takes ~8 minutes on 2 cores; `quality` trains the cpu_hour
preset for --quality_steps in each precision, ~30 minutes more at the default 1,000 steps.

Measured, each in its own process (`measure.py`; no shared thread pools or caches), with
warm-up excluded and the median of `--repeats` timed blocks per process over `--rounds`
rounds (the processes take turns round after round, so drift of a shared machine hits them
alike):
  - the machine's float32 matmul GFLOP/s (TensorFlow, 2048^3): the ceiling;
  - training chars/s, both back-ends x three cells, at 2 x 512 / batch 64 / seq_len 100 and
    2 x 128 / batch 32 / seq_len 50, next to the same model in PyTorch when torch is
    installed (pip install -e ".[bench]"); ratios to PyTorch come from this same run;
  - the 2 x 512 models again in --precision=mixed_bfloat16 (PyTorch: bfloat16 autocast), with
    the speed-up over float32, and the 2 x 512 LSTM's validation loss after the same number
    of real training steps in each precision (`--quality_steps`);
  - each figure as a fraction of the ceiling: chars/s x FLOPs per char / matmul FLOP/s;
  - evaluation (forward only, training shape) chars/s, and its ratio to training;
  - the machine's float32 matrix-vector GFLOP/s ([1, 1024] x [1024, 2048] chains): the
    ceiling of one-stream sampling, which reads every weight once per token;
  - sampling chars/s from the 2 x 512 LSTM: one stream, and 64 streams at once;
  - scoring 10,000 short lines (the corpus' first lines, 2 x 256 LSTM, the default model) as
    `score` does, 1,024 at a time, against one line at a time (how it scored before); and
    `evaluate`'s one-stream chars/s on the held-out tail;
  - preparing a 100 MB character corpus (read, vocabulary, encode): seconds, peak memory;
  - resident memory of the real training loop (data preparation, 50 steps of a 1 x 128
    LSTM) on the bundled 1 MB corpus and on the 100 MB one: what grows with the corpus.
Not a test: nothing here passes or fails.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from tfcharrnn.models import cells  # noqa: E402  (the registry: no TensorFlow)

CELLS = cells.NAMES
TORCH_CELLS = ("rnn", "gru", "lstm")     # the cells PyTorch has: nn.RNN, nn.GRU, nn.LSTM
CONFIGS = {"2x512": dict(hidden_size=512, batch_size=64, seq_len=100),
           "2x128": dict(hidden_size=128, batch_size=32, seq_len=50)}
EMBEDDING, LAYERS, VOCAB = 64, 2, 65
med = statistics.median   # every table shows the median of its measurements


def forward_flops_per_char(cell: str, hidden: int) -> float:
    """Multiply-adds x 2 of one token's forward pass: every weight matrix of every layer (the
    cell's W_* parameters) and of the softmax layer (the embedding is a lookup)."""
    flops, inputs = 0, EMBEDDING
    for _ in range(LAYERS):
        shapes = cells.get(cell).parameters(inputs, hidden)
        flops += sum(2 * shape[0] * shape[1] for name, shape in shapes.items()
                     if name.startswith("W_"))
        inputs = hidden
    return flops + 2 * hidden * VOCAB


def train_flops_per_char(cell: str, hidden: int) -> float:
    """Forward + backward: each product is done again for the input and weight gradients."""
    return 3 * forward_flops_per_char(cell, hidden)


def run_child(what: str, **kwargs) -> object:
    cmd = [sys.executable, os.path.join(HERE, "measure.py"), what,
           *[f"--{k}={v}" for k, v in kwargs.items()]]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd[1:])} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def have_torch() -> bool:
    return subprocess.run([sys.executable, "-c", "import torch"],
                          capture_output=True).returncode == 0


def make_corpus(path: str, size: int):
    """`size` bytes of tiny-shakespeare repeated."""
    with open(os.path.join(HERE, "..", "tfcharrnn", "data", "tinyshakespeare.txt"),
              encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        written = 0
        while written < size:
            part = text[:size - written]
            f.write(part)
            written += len(part)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks per process")
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--corpus_mb", type=int, default=100)
    parser.add_argument("--skip", default="",
                        help="comma list of: train,bf16,quality,eval,sample,score,prepare,"
                             "memory")
    parser.add_argument("--quality_steps", type=int, default=1000)
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="comma list of the model sizes to train and evaluate")
    parser.add_argument("--cells", default=",".join(CELLS),
                        help="comma list of the cells to train and evaluate")
    return parser.parse_args()


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class Plan:
    """What one invocation measures, from its flags."""

    def __init__(self, args, torch: bool):
        self.args = args
        self.configs = {n: s for n, s in CONFIGS.items() if n in args.configs.split(",")}
        self.cells = [c for c in CELLS if c in args.cells.split(",")]
        self.skip = set(filter(None, args.skip.split(",")))
        self.steps = 2 if args.quick else 5
        self.common = dict(repeats=args.repeats, warmup=2 if args.quick else 3)
        self.frameworks = ["keras", "manual"] + (["torch"] if torch else [])

    def wants(self, part: str) -> bool:
        return part not in self.skip


def add(results, section: str, key: str, values):
    """Appends one process' measurements to results[section][key] (rounds accumulate)."""
    results[section].setdefault(key, []).extend(values)


def measure_train(plan, r, name, shape, cell, results):
    """Training chars/s of one config and cell in every framework (and bfloat16 at 2 x 512)."""
    for fw in plan.frameworks:
        if fw == "torch" and cell not in TORCH_CELLS:
            continue
        what = "train_torch" if fw == "torch" else "train"
        extra = {} if fw == "torch" else {"backend": fw}
        log(f"round {r + 1}: train {name} {cell} {fw}")
        add(results, "train", f"{name}/{cell}/{fw}",
            run_child(what, cell=cell, steps=plan.steps, **shape, **extra, **plan.common))
        if name == "2x512" and plan.wants("bf16"):
            log(f"round {r + 1}: train {name} {cell} {fw} mixed_bfloat16")
            add(results, "train", f"{name}/{cell}/{fw}/bf16",
                run_child(what, cell=cell, steps=plan.steps, **shape, **extra,
                          precision="mixed_bfloat16", **plan.common))


def measure_evaluate(plan, r, name, shape, cell, results):
    for fw in ("keras", "manual"):
        log(f"round {r + 1}: evaluate {name} {cell} {fw}")
        add(results, "evaluate", f"{name}/{cell}/{fw}",
            run_child("evaluate", backend=fw, cell=cell, steps=plan.steps, **shape,
                      **plan.common))


def measure_sample(plan, r, results):
    log(f"round {r + 1}: matvec")
    results["matvec_gflops"] += run_child("matvec", **plan.common)
    for fw in ("keras", "manual"):
        for streams in (1, 64):
            log(f"round {r + 1}: sample {fw} {streams} stream(s)")
            add(results, "sample", f"{fw}/{streams}",
                run_child("sample", backend=fw, cell="lstm", streams=streams,
                          tokens=256 if plan.args.quick else 1024, **plan.common))


def measure_score(plan, r, results):
    quick = plan.args.quick
    default = dict(backend="keras", cell="lstm", hidden_size=256,
                   repeats=1 if quick else plan.args.repeats)
    lines = 1000 if quick else 10000
    for method in ("batched", "single"):
        log(f"round {r + 1}: score {lines:,} lines, {method}")
        add(results, "score", method,
            run_child("score", method=method, lines=lines, batch_size=1024, **default))
    log(f"round {r + 1}: evaluate the held-out tail")
    add(results, "score", "evaluate_file",
        run_child("evaluate_file", tokens=30000 if quick else 200000, **default))


def measure_round(plan, r, results):
    """One round: every process once, in turn (so a shared machine's drift hits them alike)."""
    log(f"round {r + 1}/{plan.args.rounds}: matmul")
    results["matmul_gflops"] += run_child("matmul", **plan.common)
    for name, shape in plan.configs.items():
        for cell in plan.cells:
            if plan.wants("train"):
                measure_train(plan, r, name, shape, cell, results)
            if plan.wants("eval"):
                measure_evaluate(plan, r, name, shape, cell, results)
    if plan.wants("sample"):
        measure_sample(plan, r, results)
    if plan.wants("score"):
        measure_score(plan, r, results)


def measure_quality(plan, results):
    for precision in ("float32", "mixed_bfloat16"):
        log(f"quality: {plan.args.quality_steps} real training steps, 2 x 512 LSTM, {precision}")
        results["quality"][precision] = run_child(
            "quality", steps=plan.args.quality_steps, precision=precision)


def measure_prepare_and_memory(plan, results):
    """Preparing a large corpus, then (unless skipped) training's memory on it and on the
    bundled one: the large corpus is made once for both."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "corpus.txt")
        make_corpus(path, plan.args.corpus_mb * 1_000_000)
        log(f"prepare a {plan.args.corpus_mb} MB corpus")
        results["prepare"] = run_child("prepare", path=path)
        if not plan.wants("memory"):
            return
        results["train_memory"] = {}
        bundled = os.path.join(HERE, "..", "tfcharrnn", "data", "tinyshakespeare.txt")
        for name, corpus in (("bundled", bundled), ("large", path)):
            log(f"training memory, {name} corpus")
            results["train_memory"][name] = run_child(
                "train_memory", path=corpus, cell="lstm", num_layers=1, hidden_size=128,
                steps=50)


def write_json(path, plan, results):
    with open(path, "w") as f:
        json.dump({"flops_per_char": {
            f"{n}/{c}": {"train": train_flops_per_char(c, s["hidden_size"]),
                         "forward": forward_flops_per_char(c, s["hidden_size"])}
            for n, s in plan.configs.items() for c in plan.cells}, **results}, f, indent=2)


def main():
    args = parse_args()
    torch = have_torch()
    if not torch:
        log("torch is not installed (pip install -e \".[bench]\"): no PyTorch column")
    plan = Plan(args, torch)
    results = {"matmul_gflops": [], "matvec_gflops": [], "train": {}, "evaluate": {},
               "sample": {}, "score": {}, "quality": {}}
    for r in range(args.rounds):
        measure_round(plan, r, results)
    if plan.wants("quality"):
        measure_quality(plan, results)
    if plan.wants("prepare"):
        measure_prepare_and_memory(plan, results)
    report(results, plan.frameworks)
    if args.json:
        write_json(args.json, plan, results)


def report_train(results, frameworks, ceiling):
    print("Training chars/s (median); in brackets the fraction of the matmul ceiling.\n")
    head = "| config | cell | MFLOP/char | " + " | ".join(frameworks)
    if "torch" in frameworks:
        head += " | keras / torch | manual / torch"
    print(head + " |\n" + "|---" * (head.count("|")) + "|")
    for name, shape in CONFIGS.items():
        for cell in CELLS:
            if f"{name}/{cell}/{frameworks[0]}" not in results["train"]:
                continue                                   # not measured (--cells)
            fpc = train_flops_per_char(cell, shape["hidden_size"])
            cps = {fw: med(results["train"][f"{name}/{cell}/{fw}"]) for fw in frameworks
                   if f"{name}/{cell}/{fw}" in results["train"]}   # torch: not every cell
            row = f"| {name} | {cell} | {fpc / 1e6:.1f} | " + " | ".join(
                f"{cps[fw]:,.0f} ({cps[fw] * fpc / ceiling:.0%})" if fw in cps else "-"
                for fw in frameworks)
            if "torch" in frameworks:
                row += (f" | {cps['keras'] / cps['torch']:.2f}x | "
                        f"{cps['manual'] / cps['torch']:.2f}x" if "torch" in cps
                        else " | - | -")
            print(row + " |")


def report_bf16(results, frameworks, bf16):
    print("\nTraining chars/s (median) with --precision=mixed_bfloat16 (PyTorch: bfloat16 "
          "autocast); in brackets the speed-up over float32 in this run.\n")
    print("| config | cell | " + " | ".join(frameworks) + " |\n"
          + "|---" * (len(frameworks) + 2) + "|")
    for key in sorted({k.rsplit("/", 1)[0] for k in bf16}):
        name, cell = key.split("/")
        row = []
        for fw in frameworks:
            low, full = bf16.get(f"{key}/{fw}"), results["train"].get(f"{key}/{fw}")
            row.append(f"{med(low):,.0f} ({med(low) / med(full):.2f}x)" if low and full
                       else "-")
        print(f"| {name} | {cell} | " + " | ".join(row) + " |")


def report_quality(quality):
    print("\nValidation loss of `train --preset=cpu_hour` (2 x 512 LSTM) after the same "
          "real training steps (the cosine over those steps), at each quarter:\n")
    print("| precision | steps | val loss (nats/char) | at the quarters | minutes |\n"
          "|---|---|---|---|---|")
    for precision, r in quality.items():
        curve = ", ".join(f"{v:.4f}" for v in r["curve"])
        print(f"| {precision} | {r['steps']} | {r['val_loss']:.4f} | {curve} | "
              f"{r['minutes']:.1f} |")


def report_evaluate(results):
    print("\nEvaluation (forward only, training shape) chars/s; x = over training.\n")
    print("| config | cell | keras | manual |\n|---|---|---|---|")
    for name in CONFIGS:
        for cell in CELLS:
            if f"{name}/{cell}/keras" not in results["evaluate"]:
                continue                                   # not measured (--cells)
            columns = []
            for fw in ("keras", "manual"):
                e = med(results["evaluate"][f"{name}/{cell}/{fw}"])
                t = results["train"].get(f"{name}/{cell}/{fw}")
                columns.append(f"{e:,.0f}" + (f" ({e / med(t):.1f}x)" if t else ""))
            print(f"| {name} | {cell} | " + " | ".join(columns) + " |")


def report_sample(results, ceiling):
    fpc = forward_flops_per_char("lstm", 512)
    matvec = med(results["matvec_gflops"]) * 1e9
    print(f"\nSampling chars/s, 2 x 512 LSTM ({fpc / 1e6:.1f} MFLOP/char). In brackets the "
          f"fraction of the ceiling: one stream, float32 matrix-vector {matvec / 1e9:.0f} "
          f"GFLOP/s = {matvec / fpc:,.0f} chars/s; 64 streams, the matmul ceiling = "
          f"{ceiling / fpc:,.0f} chars/s.\n")
    print("| streams | keras | manual |\n|---|---|---|")
    for streams, top in ((1, matvec), (64, ceiling)):
        vals = [med(results["sample"][f"{fw}/{streams}"]) for fw in ("keras", "manual")]
        print(f"| {streams} | " + " | ".join(f"{v:,.0f} ({v * fpc / top:.0%})"
                                            for v in vals) + " |")


def report_score(score):
    single, batched = med(score["single"]), med(score["batched"])
    print(f"\nScoring short lines (2 x 256 LSTM): one at a time {single:,.0f} lines/s, "
          f"batched 1,024 at a time (`score`) {batched:,.0f} lines/s = {batched / single:.0f}x; "
          f"`evaluate` (one stream, the held-out tail) "
          f"{med(score['evaluate_file']):,.0f} chars/s")


def report_prepare(p):
    print(f"\nPreparing a {p['file_bytes'] / 1e6:.0f} MB corpus: {p['seconds']:.2f} s, "
          f"peak RSS {p['peak_rss_bytes'] / 1e6:.0f} MB "
          f"({p['peak_rss_bytes'] / p['file_bytes']:.2f}x the file; "
          f"{p['rss_before_bytes'] / 1e6:.0f} MB before reading), ids "
          f"{p['ids_dtype']} {p['ids_bytes'] / 1e6:.0f} MB")


def report_memory(train_memory):
    print("\nResident memory of training (1 x 128 LSTM, 50 steps), MB above the process "
          "with TensorFlow and the model loaded:\n")
    print("| corpus | encoded ids | after preparing the data | after training |\n"
          "|---|---|---|---|")
    for name, m in train_memory.items():
        base = m["rss_before_data"]
        print(f"| {name}, {m['file_bytes'] / 1e6:.0f} MB | {m['ids_bytes'] / 1e6:.1f} | "
              f"+{(m['rss_after_prepare'] - base) / 1e6:.0f} | "
              f"+{(m['rss_after_training'] - base) / 1e6:.0f} |")


def report(results, frameworks):
    """The Markdown tables of whatever was measured, in the README's order."""
    ceiling = med(results["matmul_gflops"]) * 1e9
    print(f"\nfloat32 matmul (TensorFlow, 2048^3): {ceiling / 1e9:.0f} GFLOP/s = the ceiling\n")
    if results["train"]:
        report_train(results, frameworks, ceiling)
    bf16 = {k[:-len("/bf16")]: v for k, v in results["train"].items() if k.endswith("/bf16")}
    if bf16:
        report_bf16(results, frameworks, bf16)
    if results.get("quality"):
        report_quality(results["quality"])
    if results["evaluate"]:
        report_evaluate(results)
    if results["sample"]:
        report_sample(results, ceiling)
    if results["score"]:
        report_score(results["score"])
    if "prepare" in results:
        report_prepare(results["prepare"])
    if "train_memory" in results:
        report_memory(results["train_memory"])


if __name__ == "__main__":
    main()
