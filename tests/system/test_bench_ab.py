"""The engine A/B tool: builds another revision's extension and times both in one process."""

from __future__ import annotations

import pytest

from bench.ab import build_base, load, run
from core.rollup import RollupC

pytestmark = pytest.mark.slow


def test_builds_head_and_times_both_builds(tmp_path) -> None:
    base = load(build_base("HEAD", tmp_path), "uptally_ab_test")
    assert base is not RollupC  # its own copy of the extension, not this tree's
    doc = run({"base": base, "tree": RollupC}, devices=2_000, form="map", repeats=2)
    assert doc["devices"] == 2_000
    for name in ("base", "tree"):
        parts = doc[name]
        for part in ("decode", "apply", "both"):
            assert 0 < parts[part]["min_ns"] <= parts[part]["median_ns"]
        assert parts["both"]["median_ns"] >= parts["decode"]["min_ns"] + parts["apply"]["min_ns"]


def test_an_unknown_revision_is_an_error(tmp_path) -> None:
    with pytest.raises(Exception, match="exit status"):
        build_base("no-such-revision", tmp_path)
