"""Bad input, as a user meets it: the real command, a one-line error naming the problem and
the fix, the right exit status (2 usage, 1 failure), and no traceback."""

import json
import os
import shutil

import pytest

from conftest import run_command


@pytest.fixture(scope="module")
def files(tmp_path_factory, corpus_path):
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.txt").write_bytes(b"")
    (d / "short.txt").write_text("To be, or not to be.", encoding="utf-8")
    (d / "latin1.txt").write_bytes("caf\xe9 au lait ".encode("latin-1") * 2000)
    (d / "binary.bin").write_bytes(bytes(range(256)) * 100)
    (d / "c.csv").write_text("id,comment\n1,hello there\n", encoding="utf-8")
    (d / "subdir").mkdir()
    return d


def assert_one_line_error(result, code, pattern):
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    import re
    assert re.search(pattern, lines[0]), lines[0]


TRAIN_CASES = [
    (["--data_path={d}/missing.txt"], 2, "data file not found"),
    (["--data_path={d}/subdir"], 2, "holds no text files"),   # an empty folder
    (["--data_path={d}/empty.txt"], 2, "is empty"),
    (["--data_path={d}/short.txt"], 2, r"has \d+ tokens, fewer than batch_size \* seq_len \+ 1"
                                        r" = 6401; pass smaller --batch_size"),
    (["--data_path={d}/latin1.txt"], 2, r"not valid utf-8: byte 3 .*--encoding"),
    (["--data_path={d}/binary.bin"], 2, "looks binary"),
    (["--data_path={d}/c.csv", "--csv_column=text"], 2, "no column named 'text'"),
    # The flag checks' wiring: one of each kind (a config check, an enum, the command line);
    # every flag check itself runs in-process below.
    (["--batch_size=0"], 2, "--batch_size must be a positive integer"),
    (["--model=transformer"], 2, "transformer"),
    (["stray_argument"], 2, "unexpected argument"),
]

# Checked by parsing the flags into a config, as the commands do: no TensorFlow, no process.
FLAG_CASES = [
    (["--batch_size=0"], "--batch_size must be a positive integer"),
    (["--seq_len=-3"], "--seq_len must be a positive integer"),
    (["--hidden_size=0"], "--hidden_size must be a positive integer"),
    (["--num_layers=0"], "--num_layers must be a positive integer"),
    (["--dropout=1.0"], r"--dropout must be in \[0, 1\)"),
    (["--model=transformer"], "transformer"),
    (["--backend=jax"], "jax"),
    (["--level=sentence"], "sentence"),
    (["--distribution_strategy=tpu"], "tpu"),
    (["--num_replicas=2"], "--num_replicas applies to --distribution_strategy=mirrored"),
    (["--max_minutes=-1"], "--max_minutes must be 0 or more"),
]


@pytest.mark.parametrize("args,pattern", FLAG_CASES, ids=[c[0][0] for c in FLAG_CASES])
def test_train_flags_are_checked_before_anything_runs(args, pattern):
    from absl import flags as absl_flags
    import flags as tfcharrnn_flags
    from tfcharrnn.errors import UsageError
    fv = absl_flags.FlagValues()
    tfcharrnn_flags.define_train_flags(fv)
    with pytest.raises((absl_flags.Error, UsageError), match=pattern):
        fv(["train", *args])
        tfcharrnn_flags.run_config(fv)


@pytest.mark.parametrize("args,code,pattern", TRAIN_CASES,
                         ids=[c[0][0].split("=")[0] + c[0][0][-12:] for c in TRAIN_CASES])
def test_train_rejects_bad_input(files, tmp_path, args, code, pattern):
    args = [a.format(d=files) for a in args] + [f"--checkpoint_dir={tmp_path}/run"]
    assert_one_line_error(run_command("tfcharrnn.train", *args), code, pattern)
    assert not os.path.exists(tmp_path / "run" / "config.json")  # nothing half-created


def test_latin1_file_trains_with_the_right_encoding(files, tmp_path):
    r = run_command("tfcharrnn.train", f"--data_path={files}/latin1.txt", "--encoding=latin-1",
                    "--batch_size=4", "--seq_len=8", "--hidden_size=8", "--max_steps=2",
                    "--eval_every=2", f"--checkpoint_dir={tmp_path}/run")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # subprocesses: one back-end
def test_resume_with_other_settings_is_refused_and_names_the_fields(trained_run):
    c = trained_run
    r = run_command("tfcharrnn.train", f"--checkpoint_dir={c.train.checkpoint_dir}",
                    f"--data_path={c.data.data_path}", "--batch_size=4", "--seq_len=16",
                    "--hidden_size=32", "--num_layers=2", "--embedding_size=8",
                    f"--backend={c.model.backend}", "--learning_rate=0.01", "--max_steps=40")
    assert_one_line_error(r, 2, r"model\.hidden_size: 16 on disk, 32 now.*--overwrite")


SAMPLE_CASES = [
    (["--length=0"], 2, "--length must be a positive integer"),
    (["--temperature=0"], 2, "--temperature must be positive"),
    (["--sampling=top_k", "--top_k=0"], 2, "--top_k must be a positive integer"),
    (["--sampling=top_k", "--top_k=1000"], 2, "larger than the vocabulary"),
    (["--prime=\u2603 snow"], 2, "lacks: '\u2603'"),
]


@pytest.mark.parametrize("args,code,pattern", SAMPLE_CASES, ids=[c[0][-1] for c in SAMPLE_CASES])
@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # subprocesses: one back-end
def test_sample_rejects_bad_input(trained_run, args, code, pattern):
    r = run_command("tfcharrnn.sample", f"--checkpoint_dir={trained_run.train.checkpoint_dir}",
                    *args)
    assert_one_line_error(r, code, pattern)


def test_train_into_an_unwritable_checkpoint_dir(files):
    r = run_command("tfcharrnn.train", f"--checkpoint_dir={files}/c.csv/run")
    assert_one_line_error(r, 2, r"cannot write --checkpoint_dir .*c.csv/run \(a file stands "
                                r"where a folder would go\); pass a path you can write to as "
                                r"--checkpoint_dir")
    r = run_command("tfcharrnn.train", f"--checkpoint_dir={files}/c.csv")
    assert_one_line_error(r, 2, r"--checkpoint_dir is a file, not a directory: .*c.csv")


def test_missing_or_empty_checkpoint_dir(tmp_path):
    r = run_command("tfcharrnn.sample", f"--checkpoint_dir={tmp_path}/nope")
    assert_one_line_error(r, 2, "checkpoint directory not found")
    (tmp_path / "empty").mkdir()
    r = run_command("tfcharrnn.evaluate", f"--checkpoint_dir={tmp_path}/empty",
                    f"--data_path={__file__}")
    assert_one_line_error(r, 1, "config.json is missing")


@pytest.mark.parametrize("damage", ["missing_config", "corrupt_config", "missing_vocab",
                                    "corrupt_vocab", "vocab_of_other_size", "no_checkpoint"])
@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # subprocesses: one back-end
def test_damaged_run_directory(trained_run, tmp_path, damage):
    run = tmp_path / "run"
    shutil.copytree(trained_run.train.checkpoint_dir, run)
    if damage == "missing_config":
        os.remove(run / "config.json")
        code, pattern = 1, "config.json is missing"
    elif damage == "corrupt_config":
        (run / "config.json").write_text("{not json", encoding="utf-8")
        code, pattern = 1, "config.json is not valid JSON"
    elif damage == "missing_vocab":
        os.remove(run / "vocab.json")
        code, pattern = 1, "vocab.json is missing"
    elif damage == "corrupt_vocab":
        (run / "vocab.json").write_text('{"level": "char", "tokens": 5}', encoding="utf-8")
        code, pattern = 1, "vocab.json is not a valid vocabulary"
    elif damage == "vocab_of_other_size":
        vocab = json.loads((run / "vocab.json").read_text(encoding="utf-8"))
        vocab["tokens"] = vocab["tokens"][:-3]
        (run / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        code, pattern = 1, "does not match config.json/vocab.json"
    else:
        for name in os.listdir(run):
            if name.startswith("ckpt") or name in ("checkpoint", "best"):
                shutil.rmtree(run / name) if (run / name).is_dir() else os.remove(run / name)
        code, pattern = 2, "no checkpoint in"
    r = run_command("tfcharrnn.sample", f"--checkpoint_dir={run}", "--length=5")
    assert_one_line_error(r, code, pattern)


def test_verbosity_shows_the_traceback(tmp_path):
    r = run_command("tfcharrnn.sample", f"--checkpoint_dir={tmp_path}/nope", "--verbosity=1")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_word_prime_with_unknown_words_is_refused(word_run):
    r = run_command("tfcharrnn.sample", f"--checkpoint_dir={word_run.train.checkpoint_dir}",
                    "--prime=the cat likes quantum chromodynamics")
    assert_one_line_error(r, 2, r"--prime has 2 word\(s\) .* lacks: 'chromodynamics' 'quantum'")


def test_every_float_setting_refuses_nan_and_infinities():
    """absl's float flags parse 'inf' and 'nan'; every config refuses them by name."""
    import dataclasses
    import math
    from tfcharrnn import config as cfg
    from tfcharrnn.errors import UsageError
    checked = 0
    for cls in (cfg.DataConfig, cfg.ModelConfig, cfg.TrainConfig, cfg.DistributeConfig,
                cfg.SampleConfig, cfg.EvalConfig, cfg.ScoreConfig, cfg.ExportConfig,
                cfg.ServeConfig, cfg.PlotConfig):
        required = {"EvalConfig": {"data_path": "x"}, "ExportConfig": {"export_dir": "x"}}
        base = cls(**required.get(cls.__name__, {}))
        for field in dataclasses.fields(cls):
            if not isinstance(getattr(base, field.name), float):
                continue
            for bad in (math.inf, -math.inf, math.nan):
                with pytest.raises(UsageError, match=f"--{field.name} must be a finite"):
                    dataclasses.replace(base, **{field.name: bad})
                checked += 1
    assert checked >= 3 * 12      # every float setting of every command


def test_a_deeply_nested_run_file_is_a_damaged_run(tmp_path):
    from tfcharrnn import checkpoints
    from tfcharrnn.errors import RunError
    (tmp_path / "config.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(RunError, match="config.json is not a tfcharrnn file"):
        checkpoints.load_run_config(str(tmp_path))
    (tmp_path / "vocab.json").write_text("{\"a\": " * 50000 + "1" + "}" * 50000)
    with pytest.raises(RunError, match="vocab.json is not a tfcharrnn file"):
        checkpoints.load_vocab(str(tmp_path))
