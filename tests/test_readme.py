"""The README stays true: its flag tables are the generated ones (every flag, real defaults),
and the test command CI runs is the one it shows."""

import os
import re

from conftest import ROOT
from flags import readme_table

README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


def test_flag_tables_match_the_flag_definitions():
    match = re.search(r"<!-- flags:start[^\n]*-->\n(.*)<!-- flags:end -->", README, re.S)
    assert match, "README has no flags:start/flags:end section"
    assert match.group(1) == readme_table.table(), \
        "README flag tables are stale: regenerate with python -m flags.readme_table"


def test_ci_runs_the_readme_test_command():
    block = re.search(r"<!-- test-command -->\n```bash\n(.*?)\n```", README, re.S)
    assert block and "pytest" in block.group(1) and "pip install" in block.group(1)
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    assert "<!-- test-command -->" in ci  # .ci/run extracts the command from that marker
