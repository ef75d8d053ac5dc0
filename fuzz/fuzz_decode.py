"""Differential fuzzing of the batch decoder with atheris.

Each input is decoded by a fresh Cython engine and a fresh Python twin. Only the documented
``BatchError`` types may come out; anything else (or a crash) is a finding, and so is any
disagreement between the two engines on the outcome, the decoded columns or the ids interned.
Accepted batches are also applied and drained, to reach the state code.

    python fuzz/fuzz_decode.py [libFuzzer options] [corpus dirs]    # make fuzz runs it long

The Cython module is not compiled with coverage instrumentation, so guidance comes from the
Python side (the twin and the glue); the seeds below start the search from valid batches.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris
import msgpack
import numpy as np

with atheris.instrument_imports():
    from core.errors import BatchError
    from core.rollup import NO_EXTENSIONS, RollupC, RollupPy
    from core.times import NS_PER_S, S_PER_HOUR

NOW = 1_795_348_800 * NS_PER_S
T = NOW // NS_PER_S - S_PER_HOUR
COLUMNS = ("reasons", "warnings_mask", "dev", "ts", "status", "battery", "rssi", "fw")


def outcome(engine: type, data: bytes) -> tuple[object, ...]:
    rollup = engine(device_cap=64)
    try:
        batch = rollup.decode(data, NOW, max_frames=5_000)
    except BatchError as exc:
        return (type(exc).__name__, exc.detail)
    rollup.apply(batch)
    days = rollup.drain()
    return (
        batch.gateway,
        batch.seq,
        batch.sent_at_ns,
        tuple(getattr(batch, name).tobytes() for name in COLUMNS),
        tuple(rollup.device_ids()),
        tuple(rollup.firmware_ids()),
        tuple(
            (d.day, d.dev.tobytes(), d.cov.tobytes(), d.fault.tobytes(), d.stats.tobytes())
            for d in days
        ),
    )


def test_one_input(data: bytes) -> None:
    c = outcome(RollupC, data)
    py = outcome(RollupPy, data)
    if c != py:
        raise AssertionError(f"engines disagree on {data!r}:\nC:  {c!r}\nPy: {py!r}")


def seeds(directory: str) -> None:
    rng = np.random.default_rng(1)
    bodies = [
        msgpack.packb({"gateway": "gw", "seq": 1, "frames": [["a", T, 0, 50, -60], ["b", T]]}),
        msgpack.packb(
            {
                "gateway": "gw",
                "frames": [
                    {"d": "a", "t": T * 1000, "s": 3, "fw": "1.0"},
                    {"device": 7, "ts": float(T) + 0.5},
                ],
            }
        ),
        msgpack.packb(
            {
                "v": 1,
                "gateway": "g",
                "sent_at": T,
                "frames": [
                    [f"d{i}", T + int(rng.integers(0, 3000)), int(i % 5 == 0)] for i in range(30)
                ],
            }
        ),
        msgpack.packb({"gateway": "g", "frames": [["x", msgpack.Timestamp(T, 5)]]}, datetime=False),
    ]
    for i, body in enumerate(bodies):
        with open(os.path.join(directory, f"seed-{i}"), "wb") as f:
            f.write(body)


def main() -> None:
    if NO_EXTENSIONS or RollupC is None:
        sys.exit("the Cython engine is not built: run `make build`")
    args = sys.argv[:]
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = tempfile.mkdtemp(prefix="uptally-fuzz-")
        seeds(corpus)
        args.append(corpus)
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
