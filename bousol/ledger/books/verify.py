"""Prove the ledger's invariants from the postings alone (``flask bousol verify``).

Every check is one aggregate query, so the proof scales with the database, not with
Python loops. Each check reports what it looked at and what, if anything, is wrong.

Incremental by sealed month (bousol/ledger/books/seals.py, docs/ledger.md "Vérification
incrémentale"): the default run proves the seals' own chain, checks the journal after
the last seal fully (balances = the seals' sums + the tail's postings), rechecks
``sample`` sealed months at random from the journal, and the audit chain from the last
seal's head on; ``full=True`` checks every entry, every seal and the whole audit chain.
Without seals both are the same complete check.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Connection, func, select

from bousol.ledger.books import hooks, seals
from bousol.ledger.books.models import BACKING_ACCOUNTS, Account, Entry, Posting, SystemAccount
from bousol.ledger.kernel import audit, money

accounts_t, entries_t, postings_t = Account.__table__, Entry.__table__, Posting.__table__
_SAMPLE = 10
DEFAULT_SAMPLE = 2  # sealed months rechecked from the journal by a default run


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    problems: list[str] = field(default_factory=list)


@dataclass
class Report:
    checks: list[Check]
    scope: str = ""  # what the run covered (incremental or full), first line printed

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def lines(self) -> list[str]:
        out = [self.scope] if self.scope else []
        for check in self.checks:
            out.append(f"[{'OK' if check.ok else 'ÉCHEC'}] {check.name} : {check.detail}")
            out.extend(f"    - {p}" for p in check.problems[:_SAMPLE])
            if len(check.problems) > _SAMPLE:
                out.append(f"    … et {len(check.problems) - _SAMPLE} autres")
        return out


def system_balance(conn: Connection, code: SystemAccount) -> int:
    return conn.execute(
        select(accounts_t.c.balance).where(accounts_t.c.system_code == code.value)
    ).scalar_one()


def verify(conn: Connection, *, full: bool = False, sample: int = DEFAULT_SAMPLE,
           rng: random.Random | None = None) -> Report:
    """The ledger's proof. ``full``: every entry, every sealed month, the whole audit
    chain; otherwise what is new since the last seal plus ``sample`` sealed months drawn
    by ``rng`` (the system's randomness unless given). Reads only: sealing is
    :func:`bousol.ledger.books.seals.seal_closed_months`, after a run that passed."""
    checks: list[Check] = []
    sealed = seals.load(conn)
    seal_problems = seals.check_chain(conn, sealed)
    last = sealed[-1] if sealed and not full else None
    tail_after = last.last_entry_id if last is not None else 0
    if full:
        drawn = list(sealed)
    else:
        drawn = sorted((rng or random.SystemRandom()).sample(sealed, min(sample, len(sealed))),
                       key=lambda s: s.seq)
    ranges = [(s.after_entry_id, s.last_entry_id) for s in drawn]
    previous = {s.seq: p for p, s in zip([None, *sealed], sealed, strict=False)}
    for seal in drawn:
        seal_problems.extend(seals.recheck(conn, seal, previous[seal.seq]))

    scope = hooks.VerifyScope(full=full, after_entry_id=tail_after,
                              ranges=() if full else tuple(ranges),
                              months=tuple(s.month for s in drawn))

    def in_scope(column) -> ColumnElement:
        return scope.entry_condition(column)

    n_accounts = conn.execute(select(func.count()).select_from(accounts_t)).scalar_one()
    n_entries = conn.execute(select(func.count()).where(in_scope(entries_t.c.id))).scalar_one()

    # 1. Each stored balance equals the sum of its account's postings: the sealed
    # months' sums and the postings since (all of them with full=True).
    tail = (
        select(postings_t.c.account_id, func.sum(postings_t.c.amount).label("total"))
        .where(postings_t.c.entry_id > tail_after)
        .group_by(postings_t.c.account_id)
        .subquery()
    )
    recomputed: ColumnElement = func.coalesce(tail.c.total, 0)
    joined = accounts_t.outerjoin(tail, tail.c.account_id == accounts_t.c.id)
    if last is not None:
        sealed_sums = (
            select(seals.seal_accounts_t.c.account_id,
                   func.sum(seals.seal_accounts_t.c.amount).label("total"))
            .group_by(seals.seal_accounts_t.c.account_id)
            .subquery()
        )
        recomputed = recomputed + func.coalesce(sealed_sums.c.total, 0)
        joined = joined.outerjoin(sealed_sums, sealed_sums.c.account_id == accounts_t.c.id)
    wrong = conn.execute(
        select(accounts_t.c.id, accounts_t.c.label, accounts_t.c.balance, recomputed)
        .select_from(joined)
        .where(accounts_t.c.balance != recomputed)
    ).all()
    n_tail = conn.execute(
        select(func.count()).where(postings_t.c.entry_id > tail_after)).scalar_one()
    how = (f"{n_accounts} comptes recalculés depuis les sommes de {len(sealed)} mois "
           f"scellés et {n_tail} écritures élémentaires depuis l'écriture n° {tail_after}"
           if last is not None else
           f"{n_accounts} comptes recalculés depuis {n_tail} écritures élémentaires")
    checks.append(Check(
        "soldes recalculés", not wrong, how,
        [f"compte {r[0]} ({r[1]}) : solde {r[2]} ≠ somme {r[3]} (centimes)" for r in wrong],
    ))

    # 2. Each entry balances per currency, and has at least two postings.
    unbalanced = conn.execute(
        select(postings_t.c.entry_id, postings_t.c.currency, func.sum(postings_t.c.amount))
        .where(in_scope(postings_t.c.entry_id))
        .group_by(postings_t.c.entry_id, postings_t.c.currency)
        .having(func.sum(postings_t.c.amount) != 0)
    ).all()
    thin = conn.execute(
        select(entries_t.c.id)
        .select_from(entries_t.outerjoin(postings_t, postings_t.c.entry_id == entries_t.c.id))
        .where(in_scope(entries_t.c.id))
        .group_by(entries_t.c.id)
        .having(func.count(postings_t.c.id) < 2)
    ).all()
    checks.append(Check(
        "écritures équilibrées", not unbalanced and not thin,
        f"{n_entries} écritures, équilibre par devise (EUR, BSOL)",
        [f"écriture {r[0]} : {r[1]} déséquilibré de {r[2]} centimes" for r in unbalanced]
        + [f"écriture {r[0]} : moins de deux mouvements" for r in thin],
    ))

    # 3. Postings are in their account's currency (the composite foreign key backs it).
    mismatched = conn.execute(
        select(postings_t.c.id)
        .select_from(postings_t.join(accounts_t, accounts_t.c.id == postings_t.c.account_id))
        .where(postings_t.c.currency != accounts_t.c.currency, in_scope(postings_t.c.entry_id))
    ).all()
    checks.append(Check(
        "devise des mouvements", not mismatched, "chaque mouvement dans la devise de son compte",
        [f"mouvement {r[0]} dans une autre devise que son compte" for r in mismatched],
    ))

    # 4. No balance below zero where the account does not allow it.
    negative = conn.execute(
        select(accounts_t.c.id, accounts_t.c.label, accounts_t.c.balance).where(
            accounts_t.c.balance < 0, accounts_t.c.allow_negative.is_(False)
        )
    ).all()
    checks.append(Check(
        "aucun solde négatif interdit", not negative, "comptes sans découvert autorisé",
        [f"compte {r[0]} ({r[1]}) : {r[2]} centimes" for r in negative],
    ))

    # 5. Issuance is minus every other Bou'Sol.
    issuance = system_balance(conn, SystemAccount.ISSUANCE)
    others = int(conn.execute(
        select(func.coalesce(func.sum(accounts_t.c.balance), 0)).where(
            accounts_t.c.currency == "BSOL",
            (accounts_t.c.system_code != SystemAccount.ISSUANCE.value)
            | accounts_t.c.system_code.is_(None),
        )
    ).scalar_one())
    checks.append(Check(
        "émission = − Bou'Sols en circulation", issuance == -others,
        f"émission {money.format_plain(issuance)} B, autres comptes "
        f"{money.format_plain(others)} B",
        [] if issuance == -others else ["l'émission ne correspond pas aux Bou'Sols détenus"],
    ))

    # 6. The euro reserve (with desk cash on its way to it) covers the Bou'Sols out.
    backing = int(conn.execute(
        select(func.coalesce(func.sum(accounts_t.c.balance), 0)).where(
            accounts_t.c.system_code.in_([a.value for a in BACKING_ACCOUNTS])
        )
    ).scalar_one())
    covered = backing >= -issuance
    reserve = system_balance(conn, SystemAccount.EUR_RESERVE)
    checks.append(Check(
        "couverture en euros", covered,
        f"réserve {money.format_plain(reserve)} € et caisse non remise "
        f"{money.format_plain(backing - reserve)} €, soit {money.format_plain(backing)} € "
        f"pour {money.format_plain(-issuance)} B en circulation",
        [] if covered else [f"il manque {money.format_plain(-issuance - backing)} €"],
    ))

    # 7. A reversal mirrors its original exactly, account by account.
    original = postings_t.alias("o")
    reversal = entries_t.alias("r")
    net = (
        select(reversal.c.id.label("rid"), postings_t.c.account_id,
               func.sum(postings_t.c.amount).label("amount"))
        .select_from(reversal.join(postings_t, postings_t.c.entry_id == reversal.c.id))
        .where(reversal.c.reverses_id.is_not(None), in_scope(reversal.c.id))
        .group_by(reversal.c.id, postings_t.c.account_id)
        .union_all(
            select(reversal.c.id, original.c.account_id, func.sum(original.c.amount))
            .select_from(reversal.join(original, original.c.entry_id == reversal.c.reverses_id))
            .where(in_scope(reversal.c.id))
            .group_by(reversal.c.id, original.c.account_id)
        )
        .subquery()
    )
    not_mirrored = conn.execute(
        select(net.c.rid).group_by(net.c.rid, net.c.account_id).having(func.sum(net.c.amount) != 0)
    ).all()
    n_reversals = conn.execute(
        select(func.count()).where(entries_t.c.reverses_id.is_not(None),
                                   in_scope(entries_t.c.id))
    ).scalar_one()
    bad_kind = conn.execute(
        select(func.count()).where(
            (entries_t.c.reverses_id.is_(None) & (entries_t.c.kind == "reversal"))
            | (entries_t.c.reverses_id.is_not(None) & (entries_t.c.kind != "reversal")),
            in_scope(entries_t.c.id),
        )
    ).scalar_one()
    problems = sorted({f"contre-passation {r[0]} ne reflète pas l'original" for r in not_mirrored})
    if bad_kind:
        problems.append(f"{bad_kind} écriture(s) de contre-passation mal liées")
    checks.append(Check(
        "contre-passations", not problems, f"{n_reversals} contre-passation(s) vérifiée(s)",
        problems,
    ))
    # 8, 9… What the domains registered (books/hooks.py): the notes in circulation
    # match the stock, the vouchers outstanding match the open vouchers.
    # A domain's invariant registered scoped looks only at what this run covers.
    for check in hooks.invariants():
        checks.append(check(conn, scope) if hooks.is_scoped(check) else check(conn))
    # The sealed months: the seals' chain, and the months drawn recomputed.
    checks.append(Check(
        "sceaux des périodes", not seal_problems,
        f"{len(sealed)} mois scellés, chaîne des sceaux vérifiée, {len(drawn)} revérifié(s) "
        f"depuis le journal" + (f" ({', '.join(f'{s.month:%Y-%m}' for s in drawn)})"
                                if drawn and not full else ""),
        seal_problems,
    ))
    # Last: the audit trail's hash chain is whole: no record changed, none removed
    # (from the last seal's head on; with full=True from the first record).
    start = (last.audit_seq, last.audit_hash) if last is not None else None
    chain = audit.verify_chain(conn, start=start)
    checks.append(Check(
        "journal d'audit chaîné", not chain.problems,
        f"{chain.records} enregistrements, empreintes et maillons recalculés"
        + (f" depuis le n° {start[0]} scellé" if start else ""),
        chain.problems,
    ))
    if full or not sealed:
        summary = (f"Vérification complète : {n_entries} écritures, {len(sealed)} mois "
                   "scellés revérifiés.")
    else:
        summary = (f"Vérification incrémentale : {n_entries} écritures vérifiées "
                   f"(après la n° {tail_after}, et {len(drawn)} mois tirés au sort sur "
                   f"{len(sealed)} scellés) ; --full pour tout revérifier.")
    return Report(checks, summary)
