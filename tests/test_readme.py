"""The README stays true: every flag is in its table with the real default, and the test
command CI runs is the one it shows."""

import os
import re
import subprocess

import pytest
from absl import flags as absl_flags

import flags as tfcharrnn_flags
from conftest import ROOT

README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


@pytest.mark.parametrize("define", [tfcharrnn_flags.define_train_flags,
                                    tfcharrnn_flags.define_sample_flags,
                                    tfcharrnn_flags.define_eval_flags])
def test_every_flag_is_in_the_readme_with_its_default(define):
    fv = absl_flags.FlagValues()
    define(fv)
    for name in fv:
        default = fv[name].default
        shown = '""' if default == "" else str(default)
        row = re.compile(r"^\| `--%s` \| `%s` \|" % (re.escape(name), re.escape(shown)), re.M)
        assert row.search(README), f"README has no row for --{name} with default {shown}"


def test_ci_runs_the_readme_test_command():
    out = subprocess.run(["awk", r"/<!-- test-command -->/{found=1; next} found && /^```/"
                          r"{if (inblock) exit; inblock=1; next} found && inblock {print}",
                          "README.md"], cwd=ROOT, capture_output=True, text=True, check=True)
    command = out.stdout.strip()
    assert "pytest" in command and "pip install" in command
    assert command in README
    assert 'awk' in open(os.path.join(ROOT, ".ci", "run")).read()
