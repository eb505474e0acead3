"""--preset (named flag values, overridden by explicit flags) and --max_minutes."""

import dataclasses
import io
import json
import os

import pytest
from absl import flags as absl_flags

import flags as tfcharrnn_flags
from conftest import run_command, tiny_config
from flags import presets
from test_errors import assert_one_line_error
from tfcharrnn import checkpoints, train_lib


def parse(*args):
    fv = absl_flags.FlagValues()
    tfcharrnn_flags.define_train_flags(fv)
    fv(tfcharrnn_flags.with_preset(["train", *args]))
    return tfcharrnn_flags.run_config(fv)


def test_a_preset_sets_flags_and_explicit_flags_override_it():
    config = parse("--preset=tiny", "--hidden_size=64")
    assert config.model.hidden_size == 64                       # the command line wins
    assert (config.model.num_layers, config.data.seq_len) == (2, 64)   # from the preset
    assert config.train.max_minutes == 1 and config.train.checkpoint_dir == "checkpoints/tiny"
    assert config.train.preset == "tiny"
    # Wherever --preset stands on the command line.
    assert parse("--hidden_size=64", "--preset", "tiny") == config
    assert parse() == parse("--hidden_size=256")  # no preset: the defaults


@pytest.mark.parametrize("name", sorted(presets.available()))
def test_every_preset_is_a_valid_config_with_a_description(name):
    config = parse(f"--preset={name}")
    assert config.train.preset == name
    assert presets.available()[name]  # a description, for --helpfull and the README
    assert name in presets.help_text()


def test_an_unknown_preset_is_a_usage_error():
    r = run_command("tfcharrnn.train", "--preset=huge")
    assert_one_line_error(r, 2, r"unknown --preset='huge'; choose one of: .*tiny")


def test_config_json_records_the_resolved_values(tmp_path, corpus_path):
    config = parse("--preset=tiny", f"--data_path={corpus_path}", "--batch_size=4",
                   "--seq_len=16", "--max_steps=2", "--hidden_size=16",
                   f"--checkpoint_dir={tmp_path / 'run'}")
    train_lib.train_and_evaluate(config, out=io.StringIO())
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["preset"] == "tiny" and saved["train"]["max_minutes"] == 1.0
    assert saved["model"]["hidden_size"] == 16 and saved["model"]["embedding_size"] == 32


def test_max_minutes_stops_validates_saves_and_resumes(tmp_path, corpus_path):
    # A budget shorter than building the model: the first step is the last.
    config = tiny_config(tmp_path, corpus_path, train__max_minutes=0.0005,
                         train__max_steps=1000, train__eval_every=500)
    out = io.StringIO()
    summary = train_lib.train_and_evaluate(config, out=out)
    assert summary["out_of_time"] and summary["step"] == 1
    assert summary["val_loss"] is not None  # validated at the last step, as at --max_steps
    assert "done at step 1 (the --max_minutes=0.0005 budget)" in out.getvalue()
    assert checkpoints.checkpoint_path(config.train.checkpoint_dir, "latest").endswith("ckpt-1")
    longer = dataclasses.replace(config, train=dataclasses.replace(
        config.train, max_minutes=0.0, max_steps=4))
    out = io.StringIO()
    summary = train_lib.train_and_evaluate(longer, out=out)
    assert "at step 1" in out.getvalue() and summary["step"] == 4
    assert not summary["out_of_time"]
    assert os.path.exists(os.path.join(config.train.checkpoint_dir, "ckpt-4.index"))
