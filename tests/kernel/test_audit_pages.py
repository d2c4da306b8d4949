"""The audit page reads the trail a page at a time by seq (keyset), and its total is
the chain head's number: nothing is counted, however long the trail."""

from __future__ import annotations

import re

import sqlalchemy as sa

from bousol.ledger.kernel import audit
from tests.helpers import login


def seqs(html: str) -> list[int]:
    return [int(n) for n in re.findall(r"N° (\d+)", html)]


def test_pages_follow_by_seq_and_the_total_is_the_heads(client, ledger, monkeypatch):
    admin = ledger.user("admin", password="admin-123")
    for _ in range(7):
        ledger.soliste()
    with ledger.engine.connect() as conn:
        every = [r.seq for r in conn.execute(sa.text(
            "SELECT seq FROM audit_records ORDER BY seq DESC"))]
        assert audit.search(conn, limit=3).total == every[0] == len(every)
        assert audit.search(conn, text="x", limit=3).total is None
    monkeypatch.setattr("bousol.web.admin.audit.PAGE_SIZE", 3)
    login(client, admin.username, "admin-123")
    seen, url = [], "/admin/audit"
    while url:
        page = client.get(url)
        assert page.status_code == 200
        seen.extend(seqs(page.text))
        older = re.search(r'href="([^"]*avant=\d+[^"]*)" rel="next"', page.text)
        url = older.group(1).replace("&amp;", "&") if older else None
    # The login itself writes a record after the first query above: the pages hold
    # every record once, newest first.
    assert seen == sorted(set(seen), reverse=True)
    assert set(every) <= set(seen)
    assert client.get("/admin/audit?avant=abc").status_code == 200
