"""--preset (named flag values, overridden by explicit flags) and --max_minutes."""

import dataclasses
import io
import json
import os
import subprocess
import sys

import pytest
from absl import flags as absl_flags

import flags as tfcharrnn_flags
from conftest import run_command, tiny_config
from flags import presets
from test_errors import assert_one_line_error
from tfcharrnn import checkpoints, train_lib


def parse(*args, resolve_precision=None):
    fv = absl_flags.FlagValues()
    tfcharrnn_flags.define_train_flags(fv)
    fv(tfcharrnn_flags.with_preset(["train", *args], resolve_precision))
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


def test_a_preset_variant_follows_the_precision_it_resolves_to(tmp_path, monkeypatch):
    (tmp_path / "hour.cfg").write_text("# hour: a test preset\n--hidden_size=64\n"
                                       "--dropout=0.3\n--precision=auto\n")
    (tmp_path / "hour").mkdir()
    (tmp_path / "hour" / "float32.cfg").write_text("# float32: fewer steps\n--dropout=0.1\n")
    monkeypatch.setattr(presets, "PRESET_DIR", str(tmp_path))
    asked = []

    def parse_on(machine, *args):
        def resolve(precision):
            asked.append(precision)
            return machine if precision == "auto" else precision
        return parse("--preset=hour", *args, resolve_precision=resolve)

    on_float32 = parse_on("float32")
    assert asked == ["auto"]                        # the preset's own --precision
    assert on_float32.model.dropout == 0.1          # the variant over the preset
    assert on_float32.model.hidden_size == 64 and on_float32.train.preset == "hour"
    on_bf16 = parse_on("mixed_bfloat16")
    assert on_bf16.model.dropout == 0.3             # no variant for bfloat16: the preset
    # The command line's --precision decides, and its flags override the variant's.
    assert parse_on("mixed_bfloat16", "--precision=float32").model.dropout == 0.1
    assert asked[-1] == "float32"
    assert parse_on("float32", "--precision", "mixed_bfloat16").model.dropout == 0.3
    assert parse_on("float32", "--dropout=0.2").model.dropout == 0.2
    assert presets.variants("hour") == {"float32": str(tmp_path / "hour" / "float32.cfg")}
    assert list(presets.available()) == ["hour"]    # a variant is not a preset of its own


def test_verbosity_is_read_from_an_unparsed_command_line():
    from tfcharrnn import cli
    assert cli.verbosity_in(["train", "--preset=cpu_hour"]) == -1
    assert cli.verbosity_in(["train", "--verbosity=1"]) == 1
    assert cli.verbosity_in(["train", "-v", "2"]) == 2
    assert cli.verbosity_in(["train", "--v=0"]) == 0


def test_cpu_hour_trains_the_recipe_of_the_precision_its_products_run_in():
    def parse_as(precision):
        return parse("--preset=cpu_hour", resolve_precision=lambda p: precision)

    float32, bf16 = parse_as("float32"), parse_as("mixed_bfloat16")
    # Fewer steps in float32: less regularization (weight dropout 0.25 and weight decay 0.1
    # against bfloat16's 0.5 and 0.2) and a validation every 200 steps, not 500, so that
    # its ~3,700 steps still show the curve every few minutes; both train on batches of 32
    # with dropout 0.2 and a learning rate of 4e-3; nothing else differs.
    assert float32.model.weight_dropout < bf16.model.weight_dropout == 0.5
    assert float32.train.weight_decay < bf16.train.weight_decay == 0.2
    assert float32.train.eval_every < bf16.train.eval_every == 500
    assert float32.model.dropout == bf16.model.dropout == 0.2
    assert dataclasses.replace(float32.model, weight_dropout=0.5) == bf16.model
    assert float32.train.learning_rate == bf16.train.learning_rate == 0.004
    assert dataclasses.replace(float32.train, weight_decay=0.2, eval_every=500) == bf16.train
    assert float32.data == bf16.data and bf16.data.batch_size == 32
    assert list(presets.variants("cpu_hour")) == ["float32"]   # bfloat16 is the preset itself
    # train's own expansion asks --precision=auto of this machine, quietly (no TensorFlow
    # start-up lines), as train_lib resolves it.
    code = ("from tfcharrnn import train; "
            "print(train.expand_argv(['train', '--preset=cpu_hour'])); "
            "from tfcharrnn.models import devices; print(devices.resolve_precision('auto'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    argv, resolved = out.stdout.splitlines()
    assert ("cpu_hour/float32.cfg" in argv) == (resolved == "float32"), argv
    assert "oneDNN" not in out.stderr and "cpu_feature_guard" not in out.stderr


def test_an_error_while_expanding_the_command_line_is_one_line(capsys):
    # train's expansion imports TensorFlow to resolve --precision=auto, so the import's own
    # refusals (two TensorFlow distributions installed) come from there: one line, no traceback.
    from tfcharrnn import cli
    from tfcharrnn.errors import TfcharrnnError

    def expand(argv):
        raise TfcharrnnError("two TensorFlow distributions are installed; reinstall one")
    with pytest.raises(SystemExit) as exit_info:
        cli._parse_flags(["train", "--preset=cpu_hour"], expand)
    assert exit_info.value.code == TfcharrnnError("x").exit_code != 0
    assert capsys.readouterr().err == (
        "error: two TensorFlow distributions are installed; reinstall one\n")
