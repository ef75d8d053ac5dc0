"""The real server on 127.0.0.1: every status code of the wire format, dedupe, isolation,
revocation, the read API, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import socket
import subprocess
import sys
import threading
import time

import aiohttp
import msgpack
import pytest
from multidict import CIMultiDict

from core import ingest
from core.store import StoreError
from server.client import GatewayClient, GatewayError
from server.testing import REPO, provision, server_config, thread_server


def now_s() -> int:
    return int(time.time())


@pytest.fixture
def live(tmp_path):
    setup = provision(tmp_path / "db", {"acme": "standard", "globex": "standard", "slowco": "slow"})
    config = server_config(tmp_path / "db", max_body=1 << 20, max_frames=5_000)
    with thread_server(config) as server:
        server.setup = setup
        yield server


def post(server, body: bytes, token: str | None, **headers: str):
    async def go():
        h = {"Content-Type": "application/msgpack", **headers}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        async with aiohttp.ClientSession() as s:
            async with s.post(server.url + "/v1/ingest", data=io.BytesIO(body), headers=h) as r:
                raw = await r.read()
                return r.status, dict(r.headers), raw

    return asyncio.run(go())


def get(server, path: str, token: str | None):
    async def go():
        h = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as s:
            async with s.get(server.url + path, headers=h) as r:
                return r.status, await r.read()

    status, raw = asyncio.run(go())
    return status, json.loads(raw) if raw[:1] in (b"{", b"[") else raw


def batch(frames, seq=None, gateway="gw-1") -> bytes:
    doc = {"gateway": gateway, "frames": frames}
    if seq is not None:
        doc["seq"] = seq
    return msgpack.packb(doc)


def settle(server) -> None:
    """Wait for the writer's next checkpoint so reads see the commits."""
    done = server.state.writer.stats.checkpoints
    deadline = time.monotonic() + 10
    while server.state.writer.stats.checkpoints < done + 2 and time.monotonic() < deadline:
        time.sleep(0.05)


def stored_frames(server, tenant: str) -> int:
    store = server.state.store
    tenant_id = store.tenant(tenant).id
    return sum(int(s["frames"].sum()) for _, _, s in store.day_blocks(tenant_id, 0, 2**32 - 1))


# --- 200 ---------------------------------------------------------------------------------------


def test_accepts_and_answers_json(live) -> None:
    t = now_s() - 60
    status, headers, raw = post(
        live, batch([["a", t], ["", t], ["b", t, 999]], seq=1), live.setup.ingest["acme"]
    )
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(raw) == {
        "accepted": 2,
        "rejected": 1,
        "warnings": 1,
        "duplicate": False,
        "errors": [
            {"index": 1, "reason": "device id is empty"},
            {"index": 2, "reason": "status dropped: not an int 0..255"},
        ],
    }


def test_msgpack_answer_and_x_msgpack_and_gzip(live) -> None:
    t = now_s() - 60
    body = gzip.compress(batch([["a", t]], seq=5))
    status, headers, raw = post(
        live,
        body,
        live.setup.ingest["acme"],
        **{
            "Content-Type": "application/x-msgpack; charset=binary",
            "Content-Encoding": "gzip",
            "Accept": "application/msgpack",
        },
    )
    assert status == 200 and headers["Content-Type"] == "application/msgpack"
    assert msgpack.unpackb(raw)["accepted"] == 1


def test_resent_batch_is_a_duplicate(live) -> None:
    t = now_s() - 60
    body = batch([["a", t], ["b", t]], seq=42)
    first = json.loads(post(live, body, live.setup.ingest["acme"])[2])
    again = json.loads(post(live, body, live.setup.ingest["acme"])[2])
    assert first["duplicate"] is False and again["duplicate"] is True
    assert again["accepted"] == first["accepted"] == 2
    settle(live)
    assert stored_frames(live, "acme") == 2


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, code",
    [
        (b"\xc1garbage", "malformed"),
        (msgpack.packb([1, 2]), "malformed"),
        (msgpack.packb({"frames": []}), "malformed"),
        (msgpack.packb({"gateway": "g", "frames": [], "v": 2}), "unsupported_version"),
    ],
)
def test_400_for_malformed_batches(live, body: bytes, code: str) -> None:
    status, _, raw = post(live, body, live.setup.ingest["acme"])
    assert status == 400 and json.loads(raw)["error"] == code


def test_400_for_bad_gzip(live) -> None:
    status, _, raw = post(
        live, b"not gzip at all", live.setup.ingest["acme"], **{"Content-Encoding": "gzip"}
    )
    assert status == 400 and json.loads(raw)["error"] == "bad_gzip"
    truncated = gzip.compress(batch([["a", now_s()]]))[:-8]
    status, _, raw = post(
        live, truncated, live.setup.ingest["acme"], **{"Content-Encoding": "gzip"}
    )
    assert status == 400


def test_401_missing_unknown_and_revoked(live, tmp_path) -> None:
    body = batch([["a", now_s() - 60]])
    for token in (None, "upt_not-a-token"):
        status, headers, raw = post(live, body, token)
        assert status == 401 and json.loads(raw)["error"] == "unauthorized"
        assert "WWW-Authenticate" in headers
    secret = live.setup.ingest["globex"]
    assert post(live, body, secret)[0] == 200
    # revoke from another process, as an operator would, while the server runs
    token_id = next(
        t.id
        for t in live.state.store.tokens()
        if t.scope == "ingest" and t.tenant_id == live.state.store.tenant("globex").id
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "uptally",
            "token",
            "revoke",
            str(token_id),
            "--data",
            live.config.data,
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    assert post(live, body, secret)[0] == 401


def test_403_wrong_scope(live) -> None:
    status, _, raw = post(live, batch([["a", now_s()]]), live.setup.read["acme"])
    assert status == 403 and json.loads(raw)["error"] == "forbidden"
    status, _ = get(live, "/v1/tenants/acme/devices", live.setup.ingest["acme"])
    assert status == 403


def test_413_body_and_frames(live) -> None:
    big = batch([["a" * 100, now_s()]] * 12_000)
    assert len(big) > 1 << 20
    status, _, raw = post(live, big, live.setup.ingest["acme"])
    assert status == 413 and json.loads(raw)["error"] == "body_too_large"
    status, _, raw = post(live, batch([["a", now_s()]] * 5_001), live.setup.ingest["acme"])
    assert status == 413 and json.loads(raw)["error"] == "too_many_frames"


def test_413_gzip_bomb(live) -> None:
    bomb = gzip.compress(b"\x00" * (64 << 20), 9)  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 1 << 20
    status, _, raw = post(live, bomb, live.setup.ingest["acme"], **{"Content-Encoding": "gzip"})
    assert status == 413 and "decompressed" in json.loads(raw)["detail"]


@pytest.mark.parametrize(
    "headers, code",
    [
        ({"Content-Type": "application/json"}, "unsupported_media_type"),
        ({"Content-Type": "text/plain"}, "unsupported_media_type"),
        ({"Content-Encoding": "br"}, "unsupported_encoding"),
        ({"Content-Encoding": "zstd"}, "unsupported_encoding"),
    ],
)
def test_415(live, headers, code) -> None:
    status, _, raw = post(live, batch([["a", now_s()]]), live.setup.ingest["acme"], **headers)
    assert status == 415 and json.loads(raw)["error"] == code


def test_429_with_retry_after(live) -> None:
    frames = [[f"d{i}", now_s() - 60] for i in range(150)]  # plan "slow": 100 frames/s
    assert post(live, batch(frames), live.setup.ingest["slowco"])[0] == 200
    status, headers, raw = post(live, batch(frames), live.setup.ingest["slowco"])
    assert status == 429 and json.loads(raw)["error"] == "rate_limited"
    assert int(headers["Retry-After"]) >= 1
    # another tenant is not affected
    assert post(live, batch(frames), live.setup.ingest["acme"])[0] == 200


def test_503_when_the_store_fails_and_nothing_is_stored(live, monkeypatch) -> None:
    def broken(group, now_ns=None):
        raise StoreError("disk full")

    monkeypatch.setattr(live.state.store, "commit", broken)
    status, headers, raw = post(
        live, batch([["lost", now_s() - 60]], seq=9), live.setup.ingest["acme"]
    )
    assert status == 503 and json.loads(raw)["error"] == "store_unavailable"
    assert headers["Retry-After"] == "1"
    monkeypatch.undo()
    settle(live)
    assert stored_frames(live, "acme") == 0
    # nor did its device come to exist, when the next batch is committed
    assert (
        post(live, batch([["kept", now_s() - 60]], gateway="gw-2"), live.setup.ingest["acme"])[0]
        == 200
    )
    assert live.state.store.device_ids(live.state.store.tenant("acme").id) == ["kept"]
    # the same batch, resent, is not a duplicate: nothing of it was remembered
    assert (
        json.loads(
            post(live, batch([["lost", now_s() - 60]], seq=9), live.setup.ingest["acme"])[2]
        )["duplicate"]
        is False
    )


# --- isolation and reads -----------------------------------------------------------------------


def test_tenants_isolated_for_ingest_and_read(live) -> None:
    t = now_s() - 120
    post(live, batch([["same-id", t]]), live.setup.ingest["acme"])
    post(live, batch([["same-id", t, 5], ["other", t]]), live.setup.ingest["globex"])
    settle(live)
    assert stored_frames(live, "acme") == 1 and stored_frames(live, "globex") == 2
    status, body = get(live, "/v1/tenants/globex/devices", live.setup.read["acme"])
    assert status == 403
    status, body = get(live, "/v1/tenants/nonexistent/devices", live.setup.read["acme"])
    assert status == 403  # others do not learn which tenants exist
    status, body = get(live, "/v1/tenants", live.setup.read["acme"])
    assert [t["name"] for t in body["tenants"]] == ["acme"]
    status, body = get(live, "/v1/tenants", live.setup.staff)
    assert {t["name"] for t in body["tenants"]} == {"acme", "globex", "slowco"}
    status, body = get(live, "/v1/tenants/globex/devices", live.setup.staff)
    assert status == 200 and [d["id"] for d in body["devices"]] == ["same-id", "other"]
    assert body["devices"][0]["status"] == "fault"
    assert get(live, "/v1/tenants/nonexistent/devices", live.setup.staff)[0] == 404


def test_read_api_uptime_and_outages(live) -> None:
    base = (now_s() // 3600 - 3) * 3600  # two whole UTC hours, both ended
    frames = [["a", base + 60 * i] for i in range(120) if not 30 <= i < 40]
    post(live, batch(frames), live.setup.ingest["acme"])
    settle(live)
    token = live.setup.read["acme"]
    status, body = get(live, f"/v1/tenants/acme/uptime?from={base}&to={base + 7200}", token)
    assert status == 200
    (dev,) = body["devices"]
    assert (dev["id"], dev["up"], dev["down"]) == ("a", 110, 10)
    status, body = get(
        live,
        f"/v1/tenants/acme/uptime?from={base}&to={base + 7200}&granularity=hour&device=a",
        token,
    )
    assert [p["up"] + p["down"] for p in body["series"]] == [60, 60]
    status, body = get(live, f"/v1/tenants/acme/outages?from={base}&to={base + 7200}", token)
    (outage,) = body["outages"]
    assert outage["device"] == "a" and outage["duration_s"] == 600 and not outage["ongoing"]
    assert get(live, "/v1/tenants/acme/uptime?from=yesterday", token)[0] == 400
    assert get(live, "/v1/tenants/acme/uptime?device=nope", token)[0] == 404


def test_health_metrics_openapi(live, caplog) -> None:
    caplog.set_level(logging.DEBUG)  # the access log and everything else
    post(live, batch([["a", now_s() - 60], ["", now_s()]]), live.setup.ingest["acme"])
    get(live, "/v1/tenants", live.setup.staff)
    status, body = get(live, "/healthz", None)
    assert status == 200 and body["status"] == "ok"
    status, text = get(live, "/metrics", None)
    text = text.decode()
    assert 'uptally_frames_rejected_total{reason="device_empty"} 1.0' in text
    assert "uptally_frames_accepted_total 1.0" in text
    assert "uptally_commit_seconds_bucket" in text and "uptally_store_map_used_ratio" in text
    assert "uptally_watch_passes_total 0.0" in text  # not yet: the start grace
    assert "uptally_webhook_attempts_total 0.0" in text
    assert "POST /v1/ingest" in caplog.text  # the access log was captured
    for secret in [*live.setup.ingest.values(), *live.setup.read.values(), live.setup.staff]:
        assert secret not in text and secret not in caplog.text
    status, spec = get(live, "/v1/openapi.json", None)
    from openapi_spec_validator import validate

    validate(spec)
    described = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    routed = {
        (r.resource.canonical, r.method) for r in live.app.router.routes() if r.method != "HEAD"
    }
    assert described == routed


# --- concurrency and the client ------------------------------------------------------------------


def test_many_concurrent_gateways_get_what_they_were_acknowledged(live) -> None:
    t0 = now_s() - 3000

    async def gateway(n: int) -> int:
        acked = 0
        async with GatewayClient(live.url, live.setup.ingest["acme"], f"gw-{n}") as client:
            for k in range(8):
                frames = [[f"gw{n}-dev{i}", t0 + 60 * k] for i in range(50)]
                acked += (await client.send(frames))["accepted"]
        return acked

    async def all_gateways() -> list[int]:
        return await asyncio.gather(*(gateway(n) for n in range(16)))

    acked = asyncio.run(all_gateways())
    settle(live)
    assert sum(acked) == 16 * 8 * 50 == stored_frames(live, "acme")
    assert live.state.writer.stats.batches == 16 * 8
    assert live.state.writer.stats.groups < 16 * 8  # group commit did group


def test_client_retries_with_the_same_seq_and_honours_retry_after(live) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    async def go() -> tuple[dict, dict]:
        frames = [[f"d{i}", now_s() - 60] for i in range(150)]
        async with GatewayClient(
            live.url, live.setup.ingest["slowco"], "gw", sleep=record, max_attempts=50
        ) as client:
            first = await client.send(frames)
            second = await client.send(frames)  # 429s until the bucket refills
        return first, second

    first, second = asyncio.run(go())
    assert first["accepted"] == second["accepted"] == 150
    assert waits and max(waits) >= 1.0  # Retry-After was honoured

    async def refused() -> None:
        async with GatewayClient(live.url, "upt_wrong", "gw", sleep=record) as client:
            await client.send([["a", now_s()]])

    before = len(waits)
    with pytest.raises(GatewayError) as info:
        asyncio.run(refused())
    assert info.value.status == 401 and len(waits) == before  # never retried


def test_unknown_routes_and_methods_answer_json(live) -> None:
    token = live.setup.ingest["acme"]

    async def go(method: str, path: str):
        async with aiohttp.ClientSession() as s:
            h = {"Authorization": f"Bearer {token}"}
            async with s.request(method, live.url + path, headers=h) as r:
                return r.status, r.headers.get("Content-Type", ""), r.headers, await r.read()

    for method, path, status, code in [
        ("GET", "/v1/ingest", 405, "method_not_allowed"),
        ("PUT", "/v1/ingest", 405, "method_not_allowed"),
        ("DELETE", "/v1/ingest", 405, "method_not_allowed"),
        ("GET", "/nope", 404, "not_found"),
        ("POST", "/v2/ingest", 404, "not_found"),
    ]:
        got, ctype, headers, raw = asyncio.run(go(method, path))
        assert (got, ctype.split(";")[0]) == (status, "application/json"), (method, path, raw)
        assert json.loads(raw)["error"] == code
        if status == 405:
            assert "POST" in headers["Allow"]


def test_two_content_encoding_headers_list_two_codings(live) -> None:
    async def go():
        h = CIMultiDict(
            [
                ("Authorization", f"Bearer {live.setup.ingest['acme']}"),
                ("Content-Type", "application/msgpack"),
                ("Content-Encoding", "gzip"),
                ("Content-Encoding", "br"),
            ]
        )
        body = gzip.compress(batch([["a", now_s() - 60]], seq=9))
        async with aiohttp.ClientSession() as s:
            async with s.post(live.url + "/v1/ingest", data=body, headers=h) as r:
                return r.status, await r.read()

    status, raw = asyncio.run(go())
    assert status == 415 and json.loads(raw)["error"] == "unsupported_encoding"
    assert stored_frames(live, "acme") == 0


@pytest.mark.parametrize(
    "accept, answer",
    [
        ("application/msgpack", "application/msgpack"),
        ("Application/MsgPack", "application/msgpack"),
        ("application/msgpack, application/json", "application/msgpack"),
        ("application/json;q=0.5, application/x-msgpack", "application/msgpack"),
        ("application/msgpack;q=0, application/json", "application/json"),
        ("application/json, application/msgpack;q=0.1", "application/json"),
        ("*/*", "application/json"),
    ],
)
def test_answer_follows_the_accept_header(live, accept, answer) -> None:
    body = batch([["a", now_s() - 60]])
    status, headers, _ = post(live, body, live.setup.ingest["acme"], Accept=accept)
    assert status == 200 and headers["Content-Type"].split(";")[0] == answer


def test_a_duplicate_creates_no_device(live) -> None:
    token, t = live.setup.ingest["acme"], now_s() - 60
    assert post(live, batch([["first", t]], seq=7), token)[0] == 200
    status, _, raw = post(live, batch([["ghost", t]], seq=7), token)  # seq reused
    assert status == 200 and json.loads(raw)["duplicate"] is True
    assert post(live, batch([["second", t]], seq=8), token)[0] == 200
    store = live.state.store
    assert store.device_ids(store.tenant("acme").id) == ["first", "second"]


def test_503_overloaded_beyond_max_inflight_and_nothing_is_stored(tmp_path) -> None:
    setup = provision(tmp_path / "db", {"acme": "standard"})
    config = server_config(tmp_path / "db", max_inflight=2)
    with thread_server(config) as server:
        store = server.state.store
        commit, release = store.commit, threading.Event()

        def slow_commit(group, now_ns=None):  # the disk stalls: requests pile up
            release.wait(30)
            return commit(group, now_ns)

        store.commit = slow_commit  # type: ignore[method-assign]
        token, t = setup.ingest["acme"], now_s() - 60

        async def go():
            async def send(device: str, seq: int):
                h = {"Authorization": f"Bearer {token}", "Content-Type": "application/msgpack"}
                body = batch([[device, t]], seq=seq)
                async with s.post(server.url + "/v1/ingest", data=body, headers=h) as r:
                    return r.status, dict(r.headers), await r.read()

            async with aiohttp.ClientSession() as s:
                held = [asyncio.create_task(send(f"held-{k}", k)) for k in range(2)]
                while server.state.inflight < 2:
                    await asyncio.sleep(0.01)
                turned = await send("turned-away", 9)
                release.set()
                return turned, [await h for h in held]

        (status, headers, raw), held = asyncio.run(go())
        assert status == 503 and json.loads(raw)["error"] == "overloaded"
        assert headers["Retry-After"] == "1"
        assert [h[0] for h in held] == [200, 200]
        assert server.state.inflight == 0
        assert sorted(store.device_ids(store.tenant("acme").id)) == ["held-0", "held-1"]


def test_read_api_refuses_bad_parameters_with_json(live) -> None:
    token = live.setup.read["acme"]
    for query in [
        "uptime?from=inf",
        "uptime?from=-inf&to=10",
        "uptime?to=1e12",  # year 33658
        "uptime?to=99999999999999999999999",
        "uptime?from=1e18&to=1e19",
        "uptime?from=1969-12-31T23:59:59",
        "uptime?from=-1",
        "uptime?from=0",  # more than 366 days
        "uptime?from=1900-01-01",
        "uptime?granularity=day&granularity=bogus",
        "uptime?to=10&to=20",
        "outages?min_outage=0",
        "outages?min_outage=-5",
        "outages?min_outage=99999999999999999999999",
        "outages?min_outage=",
        "outages?min_outage=5&min_outage=x",
    ]:
        status, body = get(live, f"/v1/tenants/acme/{query}", token)
        assert (status, body["error"]) == (400, "bad_parameter"), (query, body)


def test_outages_of_a_quiet_period_are_an_empty_list(live) -> None:
    t = now_s() - 900
    t -= t % 60
    frames = [["steady", t + 60 * k] for k in range(10)]
    assert post(live, batch(frames), live.setup.ingest["acme"])[0] == 200
    settle(live)
    token = live.setup.read["acme"]
    status, body = get(live, f"/v1/tenants/acme/outages?from={t + 60}&to={t + 540}", token)
    assert status == 200 and body["outages"] == []
    # a tenant without a device, and a period without data
    status, body = get(live, "/v1/tenants/globex/outages", live.setup.read["globex"])
    assert status == 200 and body["outages"] == []
    status, body = get(live, f"/v1/tenants/acme/outages?from={t - 7200}&to={t - 3600}", token)
    assert status == 200 and body["outages"] == []


def test_a_device_asked_twice_counts_once(live) -> None:
    t = now_s() - 900
    t -= t % 60
    post(live, batch([["a", t + 60 * k] for k in range(10)]), live.setup.ingest["acme"])
    settle(live)
    token, period = live.setup.read["acme"], f"from={t}&to={t + 600}"
    _, once = get(live, f"/v1/tenants/acme/uptime?{period}&device=a", token)
    status, twice = get(live, f"/v1/tenants/acme/uptime?{period}&device=a&device=a", token)
    assert status == 200 and twice["devices"] == once["devices"] and len(once["devices"]) == 1
    _, once = get(live, f"/v1/tenants/acme/uptime?{period}&device=a&granularity=hour", token)
    _, twice = get(
        live, f"/v1/tenants/acme/uptime?{period}&device=a&device=a&granularity=hour", token
    )
    assert twice["series"] == once["series"]


def test_a_token_with_bytes_beyond_ascii_is_401(live) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"GET /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer upt_abc\xff\r\n"
            b"Connection: close\r\n\r\n"
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b'"unauthorized"' in answer


def test_slow_reads_do_not_hold_up_ingest(live, monkeypatch) -> None:
    from core import query

    release, uptime = threading.Event(), query.uptime

    def stuck(*args, **kwargs):  # a query that takes as long as the test wants
        release.wait(30)
        return uptime(*args, **kwargs)

    monkeypatch.setattr(query, "uptime", stuck)
    read, ingest = live.setup.read["acme"], live.setup.ingest["acme"]

    async def go():
        async with aiohttp.ClientSession() as s:

            async def fetch():
                h = {"Authorization": f"Bearer {read}"}
                async with s.get(live.url + "/v1/tenants/acme/uptime", headers=h) as r:
                    return r.status

            reads = [asyncio.create_task(fetch()) for _ in range(live.state.config.read_threads)]
            await asyncio.sleep(0.2)  # every read thread is now stuck in a query
            h = {"Authorization": f"Bearer {ingest}", "Content-Type": "application/msgpack"}
            body = batch([["during-reads", now_s() - 60]], seq=1)
            async with s.post(live.url + "/v1/ingest", data=body, headers=h) as r:
                status = r.status
            stuck_meanwhile = not any(task.done() for task in reads)
            release.set()
            return status, stuck_meanwhile, [await task for task in reads]

    status, stuck_meanwhile, reads = asyncio.run(go())
    assert status == 200 and stuck_meanwhile  # answered while every read was still stuck
    assert reads == [200] * live.state.config.read_threads


def test_concurrent_batches_do_not_overdraw_the_bucket_together(live, monkeypatch) -> None:
    """Batches of one tenant decoded at once pass the rate check together; only those the
    bucket still covers once decoded may be admitted, not all of them."""
    decode = ingest.decode

    def slow_decode(*args, **kwargs):  # every request is past its rate check meanwhile
        time.sleep(0.2)
        return decode(*args, **kwargs)

    monkeypatch.setattr(ingest, "decode", slow_decode)
    token, n = live.setup.ingest["slowco"], 150  # plan "slow": 100 frames/s, burst 100

    async def go():
        async with aiohttp.ClientSession() as s:
            h = {"Authorization": f"Bearer {token}", "Content-Type": "application/msgpack"}

            async def send(g: int) -> int:
                body = batch([[f"d{i}", now_s() - 60] for i in range(n)], gateway=f"gw-{g}")
                async with s.post(live.url + "/v1/ingest", data=body, headers=h) as r:
                    return r.status

            return await asyncio.gather(*(send(g) for g in range(20)))

    started = time.monotonic()
    statuses = asyncio.run(go())
    elapsed = time.monotonic() - started
    admitted = statuses.count(200) * n
    assert set(statuses) <= {200, 429}
    # the burst, what refilled meanwhile, and the one batch that may overdraw the rest
    assert admitted <= 100 + 100 * elapsed + n, (statuses, elapsed)


def test_every_ingest_answer_is_timed_and_counted(live) -> None:
    """uptally_ack_seconds is the histogram of ingest answers: refusals are answers too."""
    token = live.setup.ingest["acme"]
    assert post(live, batch([["a", now_s() - 60]]), token)[0] == 200
    assert post(live, b"\xc1", token)[0] == 400
    assert post(live, batch([["a", now_s() - 60]]), None)[0] == 401
    _, text = get(live, "/metrics", None)
    text = text.decode()
    assert "uptally_ack_seconds_count 3.0" in text, text
    assert 'uptally_batches_total{outcome="malformed"} 1.0' in text
    assert 'uptally_batches_total{outcome="unauthorized"} 1.0' in text
