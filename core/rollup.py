"""The rollup engine: the Cython extension when it is built, else its pure-Python twin.

``UPTALLY_NO_EXTENSIONS=1`` (forced outside CPython) selects the Python twin. Both stay
importable by name for tests and benchmarks: ``RollupPy`` always, ``RollupC`` when built.
"""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

from core import _rollup_py
from core._rollup_py import RollupPy
from core.errors import check_engine_codes
from core.times import check_engine_units

NO_EXTENSIONS = bool(os.environ.get("UPTALLY_NO_EXTENSIONS")) or (
    platform.python_implementation() != "CPython"
)

# both engines number rejects and warnings as core.errors does, and the Cython one counts
# time in the units of core.times, or the engine is not used
check_engine_codes("core._rollup_py", _rollup_py.REJECT_NUMBER, _rollup_py.WARNING_BIT)

RollupC: type[RollupPy] | None
if TYPE_CHECKING or NO_EXTENSIONS:
    RollupC = None
    Rollup = RollupPy
else:
    try:
        from core import _rollup

        check_engine_codes(
            "core._rollup",
            getattr(_rollup, "REJECT_NUMBER", {}),  # none in an extension built before them
            getattr(_rollup, "WARNING_BIT", {}),
        )
        check_engine_units("core._rollup", getattr(_rollup, "TIME_UNITS", {}))
        RollupC = _rollup.RollupC  # type: ignore[assignment]
    except ImportError:  # not built, or built from other tables: the twin does the work
        RollupC = None
        Rollup = RollupPy
    else:
        Rollup = RollupC  # type: ignore[misc]

ENGINE = "py" if Rollup is RollupPy else "c"

__all__ = ["ENGINE", "NO_EXTENSIONS", "Rollup", "RollupC", "RollupPy"]
