"""Every core test runs over both engines: ``engine`` is the rollup class under test.

With ``UPTALLY_NO_EXTENSIONS=1`` only the Python twin exists, so only it is parametrised;
otherwise the Cython engine must have loaded (tests/test_engines.py fails if it did not).
"""

from __future__ import annotations

import pytest

from core.rollup import NO_EXTENSIONS, RollupC, RollupPy

ENGINES = [RollupPy] if NO_EXTENSIONS else [RollupPy, RollupC]

# The differential tests compare the two engines (and the engine floor is checked against
# the Cython one); a run without the extension has only the Python twin.
collect_ignore = (
    ["test_differential.py", "test_fuzz.py", "test_bench_ab.py", "test_floor_engine.py"]
    if NO_EXTENSIONS
    else []
)
ENGINE_IDS = ["py"] if NO_EXTENSIONS else ["py", "c"]


@pytest.fixture(params=ENGINES, ids=ENGINE_IDS)
def engine(request: pytest.FixtureRequest) -> type[RollupPy]:
    if request.param is None:
        pytest.fail("the Cython engine core._rollup did not load; run `make build`")
    return request.param
