"""The commands as a user runs them: flags, quiet output, exit codes."""

import json
import os
import subprocess
import sys

import pytest
from absl import flags as absl_flags

import flags as tfcharrnn_flags
from conftest import ROOT, run_command


def test_flags_parse_into_the_config():
    fv = absl_flags.FlagValues()
    tfcharrnn_flags.define_train_flags(fv)
    fv(["train", "--model=gru", "--hidden_size=32", "--batch_size=8", "--dropout=0.25",
        "--backend=keras", "--max_steps=7"])
    config = tfcharrnn_flags.run_config(fv)
    assert config.model.model == "gru" and config.model.hidden_size == 32
    assert config.model.dropout == 0.25 and config.data.batch_size == 8
    assert config.train.max_steps == 7
    assert config.train.checkpoint_dir == "checkpoints/gru"  # default follows --model
    assert config.data.data_path == "" and config.data.resolved_data_path.endswith(
        "tinyshakespeare.txt")

    fv = absl_flags.FlagValues()
    tfcharrnn_flags.define_sample_flags(fv)
    fv(["sample", "--prime=ROMEO:", "--sampling=top_k", "--top_k=3", "--seed=5"])
    sample = tfcharrnn_flags.sample_config(fv)
    assert (sample.prime, sample.sampling, sample.top_k, sample.seed) == ("ROMEO:", "top_k", 3, 5)


# The command tests below check the wiring (flags, output, quiet start-up) and start processes,
# so they run on one back-end; each back-end's restoring, sampling steps and scoring are tested
# in-process (test_train.py, test_keras_model.py, test_decoding.py, test_scoring.py).
@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # commands: one back-end
def test_sample_is_reproducible_and_starts_with_the_prime(trained_run):
    args = [f"--checkpoint_dir={trained_run.train.checkpoint_dir}", "--prime=First",
            "--length=40"]
    a = run_command("tfcharrnn.sample", *args, "--seed=3")
    b = run_command("tfcharrnn.sample", *args, "--seed=3")
    c = run_command("tfcharrnn.sample", *args, "--seed=4")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout != c.stdout
    assert a.stdout.startswith("First")
    assert len(a.stdout) == len("First") + 40 + 1  # the prime, 40 characters, a newline
    assert a.stderr == ""  # quiet: no TensorFlow start-up log


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # commands: one back-end
def test_sample_rejects_prime_characters_missing_from_the_vocabulary(trained_run):
    r = run_command("tfcharrnn.sample", f"--checkpoint_dir={trained_run.train.checkpoint_dir}",
                    "--prime=Hello ☃")
    assert r.returncode == 2
    assert "'☃'" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # commands: one back-end
def test_evaluate_prints_one_json_line(trained_run, corpus_path):
    r = run_command("tfcharrnn.evaluate", f"--checkpoint_dir={trained_run.train.checkpoint_dir}",
                    f"--data_path={corpus_path}", "--window=500")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(result) == {"loss_nats_per_token", "bits_per_token", "perplexity", "tokens"}
    assert result["tokens"] == len(corpus_path.read_text(encoding="utf-8")) - 1
    assert abs(result["bits_per_token"] * 0.6931471805599453
               - result["loss_nats_per_token"]) < 1e-9


def test_bad_flag_is_one_line_and_exit_2():
    r = run_command("tfcharrnn.train", "--model=transformer")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "transformer" in r.stderr
    r = run_command("tfcharrnn.train", "--batch_size=0")
    assert r.returncode == 2 and "--batch_size" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("setting, enabled", [(None, True), ("0", False)])
def test_commands_turn_on_onednn_unless_the_user_chose(setting, enabled):
    # TensorFlow itself enables oneDNN only on CPUs with AVX-512 VNNI/BF16 or AMX; the
    # commands ask for it everywhere, and a user's TF_ENABLE_ONEDNN_OPTS=0 still wins.
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    code = ("from tfcharrnn.cli import import_tensorflow; import_tensorflow(-1); "
            "from tensorflow.python.util import _pywrap_util_port as port; "
            "print(port.IsMklEnabled())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(enabled)
    assert r.stderr == ""  # the oneDNN notice is start-up log too


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # commands: one back-end
def test_a_relative_checkpoint_dir_works(trained_run):
    relative = os.path.relpath(trained_run.train.checkpoint_dir, ROOT)  # the commands run in ROOT
    assert not os.path.isabs(relative)
    for which in ("best", "latest"):
        r = run_command("tfcharrnn.sample", f"--checkpoint_dir={relative}",
                        f"--checkpoint={which}", "--length=5")
        assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("trained_run", ["keras"], indirect=True)  # commands: one back-end
def test_sample_into_a_closed_pipe_stops_without_a_traceback(trained_run):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "tfcharrnn.sample",
                             f"--checkpoint_dir={trained_run.train.checkpoint_dir}",
                             "--length=200000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT, env=env)
    assert proc.stdout.read(10)             # like `| head -c 10`: read a little, then leave
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err
