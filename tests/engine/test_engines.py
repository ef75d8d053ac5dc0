import pytest

from core import _rollup_py, rollup, times
from core.errors import REJECT_NUMBER, WARNING_BIT, check_engine_codes
from core.times import check_engine_units

UNITS = {
    name: getattr(times, name)
    for name in ("S_PER_DAY", "NS_PER_S", "NS_PER_MS", "MS_PER_DAY", "NS_PER_DAY", "MS_THRESHOLD")
}


def test_extension_loaded_unless_switched_off() -> None:
    if rollup.NO_EXTENSIONS:
        assert rollup.Rollup is rollup.RollupPy
        assert rollup.ENGINE == "py"
    else:
        assert rollup.RollupC is not None, "core._rollup did not build or import"
        assert rollup.Rollup is rollup.RollupC
        assert rollup.ENGINE == "c"


def test_both_engines_number_rejects_and_warnings_as_core_errors() -> None:
    modules = [_rollup_py]
    if not rollup.NO_EXTENSIONS:
        from core import _rollup

        modules.append(_rollup)
    for module in modules:
        assert module.REJECT_NUMBER == REJECT_NUMBER, module.__name__
        assert module.WARNING_BIT == WARNING_BIT, module.__name__
        check_engine_codes(module.__name__, module.REJECT_NUMBER, module.WARNING_BIT)


@pytest.mark.parametrize(
    "rejects, warnings",
    [
        ({**REJECT_NUMBER, "ts_future": 10, "ts_too_old": 9}, WARNING_BIT),  # two swapped
        ({k: v for k, v in REJECT_NUMBER.items() if k != "device_cap"}, WARNING_BIT),  # one gone
        ({**REJECT_NUMBER, "ts_leap": 13}, WARNING_BIT),  # one the tables do not have
        (REJECT_NUMBER, {**WARNING_BIT, "rssi": 16}),  # a warning on another bit
        ({}, {}),  # an extension built before it exposed its codes
    ],
    ids=["swapped", "missing", "extra", "warning_bit", "none"],
)
def test_an_engine_with_other_codes_is_refused(
    rejects: dict[str, int], warnings: dict[str, int]
) -> None:
    with pytest.raises(ImportError, match="codes differ from core.errors"):
        check_engine_codes("tampered", rejects, warnings)


@pytest.mark.both_engines  # the first pass of make test, which has the extension, runs it
def test_the_c_engine_counts_time_in_the_units_of_core_times() -> None:
    if rollup.NO_EXTENSIONS:
        pytest.fail("the C engine's units are checked in a run with the extension built")
    from core import _rollup

    check_engine_units("core._rollup", _rollup.TIME_UNITS)


@pytest.mark.parametrize(
    "units",
    [
        {**UNITS, "NS_PER_MS": 1_000},  # a wrong value
        {k: v for k, v in UNITS.items() if k != "MS_THRESHOLD"},  # one the engine needs, gone
        {**UNITS, "NS_PER_WEEK": 7},  # one core.times does not have
        {},  # an extension built before it exposed its units
    ],
    ids=["wrong", "missing", "unknown", "none"],
)
def test_an_engine_with_other_time_units_is_refused(units: dict[str, int]) -> None:
    with pytest.raises(ImportError, match="time units differ from core.times"):
        check_engine_units("tampered", units)
