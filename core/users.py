"""Dashboard users: people who sign in with an e-mail address and a password.

A user is staff (every tenant) or belongs to one tenant as a ``viewer`` or an ``admin``.
Passwords are kept only as argon2id hashes (``argon2-cffi``: salted, slow on purpose, with
its own parameters in each hash so that they can be raised later). Repeated failures lock a
user out for a while; disabling a user, or resetting its password, ends its sessions (the
``epoch`` a session carries no longer matches).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.times import NS_PER_S

ROLES = ("viewer", "admin")
#: failures in a row that lock a user out, and for how long
LOCK_AFTER = 5
LOCK_NS = 15 * 60 * NS_PER_S
MIN_PASSWORD = 10
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_HASHER = PasswordHasher()


class SignInFailed(Exception):
    """Unknown e-mail, wrong password, a disabled or locked-out user: one answer for all, so
    that a failure tells nobody which e-mail addresses exist."""


def email_of(text: str) -> str:
    """An e-mail address as users are known by: trimmed, lower-case; a ValueError if it is
    not one."""
    email = text.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise ValueError(f"{text!r} is not an e-mail address")
    return email


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise ValueError("a password has at most 1024 characters")
    return password


def new_password() -> str:
    """A password to hand out once (``uptally user add/reset`` without one)."""
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    return _HASHER.hash(check_password(password))


def password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass
class User:
    id: int
    email: str
    tenant_id: int | None  # None: staff
    role: str  # "staff", or a tenant user's "viewer" / "admin"
    password_hash: str
    disabled: bool = False
    created_ns: int = 0
    failures: int = 0  # failed sign-ins in a row
    locked_until_ns: int = 0
    epoch: int = 1  # bumped by a disable or a reset: older sessions end

    @property
    def staff(self) -> bool:
        return self.tenant_id is None

    def may_read(self, tenant_id: int) -> bool:
        return not self.disabled and (self.staff or self.tenant_id == tenant_id)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> User:
        return cls(**record)

    def to_json(self, tenant_name: str | None) -> dict[str, Any]:
        """What may be shown of a user: never its hash."""
        return {
            "id": self.id,
            "email": self.email,
            "tenant": tenant_name,
            "role": self.role,
            "disabled": self.disabled,
            "locked": self.locked_until_ns > 0,
        }

    def after_failure(self, now_ns: int) -> User:
        """This user after a failed sign-in: locked out at the LOCK_AFTER-th in a row."""
        failures = self.failures + 1
        locked = now_ns + LOCK_NS if failures >= LOCK_AFTER else self.locked_until_ns
        return User(**{**asdict(self), "failures": failures, "locked_until_ns": locked})
