"""The SavedModel export runs with TensorFlow alone and answers like the commands."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_command
from tfcharrnn.models import cells

# Runs in a fresh interpreter where importing tfcharrnn (or the flags package) fails, so the
# export must carry everything it needs. Prints one JSON object.
LOADER = r"""
import json, os, sys
sys.modules["tfcharrnn"] = None
sys.modules["flags"] = None
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf

export_dir, texts, prime = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
m = tf.saved_model.load(export_dir)
gen = m.signatures["generate"]

def generate(seed, temperature=0.9):
    return gen(prime=tf.constant(prime), length=tf.constant(60),
               temperature=tf.constant(temperature),
               seed=tf.constant(seed, tf.int64))["text"].numpy().decode("utf-8")

scores = m.signatures["score"](texts=tf.constant(texts))
vocab = m.signatures["vocabulary"]()
tokens = [t.decode("utf-8") for t in vocab["tokens"].numpy()]
# step, one token per call, the state carried by the caller: the first text's log-probability
state = tf.zeros([1, int(vocab["state_size"])])
units = list(texts[0]) if len(tokens) < 1000 and sys.argv[4] == "char" else None
if units is None:
    units = ["SENTENCE_START"] + texts[0].split() + ["SENTENCE_END"]
stepped = 0.0
for a, b in zip(units[:-1], units[1:]):
    out = m.signatures["step"](tokens=tf.constant([a]), state=state)
    state = out["state"]
    b = b if b in tokens else "UNKNOWN_TOKEN"
    stepped += float(out["log_probs"][0, tokens.index(b)])
try:
    import tfcharrnn
    importable = True
except ImportError:
    importable = False
print(json.dumps({"a": generate(3), "b": generate(3), "c": generate(4),
                  "greedy": generate(3, 0.0), "greedy2": generate(9, 0.0),
                  "log_prob": scores["log_prob_nats"].numpy().tolist(),
                  "tokens": scores["tokens"].numpy().tolist(),
                  "stepped": stepped, "importable": importable}))
"""


def load_in_fresh_python(export_dir, texts, prime, level):
    env = dict(os.environ, PYTHONPATH="")
    out = subprocess.run([sys.executable, "-c", LOADER, str(export_dir), json.dumps(texts),
                          prime, level], capture_output=True, text=True, timeout=300,
                         env=env, cwd=str(export_dir))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def score_command(run_dir, texts, tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = run_command("tfcharrnn.score", f"--checkpoint_dir={run_dir}", f"--input={path}")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # subprocesses: one back-end
def test_char_export_generates_by_seed_and_scores_like_the_command(trained_run, tmp_path):
    run_dir = trained_run.train.checkpoint_dir
    export_dir = tmp_path / "exported"
    out = run_command("tfcharrnn.export", f"--checkpoint_dir={run_dir}",
                      f"--export_dir={export_dir}")
    assert out.returncode == 0, out.stderr
    assert "MB" in out.stdout
    texts = ["First Citizen:", "Before we proceed any further, hear me speak.", "ab"]
    got = load_in_fresh_python(export_dir, texts, "First", "char")
    assert not got["importable"]
    assert got["a"] == got["b"] != got["c"]
    assert got["a"].startswith("First") and len(got["a"]) == len("First") + 60
    # the same numbers as the sample command draws (its seed's row 0)
    from tfcharrnn import sample_lib
    from tfcharrnn.config import SampleConfig
    import io
    assert got["a"] == sample_lib.sample(SampleConfig(
        checkpoint_dir=run_dir, prime="First", length=60, temperature=0.9, seed=3),
        out=io.StringIO())[0]
    assert got["greedy"] == got["greedy2"]     # temperature 0: the seed does not matter
    expected = score_command(run_dir, texts, tmp_path)
    assert got["tokens"] == [r["tokens"] for r in expected]
    for mine, theirs in zip(got["log_prob"], expected):
        assert mine == pytest.approx(theirs["log_prob_nats"], abs=1e-3)
    # step carried over many calls equals the one score call
    assert got["stepped"] == pytest.approx(got["log_prob"][0], abs=1e-3)
    cli = shutil.which("saved_model_cli")
    if cli is not None:                        # the signatures as saved_model_cli lists them
        out = subprocess.run([cli, "show", "--dir", str(export_dir), "--all"],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        for name in ("generate", "score", "step", "vocabulary", "log_prob_nats",
                     "temperature"):
            assert name in out.stdout


def test_word_export_scores_pre_tokenized_text_like_the_command(word_run, tmp_path):
    from tfcharrnn import checkpoints
    run_dir = word_run.train.checkpoint_dir
    export_dir = tmp_path / "exported"
    out = run_command("tfcharrnn.export", f"--checkpoint_dir={run_dir}",
                      f"--export_dir={export_dir}", "--checkpoint=latest")
    assert out.returncode == 0, out.stderr
    vocab = checkpoints.load_vocab(run_dir)
    sentences = ["The cat likes a dog.", "My friend sees the zebra, which was odd."]
    tokenized = [" ".join(vocab.tokenizer.words(s)) for s in sentences]
    got = load_in_fresh_python(export_dir, tokenized, "the cat", "word")
    assert got["a"] == got["b"]
    assert "UNKNOWN_TOKEN" not in got["a"] and "SENTENCE_START" not in got["a"]
    path = tmp_path / "s.txt"
    path.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    out = run_command("tfcharrnn.score", f"--checkpoint_dir={run_dir}", f"--input={path}",
                      "--checkpoint=latest")
    expected = [json.loads(line) for line in out.stdout.splitlines()]
    assert got["tokens"] == [r["tokens"] for r in expected]
    for mine, theirs in zip(got["log_prob"], expected):
        assert mine == pytest.approx(theirs["log_prob_nats"], abs=1e-3)
    assert got["stepped"] == pytest.approx(got["log_prob"][0], abs=1e-3)


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # subprocesses: one back-end
def test_export_errors_are_one_line_and_nothing_is_replaced_unasked(trained_run, tmp_path):
    out = run_command("tfcharrnn.export", f"--checkpoint_dir={tmp_path / 'none'}",
                      f"--export_dir={tmp_path / 'e'}")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = run_command("tfcharrnn.export", f"--checkpoint_dir={trained_run.train.checkpoint_dir}")
    assert out.returncode != 0 and "--export_dir is required" in out.stderr
    kept = tmp_path / "mine"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine", encoding="utf-8")
    out = run_command("tfcharrnn.export", f"--checkpoint_dir={trained_run.train.checkpoint_dir}",
                      f"--export_dir={kept}")
    assert out.returncode != 0 and "--overwrite" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert (kept / "notes.txt").read_text(encoding="utf-8") == "mine"
    out = run_command("tfcharrnn.export", f"--checkpoint_dir={trained_run.train.checkpoint_dir}",
                      f"--export_dir={kept}", "--overwrite")
    assert out.returncode == 0, out.stderr
    assert (kept / "saved_model.pb").exists()
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("mine.old-")]
    assert len(moved) == 1 and (moved[0] / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("cell", cells.NAMES)
def test_every_cell_exports_a_saved_model_that_answers_as_python(cell, cell_runs, tmp_path):
    """In this process (the subprocess tests above cover a fresh interpreter): each cell's
    SavedModel scores as `score` does, its step carries the state as the model does, and
    generate draws `sample`'s text."""
    import io
    import tensorflow as tf
    from tfcharrnn import sample_lib
    from tfcharrnn.config import ExportConfig, SampleConfig
    from tfcharrnn.export import export_lib
    from test_web_export import python_scores, python_step_log_probs
    run_dir = cell_runs[cell]
    export_lib.export(ExportConfig(checkpoint_dir=run_dir, export_dir=str(tmp_path / "m")),
                      out=io.StringIO())
    m = tf.saved_model.load(str(tmp_path / "m"))
    texts = ["First Citizen:", "ab"]
    scores = m.signatures["score"](texts=tf.constant(texts))
    for mine, theirs in zip(scores["log_prob_nats"].numpy(), python_scores(run_dir, texts)):
        assert mine == pytest.approx(theirs["log_prob_nats"], abs=1e-4)
    tokens = [t.decode("utf-8") for t in m.signatures["vocabulary"]()["tokens"].numpy()]
    state = tf.zeros([1, int(m.signatures["vocabulary"]()["state_size"])])
    stepped = []
    for char in "First":
        out = m.signatures["step"](tokens=tf.constant([char]), state=state)
        state = out["state"]
        stepped.append(out["log_probs"][0].numpy())
    np.testing.assert_allclose(stepped, python_step_log_probs(run_dir, [tokens.index(c)
                                                                        for c in "First"]),
                               atol=1e-4)
    text = m.signatures["generate"](prime=tf.constant("Fi"), length=tf.constant(40),
                                    temperature=tf.constant(0.9),
                                    seed=tf.constant(5, tf.int64))["text"].numpy()
    assert text.decode("utf-8") == sample_lib.sample(SampleConfig(
        checkpoint_dir=run_dir, prime="Fi", length=40, temperature=0.9, seed=5),
        out=io.StringIO())[0]
