"""Fixtures of the browser journeys: headless Chromium (Debian's package) driven by
Playwright, and the app served on a real port. The helpers are in tests/browser/helpers.py.

Chromium missing at /usr/bin/chromium skips the journeys with a reason;
``BOUSOL_REQUIRE_BROWSER=1`` (CI) turns that skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from bousol.app import create_app
from bousol.extensions import db
from bousol.ledger.kernel.db import make_engine, make_session_factory
from bousol.ledger.kernel.uow import UnitOfWork
from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import Ledger


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        reason = (f"no Chromium at {CHROMIUM}: apt-get install -y chromium "
                  "(or set BOUSOL_CHROMIUM); BOUSOL_REQUIRE_BROWSER=1 makes this a failure")
        if os.environ.get("BOUSOL_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
def live(tmp_path, sqlite_template):
    """The app served by a real HTTP server on a free local port, on its own database."""
    path = tmp_path / "live.sqlite3"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    engine = make_engine(url)
    factory = make_session_factory(engine)
    ledger = Ledger(engine, lambda **kw: UnitOfWork(factory, **kw))
    yield f"http://127.0.0.1:{server.server_port}", ledger
    server.shutdown()
    thread.join()
    engine.dispose()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def page(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        context = browser.new_context(locale="fr-FR")
        yield context.new_page()
        context.close()
        browser.close()
