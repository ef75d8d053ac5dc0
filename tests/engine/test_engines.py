import pytest

from core import _rollup_py, rollup
from core.errors import REJECT_NUMBER, WARNING_BIT, check_engine_codes


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
