"""What the browser journeys share besides their fixtures (tests/browser/conftest.py):
Chromium's command line, and checks of a page (axe-core, the console) and of its text."""

from __future__ import annotations

import os

from tests.helpers import PASSWORD

CHROMIUM = os.environ.get("BOUSOL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def assert_clean_console(messages: list[str]) -> None:
    """No missing asset, no CSP violation, no script error. A form sent back with its
    errors answers 422 (bad input) or 409 (the books refuse: a note not in circulation)
    on purpose, and the browser logs that too: not a fault."""
    faults = [m for m in messages if "status of 422" not in m and "status of 409" not in m]
    assert not faults, faults


def log_in(page, base: str, username: str, then: str, password: str = PASSWORD) -> None:
    """Open ``then`` (the app sends to the login first), fill the login form, send it."""
    page.goto(f"{base}{then}")
    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()


def plain(text: str) -> str:
    """An amount as shown (narrow no-break spaces) in plain spaces, trimmed."""
    return text.replace("\u202f", " ").replace("\u00a0", " ").strip()


def assert_accessible(page) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=WCAG)
    violations = results.response["violations"]
    assert not violations, "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']]}"
        for v in violations
    )
