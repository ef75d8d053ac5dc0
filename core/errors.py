"""Errors and reasons shared by both rollup engines.

Whole-batch problems raise a :class:`BatchError` subclass carrying an HTTP status, a machine
code and a human message. Per-frame problems are not exceptions: they are counted in the
decoded batch as rejects (frame not stored) or warnings (a field dropped, frame kept), each
with a reason code from the tables below, the one source of those codes. Codes are small
integers so that the Cython engine can record them without creating Python objects; the texts
are what users read.
"""

from __future__ import annotations

from collections.abc import Mapping


class BatchError(Exception):
    """A batch refused whole: nothing of it is stored."""

    status = 400
    code = "malformed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def as_dict(self) -> dict[str, str]:
        return {"error": self.code, "detail": self.detail}


class MalformedBatch(BatchError):
    """Not msgpack, not a map, a missing or mistyped required key, trailing bytes."""

    code = "malformed"


class UnsupportedVersion(BatchError):
    """The batch's ``v`` is anything but 1."""

    code = "unsupported_version"


class TooManyFrames(BatchError):
    """The ``frames`` array holds more than ``max_frames`` frames."""

    status = 413
    code = "too_many_frames"


# Per-frame rejects: the frame is not stored. Machine code (metrics) -> text (the answer), in
# the order of their numbers from 1; 0 means "accepted". Both engines number them from here
# (the Cython one in C enums, checked against this table at import: check_engine_codes).
REJECTS: dict[str, str] = {
    "not_a_frame": "frame is neither an array nor a map",
    "device_missing": "device missing",
    "device_type": "device must be a UTF-8 string or a non-negative integer",
    "device_empty": "device id is empty",
    "device_too_long": "device id is longer than 128 bytes",
    "ts_missing": "ts missing",
    "ts_type": "ts must be an int, a float or a msgpack Timestamp",
    "ts_invalid": "ts is negative, NaN or infinite",
    "ts_future": "ts too far in the future",
    "ts_too_old": "ts older than the backfill window",
    "ts_closed_month": "ts falls in a month whose invoices are issued",
    "device_cap": "device cap reached",
}
#: reject number by machine code
REJECT_NUMBER: dict[str, int] = {code: i for i, code in enumerate(REJECTS, 1)}
#: machine code and text by reject number (index 0: accepted)
REJECT_CODES: tuple[str, ...] = ("", *REJECTS)
REJECT_REASONS: tuple[str, ...] = ("", *REJECTS.values())

# Per-frame warnings: one optional field dropped, the frame kept. Machine code -> text; bit i
# of a frame's warning mask stands for the i-th of them.
WARNINGS: dict[str, str] = {
    "status": "status dropped: not an int 0..255",
    "battery": "battery dropped: not a number 0..100",
    "rssi": "rssi dropped: not a number -200..0",
    "firmware": "firmware dropped: not a UTF-8 string of 1..32 bytes",
}
#: warning mask bit by machine code
WARNING_BIT: dict[str, int] = {code: 1 << i for i, code in enumerate(WARNINGS)}
WARNING_CODES: tuple[str, ...] = tuple(WARNINGS)
WARNING_REASONS: tuple[str, ...] = tuple(WARNINGS.values())


def check_engine_codes(
    engine: str, reject_number: Mapping[str, int], warning_bit: Mapping[str, int]
) -> None:
    """Raise ImportError unless an engine numbers rejects and warnings as these tables do.

    ``core.rollup`` calls it with what each engine exposes (``REJECT_NUMBER``,
    ``WARNING_BIT``); an extension built from other tables is then not used.
    """
    if dict(reject_number) != REJECT_NUMBER or dict(warning_bit) != WARNING_BIT:
        raise ImportError(f"{engine}: reject or warning codes differ from core.errors")


MAX_ERRORS = 20
