"""The benchmark suite's own arithmetic and harness (benchmarks/; the suite itself is not a test).

What could silently make the README's table wrong: a FLOP count that misses a product (every
"fraction of the ceiling" would be off), a ratio or fraction computed from the wrong column,
or a measurement process that no longer runs.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfcharrnn.config import ModelConfig
from tfcharrnn.models import build_model, cells

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def _load_run():
    spec = importlib.util.spec_from_file_location("bench_run", os.path.join(BENCH, "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_cpu_hour():
    spec = importlib.util.spec_from_file_location("bench_cpu_hour",
                                                  os.path.join(BENCH, "cpu_hour.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("cell", cells.NAMES)
def test_flops_per_char_count_every_weight_matrix_of_the_real_model(cell):
    run = _load_run()
    hidden = 24
    model = build_model(ModelConfig(backend="manual", model=cell, num_layers=run.LAYERS,
                                    hidden_size=hidden, embedding_size=run.EMBEDDING),
                        run.VOCAB)
    model(np.zeros([1, 2], np.int32), model.initial_state(1))
    # One multiply-add per weight of every matrix a token goes through; the embedding is a
    # lookup and the biases are additions.
    matrices = [v for v in model.trainable_variables if v.name.startswith("W_")]
    assert len(matrices) == (2 if model.cell.recurrent else 1) * run.LAYERS + 1
    expected = sum(2 * int(np.prod(v.shape)) for v in matrices)
    assert run.forward_flops_per_char(cell, hidden) == expected
    assert run.train_flops_per_char(cell, hidden) == 3 * expected


def test_report_takes_medians_and_divides_the_right_columns(capsys):
    run = _load_run()
    train = {f"{n}/{c}/{fw}": [1000.0 * k] * 3
             for n in run.CONFIGS for c in run.CELLS
             for fw, k in (("keras", 3), ("manual", 2), ("torch", 1))}
    train["2x512/lstm/keras"] = [1.0, 6000.0, 9e9]           # median 6000, not the mean
    evaluate = {key: [5000.0] for key in train if not key.endswith("torch")}
    train["2x512/lstm/keras/bf16"] = [12000.0]
    train["2x512/lstm/torch/bf16"] = [1500.0]
    results = {"matmul_gflops": [100.0, 200.0, 300.0], "matvec_gflops": [50.0],
               "train": train, "evaluate": evaluate,
               "sample": {"keras/1": [1000.0], "manual/1": [2000.0],
                          "keras/64": [3000.0], "manual/64": [4000.0]},
               "score": {"single": [10.0, 20.0, 30.0], "batched": [600.0],
                         "evaluate_file": [7000.0]},
               "quality": {"float32": {"steps": 300, "val_loss": 1.71234, "minutes": 4.0,
                                       "curve": [2.5, 1.9, 1.75, 1.71234]},
                           "mixed_bfloat16": {"steps": 300, "val_loss": 1.7151,
                                              "curve": [2.4, 1.8, 1.72, 1.7151],
                                              "minutes": 2.1}}}
    run.report(results, ["keras", "manual", "torch"])
    out = capsys.readouterr().out
    assert "200 GFLOP/s = the ceiling" in out
    fpc = run.train_flops_per_char("lstm", 512)
    assert (f"| 2x512 | lstm | {fpc / 1e6:.1f} | 6,000 ({6000 * fpc / 200e9:.0%}) | "
            f"2,000 ({2000 * fpc / 200e9:.0%}) | 1,000 ({1000 * fpc / 200e9:.0%}) | "
            "6.00x | 2.00x |") in out
    assert "| 2x128 | gru | 5,000 (1.7x) | 5,000 (2.5x) |" in out     # eval over training
    one = run.forward_flops_per_char("lstm", 512)
    assert f"| 1 | 1,000 ({1000 * one / 50e9:.0%}) | 2,000 ({2000 * one / 50e9:.0%}) |" in out
    assert "one at a time 20 lines/s, batched 1,024 at a time (`score`) 600 lines/s = 30x" in out
    assert "7,000 chars/s" in out
    assert "| 2x512 | lstm | 12,000 (2.00x) | - | 1,500 (1.50x) |" in out
    assert "| mixed_bfloat16 | 300 | 1.7151 | 2.4000, 1.8000, 1.7200, 1.7151 | 2.1 |" in out


def _measure_here(*args):
    """measure.py's measurement, in this process (no TensorFlow start-up per call)."""
    spec = importlib.util.spec_from_file_location("bench_measure",
                                                  os.path.join(BENCH, "measure.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.measure(list(args))[1]


def _measure(*args):
    """measure.py as the benchmark suite runs it: a process of its own."""
    out = subprocess.run([sys.executable, os.path.join(BENCH, "measure.py"), *args],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_measure_runs_training_evaluation_and_sampling_of_a_tiny_model():
    tiny = ["--hidden_size=16", "--embedding_size=8", "--batch_size=4", "--seq_len=8",
            "--steps=2", "--warmup=1", "--repeats=2"]
    # One of them as its own process, as benchmarks/run.py runs them; the rest in this one.
    rates = _measure("train", "--backend=keras", "--cell=gru", *tiny)
    assert len(rates) == 2 and all(r > 0 for r in rates)
    rates = _measure_here("evaluate", "--backend=keras", "--cell=gru", *tiny)
    assert len(rates) == 2 and all(r > 0 for r in rates)
    rates = _measure_here("sample", "--cell=lstm", "--streams=3", "--tokens=20", "--chunk=8",
                          *tiny)
    assert len(rates) == 2 and all(r > 0 for r in rates)
    for method in ("batched", "single"):
        rates = _measure_here("score", f"--method={method}", "--lines=40", "--batch_size=16",
                              *tiny)
        assert len(rates) == 2 and all(r > 0 for r in rates)
    rates = _measure_here("evaluate_file", "--tokens=2000", *tiny)
    assert len(rates) == 2 and all(r > 0 for r in rates)
    rates = _measure_here("train", "--cell=lstm", "--precision=mixed_bfloat16", *tiny)
    assert len(rates) == 2 and all(r > 0 for r in rates)


def test_measure_prepare_reports_the_encoded_size_of_a_corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("to be or not to be\n" * 500, encoding="utf-8")
    result = _measure("prepare", f"--path={path}")
    assert result["file_bytes"] == 19 * 500
    assert result["vocab"] == len(set("to be or not to be\n"))
    assert result["ids_dtype"] == "uint8" and result["ids_bytes"] == 19 * 500
    assert result["peak_rss_bytes"] >= result["rss_before_bytes"] > 0


def test_cpu_hour_names_the_cpu_kind_its_products_ran_on():
    cpu_hour = _load_cpu_hour()
    amx = {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    assert cpu_hour.cpu_kind("mixed_bfloat16", amx, "") == "AMX, bfloat16"
    assert cpu_hour.cpu_kind("mixed_bfloat16", {"avx2", "avx512f", "avx512_bf16"},
                             "") == "AVX512-BF16, bfloat16"
    # float32 products use neither bfloat16 unit; oneDNN's cap narrows the vector unit.
    assert cpu_hour.cpu_kind("float32", amx, "") == "AVX-512, float32"
    assert cpu_hour.cpu_kind("float32", amx, "AVX2") == "AVX2 (oneDNN capped), float32"
    assert cpu_hour.cpu_kind("float32", {"avx2", "fma"}, "") == "AVX2, float32"


def test_cpu_hour_reads_validation_at_each_mark_as_the_last_evaluation_before_it():
    cpu_hour = _load_cpu_hour()
    minutes = [3.0, 9.5, 10.0, 14.0, 27.0]
    losses = [2.0, 1.9, 1.8, 1.7, 1.6]
    # 10.0 is at the mark (counts); nothing was logged before 1 minute; 30 holds 27's value.
    assert cpu_hour.at_marks(minutes, losses, marks=(1, 10, 20, 30)) == [None, 1.8, 1.7, 1.6]
    assert cpu_hour.at_marks([], [], marks=(10,)) == [None]


def test_cpu_hour_table_puts_each_runs_figures_in_their_columns(capsys):
    cpu_hour = _load_cpu_hour()
    row = {"cpu_kind": "AVX2, float32", "minutes": 61.04, "steps": 2559,
           "chars_per_sec": 4969.4, "parameters": 3318401,
           "best": {"loss_nats_per_token": 1.39301, "bits_per_token": 2.00969},
           "latest": {"loss_nats_per_token": 1.39382, "bits_per_token": 2.0109}}
    old = dict(row, cpu_kind="AMX, bfloat16", minutes=None)   # an old run: no minutes kept
    cpu_hour.print_table({"lstm": row, "gru": old})
    lines = capsys.readouterr().out.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert len(lines) == 4 and set(lines[1]) == {"|", "-"}
    rows = [dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
            for line in lines[2:]]
    assert rows[0] == {"cell": "lstm", "CPU kind": "AVX2, float32",
                       "held-out nats/char": "1.3930", "bits/char": "2.0097",
                       "last checkpoint nats/char": "1.3938", "minutes": "61.0",
                       "steps": "2,559", "train chars/s": "4,969", "parameters": "3,318,401"}
    assert rows[1]["cell"] == "gru" and rows[1]["CPU kind"] == "AMX, bfloat16"
    assert rows[1]["minutes"] == "?"
