"""docs/operations.md, "Service tiers", says what the code does: its TOML loads, the written-out
standard tier and the table of shipped tiers are the shipped values, and the worked credit
example is what ``credit_percent`` and ``met`` answer."""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal as D
from pathlib import Path

from core.tiers import DEFAULT_TIERS, DevicePrice, parse_catalog

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
SECTION = DOCS.read_text().split("## Service tiers")[1].split("\n## ")[0]


def toml_blocks() -> list[str]:
    return [part.split("```")[0] for part in SECTION.split("```toml")[1:]]


def table_rows(after: str) -> list[list[str]]:
    """The cells of the markdown table that follows the line ``after``."""
    text = SECTION.split(after, 1)[1].lstrip("\n")
    lines = [line for line in text.split("\n\n")[0].splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_every_documented_tier_table_loads() -> None:
    blocks = toml_blocks()
    assert len(blocks) == 3
    catalogs = [parse_catalog(tomllib.loads(block)) for block in blocks]
    assert catalogs[0].tiers["gold"].device_price == DevicePrice(
        "graduated", ((100, 300), (1000, 250), (None, 200))
    )
    assert catalogs[2].upstream == D("99.95")


def test_the_written_out_standard_tier_is_the_shipped_one() -> None:
    doc = tomllib.loads(toml_blocks()[1])
    assert parse_catalog(doc).tiers["standard"] == DEFAULT_TIERS["standard"]
    assert set(doc["tiers"]["standard"]) == set(
        type(DEFAULT_TIERS["standard"]).__dataclass_fields__
    )


def test_the_table_of_shipped_tiers_is_the_shipped_values() -> None:
    rows = {row[0].strip("`"): row[1:] for row in table_rows("### Shipped tiers")}
    names = ["basic", "standard", "premium"]
    for key in ("rate_fps", "device_cap", "heartbeat_s", "base_fee", "included_frames"):
        for name, cell in zip(names, rows[key], strict=True):
            assert int(cell.split()[0]) == getattr(DEFAULT_TIERS[name], key), (key, name)
    for key in ("uptime_target", "annual_discount", "support_hours", "currency"):
        for name, cell in zip(names, rows[key], strict=True):
            value = getattr(DEFAULT_TIERS[name], key)
            text = value.text if key == "support_hours" else str(value)
            assert cell.strip("`").strip('"') == text, (key, name)
    for name, cell in zip(names, rows["credit_bands"], strict=True):
        bands = tuple((D(b), D(c)) for b, c in re.findall(r"([\d.]+) → (\d+)", cell))
        assert bands == DEFAULT_TIERS[name].credit_bands, name


def test_the_worked_credit_example_is_what_the_tier_answers() -> None:
    standard = DEFAULT_TIERS["standard"]
    rows = table_rows("95.0 → 50):")
    assert len(rows) == 8
    for attainment, met, credit, _ in rows:
        value = None if attainment == "no counted slot" else D(attainment.split()[0])
        assert standard.met(value) == (met == "yes"), attainment
        assert standard.credit_percent(value) == D(credit), attainment
