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
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    event,
    exc,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from bousol.ledger.kernel.clock import as_utc
from bousol.ledger.models import AuditHead, AuditRecord, utcnow

records_t, head_t = AuditRecord.__table__, AuditHead.__table__
GENESIS = "0" * 64
_WRITES = "bousol_audit_writes"  # Connection.info key: the transaction's writes
_OWN_TABLES = frozenset({"audit_records", "audit_head"})

# Columns whose values the trail keeps: identifiers, states, amounts, settings, votes.
# Every other column is listed by name only (personal data, free text, secrets).
_KEPT = frozenset({
    "id", "kind", "code", "status", "role", "action", "from_status", "to_status",
    "currency", "amount", "amount_cents", "balance", "key", "value", "college", "username",
    "motion_id", "party_id", "entry_id", "account_id", "user_id", "voucher_id",
    "programme_id", "reverses_id", "effect", "setting_key", "setting_value", "active",
    "succeeded", "place", "denomination", "serial", "ledger_key", "account_number",
    "filiere", "purpose", "system_code", "outcome", "scope", "period", "transport",
    "desk_id", "batch_id", "number", "category", "prestataire_party_id", "until",
    "membership_until", "closes_at", "valid_until",
    # Separation of duties (docs/duties.md): who asked and who confirmed, released, decided.
    "requested_by_user_id", "confirmed_by_user_id", "cancelled_by_user_id",
    "released_by_user_id", "decided_by_user_id", "created_by_user_id", "closed_by_user_id",
})
# Kept columns whose values are nevertheless secret in one table: an aid voucher's code
# is a bearer instrument (whoever types it spends it). A vote's choice is not kept at
# all (who voted what is never shown, docs/decisions.md).
_SECRET = frozenset({("vouchers", "code")})
_MAX_VALUES = 5  # per column and table: enough to say what, not a copy of the data


@dataclass(frozen=True)
class Context:
    """Who acts and from where, for the records written meanwhile."""

    user_id: int | None = None
    username: str = "system"
    address: str = "system"
    action: str = "system"


# A frozen dataclass: the shared default cannot be mutated.
_context: ContextVar[Context] = ContextVar("bousol_audit_context", default=Context())  # noqa: B039


def current_context() -> Context:
    return _context.get()


def set_context(context: Context):
    """Set the context; returns a token for :func:`reset_context`."""
    return _context.set(context)


def reset_context(token) -> None:
    _context.reset(token)


def set_user(user_id: int | None, username: str) -> None:
    """The request's user is known (after authentication): later records name them."""
    context = _context.get()
    if context.user_id != user_id or context.username != username:
        _context.set(Context(user_id, username, context.address, context.action))


# ------------------------------------------------------------------ write tracking


@dataclass
class _TableWrites:
    rows: int = 0
    columns: set[str] = field(default_factory=set)
    values: dict[str, list] = field(default_factory=dict)


def _jsonable(value):
    if value is None or type(value) in (int, str, bool):
        return value
    if isinstance(value, dt.datetime):
        return as_utc(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def note_write(conn: Connection, statement, rowcount: int, params_list) -> None:
    """Count one DML statement in the connection's transaction (the engine's event
    for ``Connection.execute``; :mod:`bousol.ledger.kernel.driver_sql` calls it for the hot
    path's statements, which go straight to the driver's cursor)."""
    if getattr(statement, "is_insert", False):
        op = "insert"
    elif getattr(statement, "is_update", False):
        op = "update"
    elif getattr(statement, "is_delete", False):
        op = "delete"
    else:
        return
    table = getattr(statement, "table", None)
    name = getattr(table, "name", None)
    if name is None or name in _OWN_TABLES:
        return
    writes: dict = conn.info.setdefault(_WRITES, {})
    entry = writes.setdefault(f"{op} {name}", _TableWrites())
    count = rowcount if rowcount and rowcount > 0 else 0
    if op == "insert" and params_list:
        count = len(params_list)  # one row per parameter set (drivers count batches)
    entry.rows += count
    columns, kept_columns = _columns_of(table, name)
    # Raw values here (every payment passes by): made JSON once, in _summary.
    for params in params_list:
        for column, value in params.items():
            if column in columns:
                entry.columns.add(column)
                if column in kept_columns:
                    kept = entry.values.setdefault(column, [])
                    if len(kept) < _MAX_VALUES and value not in kept:
                        kept.append(value)


_table_columns: dict = {}


def _columns_of(table, name: str) -> tuple[frozenset[str], frozenset[str]]:
    """A table's columns, and those whose values the trail keeps (cached per table)."""
    found = _table_columns.get(table)
    if found is None:
        columns = frozenset(table.c.keys())
        kept = frozenset(c for c in columns if c in _KEPT and (name, c) not in _SECRET)
        found = _table_columns[table] = (columns, kept)
    return found


def note_ids(conn: Connection, statement, ids) -> None:
    """The ids an INSERT created (entries, votes, motions…): what the record points at."""
    table = getattr(statement, "table", None)
    name = getattr(table, "name", None)
    writes = conn.info.get(_WRITES)
    entry = writes.get(f"insert {name}") if writes else None
    if entry is None:
        return
    kept = entry.values.setdefault("id", [])
    for value in ids:
        if value is not None and value not in kept and len(kept) < _MAX_VALUES:
            kept.append(value)


def _after_execute(conn, clauseelement, _multiparams, _params, _options, result):
    if not getattr(clauseelement, "is_insert", False) or result.context.executemany:
        return
    try:
        ids = result.inserted_primary_key
    except exc.InvalidRequestError:  # explicit RETURNING, or no key: nothing to add
        return
    if ids:
        note_ids(conn, clauseelement, [ids[0]])


def _after_cursor_execute(conn, _cursor, _statement, _parameters, context, _executemany):
    if context is None or context.compiled is None:
        return
    if context.isinsert or context.isupdate or context.isdelete:
        note_write(conn, context.compiled.statement, context.rowcount,
                   context.compiled_parameters or [])


def _reset(conn, *_args) -> None:
    conn.info.pop(_WRITES, None)


def _summary(writes: dict[str, _TableWrites]) -> list[dict]:
    out = []
    for what in sorted(writes):
        item = writes[what]
        op, table = what.split(" ", 1)
        values = {}
        for column in sorted(item.values):
            values[column] = list(dict.fromkeys(_jsonable(v) for v in item.values[column]))
        out.append({"op": op, "table": table, "rows": item.rows,
                    "columns": sorted(item.columns), "values": values})
    return out


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
    for them, so they take the hot path's road (imported late: driver_sql counts its
    writes here)."""
    if not _statements:
        from bousol.ledger.kernel.driver_sql import DriverStatement

        _statements["head"] = DriverStatement(  # FOR UPDATE: dropped on SQLite, whose
            select(head_t.c.seq, head_t.c.hash)  # writers already hold the write lock
            .where(head_t.c.id == bindparam("head")).with_for_update())
        _statements["insert"] = DriverStatement(
            insert(records_t).values({c: bindparam(c) for c in _RECORD_COLUMNS}))
        _statements["head_update"] = DriverStatement(
            update(head_t).where(head_t.c.id == bindparam("head"))
            .values(seq=bindparam("seq"), hash=bindparam("hash")))
    return _statements


def append(conn: Connection, context: Context, details: dict) -> int:
    """Append one record in the connection's transaction; returns its seq."""
    from bousol.ledger.kernel.driver_sql import timestamp

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
    statements["insert"].execute(conn, {**row, "at": timestamp(conn, at), "hash": digest})
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
        writes = conn.info.get(_WRITES)
        if not writes:
            continue
        details = {"changes": _summary(writes)}
        conn.info.pop(_WRITES, None)
        append(conn, _context.get(), details)


def install(engine_class: type[Engine] = Engine) -> None:
    """Listen to every engine and session (idempotent)."""
    if not event.contains(engine_class, "after_cursor_execute", _after_cursor_execute):
        event.listen(engine_class, "after_cursor_execute", _after_cursor_execute)
        event.listen(engine_class, "after_execute", _after_execute)
        event.listen(engine_class, "begin", _reset)
        event.listen(engine_class, "rollback", _reset)
        event.listen(engine_class, "commit", _reset)
        event.listen(Session, "before_commit", _before_commit)


# ------------------------------------------------------------------ reading, checking


@dataclass(frozen=True)
class ChainCheck:
    records: int
    problems: list[str]


def verify_chain(conn: Connection, *, batch: int = 2000) -> ChainCheck:
    """Recompute every record's hash and link, in seq order, and compare with the head."""
    problems: list[str] = []
    expected_seq, prev = 1, GENESIS
    count = 0
    last_seq = 0
    while True:
        rows = conn.execute(
            select(records_t).where(records_t.c.seq >= expected_seq)
            .order_by(records_t.c.seq).limit(batch)
        ).all()
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
    head = conn.execute(select(head_t.c.seq, head_t.c.hash).where(head_t.c.id == 1)).one()
    if head.seq != last_seq or head.hash != prev:
        problems.append(f"la tête de chaîne (n° {head.seq}) ne correspond pas au dernier "
                        f"enregistrement (n° {last_seq}) : fin de journal supprimée ?")
    return ChainCheck(count, problems)


@dataclass(frozen=True)
class Page:
    rows: list
    total: int


def search(conn: Connection, *, text: str | None = None, username: str | None = None,
           address: str | None = None, since: dt.datetime | None = None,
           until: dt.datetime | None = None, limit: int = 50, offset: int = 0) -> Page:
    """Records newest first, filtered; ``text`` looks in the action and the details."""
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
    total = conn.execute(select(func.count()).select_from(records_t).where(*where)).scalar_one()
    rows = conn.execute(select(records_t).where(*where).order_by(records_t.c.seq.desc())
                        .limit(limit).offset(offset)).all()
    return Page(rows, total)


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
