"""The dashboard in headless Chromium (Debian's ``chromium`` package), driven by Playwright,
against ``uptally dashboard`` on 127.0.0.1: what a client and staff see, a refused tenant,
a revoked token, and secrets in no log."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from server.testing import REPO, free_port
from tests.support.billing import seed_billing
from tests.support.incidents import GLOBEX, seed_incidents
from tests.support.tenants import FLEETS, revoke, seed

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: The network here is closed: nothing in the background may try to reach it.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 60_000


@dataclass
class Dashboard:
    seeded: Any  # what the store holds: a Seeded, or the Incidents story
    url: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> str:
        """Stop it; what it printed."""
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return out.decode(errors="replace")


def start_dashboard(seeded: Any, tmp_path: Path, env: dict[str, str] | None = None) -> Dashboard:
    """``uptally dashboard`` on ``seeded.data``, once its health check answers; ``env`` adds
    to its environment."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uptally", "dashboard", "--data", str(seeded.data)]
        + ["--port", str(port)],
        cwd=REPO,
        env={**os.environ, "HOME": str(tmp_path), **(env or {})},  # streamlit's files: HOME
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    board = Dashboard(seeded, f"http://127.0.0.1:{port}", proc)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, board.stop()
        try:
            with urllib.request.urlopen(board.url + "/_stcore/health", timeout=1) as answer:
                if answer.read() == b"ok":
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.2)
    return board


@pytest.fixture
def dashboard(tmp_path) -> Iterator[Dashboard]:
    board = start_dashboard(seed(tmp_path / "db"), tmp_path)
    yield board
    board.stop()


@pytest.fixture
def page(tmp_path) -> Iterator[Page]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("these tests need Debian's chromium package: apt-get install chromium")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh profile each time
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 1400},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            context.close()


def sign_in(page: Page, url: str, secret: str) -> None:
    page.goto(url)
    page.locator("input[type=password]").fill(secret)
    page.get_by_role("button", name="Sign in").click()


def heading(page: Page, text: str) -> None:
    page.get_by_role("heading", name=text, exact=True).wait_for()


def test_a_client_sees_its_own_tenant_in_a_real_browser(dashboard, page, tmp_path) -> None:
    seeded = dashboard.seeded
    sign_in(page, dashboard.url, seeded.read["acme"])
    heading(page, "acme")
    heading(page, "Outages")
    page.get_by_text("acme-door-2").first.wait_for(state="attached")  # the table is drawn
    page.wait_for_timeout(1_000)  # let the chart finish drawing
    shot = tmp_path / "acme.png"
    page.screenshot(path=shot)
    picture = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    assert picture.size == (1280, 1400)
    colors = picture.getcolors(maxcolors=1 << 16)
    assert colors is None or len(colors) > 50, "the screenshot is (nearly) blank"
    text = page.content()
    assert all(device in text for device in FLEETS["acme"])
    assert not [w for w in ("globex", *FLEETS["globex"]) if w in text]

    page.get_by_text("7 days", exact=True).click()
    heading(page, "acme")
    assert "globex" not in page.content()

    revoke(seeded.data, seeded.read_ids["acme"])
    page.get_by_text("30 days", exact=True).click()
    page.get_by_text("Your sign-in is no longer valid.").wait_for()
    assert "acme-door-1" not in page.content()

    out = dashboard.stop()
    assert "Uvicorn server started" in out or "You can now view" in out, out
    for secret in (seeded.read["acme"], seeded.staff, *seeded.read.values()):
        assert secret not in out


def test_a_link_to_another_tenant_is_refused(dashboard, page) -> None:
    sign_in(page, dashboard.url + "/?tenant=globex", dashboard.seeded.read["acme"])
    page.get_by_text("this sign-in may not read tenant 'globex'").wait_for()
    assert not [w for w in FLEETS["globex"] if w in page.content()]


def test_staff_see_the_fleet_and_each_tenant(dashboard, page) -> None:
    sign_in(page, dashboard.url, dashboard.seeded.staff)
    heading(page, "Fleet")
    page.get_by_text("globex").first.wait_for(state="attached")
    page.get_by_role("link", name="Uptime").click()
    heading(page, "acme")
    page.get_by_text("acme-hvac-1").first.wait_for(state="attached")


def test_a_client_sees_its_sla_month_drawn(dashboard, page, tmp_path) -> None:
    sign_in(page, dashboard.url, dashboard.seeded.read["acme"])
    heading(page, "acme")
    page.get_by_role("link", name="SLA").click()
    heading(page, "Daily uptime")
    heading(page, "Sites")
    page.get_by_text("acme-gw").first.wait_for(state="attached")
    page.locator("canvas, svg.marks").first.wait_for()  # the calendar is drawn
    page.wait_for_timeout(1_000)
    shot = tmp_path / "sla.png"
    page.screenshot(path=shot, full_page=True)
    colors = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB").getcolors(1 << 16)
    assert colors is None or len(colors) > 50, "the screenshot is (nearly) blank"
    text = page.content()
    assert "Attainment" in text and "globex" not in text


def test_a_client_sees_its_incidents_drawn(tmp_path, page) -> None:
    board = start_dashboard(seed_incidents(tmp_path / "db"), tmp_path)
    try:
        sign_in(page, board.url, board.seeded.read["acme"])
        page.get_by_role("link", name="Incidents").click()
        heading(page, "Timeline")
        heading(page, "Alert log")
        page.get_by_text("acme-gw-2").first.wait_for(state="attached")
        page.locator("canvas, svg.marks").first.wait_for()  # the timeline is drawn
        page.wait_for_timeout(1_000)
        shot = tmp_path / "incidents.png"
        page.screenshot(path=shot, full_page=True)
        colors = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB").getcolors(1 << 16)
        assert colors is None or len(colors) > 50, "the screenshot is (nearly) blank"
        text = page.content()
        assert "Response compliance" in text and "acme-hvac-1" in text
        assert "Answer an incident" not in text and "Send" not in text  # staff only
        assert not [w for w in ("globex", *GLOBEX["globex-gw"]) if w in text]
    finally:
        board.stop()


def test_staff_see_the_billing_page_drawn(tmp_path, page) -> None:
    story = seed_billing(tmp_path / "db", close=2)
    config = tmp_path / "uptally.toml"
    config.write_text('[costs]\ncurrency = "USD"\nper_device_month = "12.5"\n')
    # UPTALLY_CONFIG for the dashboard only: the server's config does not take [costs] yet
    board = start_dashboard(story, tmp_path, {"UPTALLY_CONFIG": str(config)})
    try:
        sign_in(page, board.url, story.staff)
        page.get_by_role("link", name="Billing").click()
        heading(page, "Billing")
        page.get_by_text(f"{story.months[2]} is not closed").wait_for()
        page.get_by_role("combobox").first.click()
        page.get_by_role("option", name=f"{story.months[1]} · closed").click()
        heading(page, "Invoice lines")
        page.get_by_text("sla_credit").first.wait_for()
        page.get_by_role("tab", name="Revenue").click()
        heading(page, "MRR and its movements")
        page.locator("canvas, svg.marks").first.wait_for()  # the movements are drawn
        page.wait_for_timeout(1_000)
        shot = tmp_path / "billing.png"
        page.screenshot(path=shot, full_page=True)
        colors = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB").getcolors(1 << 16)
        assert colors is None or len(colors) > 50, "the screenshot is (nearly) blank"
        text = page.content()
        assert "Logo churn" in text and "Valuation" in text
    finally:
        board.stop()
