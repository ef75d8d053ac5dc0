"""The rollup engine: the Cython extension when it is built, else its pure-Python twin.

``UPTALLY_NO_EXTENSIONS=1`` (forced outside CPython) selects the Python twin. Both stay
importable by name for tests and benchmarks: ``RollupPy`` always, ``RollupC`` when built.
"""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

from core._rollup_py import RollupPy

NO_EXTENSIONS = bool(os.environ.get("UPTALLY_NO_EXTENSIONS")) or (
    platform.python_implementation() != "CPython"
)

RollupC: type[RollupPy] | None
if TYPE_CHECKING or NO_EXTENSIONS:
    RollupC = None
    Rollup = RollupPy
else:
    try:
        from core._rollup import RollupC  # type: ignore[no-redef]
    except ImportError:  # not built: the twin does the work, slower
        RollupC = None
        Rollup = RollupPy
    else:
        Rollup = RollupC  # type: ignore[misc]

ENGINE = "py" if Rollup is RollupPy else "c"

__all__ = ["ENGINE", "NO_EXTENSIONS", "Rollup", "RollupC", "RollupPy"]
