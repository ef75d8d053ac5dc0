"""A short run of the differential decoder fuzzer (``make fuzz`` runs it for ten minutes)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from server.testing import REPO

pytestmark = pytest.mark.slow


def test_fuzzer_finds_nothing_in_a_short_run(tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "fuzz/fuzz_decode.py",
            "-runs=15000",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Done 15000 runs" in result.stderr
