"""Members and colleges (issue 7): who is a member of which college, the local partners
without an account, the fee they pay the association, the members whose membership
lapses this month and the reminder e-mail sent to them. The rules are in
docs/members.md.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, and_, case, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from bousol.ledger.access.parties import next_number
from bousol.ledger.association.fees import (
    college_fee_cents,
    college_of,
    fee_due,
    next_until,
    post_fee,
)
from bousol.ledger.association.models import College, Partner, PartnerCategory
from bousol.ledger.books.models import Account, Entry, Party, PartyKind, Posting, SystemAccount
from bousol.ledger.books.operations import Tender, parse_tender
from bousol.ledger.kernel import inputs, mail, money
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import InvalidInput, MembershipChanged, UnknownParty
from bousol.ledger.kernel.models import MailMessage, utcnow
from bousol.ledger.kernel.rows import Rows
from bousol.ledger.kernel.text import N_, sort_name
from bousol.ledger.kernel.uow import UnitOfWork

__all__ = ["college_of"]  # re-exported: the college of a party kind

parties_t, partners_t, mails_t = Party.__table__, Partner.__table__, MailMessage.__table__
accounts_t, entries_t, postings_t = Account.__table__, Entry.__table__, Posting.__table__

PARTNER_PREFIX = "L"
PARTNER_COUNTER = "partner:L"
# The members whose fee the association records: solistes, prestataires, CCAS, banks (the
# association itself is no member).
_MEMBER_PREFIXES = "SPCB"
# Tenders the association receives itself, away from the desk's drawer.
ASSOCIATION_TENDERS = (Tender.TRANSFER, Tender.CHEQUE)
REMINDER_KIND = "membership_reminder"
SIGNATURE = ("L'Association pour la Promotion de la Monnaie Citoyenne du Boulonnais "
             "(APMC)\nBou'Sol, la monnaie locale du Boulonnais")


class MemberStatus(enum.StrEnum):
    CURRENT = "current"  # valid beyond this month
    LAPSING = "lapsing"  # valid until a day of this month, today included
    EXPIRED = "expired"  # ended before today
    NEVER = "never"  # no fee ever recorded


MEMBER_STATUS_LABELS = {
    MemberStatus.CURRENT: N_("à jour"),
    MemberStatus.LAPSING: N_("expire ce mois-ci"),
    MemberStatus.EXPIRED: N_("expirée"),
    MemberStatus.NEVER: N_("jamais cotisé"),
}

# Prestataires become members once approved (they signed the charter); applicants in
# draft, submitted or refused are not, unless they paid a fee.
MEMBER_PRESTATAIRE_STATUSES = ("approved", "suspended")


# ------------------------------------------------------------------ dates


def month_bounds(today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and the last day of ``today``'s month."""
    first = today.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def period_of(today: dt.date) -> str:
    return f"{today.year:04d}-{today.month:02d}"


def status_of(until: dt.date | None, today: dt.date) -> MemberStatus:
    if until is None:
        return MemberStatus.NEVER
    if until < today:
        return MemberStatus.EXPIRED
    if until <= month_bounds(today)[1]:
        return MemberStatus.LAPSING
    return MemberStatus.CURRENT


# ------------------------------------------------------------------ the members


@dataclass(frozen=True)
class Member:
    source: str  # "party" or "partner"
    id: int
    code: str
    name: str
    college: College
    membership_until: dt.date | None
    status: MemberStatus
    email: str | None
    party_kind: str | None = None  # soliste, prestataire, ccas, bank (parties)
    category: str | None = None  # collectivite, credit_municipal… (partners)
    contact_name: str | None = None
    sort_name: str = field(default="", compare=False)  # the order within the college

    @property
    def recipient_key(self) -> str:
        return f"{self.source}:{self.id}"


# A page of the members' list (docs/members.md, "Order, pages and counts").
PAGE_SIZE = 100
_COLLEGE_ORDER = list(College)


def _pattern(text: str) -> str:
    needle = text.strip().lower()
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _status_rule(until, status: MemberStatus, today: dt.date):
    """status_of() as a range of ``membership_until``: an index serves it."""
    last = month_bounds(today)[1]
    if status == MemberStatus.NEVER:
        return until.is_(None)
    if status == MemberStatus.EXPIRED:
        return until < today
    if status == MemberStatus.LAPSING:
        return and_(until >= today, until <= last)
    return until > last


def _status_case(until, today: dt.date):
    """status_of() in SQL (the counts)."""
    last = month_bounds(today)[1]
    return case((until.is_(None), MemberStatus.NEVER.value),
                (until < today, MemberStatus.EXPIRED.value),
                (until <= last, MemberStatus.LAPSING.value),
                else_=MemberStatus.CURRENT.value)


def _party_rule(college: College):
    """Which parties are members of ``college`` (docs/members.md, "Who is listed")."""
    kind, until = parties_t.c.kind, parties_t.c.membership_until
    if college == College.SOLISTES:
        return kind == PartyKind.SOLISTE
    if college == College.PRESTATAIRES:
        return (kind == PartyKind.PRESTATAIRE) & (
            parties_t.c.status.in_(MEMBER_PRESTATAIRE_STATUSES) | until.is_not(None))
    return kind.in_((PartyKind.CCAS, PartyKind.BANK)) & until.is_not(None)


@dataclass(frozen=True)
class _Wanted:
    college: College | None = None
    status: MemberStatus | None = None
    text: str | None = None
    until_between: tuple[dt.date, dt.date] | None = None


def _wanted(college: str | None, text: str | None, status: str | None) -> _Wanted:
    return _Wanted(College(college) if college else None,
                   MemberStatus(status) if status else None,
                   text.strip() if text and text.strip() else None)


_PARTY_COLUMNS = (parties_t.c.id, parties_t.c.code, parties_t.c.name, parties_t.c.sort_name,
                  parties_t.c.kind, parties_t.c.email, parties_t.c.contact_name,
                  parties_t.c.membership_until)
_PARTNER_COLUMNS = (partners_t.c.id, partners_t.c.code, partners_t.c.name,
                    partners_t.c.sort_name, partners_t.c.category, partners_t.c.email,
                    partners_t.c.contact_name, partners_t.c.membership_until)


def _source_rows(conn: Connection, college: College, partners: bool, wanted: _Wanted,
                 after: tuple[str, str] | None, forward: bool, limit: int | None,
                 today: dt.date) -> list[Member]:
    """One college's members from one table (parties, or partners), in the list's
    order (or the reverse), strictly past ``after`` = (sort_name, code): a range of the
    index (kind, sort_name, code), or (sort_name, code) for partners."""
    table = partners_t if partners else parties_t
    filters = [] if partners else [_party_rule(college)]
    until = table.c.membership_until
    if wanted.status is not None:
        filters.append(_status_rule(until, wanted.status, today))
    if wanted.until_between is not None:
        filters.append(until.between(*wanted.until_between))
    if wanted.text is not None:
        matches = [table.c.sort_name.like(_pattern(sort_name(wanted.text)), escape="\\")]
        if wanted.text.isascii():  # codes are upper-case ASCII: lower(code) LIKE needle
            matches.append(table.c.code.like(_pattern(wanted.text).upper(), escape="\\"))
        filters.append(or_(*matches))
    key = tuple_(table.c.sort_name, table.c.code)
    if after is not None:
        filters.append(key > tuple_(*after) if forward else key < tuple_(*after))
    order = ((table.c.sort_name, table.c.code) if forward
             else (table.c.sort_name.desc(), table.c.code.desc()))
    # The page's codes first, from the index alone (every filter reads only its
    # columns: no row is visited for the members a filter leaves out), then their rows.
    codes = select(table.c.code).where(*filters).order_by(*order)
    if limit is not None:
        codes = codes.limit(limit)
    query = select(*(_PARTNER_COLUMNS if partners else _PARTY_COLUMNS)).where(
        table.c.code.in_(codes)).order_by(*order)
    found = []
    for row in conn.execute(query):
        status = status_of(row.membership_until, today)
        if partners:
            found.append(Member("partner", row.id, row.code, row.name, college,
                                row.membership_until, status, row.email,
                                category=row.category, contact_name=row.contact_name,
                                sort_name=row.sort_name))
        else:
            found.append(Member("party", row.id, row.code, row.name, college,
                                row.membership_until, status, row.email,
                                party_kind=row.kind, contact_name=row.contact_name,
                                sort_name=row.sort_name))
    return found


Position = tuple[int, str, str]  # (the college's rank, sort_name, code)


def _walk(conn: Connection, wanted: _Wanted, position: Position | None, forward: bool,
          limit: int | None, today: dt.date) -> list[Member]:
    """Up to ``limit`` members strictly after (``forward``) or before ``position``, in
    the list's order or its reverse: college by college, each a keyset range query
    (the acteurs locaux: the CCAS and bank parties merged with the partners)."""
    ranks = [rank for rank, college in enumerate(_COLLEGE_ORDER)
             if wanted.college in (None, college)]
    if not forward:
        ranks.reverse()
    found: list[Member] = []
    for rank in ranks:
        if position is not None and (rank < position[0] if forward else rank > position[0]):
            continue
        college = _COLLEGE_ORDER[rank]
        after = position[1:] if position is not None and rank == position[0] else None
        need = None if limit is None else limit - len(found)
        rows = _source_rows(conn, college, False, wanted, after, forward, need, today)
        if college == College.ACTEURS_LOCAUX:
            rows += _source_rows(conn, college, True, wanted, after, forward, need, today)
            rows.sort(key=lambda m: (m.sort_name, m.code), reverse=not forward)
        found += rows if need is None else rows[:need]
        if limit is not None and len(found) >= limit:
            break
    return found


def _position(conn: Connection, cursor: object) -> Position | None:
    """Where a member stands in the list, from its code (a page's cursor); None for
    anything else (an unknown code, garbage: the list starts again at its first page)."""
    if not isinstance(cursor, str) or len(cursor) > 32:
        return None
    code = cursor.strip().upper()
    if inputs.is_party_code(code, PARTNER_PREFIX):
        found = conn.execute(select(partners_t.c.sort_name).where(
            partners_t.c.code == code)).first()
        college: College | None = College.ACTEURS_LOCAUX
    elif inputs.is_party_code(code, _MEMBER_PREFIXES):
        found = conn.execute(select(parties_t.c.sort_name, parties_t.c.kind).where(
            parties_t.c.code == code)).first()
        college = college_of(found.kind) if found is not None else None
    else:
        return None
    if found is None or college is None or found.sort_name is None:
        return None
    return _COLLEGE_ORDER.index(college), found.sort_name, code


def _position_of(member: Member) -> Position:
    return _COLLEGE_ORDER.index(member.college), member.sort_name, member.code


def members(conn: Connection, college: str | None = None, text: str | None = None,
            status: str | None = None, *, today: dt.date | None = None) -> list[Member]:
    """Every member, by college then name: solistes, prestataires (approved or
    suspended, or who ever paid), the CCAS and the bank when they have a membership,
    and the local partners. Filters: a college, a status, a text in the code or name
    (accents and case ignored). The whole list: pages use :func:`members_page`."""
    today = today or paris_today()
    return _walk(conn, _wanted(college, text, status), None, True, None, today)


@dataclass(frozen=True)
class MembersPage:
    members: list[Member]
    next_after: str | None  # the cursor of the next page (its last code), if any
    previous_before: str | None  # the cursor of the previous page (its first code)


def members_page(conn: Connection, college: str | None = None, text: str | None = None,
                 status: str | None = None, *, after: object = None, before: object = None,
                 limit: int = PAGE_SIZE, today: dt.date | None = None) -> MembersPage:
    """A page of :func:`members`: the ``limit`` members after the member ``after``
    (a code), or the ``limit`` before ``before``; neither, or a cursor that names no
    member, gives the first page. Keyset pagination (no OFFSET): each page costs the
    same wherever it is in the list."""
    today = today or paris_today()
    wanted = _wanted(college, text, status)
    limit = max(1, limit)
    page: list[Member] = []
    more_after = more_before = False
    back = _position(conn, before) if before else None
    if back is not None:
        rows = _walk(conn, wanted, back, False, limit + 1, today)
        if len(rows) > limit:  # a full page with more before it
            page, more_before = rows[:limit][::-1], True
            more_after = bool(_walk(conn, wanted, _position_of(page[-1]), True, 1, today))
    start = _position(conn, after) if after and back is None else None
    if start is not None:
        rows = _walk(conn, wanted, start, True, limit + 1, today)
        if rows:
            page, more_after = rows[:limit], len(rows) > limit
            more_before = bool(_walk(conn, wanted, _position_of(page[0]), False, 1, today))
    if not page:  # the first page (no cursor, a bad one, or one before the start)
        rows = _walk(conn, wanted, None, True, limit + 1, today)
        page, more_after, more_before = rows[:limit], len(rows) > limit, False
    return MembersPage(page, page[-1].code if more_after else None,
                       page[0].code if more_before else None)


@dataclass
class CollegeCount:
    college: College
    total: int = 0
    by_status: dict[MemberStatus, int] = field(
        default_factory=lambda: dict.fromkeys(MemberStatus, 0))


def counts(conn: Connection, *, today: dt.date | None = None) -> list[CollegeCount]:
    """How many members each college has, by status: one GROUP BY over the parties (an
    index-only scan of (kind, membership_until, status)) and one over the partners."""
    today = today or paris_today()
    tally = {college: CollegeCount(college) for college in College}
    ranked = select(parties_t.c.kind.label("kind"),
                    _status_case(parties_t.c.membership_until, today).label("status")
                    ).where(or_(*(_party_rule(c) for c in College))).subquery()
    for kind, status, number in conn.execute(
            select(ranked.c.kind, ranked.c.status, func.count())
            .group_by(ranked.c.kind, ranked.c.status)):
        college = college_of(kind)
        if college is None:
            continue
        tally[college].total += number
        tally[college].by_status[MemberStatus(status)] += number
    ranked = select(_status_case(partners_t.c.membership_until, today).label("status")
                    ).subquery()
    for status, number in conn.execute(select(ranked.c.status, func.count())
                                       .group_by(ranked.c.status)):
        tally[College.ACTEURS_LOCAUX].total += number
        tally[College.ACTEURS_LOCAUX].by_status[MemberStatus(status)] += number
    return list(tally.values())


def lapsing(conn: Connection, today: dt.date | None = None) -> list[Member]:
    """Members whose membership ends in ``today``'s month (Europe/Paris), whether the
    day is still to come or already past; those that ended in an earlier month are
    not here (status ``expired`` on the members list). A date range (the index on
    (kind, membership_until)), never every member."""
    today = today or paris_today()
    return _walk(conn, _Wanted(until_between=month_bounds(today)), None, True, None, today)


# ------------------------------------------------------------------ partners


@dataclass(frozen=True)
class PartnerFields:
    name: str
    category: str
    contact_name: str | None
    email: str | None
    phone: str | None
    address: str | None
    commune: str | None


def _text(value: str | None, limit: int, label: str, name: str) -> str | None:
    """A trimmed optional text (blank → None), printable, at most ``limit`` long;
    InvalidInput names the field (``details["field"]``). Its characters are checked
    before its blankness (a lone tab is refused, not taken as empty)."""
    return inputs.text(value, limit, label, field=name, blank_first=False)


def _partner_fields(name, category, contact_name, email, phone, address,
                    commune) -> PartnerFields:
    name = _text(name, 200, "Nom", "name")
    if not name:
        raise InvalidInput("Nom obligatoire (200 caractères au plus).", field="name")
    try:
        category = PartnerCategory(category).value
    except ValueError:
        raise InvalidInput("Catégorie inconnue : collectivité, Crédit Municipal, réseau de "
                           "l'ESS ou autre acteur local.", field="category") from None
    email = inputs.email(_text(email, 200, "Courriel", "email"), field="email")
    phone = inputs.phone(phone, field="phone")
    return PartnerFields(name, category, _text(contact_name, 200, "Contact", "contact_name"),
                         email, phone, _text(address, 300, "Adresse", "address"),
                         _text(commune, 100, "Commune", "commune"))


def create_partner(uow: UnitOfWork, actor: Actor, name: str, category: str,
                   contact_name: str | None = None, email: str | None = None,
                   phone: str | None = None, address: str | None = None,
                   commune: str | None = None) -> str:
    """A local partner, member of the acteurs-locaux college; returns its code."""
    actor.require(Role.ADMIN)
    fields = _partner_fields(name, category, contact_name, email, phone, address, commune)
    with uow:
        number = next_number(uow, PARTNER_COUNTER)
        code = f"{PARTNER_PREFIX}-{number:06d}"
        uow.conn.execute(insert(partners_t).values(
            code=code, created_at=utcnow(), created_by_user_id=actor.user_id,
            sort_name=sort_name(fields.name), **fields.__dict__))
        uow.commit()
    return code


def update_partner(uow: UnitOfWork, actor: Actor, code: str, name: str, category: str,
                   contact_name: str | None = None, email: str | None = None,
                   phone: str | None = None, address: str | None = None,
                   commune: str | None = None) -> None:
    """New details for a partner (its code and membership do not change here)."""
    actor.require(Role.ADMIN)
    fields = _partner_fields(name, category, contact_name, email, phone, address, commune)
    with uow:
        done = uow.conn.execute(update(partners_t).where(partners_t.c.code == code)
                                .values(sort_name=sort_name(fields.name), **fields.__dict__))
        if done.rowcount != 1:
            raise UnknownParty("Partenaire inconnu.")
        uow.commit()


def partner(conn: Connection, code: str):
    return conn.execute(select(partners_t).where(partners_t.c.code == code)).first()


def partners(conn: Connection) -> Rows:
    return conn.execute(select(partners_t).order_by(partners_t.c.name)).all()


# ------------------------------------------------------------------ fees


@dataclass(frozen=True)
class FeeRecorded:
    code: str
    fee_cents: int
    entry_id: int
    membership_until: dt.date


@dataclass(frozen=True)
class FeeLine:
    entry_id: int
    created_at: dt.datetime
    memo: str | None
    fee_cents: int
    paid_by: str  # cash, cheque, card (the desk) or transfer, cheque (the association)
    received_by: str  # "desk" or "association"
    until: str | None
    reversed: bool


def fee_history(conn: Connection, code: str) -> list[FeeLine]:
    """The fees recorded for a member (at the desk or by the association), newest
    first: found by the entry's memo, "Cotisation <year> — <code>"."""
    fees_income = conn.execute(select(accounts_t.c.id).where(
        accounts_t.c.system_code == SystemAccount.FEES_INCOME)).scalar_one()
    reversal = entries_t.alias("reversal")
    rows = conn.execute(
        select(entries_t.c.id, entries_t.c.created_at, entries_t.c.memo,
               entries_t.c.details, postings_t.c.amount,
               reversal.c.id.label("reversed_by"))
        .join(postings_t, (postings_t.c.entry_id == entries_t.c.id)
              & (postings_t.c.account_id == fees_income))
        .outerjoin(reversal, reversal.c.reverses_id == entries_t.c.id)
        .where(entries_t.c.kind == "membership_fee",
               entries_t.c.memo.like(f"Cotisation % — {code}"))
        .order_by(entries_t.c.id.desc())
    ).all()
    lines = []
    for row in rows:
        try:
            details = json.loads(row.details or "{}")
        except ValueError:
            details = {}
        at_desk = "tender" in details
        lines.append(FeeLine(row.id, row.created_at, row.memo, int(row.amount),
                             str(details.get("tender" if at_desk else "paid_by", "")),
                             "desk" if at_desk else "association", details.get("until"),
                             row.reversed_by is not None))
    return lines


def _association_tender(value: object) -> Tender:
    tender = parse_tender(value)
    if tender not in ASSOCIATION_TENDERS:
        raise InvalidInput("Reçue par l'association : virement ou chèque.", field="tender")
    return tender


def record_fee(uow: UnitOfWork, actor: Actor, code: str, tender: str, *,
               today: dt.date | None = None, seen_until: object = ...,
               seen_fee_cents: int | None = None) -> FeeRecorded:
    """A yearly fee the association received itself (a transfer to its account, a
    cheque sent to the treasurer): a partner (``L-…``) or a member party (soliste,
    prestataire, CCAS, bank). One ``membership_fee`` entry, euros from outside to
    ``fees_income``; the validity extends as at the desk. Not the desk's drawer: no
    ``tender`` in the entry's details (the cash closing counts only the desk's), and
    no check that the desk's day is open.

    ``seen_until``: the validity the treasurer was shown; if it changed meanwhile (a
    second click), nothing is recorded (``membership_changed``)."""
    actor.require(Role.ADMIN)
    tender_value = _association_tender(tender)
    today = today or paris_today()
    code = (code or "").strip().upper() if isinstance(code, str) else ""
    is_partner = inputs.is_party_code(code, PARTNER_PREFIX)
    if not is_partner and not inputs.is_party_code(code, _MEMBER_PREFIXES):
        raise UnknownParty()
    table = partners_t if is_partner else parties_t
    with uow:
        columns = [table.c.id, table.c.membership_until]
        if not is_partner:
            columns.append(table.c.kind)
        row = uow.conn.execute(  # locked: two clicks at once, the second sees the first
            select(*columns).where(table.c.code == code).with_for_update()).first()
        if row is None:
            raise UnknownParty()
        college = College.ACTEURS_LOCAUX if is_partner else college_of(row.kind)
        if college is None:
            raise UnknownParty()
        if seen_until is not ... and row.membership_until != seen_until:
            raise MembershipChanged()
        fee_cents = fee_due(uow.conn, college, seen_fee_cents)
        until = next_until(row.membership_until, today)
        entry_id = post_fee(
            uow.conn, actor, code, fee_cents, until,
            {"paid_by": tender_value.value, "received_by": "association", "member": code,
             "college": college.value, "until": until.isoformat()})
        uow.conn.execute(update(table).where(table.c.id == row.id)
                         .values(membership_until=until))
        uow.commit()
    return FeeRecorded(code, fee_cents, entry_id, until)


def record_partner_fee(uow: UnitOfWork, actor: Actor, partner_code: str, tender: str, *,
                       today: dt.date | None = None,
                       seen_until: object = ..., seen_fee_cents: int | None = None
                       ) -> FeeRecorded:
    """A partner's yearly fee (acteurs locaux), by transfer or cheque."""
    actor.require(Role.ADMIN)
    if not (isinstance(partner_code, str)
            and inputs.is_party_code(partner_code.strip().upper(), PARTNER_PREFIX)):
        raise UnknownParty("Partenaire inconnu.")
    return record_fee(uow, actor, partner_code, tender, today=today, seen_until=seen_until,
                      seen_fee_cents=seen_fee_cents)


# ------------------------------------------------------------------ reminders


def reminder_text(member: Member, fee_cents: int, today: dt.date) -> tuple[str, str]:
    """The reminder's subject and body (French, plain text)."""
    until = member.membership_until
    assert until is not None
    ends = until.strftime("%d/%m/%Y")
    renewed = next_until(until, today).strftime("%d/%m/%Y")
    fee = money.format_fr(fee_cents, "€")
    past = until < today
    if member.source == "partner":
        greeting = f"Bonjour {member.contact_name}," if member.contact_name else "Bonjour,"
        whose = f"L'adhésion de {member.name} (code {member.code})"
    else:
        greeting = f"Bonjour {member.name},"
        whose = f"Votre adhésion (code {member.code})"
    subject = (f"Votre adhésion au Bou'Sol a pris fin le {ends}" if past
               else f"Votre adhésion au Bou'Sol prend fin le {ends}")
    college = {College.SOLISTES: "solistes", College.PRESTATAIRES: "prestataires",
               College.ACTEURS_LOCAUX: "acteurs locaux"}[member.college]
    ways = []
    if member.source == "party" and member.party_kind in (PartyKind.SOLISTE,
                                                          PartyKind.PRESTATAIRE):
        ways.append("- au comptoir du Crédit Municipal de Boulogne-sur-Mer, en espèces, "
                    "par chèque ou par carte bancaire ;")
    ways.append(f"- par virement sur le compte de l'association, avec votre code "
                f"{member.code} en référence (répondez à ce message pour recevoir notre RIB) ;")
    ways.append("- par chèque à l'ordre de l'APMC, envoyé à l'association, avec votre "
                "code au dos.")
    body = "\n".join([
        greeting,
        "",
        f"{whose} à l'association du Bou'Sol "
        f"{'a pris fin' if past else 'prend fin'} le {ends}.",
        "",
        f"Pour la renouveler, la cotisation annuelle du collège des {college} est de {fee}. "
        "Vous pouvez la régler :",
        *ways,
        "",
        f"Une cotisation réglée ce mois-ci rend l'adhésion valable jusqu'au {renewed}.",
        "",
        "Merci de faire vivre la monnaie locale du Boulonnais !",
        "",
        "Bien cordialement,",
        "",
        SIGNATURE,
        "",
    ])
    return subject, body


@dataclass
class ReminderRun:
    period: str
    sent: list[str] = field(default_factory=list)  # member codes
    failed: list[tuple[str, str]] = field(default_factory=list)  # (code, error)
    already: list[str] = field(default_factory=list)  # reminded earlier this month
    without_email: list[str] = field(default_factory=list)


def sent_this_month(conn: Connection, today: dt.date | None = None) -> Rows:
    """The reminders kept for ``today``'s month, newest first."""
    period = period_of(today or paris_today())
    return conn.execute(
        select(mails_t).where(mails_t.c.kind == REMINDER_KIND, mails_t.c.period == period)
        .order_by(mails_t.c.id.desc())
    ).all()


def messages(conn: Connection, limit: int = 200) -> Rows:
    """Every kept e-mail, newest first."""
    return conn.execute(select(mails_t).order_by(mails_t.c.id.desc()).limit(limit)).all()


# A reminder still pending this long after its claim belongs to a run that died.
STALE_PENDING = dt.timedelta(minutes=15)


def _retryable(status, created_at, now: dt.datetime):
    return or_(status == "failed",
               and_(status == "pending", created_at < now - STALE_PENDING))


def send_reminders(new_uow: Callable[..., UnitOfWork], actor: Actor,
                   today: dt.date | None, mailer: mail.Mailer) -> ReminderRun:
    """Remind every member whose membership lapses this month and has an e-mail.

    1. Claim: one unit of work inserts a ``mail_messages`` row (pending) per member not
       reminded yet this month; the unique key (kind, recipient, period) makes a
       second run, or a second click at the same moment, skip it (each insert in a
       savepoint: a concurrent winner's row makes ours fail alone). A reminder that
       failed, or was left pending for ``STALE_PENDING`` by a run that died, is claimed
       again (a conditional update: one run wins it). Commit.
    2. Deliver each claimed message outside any transaction, then mark it sent or
       failed (the error kept) in a short unit of work of its own; a message that cannot
       even be built (a name no header accepts) fails alone.
    """
    actor.require(Role.ADMIN)
    mail.ensure_ready(mailer)  # refuse before writing anything
    today = today or paris_today()
    period = period_of(today)
    run = ReminderRun(period)
    claimed: list[tuple[int, str, str, str, str, str]] = []
    now = utcnow()
    with new_uow() as uow:
        conn = uow.conn
        due = lapsing(conn, today)
        earlier = {row.recipient_key: row for row in conn.execute(
            select(mails_t.c.id, mails_t.c.recipient_key, mails_t.c.status,
                   mails_t.c.created_at)
            .where(mails_t.c.kind == REMINDER_KIND, mails_t.c.period == period))}
        fees = {college: college_fee_cents(conn, college) for college in College}
        for member in due:
            if not member.email:
                run.without_email.append(member.code)
                continue
            subject, body = reminder_text(member, fees[member.college], today)
            values = {"to_address": member.email, "subject": subject, "body": body,
                      "status": "pending", "transport": mailer.transport, "error": None,
                      "created_at": now, "created_by_user_id": actor.user_id}
            before = earlier.get(member.recipient_key)
            if before is not None:
                # Sent, or being sent by another run right now: nothing to do. Failed, or
                # left pending by a run that died: claim it again (the condition is the
                # claim: of two runs, one updates the row, the other finds it taken).
                retry = _retryable(mails_t.c.status, mails_t.c.created_at, now)
                claimed_again = conn.execute(
                    update(mails_t).where(mails_t.c.id == before.id, retry).values(**values)
                ).rowcount
                if not claimed_again:
                    run.already.append(member.code)
                    continue
                mail_id = before.id
            else:
                try:
                    with conn.begin_nested():  # a savepoint: a lost race fails alone
                        mail_id = conn.execute(insert(mails_t).values(
                            kind=REMINDER_KIND, recipient_key=member.recipient_key,
                            period=period, **values,
                        ).returning(mails_t.c.id)).scalar_one()
                except IntegrityError:  # another run claimed this member meanwhile
                    run.already.append(member.code)
                    continue
            claimed.append((mail_id, member.code, member.name, member.email, subject, body))
        uow.commit()
    for mail_id, code, name, address, subject, body in claimed:
        error = None
        try:  # building too: one bad name must not stop the others
            message = mail.build(mailer, to=mail.display_address(name, address),
                                 subject=subject, body=body)
            mailer.send(message)
        except (mail.DeliveryFailed, ValueError) as failure:
            error = str(failure)[:500] or "échec de l'envoi"
        with new_uow() as uow:
            uow.conn.execute(update(mails_t).where(mails_t.c.id == mail_id).values(
                status="failed" if error else "sent", error=error,
                sent_at=None if error else utcnow()))
            uow.commit()
        if error:
            run.failed.append((code, error))
        else:
            run.sent.append(code)
    return run
