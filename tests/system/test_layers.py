"""Layers point one way: ``core`` (the simulated fleet of demo, bench and tests among it)
imports nothing of ``server``, ``dashboard``, ``bench`` or the ``uptally`` command."""

from __future__ import annotations

import subprocess
import sys

from server.testing import REPO

SCRIPT = """
import importlib, pkgutil, sys
import core
for module in pkgutil.walk_packages(core.__path__, "core."):
    importlib.import_module(module.name)
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_core_imports_nothing_above_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded = set(done.stdout.split())
    assert "core" in loaded and "numpy" in loaded
    assert not loaded & {"server", "dashboard", "bench", "uptally", "aiohttp", "streamlit"}
