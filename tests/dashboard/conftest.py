"""What every dashboard test needs."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def keep_main_module(monkeypatch):
    """Streamlit installs each script it runs as ``sys.modules["__main__"]`` and leaves it
    there; a later test's spawned process would then run the dashboard as its main module."""
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
