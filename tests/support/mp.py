"""A tiny msgpack writer for tests that need a specific encoding width.

``msgpack.packb`` always picks the shortest form; gateways in the field do not, so the tests
build bodies with every width the format allows.
"""

from __future__ import annotations

import struct

INT_FORMS = {
    "fixint": None,
    "uint8": (0xCC, ">B"),
    "uint16": (0xCD, ">H"),
    "uint32": (0xCE, ">I"),
    "uint64": (0xCF, ">Q"),
    "int8": (0xD0, ">b"),
    "int16": (0xD1, ">h"),
    "int32": (0xD2, ">i"),
    "int64": (0xD3, ">q"),
}


def int_(value: int, form: str = "int64") -> bytes:
    if form == "fixint":
        assert -32 <= value <= 127
        return struct.pack(">b", value) if value < 0 else bytes([value])
    head, fmt = INT_FORMS[form]  # type: ignore[misc]
    return bytes([head]) + struct.pack(fmt, value)


def float32(value: float) -> bytes:
    return b"\xca" + struct.pack(">f", value)


def float64(value: float) -> bytes:
    return b"\xcb" + struct.pack(">d", value)


def str_(value: str | bytes, form: str = "auto") -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    n = len(raw)
    if form == "auto":
        form = "fix" if n < 32 else "str8" if n < 256 else "str16"
    if form == "fix":
        return bytes([0xA0 | n]) + raw
    if form == "str8":
        return b"\xd9" + struct.pack(">B", n) + raw
    if form == "str16":
        return b"\xda" + struct.pack(">H", n) + raw
    return b"\xdb" + struct.pack(">I", n) + raw


def bin_(raw: bytes) -> bytes:
    return b"\xc4" + struct.pack(">B", len(raw)) + raw


def array(items: list[bytes], form: str = "fix") -> bytes:
    n = len(items)
    head = {
        "fix": lambda: bytes([0x90 | n]),
        "16": lambda: b"\xdc" + struct.pack(">H", n),
        "32": lambda: b"\xdd" + struct.pack(">I", n),
    }[form]()
    return head + b"".join(items)


def map_(pairs: list[tuple[bytes, bytes]], form: str = "fix") -> bytes:
    n = len(pairs)
    head = {
        "fix": lambda: bytes([0x80 | n]),
        "16": lambda: b"\xde" + struct.pack(">H", n),
        "32": lambda: b"\xdf" + struct.pack(">I", n),
    }[form]()
    return head + b"".join(k + v for k, v in pairs)


def timestamp(sec: int, nsec: int = 0, size: int = 12) -> bytes:
    if size == 4:
        return b"\xd6\xff" + struct.pack(">I", sec)
    if size == 8:
        return b"\xd7\xff" + struct.pack(">Q", (nsec << 34) | sec)
    return b"\xc7\x0c\xff" + struct.pack(">Iq", nsec, sec)


NIL = b"\xc0"
TRUE = b"\xc3"


def batch(
    frames: list[bytes], gateway: str = "gw-1", extra: list[tuple[bytes, bytes]] = ()
) -> bytes:  # type: ignore[assignment]
    return map_([(str_("gateway"), str_(gateway)), (str_("frames"), array(frames, "32")), *extra])
