import subprocess
import sys

import hf_recsys


def test_version_is_reported():
    assert hf_recsys.__version__.count(".") >= 2


def test_import_is_fast_and_does_not_pull_evaluate():
    """`import evaluate` costs seconds: keep it off the package's import path (CLI start-up)."""
    code = "import sys, hf_recsys; print('evaluate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
