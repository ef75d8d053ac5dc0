from core import rollup


def test_extension_loaded_unless_switched_off() -> None:
    if rollup.NO_EXTENSIONS:
        assert rollup.Rollup is rollup.RollupPy
        assert rollup.ENGINE == "py"
    else:
        assert rollup.RollupC is not None, "core._rollup did not build or import"
        assert rollup.Rollup is rollup.RollupC
        assert rollup.ENGINE == "c"
