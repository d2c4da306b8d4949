"""The audit trail: every transaction that changes data leaves one record — who, when,
what, from where — chained by hashes so that an edit or a deletion shows.

How it is complete without trusting every service to remember:

- the engine counts every INSERT, UPDATE and DELETE a connection runs, per table,
  with the values of the columns that are safe to keep (``_KEPT``); personal data
  (names, e-mails, IBANs, reasons…) and secrets (password hashes, tokens) are named,
  never copied, because the trail is append-only and outlives an erasure;
- when a session commits a transaction that wrote something, ``before_commit`` appends
  one record in that same transaction: the data and its audit record commit together
  or not at all;
- who and from where come from the :class:`Context` of the request or command (a
  context variable the web layer and the CLI set; the ledger itself knows no Flask).

The chain: ``hash = SHA-256(canonical JSON of seq, at, user, address, action, details,
prev_hash)``; ``seq`` counts 1, 2, 3… without gaps; the one-row ``audit_head`` holds the
last seq and hash. Appending locks the head row (``FOR UPDATE`` on PostgreSQL; on SQLite
every writer already holds the write lock), so records chain in commit order. The
table is append-only (triggers); :func:`verify_chain` recomputes every hash, so even
someone who drops the triggers cannot change or delete a record unseen, nor cut the
tail without the head disagreeing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from bousol.ledger.kernel import audit_capture as capture
from bousol.ledger.kernel.audit_capture import (  # noqa: F401  (the trail's one name)
    Context,
    current_context,
    note_ids,
    note_write,
    reset_context,
    set_context,
    set_user,
)
from bousol.ledger.kernel.clock import as_utc
from bousol.ledger.kernel.driver_sql import DriverStatement, timestamp
from bousol.ledger.kernel.models import AuditHead, AuditRecord, utcnow
from bousol.ledger.kernel.rows import Rows

records_t, head_t = AuditRecord.__table__, AuditHead.__table__
GENESIS = "0" * 64
# ------------------------------------------------------------------ the chain


def _canonical(seq: int, at: dt.datetime, user_id: int | None, username: str, address: str,
               action: str, details: str, prev_hash: str) -> bytes:
    fields = [seq, as_utc(at).isoformat(timespec="microseconds"), user_id, username, address,
              action, details, prev_hash]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def record_hash(row) -> str:
    """The hash a record must carry, from its fields (a row or a dict-like)."""
    return hashlib.sha256(_canonical(
        row.seq, row.at, row.user_id, row.username, row.address, row.action, row.details,
        row.prev_hash)).hexdigest()


_RECORD_COLUMNS = ("seq", "at", "user_id", "username", "address", "action", "details",
                   "prev_hash", "hash")
_statements: dict[str, object] = {}


def _driver_statements() -> dict:
    """The append's three statements, compiled once and run on the driver's cursor like
    the payment's own (bousol/ledger/kernel/driver_sql.py): every writing transaction pays
    for them, so they take the hot path's road ."""
    if not _statements:
        _statements["head"] = DriverStatement(  # FOR UPDATE: dropped on SQLite, whose
            select(head_t.c.seq, head_t.c.hash)  # writers already hold the write lock
            .where(head_t.c.id == bindparam("head")).with_for_update())
        _statements["insert"] = DriverStatement(
            insert(records_t).values({c: bindparam(c) for c in _RECORD_COLUMNS}))
        _statements["head_update"] = DriverStatement(
            update(head_t).where(head_t.c.id == bindparam("head"))
            .values(seq=bindparam("seq"), hash=bindparam("hash")))
        # PostgreSQL: the record and the head's move in one statement, one round trip
        # (a data-modifying CTE: UPDATE audit_head … FROM (INSERT … RETURNING seq, hash)).
        appended = (insert(records_t)
                    .values({c: bindparam(f"r_{c}") for c in _RECORD_COLUMNS})
                    .returning(records_t.c.seq, records_t.c.hash).cte("appended"))
        _statements["append_pg"] = DriverStatement(
            update(head_t).where(head_t.c.id == bindparam("head"))
            .values(seq=appended.c.seq, hash=appended.c.hash).add_cte(appended))
    return _statements


def append(conn: Connection, context: Context, details: dict) -> int:
    """Append one record in the connection's transaction; returns its seq."""
    statements = _driver_statements()
    head_seq, head_hash = statements["head"].first(conn, {"head": 1})
    at = utcnow()
    seq = head_seq + 1
    row = {
        "seq": seq, "at": at, "user_id": context.user_id,
        "username": context.username[:80], "address": context.address[:64],
        "action": context.action[:120],
        "details": json.dumps(details, ensure_ascii=False, sort_keys=True,
                              separators=(",", ":")),
        "prev_hash": head_hash,
    }
    digest = hashlib.sha256(_canonical(**row)).hexdigest()
    values = {**row, "at": timestamp(conn, at), "hash": digest}
    if conn.dialect.name == "postgresql":
        statements["append_pg"].execute(
            conn, {"head": 1, **{f"r_{name}": value for name, value in values.items()}})
    else:
        statements["insert"].execute(conn, values)
        statements["head_update"].execute(conn, {"head": 1, "seq": seq, "hash": digest})
    return seq


def _before_commit(session: Session) -> None:
    # The session's one connection (the ledger binds one engine); nothing begun, nothing
    # written: no record. A savepoint's commit is not the transaction's: the record is
    # appended once, at the outer commit (the head's lock is always the last one taken).
    transaction = session.get_transaction()
    if transaction is None or session.in_nested_transaction():
        return
    session.flush()  # ORM changes are flushed after this hook: count them now
    for conn in {c for c, *_ in transaction._connections.values()}:
        changes = capture.take_writes(conn)
        if changes:
            append(conn, capture.current_context(), {"changes": changes})


def install(engine_class: type[Engine] = Engine) -> None:
    """Count the writes of every engine and append a record at each commit (idempotent)."""
    capture.install(engine_class)
    if not event.contains(Session, "before_commit", _before_commit):
        event.listen(Session, "before_commit", _before_commit)


# ------------------------------------------------------------------ reading, checking


@dataclass(frozen=True)
class ChainCheck:
    records: int
    problems: list[str]


def verify_chain(conn: Connection, *, batch: int = 2000, start: tuple[int, str] | None = None,
                 stop: tuple[int, str] | None = None) -> ChainCheck:
    """Recompute every record's hash and link, in seq order, and compare with the head.

    ``start=(seq, hash)``: a sealed point (bousol/ledger/books/seals.py): record ``seq``
    must still carry ``hash``, and the check runs from the next one. ``stop=(seq, hash)``:
    check up to that record, which must carry ``hash``, instead of up to the head."""
    problems: list[str] = []
    start_seq, prev = start if start is not None else (0, GENESIS)
    if start_seq:
        sealed = conn.execute(
            select(records_t.c.hash).where(records_t.c.seq == start_seq)).scalar()
        if sealed != prev:
            problems.append(f"enregistrement {start_seq} : ne porte plus l'empreinte scellée")
    expected_seq = start_seq + 1
    count = 0
    last_seq = start_seq
    while stop is None or expected_seq <= stop[0]:
        query = select(records_t).where(records_t.c.seq >= expected_seq)
        if stop is not None:
            query = query.where(records_t.c.seq <= stop[0])
        rows = conn.execute(query.order_by(records_t.c.seq).limit(batch)).all()
        if not rows:
            break
        for row in rows:
            count += 1
            if row.seq != expected_seq:
                problems.append(f"enregistrements {expected_seq} à {row.seq - 1} manquants")
            if row.prev_hash != prev:
                problems.append(f"enregistrement {row.seq} : maillon précédent rompu")
            if record_hash(row) != row.hash:
                problems.append(f"enregistrement {row.seq} : contenu modifié "
                                "(l'empreinte ne correspond plus)")
            prev, expected_seq, last_seq = row.hash, row.seq + 1, row.seq
    if stop is not None:
        if last_seq != stop[0] or prev != stop[1]:
            problems.append(f"enregistrements {last_seq + 1} à {stop[0]} : la chaîne ne mène "
                            f"plus à l'empreinte scellée du n° {stop[0]}")
        return ChainCheck(count, problems)
    head = conn.execute(select(head_t.c.seq, head_t.c.hash).where(head_t.c.id == 1)).one()
    if head.seq != last_seq or head.hash != prev:
        problems.append(f"la tête de chaîne (n° {head.seq}) ne correspond pas au dernier "
                        f"enregistrement (n° {last_seq}) : fin de journal supprimée ?")
    return ChainCheck(count, problems)


@dataclass(frozen=True)
class Page:
    rows: Rows
    total: int | None  # all the records (the head's seq); None when filtered: not counted
    next_before: int | None = None  # the seq to ask "older than" for the next page


def search(conn: Connection, *, text: str | None = None, username: str | None = None,
           address: str | None = None, since: dt.datetime | None = None,
           until: dt.datetime | None = None, limit: int = 50,
           before_seq: int | None = None) -> Page:
    """Records newest first, filtered, a page at a time by seq (keyset: the cost of a
    page is the page's, however long the trail); ``text`` looks in the action and the
    details. The total is the chain head's seq — records are numbered without gaps —
    so nothing is counted; a filtered search shows no total."""
    where = []
    if text:
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        where.append(or_(func.lower(records_t.c.action).like(pattern, escape="\\"),
                         func.lower(records_t.c.details).like(pattern, escape="\\")))
    if username:
        where.append(func.lower(records_t.c.username) == username.lower())
    if address:
        where.append(records_t.c.address == address)
    if since is not None:
        where.append(records_t.c.at >= since)
    if until is not None:
        where.append(records_t.c.at < until)
    total = None
    if not where:
        total = conn.execute(select(head_t.c.seq).where(head_t.c.id == 1)).scalar() or 0
    if before_seq is not None:
        where.append(records_t.c.seq < before_seq)
    rows = conn.execute(select(records_t).where(*where).order_by(records_t.c.seq.desc())
                        .limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, total, rows[-1].seq if more else None)


_OPS = {"insert": "ajout", "update": "modification", "delete": "suppression"}


def describe(details: str) -> list[str]:
    """A record's changes in words, one line per table: ``entries : 1 ajout
    (id=12, kind=exchange)``."""
    try:
        changes = json.loads(details).get("changes", [])
    except (ValueError, AttributeError):
        return [details]
    lines = []
    for change in changes:
        values = ", ".join(
            f"{column}={'|'.join(str(v) for v in kept)}"
            for column, kept in change.get("values", {}).items() if kept)
        others = [c for c in change.get("columns", []) if c not in change.get("values", {})]
        text = (f"{change.get('table')} : {change.get('rows')} "
                f"{_OPS.get(change.get('op'), change.get('op'))}")
        if values:
            text += f" ({values})"
        if others and change.get("op") == "update":
            text += f" ; champs : {', '.join(others)}"
        lines.append(text)
    return lines
