"""``python -m bench [NAME] [options]``: run one registered benchmark, or all of them.

A benchmark is a module registered in :data:`BENCHES` or :data:`ON_DEMAND` that provides
``DESCRIPTION``, ``add_arguments(parser)`` for its own options and ``main(args) -> dict``,
which runs it, prints its report and returns a JSON-able result document. Every benchmark
also gets the common options ``--quick`` (a small, fast run) and ``--json PATH`` (where to
write the result; default ``bench/results/NAME.json``, or ``NAME-quick.json`` for a quick run).

Without a name every benchmark of :data:`BENCHES` runs with its defaults (``--quick`` is
passed on); each writes its own default file, or, with ``--json PATH``, all results go to PATH
as one object keyed by benchmark name. The benchmarks of :data:`ON_DEMAND` have the same
interface but run only by name (also as ``python -m bench.NAME``).
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, write_json

#: Registered benchmarks, name -> module, in the order ``python -m bench`` runs them.
BENCHES: dict[str, str] = {
    "decode": "bench.decode",
    "query": "bench.query",
    "sla": "bench.sla",
    "close": "bench.close",
    "e2e": "bench.e2e",
    "watch": "bench.watch",
}
#: Benchmarks run only when named, not by ``python -m bench`` alone (``make bench``).
ON_DEMAND: dict[str, str] = {
    "floor_engine": "bench.floor_engine",
}


def default_json(name: str, quick: bool) -> Path:
    return RESULTS_DIR / f"{name}{'-quick' if quick else ''}.json"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Uptally benchmarks (all of them without a name)."
    )
    _common(parser)
    sub = parser.add_subparsers(dest="bench", metavar="NAME")
    for name, module_name in (BENCHES | ON_DEMAND).items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.DESCRIPTION, description=module.DESCRIPTION)
        _common(p)
        module.add_arguments(p)
    return parser


def run_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    module = importlib.import_module((BENCHES | ON_DEMAND)[name])
    t0 = time.perf_counter()
    doc: dict[str, Any] = module.main(args)
    doc["wall_s"] = round(time.perf_counter() - t0, 1)
    print(f"\n{name}: {doc['wall_s']} s")
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.bench:
        doc = run_one(args.bench, args)
        path = args.json or default_json(args.bench, args.quick)
        write_json(path, doc)
        print(f"results: {path}")
        return 0 if doc.get("check", {}).get("agree", True) else 1
    docs: dict[str, Any] = {}
    for name in BENCHES:
        sub_args = parser.parse_args([name] + (["--quick"] if args.quick else []))
        docs[name] = run_one(name, sub_args)
        if args.json is None:
            path = default_json(name, args.quick)
            write_json(path, docs[name])
            print(f"results: {path}")
    if args.json is not None:
        write_json(args.json, docs)
        print(f"results: {args.json}")
    return 0 if all(d.get("check", {}).get("agree", True) for d in docs.values()) else 1
