"""The webhook outbox as the store keeps it, and the pure rules of ``core.webhooks``: ids are
never reused, filters pick the endpoints, an event commits with the caller's transaction or
not at all, and pending deliveries outlive the process."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from core import webhooks
from core.store import Store
from core.webhooks import Attempt

S = 10**9
T0 = 1_772_323_200 * S  # 2026-03-01T00:00Z


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db")
    s.add_tenant("acme")
    s.add_tenant("bolt")
    yield s
    s.close()


def counts(store: Store) -> dict[str, int]:
    return {
        name: store.slab.entries(name.encode())
        for name in ("endpoints", "events", "deliveries", "pending_deliveries")
    }


# --- the rules -------------------------------------------------------------------------------


def test_a_signature_is_the_hmac_of_timestamp_dot_body_and_verifies_within_tolerance() -> None:
    body = b'{"id":"evt_1"}'
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.sign("whsec_k", 1_700_000_000, body) == "sha256=" + expected
    sig = webhooks.sign("whsec_k", "1700000000", body)
    assert webhooks.verify("whsec_k", "1700000000", sig, body, now_s=1_700_000_300)
    assert webhooks.verify("whsec_k", "1700000000", sig, body, now_s=1_699_999_700)
    # too old, too far ahead, another secret, another body, another timestamp, no headers
    assert not webhooks.verify("whsec_k", "1700000000", sig, body, now_s=1_700_000_301)
    assert not webhooks.verify("whsec_k", "1700000000", sig, body, now_s=1_699_999_699)
    assert not webhooks.verify("whsec_x", "1700000000", sig, body, now_s=1_700_000_000)
    assert not webhooks.verify("whsec_k", "1700000000", sig, body + b" ", now_s=1_700_000_000)
    assert not webhooks.verify("whsec_k", "1700000001", sig, body, now_s=1_700_000_000)
    assert not webhooks.verify("whsec_k", None, sig, body, now_s=1_700_000_000)
    assert not webhooks.verify("whsec_k", "1700000000", None, body, now_s=1_700_000_000)
    assert not webhooks.verify("whsec_k", "17e8", sig, body, now_s=1_700_000_000)
    assert not webhooks.verify("whsec_k", "1700000000", sig.upper(), body, now_s=1_700_000_000)
    assert not webhooks.verify("whsec_k", "1700000000", "sha256=ü", body, now_s=1_700_000_000)


def test_the_backoff_starts_at_the_base_and_doubles() -> None:
    assert [webhooks.next_delay_s(n) for n in range(1, 8)] == [
        60.0,
        120.0,
        240.0,
        480.0,
        960.0,
        1920.0,
        3840.0,
    ]
    assert webhooks.next_delay_s(3, base_s=0.2) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        webhooks.next_delay_s(0)
    assert (webhooks.MAX_ATTEMPTS, webhooks.TIMEOUT_S) == (8, 10)


@pytest.mark.parametrize(
    "patterns, event_type, expected",
    [
        (["*"], "incident.opened", True),
        (["incident.*"], "incident.opened", True),
        (["incident.*"], "incident.device.opened", True),
        (["incident.*"], "incidents.opened", False),
        (["incident.*"], "incident", False),
        (["incident.opened"], "incident.opened", True),
        (["incident.opened"], "incident.closed", False),
        (["alert.*", "incident.closed"], "incident.closed", True),
        (["alert.*"], "webhook.test", False),
    ],
)
def test_filters_match_every_exact_or_prefix(patterns, event_type, expected) -> None:
    assert webhooks.matches(patterns, event_type) is expected


@pytest.mark.parametrize(
    "patterns", [[], "incident.*", ["incident*"], ["Incident.*"], ["*.opened"], [""], [3]]
)
def test_a_bad_filter_is_refused(patterns) -> None:
    with pytest.raises(ValueError):
        webhooks.check_patterns(patterns)


# --- endpoints ---------------------------------------------------------------------------------


def test_an_endpoint_keeps_its_secret_but_its_json_does_not_show_it(store) -> None:
    secret, endpoint = store.add_endpoint(
        1, "https://hooks.example.com/uptally", ["incident.*"], "ops", "staff 1"
    )
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 43
    assert endpoint.secret == secret
    (listed,) = store.endpoints(1)
    assert listed == endpoint and listed.secret == secret
    shown = listed.to_json()
    assert secret not in json.dumps(shown) and "secret" not in shown
    assert (shown["url"], shown["events"], shown["description"], shown["created_by"]) == (
        "https://hooks.example.com/uptally",
        ["incident.*"],
        "ops",
        "staff 1",
    )
    assert store.endpoints(2) == []
    assert store.add_endpoint(1, "http://10.0.0.7:8080/h")[0] != secret


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/h",
        "example.com/h",
        "http:///h",
        "https://",
        "http://exa mple.com/",
        "http://example.com:99999/",
        "",
        "javascript:alert(1)",
    ],
)
def test_a_bad_url_is_refused_and_nothing_stored(store, url) -> None:
    with pytest.raises(ValueError, match="url"):
        store.add_endpoint(1, url)
    assert counts(store)["endpoints"] == 0


def test_ids_are_never_reused_across_deletes_tenants_and_reopens(tmp_path) -> None:
    with Store(tmp_path / "db") as store:
        store.add_tenant("acme")
        store.add_tenant("bolt")
        first = store.add_endpoint(1, "http://127.0.0.1:1/a")[1]
        second = store.add_endpoint(2, "http://127.0.0.1:1/b")[1]
        store.delete_endpoint(2, second.id)
        (a,) = store.emit(1, [("incident.opened", {})], T0)
        (b,) = store.emit(2, [("incident.opened", {})], T0)
    with Store(tmp_path / "db") as store:
        third = store.add_endpoint(2, "http://127.0.0.1:1/c")[1]
        (c,) = store.emit(1, [("incident.closed", {})], T0 + S)
        assert (first.id, second.id, third.id) == (1, 2, 3)
        assert (a.id, b.id, c.id) == (1, 2, 3)
        assert (a.delivery_ids, b.delivery_ids, c.delivery_ids) == ([1], [], [2])
        assert json.loads(c.body)["id"] == "evt_3"


def test_deleting_an_endpoint_fails_its_pending_deliveries_only(store) -> None:
    keep = store.add_endpoint(1, "http://127.0.0.1:1/keep")[1]
    gone = store.add_endpoint(1, "http://127.0.0.1:1/gone")[1]
    first, second = store.emit(1, [("a.b", {}), ("a.c", {})], T0)
    delivered = [i for i in first.delivery_ids if store.outgoing(i)[0].endpoint_id == gone.id]
    store.record_attempt(delivered[0], Attempt(T0, 200, "", 5), "delivered", 0)
    with pytest.raises(KeyError):
        store.delete_endpoint(2, gone.id)  # not bolt's: as unknown
    store.delete_endpoint(1, gone.id)
    with pytest.raises(KeyError):
        store.delete_endpoint(1, gone.id)
    by_endpoint = {
        (event.id, d.endpoint_id): (d.state, d.error)
        for event in store.events(1)
        for d in event.deliveries
    }
    assert by_endpoint == {
        (first.id, keep.id): ("pending", ""),
        (first.id, gone.id): ("delivered", ""),
        (second.id, keep.id): ("pending", ""),
        (second.id, gone.id): ("failed", "endpoint deleted"),
    }
    assert {d.endpoint_id for d in store.pending_deliveries()} == {keep.id}
    assert [e.id for e in store.endpoints(1)] == [keep.id]


# --- events and deliveries ---------------------------------------------------------------------


def test_an_event_goes_to_the_endpoints_whose_filter_matches(store) -> None:
    everything = store.add_endpoint(1, "http://127.0.0.1:1/all")[1]
    incidents = store.add_endpoint(1, "http://127.0.0.1:1/inc", ["incident.*"])[1]
    closed = store.add_endpoint(1, "http://127.0.0.1:1/closed", ["incident.closed"])[1]
    muted = store.add_endpoint(1, "http://127.0.0.1:1/muted")[1]
    muted.disabled = True
    store.slab.write(lambda txn: store.outbox_table.put_endpoint(txn, muted))
    store.add_endpoint(2, "http://127.0.0.1:1/bolt")  # another tenant's: never
    opened, shut, alert = store.emit(
        1, [("incident.opened", {}), ("incident.closed", {}), ("alert.flapping", {})], T0
    )

    def targets(event):
        return sorted(d.endpoint_id for d in event.deliveries)

    assert targets(opened) == [everything.id, incidents.id]
    assert targets(shut) == [everything.id, incidents.id, closed.id]
    assert targets(alert) == [everything.id]
    assert all(d.state == "pending" and d.next_ns == T0 for d in store.pending_deliveries())
    assert len(store.pending_deliveries()) == 6
    # a test goes to one endpoint, whatever its filter
    (test,) = store.emit(1, [("webhook.test", {})], T0, endpoint_id=closed.id)
    assert targets(test) == [closed.id]
    with pytest.raises(KeyError):
        store.emit(2, [("webhook.test", {})], T0, endpoint_id=closed.id)


def test_the_body_is_compact_sorted_json_with_an_exact_utc_time(store) -> None:
    (event,) = store.emit(1, [("incident.opened", {"device": "d1", "b": [1, 2]})], T0 + 123_456_789)
    assert event.body == (
        b'{"created_at":"2026-03-01T00:00:00.123456Z","data":{"b":[1,2],"device":"d1"},'
        b'"id":"evt_1","tenant":"acme","type":"incident.opened"}'
    )
    assert store.outgoing(1) is None  # no endpoint: no delivery
    store.add_endpoint(1, "http://127.0.0.1:1/h")
    store.emit(1, [("incident.closed", {})], T0)
    delivery, endpoint, body = store.outgoing(1)
    assert (delivery.event_id, endpoint.url, json.loads(body)["type"]) == (
        2,
        "http://127.0.0.1:1/h",
        "incident.closed",
    )


@pytest.mark.parametrize(
    "events",
    [
        [("Incident.Opened", {})],
        [("incident.opened", [1])],
        [("incident.opened", {"x": float("nan")})],
        [("ok.event", {}), ("bad event", {})],
    ],
)
def test_a_bad_event_stores_nothing(store, events) -> None:
    store.add_endpoint(1, "http://127.0.0.1:1/h")
    with pytest.raises(ValueError):
        store.emit(1, events, T0)
    assert counts(store) == {"endpoints": 1, "events": 0, "deliveries": 0, "pending_deliveries": 0}


def test_emit_in_commits_with_the_callers_transaction_or_not_at_all(store) -> None:
    store.add_endpoint(1, "http://127.0.0.1:1/h")

    def incident_change_that_fails(txn) -> None:
        txn.put(b"incident_probe", b"1", db=store.slab.db[b"meta"])
        store.emit_in(txn, 1, [("incident.opened", {"n": 1})], T0)
        raise RuntimeError("the caller's work failed after emitting")

    with pytest.raises(RuntimeError):
        store.slab.write(incident_change_that_fails)
    assert counts(store) == {"endpoints": 1, "events": 0, "deliveries": 0, "pending_deliveries": 0}
    with store.slab.txn() as txn:
        assert txn.get(b"incident_probe", db=store.slab.db[b"meta"]) is None

    def incident_change(txn) -> list:
        txn.put(b"incident_probe", b"1", db=store.slab.db[b"meta"])
        return store.emit_in(txn, 1, [("incident.opened", {"n": 2})], T0)

    (event,) = store.slab.write(incident_change)
    # the failed one took no id: the sequence rolled back with it
    assert event.id == 1 and json.loads(event.body)["data"] == {"n": 2}
    assert counts(store) == {"endpoints": 1, "events": 1, "deliveries": 1, "pending_deliveries": 1}


def test_attempts_are_recorded_and_only_pending_deliveries_stay_pending(tmp_path) -> None:
    with Store(tmp_path / "db") as store:
        store.add_tenant("acme")
        store.add_endpoint(1, "http://127.0.0.1:1/h")
        store.emit(1, [("a.one", {}), ("a.two", {}), ("a.three", {})], T0)
        store.record_attempt(1, Attempt(T0, 500, "HTTP 500", 12), "pending", T0 + 60 * S)
        store.record_attempt(1, Attempt(T0 + 60 * S, 204, "", 3), "delivered", 0)
        store.record_attempt(2, Attempt(T0, None, "timeout after 10 s", 10_000), "failed", 0)
        store.record_attempt(3, Attempt(T0, 503, "HTTP 503", 4), "pending", T0 + 60 * S)
        with pytest.raises(KeyError):
            store.record_attempt(99, Attempt(T0, 200, "", 1), "delivered", 0)
        with pytest.raises(ValueError):
            store.record_attempt(3, Attempt(T0, 200, "", 1), "done", 0)
    with Store(tmp_path / "db") as store:  # a restart: the pending one is still due
        (pending,) = store.pending_deliveries()
        assert (pending.id, pending.next_ns, pending.attempts) == (
            3,
            T0 + 60 * S,
            [Attempt(T0, 503, "HTTP 503", 4)],
        )
        three, two, one = store.events(1)
        assert [a.status for a in one.deliveries[0].attempts] == [500, 204]
        assert one.deliveries[0].state == "delivered"
        assert (two.deliveries[0].state, two.deliveries[0].error) == (
            "failed",
            "timeout after 10 s",
        )
        shown = one.to_json()["deliveries"][0]
        assert shown["id"] == "dlv_1" and shown["next_attempt_at"] is None
        assert shown["attempts"][0] == {
            "at": "2026-03-01T00:00:00Z",
            "status": 500,
            "error": "HTTP 500",
            "took_ms": 12,
        }
        # an attempt that ends after the delivery was given up is kept, the state is not
        store.record_attempt(2, Attempt(T0 + S, 200, "", 2), "delivered", 0)
        assert store.events(1, types=["a.two"])[0].deliveries[0].state == "failed"


def test_the_alert_log_is_newest_first_by_range_type_and_limit_per_tenant(store) -> None:
    store.add_endpoint(1, "http://127.0.0.1:1/h")
    for k in range(6):
        kind = "incident.opened" if k % 2 == 0 else "alert.flapping"
        store.emit(1, [(kind, {"k": k})], T0 + k * S)
    store.emit(2, [("incident.opened", {"k": 99})], T0)

    def ks(events) -> list[int]:
        return [json.loads(e.body)["data"]["k"] for e in events]

    assert ks(store.events(1)) == [5, 4, 3, 2, 1, 0]
    assert ks(store.events(1, T0 + S, T0 + 4 * S)) == [3, 2, 1]
    assert ks(store.events(1, types=["incident.*"])) == [4, 2, 0]
    assert ks(store.events(1, types=["alert.flapping", "incident.opened"], limit=3)) == [5, 4, 3]
    assert ks(store.events(2)) == [99]
    assert all(len(e.deliveries) == 1 for e in store.events(1))
    assert store.events(2)[0].deliveries == []
    with pytest.raises(ValueError):
        store.events(1, types=["not a pattern"])
