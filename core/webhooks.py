"""Webhooks: the rules of signing, filtering and retrying, and the outbox's records (no I/O).

The contract is ``docs/service.md`` ("Webhooks"); ``docs/webhooks.md`` explains it to an
operator and to a receiver's developer:

* Each event is POSTed as JSON with ``X-Uptally-Timestamp: <unix seconds>``,
  ``X-Uptally-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` (the endpoint's
  secret is the key) and ``X-Uptally-Delivery: <id>``, the same on every retry of one event to
  one endpoint (receivers dedupe by it: delivery is at least once).
* Any 2xx is delivered; anything else, or no answer in :data:`TIMEOUT_S`, is retried after
  :func:`next_delay_s` (1 min, doubling), :data:`MAX_ATTEMPTS` attempts at most.

The records (:class:`Endpoint`, :class:`Event`, :class:`Delivery`, :class:`Attempt`) are
kept by ``core/store/outbox.py``; the server's ``Deliverer`` (``server/webhooks.py``) sends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

#: attempts of one delivery at most (the first one included)
MAX_ATTEMPTS = 8
#: seconds an endpoint has to answer an attempt
TIMEOUT_S = 10
#: the wait after the first failed attempt; each later one doubles it
BACKOFF_S = 60
#: how far a receiver lets a timestamp lie from its clock (``verify``), seconds
TOLERANCE_S = 300

SIGNATURE_SCHEME = "sha256="
#: secrets are ``whsec_`` and 43 URL-safe characters (``secrets.token_urlsafe(32)``)
SECRET_PREFIX = "whsec_"
EVENT_PREFIX = "evt_"
DELIVERY_PREFIX = "dlv_"
#: the event ``POST .../webhooks/{id}/test`` sends, to that endpoint only
TEST_EVENT = "webhook.test"

STATES = ("pending", "delivered", "failed")

#: an event type: dotted lower-case words (``incident.opened``, ``webhook.test``)
_TYPE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
MAX_TYPE = 64
MAX_PATTERNS = 32
MAX_URL = 2048
MAX_DESCRIPTION = 200


# --- signing -------------------------------------------------------------------------------


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``b"<timestamp>." + body`` keyed by the secret."""
    message = f"{timestamp}.".encode() + body
    return SIGNATURE_SCHEME + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    now_s: float,
    tolerance_s: float = TOLERANCE_S,
) -> bool:
    """Whether a request carries this secret's signature of its body and a timestamp within
    ``tolerance_s`` of ``now_s`` (either way: a replayed old request is refused). The
    signatures are compared in constant time."""
    if not timestamp_header or not signature_header:
        return False
    if not timestamp_header.isascii() or not timestamp_header.isdigit():
        return False
    if abs(now_s - int(timestamp_header)) > tolerance_s:
        return False
    expected = sign(secret, timestamp_header, body).encode()
    return hmac.compare_digest(expected, signature_header.encode("utf-8", "replace"))


# --- filters and retries -------------------------------------------------------------------


def check_type(event_type: object) -> str:
    """An event type (dotted lower-case words), or a ValueError."""
    if not isinstance(event_type, str) or len(event_type) > MAX_TYPE:
        raise ValueError(f"an event type is a string of at most {MAX_TYPE} characters")
    if not _TYPE.fullmatch(event_type):
        raise ValueError(f"event type {event_type!r} is not dotted lower-case words")
    return event_type


def check_patterns(patterns: object) -> list[str]:
    """An endpoint's event filter: a non-empty list of ``"*"`` (every event), ``"<prefix>.*"``
    (every type starting with ``<prefix>.``) or exact types; a ValueError otherwise."""
    if not isinstance(patterns, list) or not patterns or len(patterns) > MAX_PATTERNS:
        raise ValueError(f"events must be a list of 1 to {MAX_PATTERNS} patterns")
    out: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ValueError("each event pattern must be a string")
        if pattern != "*":
            stem = pattern[:-2] if pattern.endswith(".*") else pattern
            try:
                check_type(stem)
            except ValueError:
                raise ValueError(
                    f'event pattern {pattern!r} must be "*", "<type>.*" or an event type'
                ) from None
        if pattern not in out:
            out.append(pattern)
    return out


def matches(patterns: list[str], event_type: str) -> bool:
    """Whether an endpoint with this filter receives events of ``event_type``."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def next_delay_s(attempts_made: int, base_s: float = BACKOFF_S) -> float:
    """The wait before the next attempt, after ``attempts_made`` (1 or more) have failed:
    ``base_s``, then twice that, four times, ... (1 min, 2, 4, ... by default)."""
    if attempts_made < 1:
        raise ValueError("no attempt has been made yet")
    return float(base_s * 2 ** (attempts_made - 1))


def check_url(url: object) -> str:
    """An endpoint's URL: http or https, with a host; a ValueError otherwise."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise ValueError(f"url must be a string of at most {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 0x21 for c in url):
        raise ValueError("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"url: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("url must be http:// or https://")
    if not parts.hostname:
        raise ValueError("url must name a host")
    return url


def check_description(description: object) -> str:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise ValueError(f"description must be a string of at most {MAX_DESCRIPTION} characters")
    return description


# --- bodies --------------------------------------------------------------------------------


def iso_ns(ns: int) -> str:
    """An instant as ISO 8601 UTC, exact to the microsecond (integer arithmetic, no float)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def event_body(event_id: int, event_type: str, created_ns: int, tenant: str, data: Any) -> bytes:
    """The JSON an event is POSTed as, byte for byte on every attempt: compact, keys sorted,
    ASCII. A ValueError (or TypeError) if ``data`` is not a JSON object."""
    if not isinstance(data, dict):
        raise ValueError("an event's data must be a JSON object")
    body = {
        "id": event_name(event_id),
        "type": check_type(event_type),
        "created_at": iso_ns(created_ns),
        "tenant": tenant,
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


def event_name(event_id: int) -> str:
    return f"{EVENT_PREFIX}{event_id}"


def delivery_name(delivery_id: int) -> str:
    """The ``X-Uptally-Delivery`` of a delivery."""
    return f"{DELIVERY_PREFIX}{delivery_id}"


def parse_name(name: str, prefix: str) -> int:
    """The number of ``evt_12``/``dlv_12`` (or of a bare ``12``); a ValueError otherwise."""
    digits = name[len(prefix) :] if name.startswith(prefix) else name
    if not digits.isascii() or not digits.isdigit() or len(digits) > 19:
        raise ValueError(f"not an id: {name!r}")
    return int(digits)


# --- records -------------------------------------------------------------------------------


@dataclass
class Endpoint:
    """A receiver of a tenant's events. The secret is stored (it signs every attempt) and
    shown once, when the endpoint is made; :meth:`to_json` leaves it out."""

    id: int
    tenant_id: int
    url: str
    secret: str
    events: list[str]
    description: str = ""
    created_ns: int = 0
    created_by: str = ""
    disabled: bool = False

    def to_record(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "secret": self.secret,
            "events": list(self.events),
            "description": self.description,
            "created_ns": self.created_ns,
            "created_by": self.created_by,
            "disabled": self.disabled,
        }

    @classmethod
    def from_record(cls, endpoint_id: int, tenant_id: int, record: dict[str, Any]) -> Endpoint:
        return cls(endpoint_id, tenant_id, **record)

    def to_json(self) -> dict[str, Any]:
        """The API's answer: no secret."""
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "created_at": iso_ns(self.created_ns),
            "created_by": self.created_by,
            "disabled": self.disabled,
        }


@dataclass(frozen=True)
class Attempt:
    """One POST of a delivery: when it began, the HTTP status (None: no answer), what went
    wrong ("" when delivered) and how long it took."""

    at_ns: int
    status: int | None
    error: str
    took_ms: int

    def to_record(self) -> list[Any]:
        return [self.at_ns, self.status, self.error, self.took_ms]

    @classmethod
    def from_record(cls, record: list[Any]) -> Attempt:
        return cls(*record)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": iso_ns(self.at_ns),
            "status": self.status,
            "error": self.error or None,
            "took_ms": self.took_ms,
        }


@dataclass
class Delivery:
    """One event to one endpoint: pending until a 2xx (delivered) or until it is given up
    (failed: attempts spent, or the endpoint deleted, ``error`` says which)."""

    id: int
    tenant_id: int
    endpoint_id: int
    event_id: int
    state: str = "pending"
    next_ns: int = 0  # when the next attempt is due (pending only)
    attempts: list[Attempt] = field(default_factory=list)
    error: str = ""  # why it failed, when it did

    @property
    def name(self) -> str:
        return delivery_name(self.id)

    def to_record(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant_id,
            "endpoint": self.endpoint_id,
            "event": self.event_id,
            "state": self.state,
            "next_ns": self.next_ns,
            "attempts": [a.to_record() for a in self.attempts],
            "error": self.error,
        }

    @classmethod
    def from_record(cls, delivery_id: int, record: dict[str, Any]) -> Delivery:
        return cls(
            delivery_id,
            record["tenant"],
            record["endpoint"],
            record["event"],
            record["state"],
            record["next_ns"],
            [Attempt.from_record(a) for a in record["attempts"]],
            record["error"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.name,
            "endpoint": self.endpoint_id,
            "state": self.state,
            "next_attempt_at": iso_ns(self.next_ns) if self.state == "pending" else None,
            "error": self.error or None,
            "attempts": [a.to_json() for a in self.attempts],
        }


@dataclass
class Event:
    """Something that happened to a tenant, stored with the exact body every attempt sends;
    ``deliveries`` is filled in by the alert log (``Store.events``)."""

    id: int
    tenant_id: int
    type: str
    created_ns: int
    body: bytes
    delivery_ids: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def name(self) -> str:
        return event_name(self.id)

    def to_record(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "created_ns": self.created_ns,
            "body": self.body,
            "deliveries": list(self.delivery_ids),
        }

    @classmethod
    def from_record(cls, event_id: int, tenant_id: int, record: dict[str, Any]) -> Event:
        return cls(
            event_id,
            tenant_id,
            record["type"],
            record["created_ns"],
            record["body"],
            list(record["deliveries"]),
        )

    def to_json(self) -> dict[str, Any]:
        """The alert log's entry: the event as sent, and how its deliveries went."""
        sent = json.loads(self.body)
        return {
            "id": self.name,
            "type": self.type,
            "created_at": sent["created_at"],
            "data": sent["data"],
            "deliveries": [d.to_json() for d in self.deliveries],
        }
