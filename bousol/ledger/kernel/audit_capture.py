"""The audit trail's first half: what a transaction wrote, counted as it runs.

The engine counts every INSERT, UPDATE and DELETE a connection runs, per table, with the
values of the columns that are safe to keep (``_KEPT``); personal data and secrets are
named, never copied. :mod:`bousol.ledger.kernel.audit` (the hash chain) turns a
transaction's count into one record at commit. The hot path
(:mod:`bousol.ledger.kernel.driver_sql`) reports its writes here too, which is why this
half imports neither of them: the chain needs the driver, the driver needs the count.

Who acts and from where is the :class:`Context` of the request or command (a context
variable the web layer and the CLI set).
"""

from __future__ import annotations

import datetime as dt
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, event, exc

from bousol.ledger.kernel.clock import as_utc

_WRITES = "bousol_audit_writes"  # Connection.info key: the transaction's writes
_OWN_TABLES = frozenset({"audit_records", "audit_head"})  # the chain's own writes

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


def take_writes(conn: Connection) -> list[dict] | None:
    """The summary of what the connection's transaction wrote, once (then forgotten)."""
    writes = conn.info.pop(_WRITES, None)
    return _summary(writes) if writes else None


def install(engine_class: type[Engine] = Engine) -> None:
    """Count the writes of every engine (idempotent)."""
    if not event.contains(engine_class, "after_cursor_execute", _after_cursor_execute):
        event.listen(engine_class, "after_cursor_execute", _after_cursor_execute)
        event.listen(engine_class, "after_execute", _after_execute)
        event.listen(engine_class, "begin", _reset)
        event.listen(engine_class, "rollback", _reset)
        event.listen(engine_class, "commit", _reset)
