"""Shared fixtures: a small corpus and one tiny trained run, built once per session."""

import os
import subprocess
import sys

import hypothesis
import pytest

from tfcharrnn import config as cfg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(tmp_path, data_path, **overrides) -> cfg.RunConfig:
    """A model small enough that a step takes milliseconds."""
    sections = {
        "data": dict(data_path=str(data_path), batch_size=4, seq_len=16, val_fraction=0.1),
        "model": dict(hidden_size=16, num_layers=2, embedding_size=8),
        "train": dict(checkpoint_dir=str(tmp_path / "run"), max_steps=20, eval_every=10,
                      sample_length=20, learning_rate=1e-2),
    }
    for key, value in overrides.items():
        section, name = key.split("__")
        sections[section][name] = value
    return cfg.RunConfig(data=cfg.DataConfig(**sections["data"]),
                         model=cfg.ModelConfig(**sections["model"]),
                         train=cfg.TrainConfig(**sections["train"]))


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory):
    """The first 20,000 characters of the bundled corpus."""
    with open(cfg.BUNDLED_CORPUS, encoding="utf-8") as f:
        text = f.read(20000)
    path = tmp_path_factory.mktemp("data") / "small.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def cell_runs(tmp_path_factory, corpus_path):
    """{cell: run directory}: a tiny run of every registered cell (20 steps, char level), the
    back-ends taking turns, for the exports' tests."""
    from tfcharrnn import train_lib
    from tfcharrnn.models import cells
    root = tmp_path_factory.mktemp("cells")
    runs = {}
    for i, cell in enumerate(cells.NAMES):
        config = tiny_config(root / f"run-{cell}", corpus_path, model__model=cell,
                             model__backend=("keras", "manual")[i % 2], train__max_steps=20)
        train_lib.train_and_evaluate(config, out=open(os.devnull, "w"))
        runs[cell] = config.train.checkpoint_dir
    return runs


@pytest.fixture(scope="session", params=["keras", "manual"])
def trained_run(request, tmp_path_factory, corpus_path):
    """A run directory of each back-end trained for a few steps (for restore, sample and
    evaluate tests)."""
    from tfcharrnn import train_lib
    tmp = tmp_path_factory.mktemp(f"trained-{request.param}")
    config = tiny_config(tmp, corpus_path, train__max_steps=30, model__backend=request.param)
    train_lib.train_and_evaluate(config, out=open(os.devnull, "w"))
    return config


def run_command(module, *args, timeout=300):
    """Runs `python -m module args` as a user would; returns the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def write_comments_csv(path, rows=400, seed=0):
    """A small, repetitive CSV of 'comments': simple sentences, some with quoted commas and
    newlines. Nouns appear both inside and at the end of sentences, so Punkt does not take
    them for abbreviations."""
    import csv
    import random
    rng = random.Random(seed)
    nouns = ["the cat", "a dog", "my friend", "the teacher", "our neighbour", "the bird",
             "a child", "the farmer"]
    verbs = ["likes", "sees", "feeds", "helps", "calls"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "comment", "score"])
        for i in range(rows):
            text = " ".join(f"{rng.choice(nouns).capitalize()} {rng.choice(verbs)} "
                            f"{rng.choice(nouns)}." for _ in range(rng.randint(1, 3)))
            if i % 7 == 0:
                text += "\nIt was, in fact, true!"
            writer.writerow([i, text, rng.randint(0, 5)])
    return path


@pytest.fixture(scope="session")
def served_run(tmp_path_factory, corpus_path):
    """A keras run for the server's tests (its own, so that they do not depend on the
    parametrized trained_run)."""
    from tfcharrnn import train_lib
    tmp = tmp_path_factory.mktemp("served")
    config = tiny_config(tmp, corpus_path, train__max_steps=30)
    train_lib.train_and_evaluate(config, out=open(os.devnull, "w"))
    return config


@pytest.fixture(scope="session")
def word_run(tmp_path_factory):
    """A word-level run on the comments CSV, with a vocabulary cap that leaves unknown words."""
    from tfcharrnn import train_lib
    tmp = tmp_path_factory.mktemp("words")
    data = write_comments_csv(tmp / "comments.csv")
    config = tiny_config(tmp, data, data__level="word", data__csv_column="comment",
                         data__vocab_size=20, data__batch_size=8, data__seq_len=20,
                         model__hidden_size=48, train__max_steps=150, train__eval_every=50)
    train_lib.train_and_evaluate(config, out=open(os.devnull, "w"))
    return config


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for a module's page tests (browser.py; skips without it, except
    under CI)."""
    from browser import chrome, require_chromium
    require_chromium()
    driver = chrome()
    yield driver
    driver.quit()


# The fuzz tests' examples (test_fuzz.py): a fixed seed, so CI is repeatable; a few hundred per
# input path. --hypothesis-profile=long: ten times as many, from a random seed.
hypothesis.settings.register_profile("tfcharrnn", max_examples=300, derandomize=True,
                                     deadline=None, print_blob=True)
hypothesis.settings.register_profile("long", max_examples=3000, deadline=None, print_blob=True)
hypothesis.settings.load_profile("tfcharrnn")
