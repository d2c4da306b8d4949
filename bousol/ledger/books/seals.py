"""Seals of closed months, so that ``verify`` need not reread the whole journal each night.

The rules (docs/ledger.md, "Vérification incrémentale"):

- **The period is the Paris calendar month** (the ledger clock). A month is closed, and
  may be sealed, once it ended more than :data:`SEAL_AFTER` ago (writing transactions
  last milliseconds: by then every entry created in the month has committed). Months are
  sealed in order, from the month of the first entry, empty ones included, so the seals
  cover the journal's ids without gap: seal *n* covers ``after_entry_id < id <=
  last_entry_id`` where ``after_entry_id`` is seal *n−1*'s ``last_entry_id`` and
  ``last_entry_id`` the greatest id created before the month's end.
- **A seal holds** the month, its entry-id range, its counts of entries and postings, a
  SHA-256 digest of its entries and their postings (:func:`journal_digest`), each
  account's count and sum of postings in the month (``period_seal_accounts``, with their
  own digest), the audit chain's head (seq, hash) when it was sealed, and the hash of all
  that chained to the previous seal's (``GENESIS`` for the first).
- **Seals are append-only** (triggers, migration 0016) and only made after a ``verify``
  that passed (``flask bousol verify --seal``).

:func:`check_chain` proves the seals themselves (every run); :func:`recheck` recomputes one
sealed month from the journal (a sample each night, every month with ``--full``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select

from bousol.ledger.books.models import Entry, Posting
from bousol.ledger.books.seal_models import PeriodSeal, PeriodSealAccount
from bousol.ledger.kernel import audit, clock
from bousol.ledger.kernel.clock import PARIS, as_utc
from bousol.ledger.kernel.models import AuditHead

seals_t, seal_accounts_t = PeriodSeal.__table__, PeriodSealAccount.__table__
entries_t, postings_t = Entry.__table__, Posting.__table__
GENESIS = "0" * 64
SEAL_AFTER = dt.timedelta(hours=1)
_BATCH = 5000


# ------------------------------------------------------------------ months


def _utc_text(instant: dt.datetime) -> str:
    """An instant as canonical text, whatever the session's time zone."""
    return as_utc(instant).astimezone(dt.UTC).isoformat(timespec="microseconds")


def month_of(instant: dt.datetime) -> dt.date:
    local = as_utc(instant).astimezone(PARIS)
    return dt.date(local.year, local.month, 1)


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_end(month: dt.date) -> dt.datetime:
    """The instant (UTC) the month ends: the next month's first midnight in Paris."""
    return dt.datetime.combine(next_month(month), dt.time(0), tzinfo=PARIS).astimezone(dt.UTC)


# ------------------------------------------------------------------ digests


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _entry_line(entry: tuple, postings: list) -> bytes:
    """One entry and its postings: ``[id, kind, created_at (UTC, µs), actor_user_id, memo,
    reverses_id, details, [[posting id, account_id, currency, amount]…]]``."""
    entry_id, kind, created_at, actor, memo, reverses_id, details = entry
    return (_ENCODER.encode([entry_id, kind, _utc_text(created_at), actor, memo, reverses_id,
                             details, postings]) + "\n").encode()


@dataclass(frozen=True)
class JournalFigures:
    digest: str
    entries: int
    postings: int


def journal_digest(conn: Connection, after: int, last: int) -> JournalFigures:
    """SHA-256 of the entries ``after < id <= last`` with their postings, one canonical
    JSON line per entry in id order (named columns: a column added later to the journal
    does not change past digests). Reads in batches, constant memory."""
    hasher = hashlib.sha256()
    n_entries = n_postings = 0
    cursor = after
    while cursor < last:
        entries = conn.execute(
            select(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at,
                   entries_t.c.actor_user_id, entries_t.c.memo, entries_t.c.reverses_id,
                   entries_t.c.details)
            .where(entries_t.c.id > cursor, entries_t.c.id <= last)
            .order_by(entries_t.c.id).limit(_BATCH)
        ).all()
        if not entries:
            break
        upto = entries[-1][0]
        by_entry: dict[int, list] = {}
        for posting_id, entry_id, account_id, currency, amount in conn.execute(
            select(postings_t.c.id, postings_t.c.entry_id, postings_t.c.account_id,
                   postings_t.c.currency, postings_t.c.amount)
            .where(postings_t.c.entry_id > cursor, postings_t.c.entry_id <= upto)
            .order_by(postings_t.c.entry_id, postings_t.c.id)
        ).all():
            by_entry.setdefault(entry_id, []).append([posting_id, account_id, currency, amount])
        for entry in entries:
            postings = by_entry.get(entry[0], [])
            hasher.update(_entry_line(entry, postings))
            n_postings += len(postings)
        n_entries += len(entries)
        cursor = upto
    return JournalFigures(hasher.hexdigest(), n_entries, n_postings)


def account_sums(conn: Connection, after: int, last: int) -> list[tuple[int, int, int]]:
    """(account id, postings, sum in cents) of the postings of entries ``after < id <= last``."""
    rows = conn.execute(
        select(postings_t.c.account_id, func.count(), func.sum(postings_t.c.amount))
        .where(postings_t.c.entry_id > after, postings_t.c.entry_id <= last)
        .group_by(postings_t.c.account_id).order_by(postings_t.c.account_id)
    ).all()
    return [(int(a), int(n), int(s)) for a, n, s in rows]


def accounts_digest(rows: Sequence[tuple[int, int, int]]) -> str:
    hasher = hashlib.sha256()
    for account_id, n, amount in rows:
        hasher.update(f"{account_id},{n},{amount}\n".encode())
    return hasher.hexdigest()


def seal_hash(seal) -> str:
    """The hash a seal must carry, from its fields (a row or a dict-like)."""
    fields = [seal.seq, seal.month.isoformat(), seal.after_entry_id, seal.last_entry_id,
              seal.entries, seal.postings, seal.journal_digest, seal.accounts_digest,
              seal.audit_seq, seal.audit_hash,
              _utc_text(seal.sealed_at), seal.prev_hash]
    return hashlib.sha256(
        json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


# ------------------------------------------------------------------ reading


def load(conn: Connection) -> list:
    return list(conn.execute(select(seals_t).order_by(seals_t.c.seq)).all())


def _sealed_accounts(conn: Connection) -> Iterator[tuple[int, list[tuple[int, int, int]]]]:
    """Each seal's account rows, seal by seal (one ordered scan)."""
    current: int | None = None
    rows: list[tuple[int, int, int]] = []
    for seq, account_id, n, amount in conn.execute(
        select(seal_accounts_t.c.seal_seq, seal_accounts_t.c.account_id,
               seal_accounts_t.c.postings, seal_accounts_t.c.amount)
        .order_by(seal_accounts_t.c.seal_seq, seal_accounts_t.c.account_id)
    ):
        if seq != current:
            if current is not None:
                yield current, rows
            current, rows = seq, []
        rows.append((int(account_id), int(n), int(amount)))
    if current is not None:
        yield current, rows


def check_chain(conn: Connection, seals: Sequence) -> list[str]:
    """The seals' own proof: numbered 1, 2, 3…, consecutive months, contiguous entry
    ranges, each hash recomputed and chained to the previous one, each month's account
    sums matching their digest and its postings count; and the entries and postings
    below the last sealed id as many as the seals say (an entry added to or removed from
    a sealed month shows every night)."""
    problems: list[str] = []
    prev_hash, prev_last, prev_month, prev_audit = GENESIS, 0, None, 0
    for expected_seq, seal in enumerate(seals, start=1):
        name = f"sceau {seal.seq} ({seal.month:%Y-%m})"
        if seal.seq != expected_seq:
            problems.append(f"sceau {expected_seq} manquant")
        if seal.prev_hash != prev_hash:
            problems.append(f"{name} : maillon précédent rompu")
        if seal_hash(seal) != seal.hash:
            problems.append(f"{name} : contenu modifié (l'empreinte ne correspond plus)")
        if prev_month is not None and seal.month != next_month(prev_month):
            problems.append(f"{name} : ne suit pas le mois {prev_month:%Y-%m}")
        if seal.after_entry_id != prev_last or seal.last_entry_id < seal.after_entry_id:
            problems.append(f"{name} : plage d'écritures {seal.after_entry_id}–"
                            f"{seal.last_entry_id} non contiguë à la précédente ({prev_last})")
        if seal.audit_seq < prev_audit:
            problems.append(f"{name} : tête du journal d'audit antérieure au sceau précédent")
        prev_hash, prev_last, prev_month = seal.hash, seal.last_entry_id, seal.month
        prev_audit = seal.audit_seq
    by_seq = {s.seq: s for s in seals}
    seen: set[int] = set()
    for seq, rows in _sealed_accounts(conn):
        seen.add(seq)
        seal = by_seq.get(seq)
        if seal is None:
            problems.append(f"sommes par compte d'un sceau {seq} inexistant")
            continue
        if accounts_digest(rows) != seal.accounts_digest:
            problems.append(f"sceau {seq} ({seal.month:%Y-%m}) : sommes par compte modifiées")
        if sum(n for _, n, _ in rows) != seal.postings:
            problems.append(f"sceau {seq} ({seal.month:%Y-%m}) : sommes par compte "
                            f"incomplètes")
    for seal in seals:
        if seal.seq not in seen and seal.accounts_digest != accounts_digest([]):
            problems.append(f"sceau {seal.seq} ({seal.month:%Y-%m}) : sommes par compte "
                            "supprimées")
    if seals:
        upto = seals[-1].last_entry_id
        n_entries = conn.execute(
            select(func.count()).where(entries_t.c.id <= upto)).scalar_one()
        n_postings = conn.execute(
            select(func.count()).where(postings_t.c.entry_id <= upto)).scalar_one()
        if n_entries != sum(s.entries for s in seals):
            problems.append(f"{n_entries} écritures jusqu'à la n° {upto}, les sceaux en "
                            f"comptent {sum(s.entries for s in seals)}")
        if n_postings != sum(s.postings for s in seals):
            problems.append(f"{n_postings} mouvements jusqu'à l'écriture n° {upto}, les "
                            f"sceaux en comptent {sum(s.postings for s in seals)}")
    return problems


def recheck(conn: Connection, seal, previous) -> list[str]:
    """Recompute one sealed month from the journal and the audit trail, and compare."""
    name = f"période {seal.month:%Y-%m} (sceau {seal.seq})"
    problems: list[str] = []
    figures = journal_digest(conn, seal.after_entry_id, seal.last_entry_id)
    if (figures.entries, figures.postings) != (seal.entries, seal.postings):
        problems.append(f"{name} : {figures.entries} écritures et {figures.postings} "
                        f"mouvements, scellés {seal.entries} et {seal.postings}")
    if figures.digest != seal.journal_digest:
        problems.append(f"{name} : empreinte du journal recalculée ≠ scellée "
                        "(écriture ou mouvement modifié, ajouté ou supprimé)")
    sealed = {a: (n, s) for a, n, s in conn.execute(
        select(seal_accounts_t.c.account_id, seal_accounts_t.c.postings,
               seal_accounts_t.c.amount).where(seal_accounts_t.c.seal_seq == seal.seq))}
    for account_id, n, amount in account_sums(conn, seal.after_entry_id, seal.last_entry_id):
        was = sealed.pop(account_id, (0, 0))
        if was != (n, amount):
            problems.append(f"{name} : compte {account_id} : {amount} centimes en {n} "
                            f"mouvements, scellé {was[1]} en {was[0]}")
    problems.extend(f"{name} : compte {a} scellé sans mouvement dans le journal"
                    for a in sorted(sealed))
    start = (previous.audit_seq, previous.audit_hash) if previous is not None else None
    chain = audit.verify_chain(conn, start=start, stop=(seal.audit_seq, seal.audit_hash))
    problems.extend(f"{name} : journal d'audit : {p}" for p in chain.problems)
    return problems


# ------------------------------------------------------------------ sealing


@dataclass(frozen=True)
class Sealed:
    seq: int
    month: dt.date
    entries: int
    postings: int
    hash: str


def months_to_seal(conn: Connection, now: dt.datetime | None = None) -> list[dt.date]:
    now = now or clock.now()
    last = conn.execute(select(seals_t.c.month).order_by(seals_t.c.seq.desc()).limit(1)).scalar()
    if last is not None:
        month = next_month(last)
    else:
        first = conn.execute(select(func.min(entries_t.c.created_at))).scalar()
        if first is None:
            return []
        month = month_of(first)
    months = []
    while month_end(month) + SEAL_AFTER <= now:
        months.append(month)
        month = next_month(month)
    return months


def seal_closed_months(conn: Connection, now: dt.datetime | None = None) -> list[Sealed]:
    """Seal every closed month not sealed yet, in order, in the connection's (writing)
    transaction. Call it after a ``verify`` that passed (the CLI's ``--seal`` does)."""
    if conn.dialect.name == "postgresql":  # two runs at once: the second waits, then
        conn.exec_driver_sql("LOCK TABLE period_seals IN EXCLUSIVE MODE")  # finds none
    seals = load(conn)
    head_t = AuditHead.__table__
    audit_seq, audit_hash = conn.execute(
        select(head_t.c.seq, head_t.c.hash).where(head_t.c.id == 1)).one()
    prev = seals[-1] if seals else None
    seq = prev.seq if prev else 0
    after = prev.last_entry_id if prev else 0
    prev_hash = prev.hash if prev else GENESIS
    done: list[Sealed] = []
    for month in months_to_seal(conn, now):
        last = conn.execute(select(func.max(entries_t.c.id)).where(
            entries_t.c.id > after, entries_t.c.created_at < month_end(month))).scalar()
        last = after if last is None else int(last)
        figures = journal_digest(conn, after, last)
        sums = account_sums(conn, after, last)
        seq += 1
        row = {
            "seq": seq, "month": month, "after_entry_id": after, "last_entry_id": last,
            "entries": figures.entries, "postings": figures.postings,
            "journal_digest": figures.digest, "accounts_digest": accounts_digest(sums),
            "audit_seq": audit_seq, "audit_hash": audit_hash,
            "sealed_at": clock.now(), "prev_hash": prev_hash,
        }
        row["hash"] = seal_hash(_Fields(row))
        conn.execute(insert(seals_t), [row])
        if sums:
            conn.execute(insert(seal_accounts_t), [
                {"seal_seq": seq, "account_id": a, "postings": n, "amount": s}
                for a, n, s in sums])
        done.append(Sealed(seq, month, figures.entries, figures.postings, row["hash"]))
        after, prev_hash = last, row["hash"]
    return done


class _Fields:
    def __init__(self, values: dict):
        self.__dict__.update(values)
