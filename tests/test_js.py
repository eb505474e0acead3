"""The page's JavaScript that needs no browser (the SSE reader, the colour scale), run with
Node's test runner: node --test tests/js."""

import os
import shutil
import subprocess

import pytest

from conftest import ROOT


def test_javascript_units_pass_under_node():
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is not installed; CI must run the JavaScript tests (install "
                        "Node.js 20 or newer)")
        pytest.skip("node is not installed (Node.js 20 or newer runs tests/js)")
    out = subprocess.run([node, "--test", os.path.join("tests", "js")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "# fail 0" in out.stdout and "# pass 0" not in out.stdout
