"""Dashboard users: argon2id hashes only, one answer for every failed sign-in, a lockout
after repeated failures, and a disable or a new password ending older sessions."""

from __future__ import annotations

import pytest

from core.store import Store, UnknownTenant
from core.times import NS_PER_S
from core.users import LOCK_AFTER, LOCK_NS, SignInFailed

PASSWORD = "correct horse battery"
NOW = 1_767_225_600 * NS_PER_S


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "db") as store:
        store.add_tenant("acme")
        yield store


def test_a_user_is_kept_with_a_salted_slow_hash_only(store, tmp_path) -> None:
    staff = store.add_user(" Ops@Example.COM ", PASSWORD)
    client = store.add_user("ana@acme.example", PASSWORD, tenant_id=1, role="admin")
    assert (staff.email, staff.role, staff.staff) == ("ops@example.com", "staff", True)
    assert (client.tenant_id, client.role, client.may_read(1), client.may_read(2)) == (
        1,
        "admin",
        True,
        False,
    )
    assert staff.password_hash.startswith("$argon2id$")
    assert staff.password_hash != client.password_hash  # salted: same password, other hash
    raw = (tmp_path / "db" / "data.mdb").read_bytes()
    assert PASSWORD.encode() not in raw
    assert "hash" not in str(client.to_json("acme"))
    assert [u.email for u in store.users()] == ["ops@example.com", "ana@acme.example"]


@pytest.mark.parametrize(
    "email, password, kwargs, message",
    [
        ("not-an-email", PASSWORD, {}, "not an e-mail address"),
        ("a@b.example", "short", {}, "at least 10"),
        ("a@b.example", PASSWORD, {"tenant_id": 1, "role": "owner"}, "role is one of"),
    ],
)
def test_a_bad_user_is_refused_and_nothing_stored(store, email, password, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        store.add_user(email, password, **kwargs)
    assert store.users() == []


def test_an_email_is_one_user_and_the_tenant_must_exist(store) -> None:
    store.add_user("a@b.example", PASSWORD)
    with pytest.raises(ValueError, match="exists"):
        store.add_user("A@B.example", PASSWORD, tenant_id=1)
    with pytest.raises(UnknownTenant):
        store.add_user("c@d.example", PASSWORD, tenant_id=9)


def test_sign_in_fails_alike_and_locks_out_after_repeated_failures(store) -> None:
    store.add_user("a@b.example", PASSWORD)
    assert store.sign_in_user("A@b.example", PASSWORD, NOW).email == "a@b.example"
    for wrong in ("nobody@b.example", "not an email"):
        with pytest.raises(SignInFailed, match="unknown e-mail or wrong password"):
            store.sign_in_user(wrong, PASSWORD, NOW)
    for _ in range(LOCK_AFTER):
        with pytest.raises(SignInFailed, match="unknown e-mail or wrong password"):
            store.sign_in_user("a@b.example", "wrong password!", NOW)
    with pytest.raises(SignInFailed):  # locked: even the right password
        store.sign_in_user("a@b.example", PASSWORD, NOW + LOCK_NS - 1)
    assert store.sign_in_user("a@b.example", PASSWORD, NOW + LOCK_NS).failures == 0


def test_a_disable_or_a_new_password_ends_sessions(store) -> None:
    user = store.add_user("a@b.example", PASSWORD)
    disabled = store.change_user("a@b.example", disabled=True)
    assert disabled.disabled and disabled.epoch > user.epoch
    with pytest.raises(SignInFailed):
        store.sign_in_user("a@b.example", PASSWORD, NOW)
    store.change_user("a@b.example", disabled=False)
    reset = store.change_user("a@b.example", password="a new long password")
    with pytest.raises(SignInFailed):
        store.sign_in_user("a@b.example", PASSWORD, NOW)
    assert store.sign_in_user("a@b.example", "a new long password", NOW).epoch == reset.epoch
    with pytest.raises(KeyError):
        store.change_user("nobody@b.example", disabled=True)
