"""The packages' layering (docs/architecture.md): each imports only what lies below it.

``core`` (the domain and the engine) imports none of the others; ``server`` and ``dashboard``
stand on ``core`` and not on each other; ``uptally`` (the command) composes them all and
nothing imports it back, but ``bench``. The walk reads every import statement, those inside
functions and ``TYPE_CHECKING`` blocks included, and Cython's ``cimport``s; a second test
imports every module of ``core`` and checks what got loaded, third-party packages included.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from server.testing import REPO

MAY_IMPORT = {
    "core": {"core"},
    "server": {"core", "server"},
    "dashboard": {"core", "dashboard"},
    "uptally": {"core", "server", "dashboard", "uptally"},
}
OURS = {"core", "server", "dashboard", "uptally", "bench", "tests"}
CIMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+c?import|c?import\s+([\w.]+))", re.M)


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in a Python or Cython source file."""
    text = path.read_text()
    if path.suffix in (".pyx", ".pxd", ".pxi"):
        return [
            (text.count("\n", 0, m.start()) + 1, (m.group(1) or m.group(2)).split(".")[0])
            for m in CIMPORT.finditer(text)
        ]
    found = []
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def violations(package: str, root: Path = REPO) -> list[str]:
    allowed = MAY_IMPORT[package]
    out = []
    for path in sorted((root / package).rglob("*")):
        if path.suffix not in (".py", ".pyx", ".pxd", ".pxi"):
            continue
        for line, top in imported(path):
            if top in OURS and top not in allowed:
                out.append(f"{path.relative_to(root)}:{line} imports {top}")
    return out


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_each_package_imports_only_what_lies_below_it(package: str) -> None:
    assert violations(package) == []


def test_the_walk_finds_a_forbidden_import_wherever_it_hides(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "late.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from server.config import Config\n"
        "def f():\n"
        "    import dashboard.data\n"
    )
    (tmp_path / "core" / "fast.pyx").write_text("from core.batch cimport x\nimport uptally\n")
    assert violations("core", tmp_path) == [
        "core/fast.pyx:2 imports uptally",
        "core/late.py:3 imports server",
        "core/late.py:5 imports dashboard",
    ]


SCRIPT = """
import importlib, pkgutil, sys
import core
for module in pkgutil.walk_packages(core.__path__, "core."):
    importlib.import_module(module.name)
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_core_loads_nothing_above_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded = set(done.stdout.split())
    assert "core" in loaded and "numpy" in loaded
    assert not loaded & {"server", "dashboard", "bench", "uptally", "aiohttp", "streamlit"}
