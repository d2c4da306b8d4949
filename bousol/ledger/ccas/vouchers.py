"""CCAS social aid in Bou'Sols: programmes, beneficiaries, vouchers (no Flask here).

The rules follow the chèque d'accompagnement personnalisé (CGCT L1611-6, R1611-6; see
docs/vouchers.md):
- a **programme** has a euro budget, a period, the filières its vouchers may buy (or
  all), a default validity and whether a voucher may be spent in several goes. Its
  Bou'Sols sit in an account of its own, filled by an exchange at the bank
  (``desk.exchange.exchange(programme_id=…)``);
- a **beneficiary** is a CCAS reference; a name beside it is the CCAS's own note, never
  shown to anyone else; it can be exported and erased (the vouchers stay, anonymous);
- **granting** moves the voucher's value from the programme (or the CCAS's own account)
  to ``vouchers_outstanding``; **redeeming** moves what the purchase costs from there to
  the prestataire; **expiry** and **cancellation** move what is left back to where it
  came from. A voucher is never converted to euros by its beneficiary: only the
  prestataire that took it reconverts, as for any Bou'Sol it earns;
- a single-use voucher is closed by its one redemption: what the purchase did not use
  goes back to the programme in the same entry (no change is given on a voucher);
- an **earmarked** voucher is credited to a soliste's account view instead of printed:
  the soliste spends it at prestataires of the allowed filières, with the same checks.

Every redemption locks the voucher row (``FOR UPDATE``; SQLite serialises writers) before
the accounts, so two tills redeeming one voucher at once never take more than it holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, exists, func, insert, select, update

from bousol.ledger.access import parties
from bousol.ledger.books import hooks
from bousol.ledger.books.models import (
    Account,
    Currency,
    Entry,
    Filiere,
    Party,
    PartyKind,
    Posting,
    SystemAccount,
)
from bousol.ledger.books.posting import Leg, lock_accounts, post
from bousol.ledger.books.statements import paris_bounds
from bousol.ledger.books.verify import Check, system_balance
from bousol.ledger.ccas import voucher_codes as codes
from bousol.ledger.ccas.models import (
    AidProgramme,
    Beneficiary,
    Voucher,
    VoucherBatch,
    VoucherRedemption,
)
from bousol.ledger.kernel import audit, idempotency, inputs, money
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import (
    AmountExceedsRemaining,
    EarmarkedVoucherOpen,
    FiliereNotAllowed,
    FlowNotAllowed,
    Forbidden,
    InsufficientFunds,
    InvalidDate,
    InvalidInput,
    NotFound,
    UnknownParty,
    VoucherCancelled,
    VoucherExpired,
    VoucherRedeemed,
)
from bousol.ledger.kernel.models import IdempotencyKey, utcnow
from bousol.ledger.kernel.states import StateMachine
from bousol.ledger.kernel.uow import UnitOfWork

programmes_t, beneficiaries_t = AidProgramme.__table__, Beneficiary.__table__
vouchers_t, batches_t = Voucher.__table__, VoucherBatch.__table__
redemptions_t, parties_t = VoucherRedemption.__table__, Party.__table__
accounts_t, entries_t, postings_t = Account.__table__, Entry.__table__, Posting.__table__
keys_t = IdempotencyKey.__table__
# Who an aid beneficiary's own acts are recorded as, outside the CCAS (issue 13): the
# journal and the audit trail show this, never the soliste.
AID_BENEFICIARY = "bénéficiaire CCAS"

OPEN, REDEEMED, EXPIRED, CANCELLED = "open", "redeemed", "expired", "cancelled"
# The voucher's states: open → redeemed | expired | cancelled; a partial redemption keeps
# it open. Each action and the state it leads to (from open only).
TRANSITIONS: dict[tuple[str, str], str] = {
    (OPEN, "redeem_part"): OPEN,
    (OPEN, "redeem_all"): REDEEMED,
    (OPEN, "expire"): EXPIRED,
    (OPEN, "cancel"): CANCELLED,
}
_CLOSED_ERRORS = {REDEEMED: VoucherRedeemed, EXPIRED: VoucherExpired,
                  CANCELLED: VoucherCancelled}

FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
REF_MAX = 40
NAME_MAX = 200
VALIDITY_MAX_DAYS = 366  # a chèque d'accompagnement lasts a calendar year at most
BATCH_MAX_LINES = 2000


MACHINE = StateMachine(TRANSITIONS,
                       lambda status, _action: _CLOSED_ERRORS.get(status, VoucherRedeemed)())


def next_status(status: str, action: str) -> str:
    return MACHINE.next(status, action)


# ---------------------------------------------------------------- small parsers


def parse_filieres(value: object) -> tuple[str, ...] | None:
    """A list (or comma-separated text) of filière slugs; None or empty means all."""
    if value is None or value == "" or value == []:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise InvalidInput("Filières : une liste de filières.", field="filieres")
    found = []
    for item in items:
        try:
            found.append(Filiere(str(item).strip()).value)
        except ValueError:
            raise InvalidInput(f"Filière inconnue : {str(item)[:40]!r} (attendu : "
                               + ", ".join(f.value for f in Filiere) + ").",
                               field="filieres") from None
    return tuple(sorted(set(found))) or None


def _filieres_text(filieres: tuple[str, ...] | None) -> str | None:
    return ",".join(filieres) if filieres else None


def filieres_of(text: str | None) -> tuple[str, ...] | None:
    return tuple(text.split(",")) if text else None


def parse_date(value: object, label: str = "Date", field: str | None = None) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
            try:
                return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a date only
            except ValueError:
                pass
    raise InvalidDate(f"{label} invalide (jj/mm/aaaa).", field=field)


# The words for a name or a reference: a memo's for its characters and its 500 characters
# as typed (the cleaning it first had), the form's for the rest.
_WORDS = dataclasses.replace(inputs.MEMO_WORDS, not_text="{label} invalide.")


def _ccas(conn: Connection, actor: Actor):
    actor.require(Role.CCAS)
    row = conn.execute(select(parties_t.c.id, parties_t.c.code, parties_t.c.kind)
                       .where(parties_t.c.code == actor.party_code)).first()
    if row is None or row.kind != PartyKind.CCAS:
        raise Forbidden()
    return row


# ---------------------------------------------------------------- programmes


@dataclass(frozen=True)
class ProgrammeView:
    id: int
    name: str
    budget_eur_cents: int
    starts_on: dt.date
    ends_on: dt.date
    filieres: tuple[str, ...] | None
    default_validity_days: int
    multi_use: bool
    account_id: int


def create_programme(
    uow: UnitOfWork, actor: Actor, *, name: object, budget: object, starts_on: object,
    ends_on: object, filieres: object = None, default_validity_days: object = 90,
    multi_use: bool = True, idempotency_key: str | None = None,
) -> ProgrammeView:
    """A new aid programme of the acting CCAS, with its own Bou'Sol account. With an
    idempotency key, a repeat returns the first programme (nothing created twice)."""
    name = inputs.text(name, 200, "Nom du programme", required=True, raw_limit=inputs.MEMO_MAX,
                       messages=_WORDS, field="name")
    budget_cents = money.parse_amount(budget)
    starts = parse_date(starts_on, "Début", field="starts_on")
    ends = parse_date(ends_on, "Fin", field="ends_on")
    if ends < starts:
        raise InvalidDate("La fin du programme précède son début.", field="ends_on")
    if not (FIRST_DAY <= starts and ends <= LAST_DAY):
        raise InvalidDate("Dates du programme : entre 2000 et 2100.", field="ends_on")
    allowed = parse_filieres(filieres)
    try:
        days = int(str(default_validity_days))
    except ValueError:
        days = 0
    if not 1 <= days <= VALIDITY_MAX_DAYS:
        raise InvalidInput(f"Validité des bons : de 1 à {VALIDITY_MAX_DAYS} jours.",
                           field="default_validity_days")
    request = {"op": "programme", "name": name, "budget": budget_cents,
               "starts_on": starts.isoformat(), "ends_on": ends.isoformat(),
               "filieres": _filieres_text(allowed), "days": days,
               "multi_use": bool(multi_use)}

    def work(uow: UnitOfWork) -> Created:
        conn = uow.conn
        ccas = _ccas(conn, actor)
        number = parties.next_number(uow, "programme")
        account_id = conn.execute(insert(accounts_t).values(
            party_id=ccas.id, currency=Currency.BSOL.value, purpose=f"programme:{number}",
            label=f"Programme d'aide n° {number} — {name}"[:200], balance=0,
            allow_negative=False, created_at=utcnow(),
        ).returning(accounts_t.c.id)).scalar_one()
        conn.execute(insert(programmes_t).values(
            id=number, ccas_party_id=ccas.id, name=name, budget_eur_cents=budget_cents,
            starts_on=starts, ends_on=ends, filieres=_filieres_text(allowed),
            default_validity_days=days, multi_use=bool(multi_use), account_id=account_id,
            created_at=utcnow(), created_by_user_id=actor.user_id))
        return Created(number)

    created = idempotency.run(uow, actor, idempotency_key, request, Created, work)
    with uow:
        return programme(uow.conn, created.id)


@dataclass(frozen=True)
class Created:
    """What an idempotent creation stored for its replays: the new row's id."""

    id: int


def _programme_row(conn: Connection, programme_id: object, ccas_id: int | None = None):
    if not inputs.is_database_id(programme_id):
        raise NotFound("Programme d'aide introuvable.")
    query = select(programmes_t).where(programmes_t.c.id == programme_id)
    if ccas_id is not None:
        query = query.where(programmes_t.c.ccas_party_id == ccas_id)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound("Programme d'aide introuvable.")
    return row


def programme(conn: Connection, programme_id: int) -> ProgrammeView:
    row = _programme_row(conn, programme_id)
    return ProgrammeView(row.id, row.name, row.budget_eur_cents, row.starts_on, row.ends_on,
                         filieres_of(row.filieres), row.default_validity_days,
                         row.multi_use, row.account_id)


def programmes(conn: Connection, ccas_party_id: int | None = None) -> list[ProgrammeView]:
    query = select(programmes_t.c.id).order_by(programmes_t.c.starts_on.desc(),
                                               programmes_t.c.id.desc())
    if ccas_party_id is not None:
        query = query.where(programmes_t.c.ccas_party_id == ccas_party_id)
    return [programme(conn, pid) for pid in conn.execute(query).scalars()]


@dataclass(frozen=True)
class ProgrammeFigures:
    budget_eur_cents: int
    funded_eur_cents: int  # euros the CCAS exchanged into the programme
    funded_bsol_cents: int  # the Bou'Sols that bought (with the bonus, if it applied)
    granted_cents: int
    granted_count: int
    redeemed_cents: int
    expired_cents: int
    cancelled_cents: int
    outstanding_cents: int  # on vouchers still open
    available_cents: int  # in the programme's account: not yet granted
    single_use_returned_cents: int = 0  # what single-use vouchers' purchases left

    @property
    def budget_left_eur_cents(self) -> int:
        return self.budget_eur_cents - self.funded_eur_cents


def figures(conn: Connection, programme_id: int, *, date_from: dt.date | None = None,
            date_to: dt.date | None = None) -> ProgrammeFigures:
    """The programme's figures; with dates, the flows of that period (Paris days)."""
    row = _programme_row(conn, programme_id)
    start, end = paris_bounds(date_from, date_to)

    def in_period(column):
        conditions = []
        if start is not None:
            conditions.append(column >= start)
        if end is not None:
            conditions.append(column < end)
        return conditions

    # Funding: the exchanges into the programme, net of their reversals.
    # (A reversal's original is looked up by its id: never the set of every exchange.)
    original = entries_t.alias("original")
    reverses_an_exchange = exists().where(original.c.id == entries_t.c.reverses_id,
                                          original.c.kind == "exchange")
    funding = (entries_t.c.kind == "exchange") | (
        (entries_t.c.kind == "reversal") & reverses_an_exchange)
    into_programme = select(postings_t.c.entry_id).where(
        postings_t.c.account_id == row.account_id)
    funded = conn.execute(
        select(func.coalesce(func.sum(postings_t.c.amount), 0))
        .select_from(postings_t.join(entries_t, entries_t.c.id == postings_t.c.entry_id))
        .where(postings_t.c.account_id == row.account_id, funding,
               *in_period(entries_t.c.created_at))
    ).scalar_one()
    # The euros' side of those entries: driven from the programme's own postings (a
    # few), never from the outside world's account, which every exchange touches.
    outside = conn.execute(select(accounts_t.c.id).where(
        accounts_t.c.system_code == SystemAccount.EUR_OUTSIDE.value)).scalar_one()
    funded_eur = conn.execute(
        select(func.coalesce(func.sum(postings_t.c.amount), 0))
        .select_from(postings_t.join(entries_t, entries_t.c.id == postings_t.c.entry_id))
        .where(postings_t.c.account_id == outside, funding,
               postings_t.c.entry_id.in_(into_programme), *in_period(entries_t.c.created_at))
    ).scalar_one()
    granted = conn.execute(
        select(func.coalesce(func.sum(vouchers_t.c.amount_cents), 0), func.count())
        .where(vouchers_t.c.programme_id == programme_id, *in_period(vouchers_t.c.created_at))
    ).one()
    redeemed = conn.execute(
        select(func.coalesce(func.sum(redemptions_t.c.amount_cents), 0))
        .select_from(redemptions_t.join(vouchers_t, vouchers_t.c.id == redemptions_t.c.voucher_id))
        .where(vouchers_t.c.programme_id == programme_id,
               *in_period(redemptions_t.c.created_at))
    ).scalar_one()
    returned = dict(conn.execute(
        select(entries_t.c.kind, func.coalesce(func.sum(postings_t.c.amount), 0))
        .select_from(postings_t.join(entries_t, entries_t.c.id == postings_t.c.entry_id))
        .where(postings_t.c.account_id == row.account_id,
               entries_t.c.kind.in_(("voucher_expiry", "voucher_cancellation",
                                     "voucher_redemption")),
               *in_period(entries_t.c.created_at))
        .group_by(entries_t.c.kind)
    ).all())
    outstanding = conn.execute(
        select(func.coalesce(func.sum(vouchers_t.c.remaining_cents), 0))
        .where(vouchers_t.c.programme_id == programme_id, vouchers_t.c.status == OPEN)
    ).scalar_one()
    available = conn.execute(select(accounts_t.c.balance)
                             .where(accounts_t.c.id == row.account_id)).scalar_one()
    return ProgrammeFigures(
        budget_eur_cents=row.budget_eur_cents, funded_eur_cents=-int(funded_eur),
        funded_bsol_cents=int(funded), granted_cents=int(granted[0]),
        granted_count=int(granted[1]), redeemed_cents=int(redeemed),
        # A single-use voucher's unspent part returns with its redemption: "expired"
        # counts what aged out, "cancelled" what the CCAS withdrew.
        expired_cents=int(returned.get("voucher_expiry", 0)),
        cancelled_cents=int(returned.get("voucher_cancellation", 0)),
        outstanding_cents=int(outstanding), available_cents=int(available),
        single_use_returned_cents=int(returned.get("voucher_redemption", 0)),
    )


# ---------------------------------------------------------------- beneficiaries


def _beneficiary(conn: Connection, ccas_id: int, ref: str, name: str | None) -> int:
    row = conn.execute(select(beneficiaries_t.c.id, beneficiaries_t.c.name)
                       .where(beneficiaries_t.c.ccas_party_id == ccas_id,
                              beneficiaries_t.c.ref == ref,
                              beneficiaries_t.c.erased_at.is_(None))).first()
    if row is not None:
        if name and name != row.name:
            conn.execute(update(beneficiaries_t).where(beneficiaries_t.c.id == row.id)
                         .values(name=name))
        return row.id
    return conn.execute(insert(beneficiaries_t).values(
        ccas_party_id=ccas_id, ref=ref, name=name, created_at=utcnow(),
    ).returning(beneficiaries_t.c.id)).scalar_one()


def parse_ref(value: object) -> str:
    ref = inputs.text(value, REF_MAX, "Référence du bénéficiaire", required=True,
                      raw_limit=inputs.MEMO_MAX, messages=_WORDS)
    if any(c in ref for c in ";,\"'<>") or not ref.strip("."):
        raise InvalidInput("Référence du bénéficiaire : lettres, chiffres, - _ / . seulement.")
    return ref


@dataclass(frozen=True)
class BeneficiaryData:
    ref: str
    name: str | None
    created_at: dt.datetime
    vouchers: list[dict]


def export_beneficiary(conn: Connection, actor: Actor, ref: object) -> BeneficiaryData:
    """Everything the ledger holds about one beneficiary (the right of access)."""
    ccas = _ccas(conn, actor)
    ref = parse_ref(ref)
    row = conn.execute(select(beneficiaries_t).where(
        beneficiaries_t.c.ccas_party_id == ccas.id, beneficiaries_t.c.ref == ref)).first()
    if row is None:
        raise NotFound("Bénéficiaire inconnu.")
    vouchers = conn.execute(
        select(vouchers_t.c.code, vouchers_t.c.amount_cents, vouchers_t.c.remaining_cents,
               vouchers_t.c.status, vouchers_t.c.valid_until, vouchers_t.c.created_at,
               programmes_t.c.name.label("programme"))
        .outerjoin(programmes_t, programmes_t.c.id == vouchers_t.c.programme_id)
        .where(vouchers_t.c.beneficiary_id == row.id).order_by(vouchers_t.c.id)
    ).all()
    return BeneficiaryData(row.ref, row.name, row.created_at, [
        {"code": codes.display(v.code), "programme": v.programme,
         "amount": money.format_plain(v.amount_cents),
         "remaining": money.format_plain(v.remaining_cents), "status": v.status,
         "valid_until": v.valid_until.isoformat(),
         "granted_at": v.created_at.isoformat()} for v in vouchers])


def erase_beneficiary(uow: UnitOfWork, actor: Actor, ref: object) -> str:
    """Erase the name and the reference (the right to erasure). The vouchers and their
    entries stay for the accounts, tied to an anonymous ``<effacé n>`` that no one can
    type (``parse_ref`` refuses < and >); returns it.

    Its vouchers lose their link to a soliste's account, and the idempotency keys of
    their grants and earmarked spending stop pointing at a person (the spending's key
    was the soliste's; the grant's request hash covered the reference and the name).
    Refused while an earmarked voucher is open: unlinked, it would become a bearer
    voucher (``earmarked_voucher_open``; the CCAS cancels it first)."""
    ref = parse_ref(ref)
    with uow:
        conn = uow.conn
        ccas = _ccas(conn, actor)
        row = conn.execute(select(beneficiaries_t.c.id).where(
            beneficiaries_t.c.ccas_party_id == ccas.id, beneficiaries_t.c.ref == ref)
        ).first()
        if row is None:
            raise NotFound("Bénéficiaire inconnu.")
        own = select(vouchers_t.c.id, vouchers_t.c.grant_entry_id,
                     vouchers_t.c.soliste_party_id, vouchers_t.c.status).where(
            vouchers_t.c.beneficiary_id == row.id)
        held = conn.execute(own.with_for_update()).all()
        if any(v.soliste_party_id is not None and v.status == OPEN for v in held):
            raise EarmarkedVoucherOpen()
        earmarked = [v.id for v in held if v.soliste_party_id is not None]
        spent = conn.execute(select(redemptions_t.c.entry_id).where(
            redemptions_t.c.voucher_id.in_(earmarked))).scalars().all() if earmarked else []
        if spent:
            # The soliste's own keys: moved out of its scope (a replay by it finds
            # nothing and meets a closed voucher).
            for key_id in conn.execute(select(keys_t.c.id).where(
                    keys_t.c.entry_id.in_(spent))).scalars().all():
                conn.execute(update(keys_t).where(keys_t.c.id == key_id).values(
                    scope="erased", key=f"erased:{key_id}"))
        grants = [v.grant_entry_id for v in held]
        if grants:
            # The CCAS's keys stay (a replay is a conflict, never a second voucher), but
            # their hash of the reference and name goes.
            conn.execute(update(keys_t).where(keys_t.c.entry_id.in_(grants))
                         .values(request_hash="0" * 64))
        if earmarked:
            conn.execute(update(vouchers_t).where(vouchers_t.c.id.in_(earmarked))
                         .values(soliste_party_id=None))
        if spent:
            # The reports counted these redemptions as the soliste's aid: without the
            # link they are counted as the journal now tells them (docs/reports.md).
            hooks.entries_facts_changed(conn, list(spent))
        anonymous = f"<effacé {row.id}>"  # < and > cannot be typed in a reference
        conn.execute(update(beneficiaries_t).where(beneficiaries_t.c.id == row.id)
                     .values(ref=anonymous, name=None, erased_at=utcnow()))
        uow.commit()
    return anonymous


# ---------------------------------------------------------------- granting


@dataclass(frozen=True)
class VoucherView:
    id: int
    code: str  # displayed, with its check character
    amount_cents: int
    remaining_cents: int
    status: str  # open (valid), redeemed, expired (also open past its date), cancelled
    valid_until: dt.date
    filieres: tuple[str, ...] | None
    multi_use: bool
    programme_id: int | None
    programme_name: str | None
    ccas_name: str
    earmarked: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class GrantLine:
    """One voucher to grant (one line of a batch)."""

    ref: str
    amount_cents: int
    name: str | None = None


def _grant_terms(conn: Connection, ccas_id: int, programme_id: object, valid_until: object,
                 filieres: object):
    """(programme row or None, source account id, validity, filières, multi-use)."""
    today = paris_today()
    prog = None
    if programme_id not in (None, ""):
        prog = _programme_row(conn, programme_id, ccas_id)
        if not prog.starts_on <= today <= prog.ends_on:
            raise InvalidDate(f"Le programme court du {prog.starts_on:%d/%m/%Y} au "
                              f"{prog.ends_on:%d/%m/%Y} : il n'attribue pas de bon "
                              "aujourd'hui.")
        source = prog.account_id
        allowed = filieres_of(prog.filieres)
        multi_use = prog.multi_use
        default_until = today + dt.timedelta(days=prog.default_validity_days)
    else:
        source = conn.execute(select(accounts_t.c.id).where(
            accounts_t.c.party_id == ccas_id, accounts_t.c.currency == "BSOL",
            accounts_t.c.purpose == "main")).scalar_one()
        allowed, multi_use = None, True
        default_until = today + dt.timedelta(days=90)
    until = default_until if valid_until in (None, "") else parse_date(valid_until,
                                                                       "Validité")
    if until < today:
        raise InvalidDate("La date de validité est déjà passée.")
    if until > today + dt.timedelta(days=VALIDITY_MAX_DAYS):
        raise InvalidDate(f"Un bon d'aide vaut {VALIDITY_MAX_DAYS} jours au plus.")
    chosen = parse_filieres(filieres)
    if chosen is not None:
        if allowed is not None and not set(chosen) <= set(allowed):
            raise InvalidInput("Ces filières ne sont pas celles du programme.")
        allowed = chosen
    return prog, source, until, allowed, multi_use


def _insert_voucher(conn: Connection, actor: Actor, *, ccas_id: int, prog, source: int,
                    beneficiary_id: int, soliste_id: int | None, batch_id: int | None,
                    amount_cents: int, until: dt.date, allowed, multi_use: bool,
                    entry_id: int) -> tuple[int, str]:
    for _attempt in range(10):
        body = codes.new_body()
        if conn.execute(select(vouchers_t.c.id).where(vouchers_t.c.code == body)).first():
            continue  # 2⁸⁰ codes: never, in practice
        voucher_id = conn.execute(insert(vouchers_t).values(
            code=body, ccas_party_id=ccas_id, programme_id=prog.id if prog else None,
            source_account_id=source, beneficiary_id=beneficiary_id,
            soliste_party_id=soliste_id, batch_id=batch_id, amount_cents=amount_cents,
            remaining_cents=amount_cents, status=OPEN, valid_until=until,
            filieres=_filieres_text(allowed), multi_use=multi_use, created_at=utcnow(),
            created_by_user_id=actor.user_id, grant_entry_id=entry_id,
        ).returning(vouchers_t.c.id)).scalar_one()
        return voucher_id, body
    raise RuntimeError("no free voucher code")


def _grant_all(uow: UnitOfWork, actor: Actor, lines: list[GrantLine], *, programme_id,
               valid_until, filieres, soliste_code: str | None, batch: bool) -> list[int]:
    """Grant every line in the caller's unit of work: one entry per voucher."""
    conn = uow.conn
    ccas = _ccas(conn, actor)
    prog, source, until, allowed, multi_use = _grant_terms(conn, ccas.id, programme_id,
                                                           valid_until, filieres)
    soliste_id = None
    if soliste_code is not None:
        soliste = conn.execute(select(parties_t.c.id, parties_t.c.kind).where(
            parties_t.c.code == inputs.party_code(soliste_code))).first()
        if soliste is None or soliste.kind != PartyKind.SOLISTE:
            raise UnknownParty("Aucun soliste ne porte ce code.")
        soliste_id = soliste.id
    batch_id = None
    if batch:
        batch_id = conn.execute(insert(batches_t).values(
            ccas_party_id=ccas.id, programme_id=prog.id if prog else None, count=len(lines),
            total_cents=sum(line.amount_cents for line in lines), created_at=utcnow(),
            created_by_user_id=actor.user_id).returning(batches_t.c.id)).scalar_one()
    locked = lock_accounts(conn, system=(SystemAccount.VOUCHERS_OUTSTANDING,),
                           account_ids=(source,))
    source_row = next(r for r in locked.rows if r.id == source)
    outstanding = locked.system(SystemAccount.VOUCHERS_OUTSTANDING)
    total = sum(line.amount_cents for line in lines)
    if total > source_row.balance:
        raise InsufficientFunds(
            ("Le programme" if prog else "Le compte du CCAS")
            + f" n'a que {money.format_fr(source_row.balance, 'B')} : il en faut "
            f"{money.format_fr(total, 'B')}. Faites-le financer au comptoir d'abord.")
    ids = []
    balance = source_row.balance
    for line in lines:
        beneficiary_id = _beneficiary(conn, ccas.id, line.ref, line.name)
        entry_id = post(
            conn, kind="voucher_grant",
            legs=[Leg(_at(source_row, balance), -line.amount_cents),
                  Leg(outstanding, line.amount_cents)],
            actor_user_id=actor.user_id, memo="Bon d'aide attribué",
            details={"programme": prog.id if prog else None},
        )
        balance -= line.amount_cents
        voucher_id, _body = _insert_voucher(
            conn, actor, ccas_id=ccas.id, prog=prog, source=source,
            beneficiary_id=beneficiary_id, soliste_id=soliste_id, batch_id=batch_id,
            amount_cents=line.amount_cents, until=until, allowed=allowed,
            multi_use=multi_use, entry_id=entry_id)
        ids.append(voucher_id)
    return ids


def _at(row, balance: int):
    """The locked account as it stands after the previous lines of a batch."""
    return dataclasses.replace(row, balance=balance)


@dataclass(frozen=True)
class Granted:
    """A grant's outcome in plain values (stored for idempotent replays)."""

    voucher_id: int
    entry_id: int


def grant(uow: UnitOfWork, actor: Actor, *, beneficiary_ref: object, amount: object,
          programme_id: object = None, valid_until: object = None, filieres: object = None,
          beneficiary_name: object = None, soliste_code: object = None,
          idempotency_key: str | None = None) -> VoucherView:
    """A social worker grants one voucher (paper, or earmarked on a soliste's account).

    With an idempotency key, a repeat returns the first voucher (nothing granted twice).
    """
    line = GrantLine(parse_ref(beneficiary_ref), money.parse_amount(amount),
                     inputs.text(beneficiary_name, NAME_MAX, "Nom", field="beneficiary_name",
                                 raw_limit=inputs.MEMO_MAX, messages=_WORDS))
    code = None if soliste_code in (None, "") else str(soliste_code).strip().upper()
    request = {"op": "voucher_grant", "ref": line.ref, "amount": line.amount_cents,
               "name": line.name, "programme": str(programme_id or ""),
               "valid_until": str(valid_until or ""), "filieres": str(filieres or ""),
               "soliste": code}

    def work(uow: UnitOfWork) -> Granted:
        (voucher_id,) = _grant_all(uow, actor, [line], programme_id=programme_id,
                                   valid_until=valid_until, filieres=filieres,
                                   soliste_code=code, batch=False)
        entry_id = uow.conn.execute(select(vouchers_t.c.grant_entry_id)
                                    .where(vouchers_t.c.id == voucher_id)).scalar_one()
        return Granted(voucher_id, entry_id)

    granted = idempotency.run(uow, actor, idempotency_key, request, Granted, work)
    with uow:
        return _view(uow.conn, vouchers_t.c.id == granted.voucher_id)


# ---------------------------------------------------------------- reading vouchers


def _view(conn: Connection, condition) -> VoucherView | None:
    found = _views(conn, condition, limit=1)
    return found[0] if found else None


def _views(conn: Connection, condition, *, limit: int = 500) -> list[VoucherView]:
    ccas = parties_t.alias("ccas")
    rows = conn.execute(
        select(vouchers_t, programmes_t.c.name.label("programme_name"),
               ccas.c.name.label("ccas_name"))
        .outerjoin(programmes_t, programmes_t.c.id == vouchers_t.c.programme_id)
        .join(ccas, ccas.c.id == vouchers_t.c.ccas_party_id)
        .where(condition).order_by(vouchers_t.c.id).limit(limit)
    ).all()
    today = paris_today()
    return [VoucherView(
        id=r.id, code=codes.display(r.code), amount_cents=r.amount_cents,
        remaining_cents=r.remaining_cents,
        status=EXPIRED if r.status == OPEN and r.valid_until < today else r.status,
        valid_until=r.valid_until, filieres=filieres_of(r.filieres), multi_use=r.multi_use,
        programme_id=r.programme_id, programme_name=r.programme_name,
        ccas_name=r.ccas_name, earmarked=r.soliste_party_id is not None,
        created_at=r.created_at) for r in rows]


def lookup(conn: Connection, typed_code: object) -> VoucherView:
    """What a till sees of a voucher: amount, remaining, validity, filières — never who
    it was given to. ``invalid_code`` for a mistyped code, ``not_found`` for unknown."""
    body = codes.parse(typed_code)
    view = _view(conn, vouchers_t.c.code == body)
    if view is None:
        raise NotFound("Aucun bon d'aide ne porte ce code.")
    return view


def vouchers_of_batch(conn: Connection, actor: Actor, batch_id: int) -> list[VoucherView]:
    ccas = _ccas(conn, actor)
    return _views(conn, (vouchers_t.c.batch_id == batch_id)
                  & (vouchers_t.c.ccas_party_id == ccas.id), limit=BATCH_MAX_LINES)


def vouchers_by_ids(conn: Connection, actor: Actor, ids: Iterable[int]) -> list[VoucherView]:
    ccas = _ccas(conn, actor)
    ids = [i for i in ids if inputs.is_database_id(i)]
    return _views(conn, vouchers_t.c.id.in_(ids) & (vouchers_t.c.ccas_party_id == ccas.id))


@dataclass(frozen=True)
class VoucherLine:
    """A voucher in the CCAS's lists: with the beneficiary (CCAS staff only)."""

    view: VoucherView
    beneficiary_ref: str
    beneficiary_name: str | None


def ccas_vouchers(conn: Connection, actor: Actor, *, programme_id: int | None = None,
                  ref: str | None = None, limit: int = 200) -> list[VoucherLine]:
    ccas = _ccas(conn, actor)
    condition = vouchers_t.c.ccas_party_id == ccas.id
    if programme_id is not None:
        condition &= vouchers_t.c.programme_id == programme_id
    if ref:
        condition &= beneficiaries_t.c.ref == ref
    rows = conn.execute(
        select(vouchers_t.c.id, beneficiaries_t.c.ref, beneficiaries_t.c.name)
        .join(beneficiaries_t, beneficiaries_t.c.id == vouchers_t.c.beneficiary_id)
        .where(condition).order_by(vouchers_t.c.id.desc()).limit(limit)
    ).all()
    views = {v.id: v for v in _views(conn, vouchers_t.c.id.in_([r.id for r in rows]))}
    return [VoucherLine(views[r.id], r.ref, r.name) for r in rows]


def earmarked_balance(conn: Connection, party_id: int) -> int:
    """A soliste's earmarked Bou'Sols: what is left on its open, valid vouchers."""
    return int(conn.execute(
        select(func.coalesce(func.sum(vouchers_t.c.remaining_cents), 0))
        .where(vouchers_t.c.soliste_party_id == party_id, vouchers_t.c.status == OPEN,
               vouchers_t.c.valid_until >= paris_today())
    ).scalar_one())


def earmarked_vouchers(conn: Connection, party_id: int) -> list[VoucherView]:
    return _views(conn, (vouchers_t.c.soliste_party_id == party_id)
                  & (vouchers_t.c.status == OPEN))


# ---------------------------------------------------------------- redeeming


@dataclass(frozen=True)
class RedemptionResult:
    entry_id: int
    voucher_code: str
    amount_cents: int
    remaining_cents: int
    status: str
    returned_cents: int  # single use: what the purchase left, back to the programme
    prestataire_code: str


def _locked_voucher(conn: Connection, body: str):
    row = conn.execute(select(vouchers_t).where(vouchers_t.c.code == body)
                       .with_for_update()).first()
    if row is None:
        raise NotFound("Aucun bon d'aide ne porte ce code.")
    return row


def _check_open(row) -> None:
    if row.status != OPEN:
        next_status(row.status, "redeem_part")
    if row.valid_until < paris_today():
        raise VoucherExpired(f"Ce bon d'aide est expiré depuis le "
                             f"{row.valid_until:%d/%m/%Y} : il ne peut plus être accepté.")


def _redeem(uow: UnitOfWork, actor: Actor, row, *, prestataire_code: str,
            amount_cents: int, record_actor: bool = True) -> RedemptionResult:
    conn = uow.conn
    _check_open(row)
    if amount_cents > row.remaining_cents:
        raise AmountExceedsRemaining(
            f"Le bon n'a plus que {money.format_fr(row.remaining_cents, 'B')}.",
            remaining=money.format_plain(row.remaining_cents))
    single_use_rest = 0 if row.multi_use else row.remaining_cents - amount_cents
    system = (SystemAccount.VOUCHERS_OUTSTANDING,)
    locked = lock_accounts(conn, system=system, party_codes=(prestataire_code,),
                           account_ids=(row.source_account_id,) if single_use_rest else ())
    shop = locked.party(prestataire_code)
    if shop.party_kind != PartyKind.PRESTATAIRE:
        raise FlowNotAllowed("Seul un prestataire accepte les bons d'aide.")
    if shop.party_status != "approved":
        raise FlowNotAllowed(f"Le prestataire {prestataire_code} n'est pas agréé : il ne "
                             "peut pas accepter de bons d'aide.")
    allowed = filieres_of(row.filieres)
    if allowed is not None:
        filiere = conn.execute(select(parties_t.c.filiere)
                               .where(parties_t.c.code == prestataire_code)).scalar_one()
        if filiere not in allowed:
            raise FiliereNotAllowed(
                "Ce bon d'aide ne s'utilise que dans ces filières : "
                + ", ".join(allowed) + ".", filieres=list(allowed))
    outstanding = locked.system(SystemAccount.VOUCHERS_OUTSTANDING)
    legs = [Leg(outstanding, -(amount_cents + single_use_rest)), Leg(shop, amount_cents)]
    if single_use_rest:
        source = next(r for r in locked.rows if r.id == row.source_account_id)
        legs.append(Leg(source, single_use_rest))
    display = codes.display(row.code)
    entry_id = post(conn, kind="voucher_redemption", legs=legs,
                    actor_user_id=actor.user_id if record_actor else None,
                    memo=f"Bon d'aide {display}",
                    details={"voucher": display, "returned": single_use_rest})
    conn.execute(insert(redemptions_t).values(
        voucher_id=row.id, prestataire_party_id=conn.execute(
            select(parties_t.c.id).where(parties_t.c.code == prestataire_code)).scalar_one(),
        amount_cents=amount_cents, entry_id=entry_id, created_at=utcnow()))
    remaining = row.remaining_cents - amount_cents - single_use_rest
    status = next_status(OPEN, "redeem_part" if remaining else "redeem_all")
    conn.execute(update(vouchers_t).where(vouchers_t.c.id == row.id)
                 .values(remaining_cents=remaining, status=status,
                         closed_at=None if remaining else utcnow(),
                         close_entry_id=None if remaining else entry_id))
    return RedemptionResult(entry_id, display, amount_cents, remaining, status,
                            single_use_rest, prestataire_code)


def redeem(uow: UnitOfWork, actor: Actor, *, code: object, amount: object,
           idempotency_key: str | None = None) -> RedemptionResult:
    """A prestataire takes a paper voucher for a purchase of ``amount``.

    Refusals: ``invalid_code`` (mistyped), ``not_found``, ``voucher_redeemed``,
    ``voucher_expired``, ``voucher_cancelled``, ``flow_not_allowed`` (not approved),
    ``filiere_not_allowed``, ``amount_exceeds_remaining``. With an idempotency key, a
    second click replays the first redemption.
    """
    actor.require(Role.PRESTATAIRE)
    body = codes.parse(code)
    amount_cents = money.parse_amount(amount)
    request = {"op": "voucher_redemption", "voucher": body, "amount": amount_cents}

    def work(uow: UnitOfWork) -> RedemptionResult:
        row = _locked_voucher(uow.conn, body)
        if row.soliste_party_id is not None:
            raise NotFound("Ce bon d'aide est sur le compte de son bénéficiaire : il le "
                           "dépense lui-même depuis son espace.")
        return _redeem(uow, actor, row, prestataire_code=actor.party_code,
                       amount_cents=amount_cents)

    return idempotency.run(uow, actor, idempotency_key, request, RedemptionResult, work)


def pay_with_earmarked(uow: UnitOfWork, actor: Actor, *, voucher_id: object,
                       payee_code: object, amount: object,
                       idempotency_key: str | None = None) -> RedemptionResult:
    """A soliste spends an earmarked voucher of its own at a prestataire (with a key,
    a second click replays the first payment)."""
    actor.require(Role.SOLISTE)
    payee_code = inputs.party_code(payee_code)
    amount_cents = money.parse_amount(amount)
    voucher_id = inputs.database_id(voucher_id, NotFound("Bon d'aide introuvable."))
    request = {"op": "voucher_spend", "voucher": voucher_id, "payee": payee_code,
               "amount": amount_cents}

    def work(uow: UnitOfWork) -> RedemptionResult:
        conn = uow.conn
        row = conn.execute(select(vouchers_t).where(vouchers_t.c.id == voucher_id)
                           .with_for_update()).first()
        own = conn.execute(select(parties_t.c.id)
                           .where(parties_t.c.code == actor.party_code)).scalar()
        if row is None or row.soliste_party_id is None or row.soliste_party_id != own:
            raise NotFound("Bon d'aide introuvable.")
        # The entry names no actor: the voucher says whose it is while the CCAS keeps
        # the link, and after an erasure nothing should (issue 13).
        return _redeem(uow, actor, row, prestataire_code=payee_code,
                       amount_cents=amount_cents, record_actor=False)

    token = hide_beneficiary_in_audit()
    try:
        return idempotency.run(uow, actor, idempotency_key, request, RedemptionResult,
                               work)
    finally:
        audit.reset_context(token)


def hide_beneficiary_in_audit():
    """Record what follows in the audit trail as "bénéficiaire CCAS", from nowhere: a
    soliste spending its aid (the trail is append-only and outlives an erasure, so it
    must never learn who). Returns the token for ``audit.reset_context``."""
    context = audit.current_context()
    return audit.set_context(audit.Context(None, AID_BENEFICIARY, "—", context.action))


# ---------------------------------------------------------------- cancelling, expiring


def _close_returning(conn: Connection, actor_user_id: int | None, row, action: str,
                     kind: str, memo: str) -> int:
    status = next_status(row.status, action)
    locked = lock_accounts(conn, system=(SystemAccount.VOUCHERS_OUTSTANDING,),
                           account_ids=(row.source_account_id,))
    source = next(r for r in locked.rows if r.id == row.source_account_id)
    entry_id = post(conn, kind=kind,
                    legs=[Leg(locked.system(SystemAccount.VOUCHERS_OUTSTANDING),
                              -row.remaining_cents), Leg(source, row.remaining_cents)],
                    actor_user_id=actor_user_id, memo=memo,
                    details={"voucher": codes.display(row.code)})
    conn.execute(update(vouchers_t).where(vouchers_t.c.id == row.id, vouchers_t.c.status == OPEN)
                 .values(status=status, remaining_cents=0, closed_at=utcnow(),
                         close_entry_id=entry_id))
    return entry_id


def cancel(uow: UnitOfWork, actor: Actor, *, code: object) -> VoucherView:
    """The CCAS withdraws an open voucher: what is left returns where it came from."""
    body = codes.parse(code)
    with uow:
        conn = uow.conn
        ccas = _ccas(conn, actor)
        row = _locked_voucher(conn, body)
        if row.ccas_party_id != ccas.id:
            raise NotFound("Aucun bon d'aide ne porte ce code.")
        _close_returning(conn, actor.user_id, row, "cancel", "voucher_cancellation",
                         f"Bon d'aide {codes.display(body)} annulé")
        view = _view(conn, vouchers_t.c.id == row.id)
        uow.commit()
    return view


@dataclass(frozen=True)
class ExpirySweep:
    expired: int
    returned_cents: int


def expire_due(new_uow: Callable[[], UnitOfWork], *, today: dt.date | None = None
               ) -> ExpirySweep:
    """Close every open voucher whose validity ended before ``today`` (Paris): what is
    left returns to its programme. Idempotent: a second run finds nothing to do. Each
    voucher in its own unit of work, re-checked under its lock (a redemption may have
    closed it meanwhile)."""
    if today is not None and today > paris_today():
        raise InvalidDate("La date d'expiration ne peut pas être dans le futur : les bons "
                          "encore valables resteraient sans effet pour leurs bénéficiaires.")
    today = today or paris_today()
    with new_uow(read_only=True) as uow:
        due = uow.conn.execute(
            select(vouchers_t.c.code).where(vouchers_t.c.status == OPEN,
                                            vouchers_t.c.valid_until < today)
            .order_by(vouchers_t.c.id)).scalars().all()
    count = returned = 0
    for body in due:
        uow = new_uow()
        with uow:
            row = _locked_voucher(uow.conn, body)
            if row.status != OPEN or row.valid_until >= today:
                continue
            remaining = row.remaining_cents
            _close_returning(uow.conn, None, row, "expire", "voucher_expiry",
                             f"Bon d'aide {codes.display(body)} expiré le "
                             f"{row.valid_until:%d/%m/%Y}")
            uow.commit()
        count += 1
        returned += remaining
    return ExpirySweep(count, returned)


def outstanding_total(conn: Connection) -> int:
    """What the open vouchers still hold: verify compares it with the account."""
    return int(conn.execute(
        select(func.coalesce(func.sum(vouchers_t.c.remaining_cents), 0))
        .where(vouchers_t.c.status == OPEN)).scalar_one())


# ---------------------------------------------------------------- what the books consult


def _vouchers_match_the_open_ones(conn) -> Check:
    """The vouchers outstanding in the ledger are what the open vouchers still hold."""
    balance = system_balance(conn, SystemAccount.VOUCHERS_OUTSTANDING)
    held = outstanding_total(conn)
    return Check(
        "bons d'aide en circulation = bons ouverts", balance == held,
        f"compte {money.format_plain(balance)} B, restant sur les bons ouverts "
        f"{money.format_plain(held)} B",
        [] if balance == held
        else [f"écart de {money.format_plain(balance - held)} B entre le compte "
              "et les bons"],
    )


# A voucher's entries follow its state (remaining, status): the CCAS cancels an open
# voucher instead; a redemption is corrected by a new operation with the CCAS.
for _kind, _reason in {
    "voucher_grant": "Un bon d'aide attribué ne se contre-passe pas : annulez le bon.",
    "voucher_redemption": "Un bon d'aide encaissé ne se contre-passe pas.",
    "voucher_expiry": "L'expiration d'un bon d'aide ne se contre-passe pas.",
    "voucher_cancellation": "L'annulation d'un bon d'aide ne se contre-passe pas.",
}.items():
    hooks.irreversible_kind(_kind, _reason)
hooks.invariant(_vouchers_match_the_open_ones)


def _redeeming_merchants(conn, entry_ids: list[int]) -> dict[int, str]:
    """The journal names the merchant who took a voucher, never its beneficiary."""
    redemptions, parties = VoucherRedemption.__table__, Party.__table__
    return dict(conn.execute(
        select(redemptions.c.entry_id, parties.c.name)
        .join(parties, parties.c.id == redemptions.c.prestataire_party_id)
        .where(redemptions.c.entry_id.in_(entry_ids))).all())


# The association's journal shows the aid's movements without their memo (the code)
# and without who spent them; the CCAS staff who granted or cancelled stay named.
hooks.private_kinds(hooks.PrivateKinds(
    kinds=frozenset({"voucher_grant", "voucher_redemption", "voucher_expiry",
                     "voucher_cancellation"}),
    staff_named=frozenset({"voucher_grant", "voucher_cancellation"}),
    counterpart=_redeeming_merchants,
))
