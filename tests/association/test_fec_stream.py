"""The FEC streams (docs/fec.md, "Streaming"): read by keyset batches of entries, the
file comes out a chunk at a time, its first bytes before the later batches are read,
and the bytes are exactly those of the file built whole, on both backends, whatever
the batch size (entries sharing one instant included)."""

from __future__ import annotations

import datetime as dt

import pytest

from bousol.ledger.association import fec
from tests.association import test_fec
from tests.association.test_fec import YEAR_2026, _admin_client, at, export, utc

history = test_fec.history  # the fixture: a year of the Bou'Sol in 2026


@pytest.fixture
def busy(history, monkeypatch):
    """The year's history, plus 25 exchanges and payments made at one same instant (the
    keyset's tie on created_at) and 10 more a minute apart."""
    ledger = history.ledger
    at(monkeypatch, utc(2026, 7, 1, 8, 0))
    for i in range(25):
        if i % 2:
            ledger.pay(history.marie, history.baker, "0.50")
        else:
            ledger.exchange(history.marie, "1.00")
    for i in range(10):
        at(monkeypatch, utc(2026, 7, 2, 8, i))
        ledger.exchange(history.marie, "2.00")
    return history


def _joined(ledger, period=YEAR_2026, **options) -> str:
    with ledger.uow(read_only=True) as uow:
        return "".join(fec.stream(uow.conn, period, **options))


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 36, 10_000])
def test_batches_give_the_same_bytes(busy, batch):
    whole = export(busy.ledger)
    assert fec.check(whole) == []
    assert whole.count("\r\n") > 80  # enough lines for many batches
    assert _joined(busy.ledger, batch_entries=batch) == whole
    assert _joined(busy.ledger, batch_entries=batch, chunk_chars=1) == whole
    with busy.ledger.uow(read_only=True) as uow:
        assert fec.export_text(uow.conn, YEAR_2026, batch_entries=batch) == whole


def test_an_empty_period_is_the_header(busy):
    empty = fec.Period(dt.date(2030, 1, 1), dt.date(2030, 1, 31))
    assert _joined(busy.ledger, empty, batch_entries=2) == "\t".join(fec.HEADER) + "\r\n"


def test_the_first_chunk_comes_before_the_later_batches(busy, monkeypatch):
    """The generator yields as soon as it has lines: the header before any query of the
    entries, the first lines after the first batch, the rest batch by batch."""
    calls = []
    real = fec._batch

    def counted(*args, **kwargs):
        calls.append(args[3])  # the keyset position asked for
        return real(*args, **kwargs)

    monkeypatch.setattr(fec, "_batch", counted)
    with busy.ledger.uow(read_only=True) as uow:
        chunks = fec.stream(uow.conn, YEAR_2026, batch_entries=4, chunk_chars=1)
        header = next(chunks)
        assert header == "\t".join(fec.HEADER) + "\r\n" and calls == []
        first = next(chunks)
        assert first.startswith("BQ\t") and len(calls) == 1 and calls[0] is None
        rest = list(chunks)
    assert len(calls) > 10  # the later batches were read after the first chunk left
    assert all(after is not None for after in calls[1:])
    assert header + first + "".join(rest) == export(busy.ledger)


def test_memory_holds_one_batch(busy, monkeypatch):
    """Each query asks for at most ``batch_entries`` entries (the LIMIT), so what sits in
    memory is one batch of rows, whatever the period holds."""
    whole = export(busy.ledger)
    pieces = {line.split("\t")[8] for line in whole.split("\r\n")[1:] if line}
    sizes = []
    real = fec._batch

    def counted(*args, **kwargs):
        rows = real(*args, **kwargs)
        sizes.append(len({row.entry_id for row in rows}))
        return rows

    monkeypatch.setattr(fec, "_batch", counted)
    assert _joined(busy.ledger, batch_entries=5) == whole
    assert max(sizes) == 5 and sum(sizes) == len(pieces) and sizes[-1] < 5


def test_the_page_streams_the_same_bytes(client, busy, monkeypatch):
    _admin_client(client, busy.ledger)
    monkeypatch.setattr(fec, "BATCH_ENTRIES", 3)
    monkeypatch.setattr(fec, "CHUNK_CHARS", 200)
    response = client.get("/admin/comptabilite/fec?du=2026-01-01&au=2026-12-31")
    assert response.status_code == 200 and response.is_streamed
    assert "Content-Length" not in response.headers
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "999999998FEC20261231.txt" in response.headers["Content-Disposition"]
    chunks = list(response.response)
    response.close()
    assert len(chunks) > 10
    assert chunks[0] == ("\t".join(fec.HEADER) + "\r\n").encode()
    body = b"".join(chunks).decode("utf-8")
    assert body == export(busy.ledger) and fec.check(body) == []
