"""Errors and reasons shared by both rollup engines.

Whole-batch problems raise a :class:`BatchError` subclass carrying an HTTP status, a machine
code and a human message. Per-frame problems are not exceptions: they are counted in the
decoded batch as rejects (frame not stored) or warnings (a field dropped, frame kept), each
with a reason code from the tables below. Codes are small integers so that the Cython engine
can record them without creating Python objects; the texts are what users read.
"""

from __future__ import annotations


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


# Per-frame rejects: the frame is not stored. Index 0 means "accepted".
REJECT_REASONS: tuple[str, ...] = (
    "",
    "frame is neither an array nor a map",
    "device missing",
    "device must be a UTF-8 string or a non-negative integer",
    "device id is empty",
    "device id is longer than 128 bytes",
    "ts missing",
    "ts must be an int, a float or a msgpack Timestamp",
    "ts is negative, NaN or infinite",
    "ts too far in the future",
    "ts older than the backfill window",
    "ts falls in a month whose invoices are issued",
    "device cap reached",
)
REJECT_CODES: tuple[str, ...] = (
    "",
    "not_a_frame",
    "device_missing",
    "device_type",
    "device_empty",
    "device_too_long",
    "ts_missing",
    "ts_type",
    "ts_invalid",
    "ts_future",
    "ts_too_old",
    "ts_closed_month",
    "device_cap",
)

# Per-frame warnings: one optional field dropped, the frame kept. Bit i of a frame's warning
# mask stands for WARNING_REASONS[i]; they are listed in this order.
WARNING_REASONS: tuple[str, ...] = (
    "status dropped: not an int 0..255",
    "battery dropped: not a number 0..100",
    "rssi dropped: not a number -200..0",
    "firmware dropped: not a UTF-8 string of 1..32 bytes",
)
WARNING_CODES: tuple[str, ...] = ("status", "battery", "rssi", "firmware")

MAX_ERRORS = 20
