"""Every core test runs over both engines: ``engine`` is the rollup class under test.

With ``UPTALLY_NO_EXTENSIONS=1`` only the Python twin exists, so only it is parametrised;
otherwise the Cython engine must have loaded (tests/engine/test_engines.py fails if it did not).

A test that takes ``engine`` is marked ``both_engines``: the first pass of ``make test`` has
already run it on the Python twin, so the second pass (``UPTALLY_NO_EXTENSIONS=1``, which
reruns the servers, CLI and dashboard on the twin) leaves it out with ``-m "not both_engines"``.
"""

from __future__ import annotations

import pytest

from core.rollup import NO_EXTENSIONS, RollupC, RollupPy

ENGINES = [RollupPy] if NO_EXTENSIONS else [RollupPy, RollupC]

# The differential tests compare the two engines (and the engine floor is checked against
# the Cython one); a run without the extension has only the Python twin.
collect_ignore = (
    [
        "engine/test_differential.py",
        "engine/test_fuzz.py",
        "system/test_bench_ab.py",
        "system/test_floor_engine.py",
        "sla/test_engines_agree.py",
    ]
    if NO_EXTENSIONS
    else []
)
ENGINE_IDS = ["py"] if NO_EXTENSIONS else ["py", "c"]


@pytest.fixture(params=ENGINES, ids=ENGINE_IDS)
def engine(request: pytest.FixtureRequest) -> type[RollupPy]:
    if request.param is None:
        pytest.fail("the Cython engine core._rollup did not load; run `make build`")
    return request.param


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.both_engines)
