"""Real-data tests skip with a reason when ../shared/data is missing, but fail when CI is set."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("ci", "expected"), [(None, "1 skipped"), ("true", "1 error")])
def test_missing_real_data(tmp_path, ci, expected):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["SODINN_NACO_DIR"] = str(tmp_path / "nowhere")
    if ci:
        env["CI"] = ci
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "tests/adi/test_io.py::test_read_naco_files"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert expected in proc.stdout, proc.stdout
    assert proc.returncode == (1 if ci else 0)
    assert "real NACO data not found" in proc.stdout
