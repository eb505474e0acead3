"""Corpora larger than memory: `prepare` throughput and memory, training's memory and start.

    python benchmarks/prepare_scale.py [--char_mb=10,1024,4096] [--word_mb=200] [--work_dir=DIR]

Generates plain-text corpora of the given sizes in --work_dir (the bundled tiny-shakespeare
repeated, each copy's lines numbered so that no two copies are the same text), then:
  - prepares each (character level; word level with 1 and 2 workers): seconds, MB/s or
    tokens/s, and the peak resident memory of the `prepare` process;
  - trains the default model for 50 steps on each character-level corpus's prepared
    directory (`--val_tokens=100000`, one evaluation): the peak resident memory of the `train`
    process, and the seconds from its start to its first step (when it prints the data and
    model line, the data is mapped and the model built; the first step follows).
Prints Markdown tables with the CPU named. Not a test: nothing here passes or fails. The
corpora and prepared directories are deleted at the end unless --keep.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def generate(path: str, megabytes: int):
    from tfcharrnn.config import BUNDLED_CORPUS
    with open(BUNDLED_CORPUS, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    target, written, copy = megabytes * 1_000_000, 0, 0
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            text = "".join(f"{copy} {line}" if line.strip() else line for line in lines)
            out.write(text)
            written += len(text.encode("utf-8"))
            copy += 1


def measured(args: list, first_line: str = "") -> dict:
    """Runs a command; its wall seconds, peak RSS (MB) and, if first_line, the seconds until
    a stdout line containing it."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    until = None
    for line in proc.stdout:
        if first_line and until is None and first_line in line:
            until = time.perf_counter() - started
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode})")
    return {"seconds": time.perf_counter() - started, "rss_mb": usage.ru_maxrss / 1024,
            "until": until}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--char_mb", default="10,1024,4096")
    parser.add_argument("--word_mb", default="200")
    parser.add_argument("--work_dir", default="")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    from cpu_hour import cpu_name
    work = args.work_dir or tempfile.mkdtemp(prefix="tfcharrnn-scale-")
    os.makedirs(work, exist_ok=True)
    print(f"# {cpu_name()}; corpora in {work}")
    try:
        print("| corpus | level | workers | prepare s | MB/s | tokens/s | prepare peak RSS |")
        print("|---|---|---|---|---|---|---|")
        char_dirs = {}
        for mb in [int(m) for m in args.char_mb.split(",") if m]:
            source = os.path.join(work, f"char{mb}.txt")
            generate(source, mb)
            out = os.path.join(work, f"char{mb}")
            r = measured(["tfcharrnn.prepare", f"--data_path={source}", f"--out={out}"])
            size = os.path.getsize(source) / 1e6
            print(f"| {size:,.0f} MB | char | - | {r['seconds']:.1f} | {size / r['seconds']:.0f} |"
                  f" {size * 1e6 / r['seconds']:,.0f} | {r['rss_mb']:.0f} MB |", flush=True)
            os.remove(source)
            char_dirs[mb] = out
        for mb in [int(m) for m in args.word_mb.split(",") if m]:
            source = os.path.join(work, f"word{mb}.txt")
            generate(source, mb)
            size = os.path.getsize(source) / 1e6
            for workers in (1, 2):
                out = os.path.join(work, f"word{mb}-{workers}")
                r = measured(["tfcharrnn.prepare", f"--data_path={source}", f"--out={out}",
                              "--level=word", f"--num_workers={workers}"])
                from tfcharrnn.prepare import prepared
                tokens = prepared.read_meta(out)["counts"]["tokens"]
                print(f"| {size:,.0f} MB | word | {workers} | {r['seconds']:.1f} | "
                      f"{size / r['seconds']:.1f} | {tokens / r['seconds']:,.0f} | "
                      f"{r['rss_mb']:.0f} MB |", flush=True)
                shutil.rmtree(out)
            os.remove(source)
        print()
        print("| prepared corpus | train: to the data and model line | 50 steps | peak RSS |")
        print("|---|---|---|---|")
        for mb, data_dir in char_dirs.items():
            run_dir = os.path.join(work, f"run{mb}")
            r = measured(["tfcharrnn.train", f"--data_path={data_dir}", "--max_steps=50",
                          "--eval_every=50", "--val_tokens=100000",
                          f"--checkpoint_dir={run_dir}"], first_line="parameters")
            print(f"| {mb:,} MB | {r['until']:.1f} s | {r['seconds']:.1f} s | "
                  f"{r['rss_mb']:.0f} MB |", flush=True)
            shutil.rmtree(run_dir)
    finally:
        if not args.keep and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
