"""The dashboard under Streamlit's AppTest: signing in, opening a page, and every text a page
shows (for the tests that no client sees another tenant's words)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from server.testing import REPO

APP = str(REPO / "dashboard" / "app.py")


def signed_in(secret: str) -> AppTest:
    """The app after signing in with ``secret``, on its first page."""
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert [t.value for t in at.title] == ["Uptally"]
    at.text_input[0].input(secret)
    at.button[0].click().run()
    assert not at.exception
    return at


def on_page(secret: str, page: str, title: str) -> AppTest:
    """Signed in with ``secret`` and switched to ``page`` (``views/billing.py``), whose title
    must be ``title``."""
    at = signed_in(secret)
    at.switch_page(page).run()
    assert not at.exception
    assert [t.value for t in at.title] == [title]
    return at


def shown(at: AppTest) -> str:
    """Every text the page shows, table cells and choices included."""
    parts: list[str] = []
    kinds = ("title", "header", "subheader", "markdown", "caption", "error", "warning")
    for kind in (*kinds, "success", "info"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [" ".join(map(str, s.options)) for s in at.selectbox]
    parts += [frame.value.to_string() for frame in (*at.dataframe, *at.table)]
    return "\n".join(parts)
