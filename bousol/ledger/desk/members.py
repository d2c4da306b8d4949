"""Members at the desk: registering a soliste and taking the yearly membership fee.

Rules (docs/ledger.md): registering needs a name and the member's acceptance of the
charter; contact details are optional but checked. The fee is the one of the member's
college (docs/members.md): ``membership.fee_cents`` for solistes (3,00 € by default),
``membership.fee_cents.prestataires``, ``membership.fee_cents.acteurs_locaux``. It is
the association's income: one entry, euros from outside to ``fees_income``, its tender
kept in the entry's details for the day's cash count. A membership paid in a year is
valid until 31 December of that year; paying again extends it by a year. Registration
and the first fee are one unit of work.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import Connection, or_, select, update

from bousol.ledger.access import first_login
from bousol.ledger.access.parties import create_member_login, create_party
from bousol.ledger.association.fees import (  # noqa: F401  (the association's rules, which
    FEE_KEY,  # the desk applies; importable from here as before)
    FEE_KEYS,
    _year_end,
    college_fee_cents,
    college_of,
    fee_due,
    next_until,
    post_fee,
)
from bousol.ledger.association.models import College
from bousol.ledger.books.models import Party, PartyKind
from bousol.ledger.books.operations import Tender, parse_tender
from bousol.ledger.desk import closing
from bousol.ledger.kernel import idempotency, inputs
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import paris_today  # membership years: the local calendar
from bousol.ledger.kernel.errors import (
    DomainError,
    InvalidInput,
    MembershipChanged,
    UnknownParty,
)
from bousol.ledger.kernel.models import utcnow
from bousol.ledger.kernel.uow import UnitOfWork

parties_t = Party.__table__
normalise_phone = inputs.phone  # by its old name: the desk's form (bousol/web/desk) calls it
DESK_TENDERS = (Tender.CASH, Tender.CHEQUE, Tender.CARD)


def _optional(value: str | None, limit: int, label: str) -> str | None:
    """A contact detail: cleaned as a memo is (its words), blank is None, at most
    ``limit`` characters once trimmed."""
    return inputs.text(value, limit, label, raw_limit=inputs.MEMO_MAX,
                       messages=inputs.MEMO_WORDS)


@dataclass(frozen=True)
class Membership:
    party_code: str
    fee_cents: int
    entry_id: int
    membership_until: dt.date


def _take_fee(uow: UnitOfWork, actor: Actor, party_code: str, tender: Tender,
              paid_until: dt.date | None, today: dt.date,
              kind: str = PartyKind.SOLISTE, seen_fee_cents: int | None = None) -> Membership:
    college = college_of(kind)
    if college is None:
        raise UnknownParty()
    fee_cents = fee_due(uow.conn, college, seen_fee_cents)
    until = next_until(paid_until, today)
    entry_id = post_fee(
        uow.conn, actor, party_code, fee_cents, until,
        {"tender": tender.value, "party": party_code, "until": until.isoformat()},
        under_lock=lambda conn: closing.ensure_desk_open(conn, today))
    uow.conn.execute(update(parties_t).where(parties_t.c.code == party_code)
                     .values(membership_until=until))
    return Membership(party_code, fee_cents, entry_id, until)


def _tender(value: str) -> Tender:
    tender = parse_tender(value)
    if tender not in DESK_TENDERS:
        raise InvalidInput("À la caisse : espèces, chèque ou carte.")
    return tender


class PossibleDuplicate(DomainError):
    """A soliste with the same name and the same phone or birth date exists: the desk
    shows them and the clerk goes on (``allow_duplicate``) or opens that member."""

    code = "possible_duplicate"
    http_status = 409
    default_message = ("Un adhérent du même nom, avec le même téléphone ou la même date "
                       "de naissance, existe déjà.")


def _name_key(name: str) -> str:
    """Names compared without case, accents, punctuation nor word order."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return " ".join(sorted(re.findall(r"[a-z0-9]+", plain)))


@dataclass(frozen=True)
class Similar:
    code: str
    name: str
    phone: str | None
    birth_date: dt.date | None
    membership_until: dt.date | None


def similar_solistes(conn: Connection, name: str, phone: str | None,
                     birth_date: dt.date | None) -> list[Similar]:
    """Solistes with the same name (``_name_key``) and the same phone or birth date."""
    alike = []
    if phone:
        alike.append(parties_t.c.phone == phone)
    if birth_date:
        alike.append(parties_t.c.birth_date == birth_date)
    if not alike:
        return []
    rows = conn.execute(
        select(parties_t.c.code, parties_t.c.name, parties_t.c.phone,
               parties_t.c.birth_date, parties_t.c.membership_until)
        .where(parties_t.c.kind == PartyKind.SOLISTE, or_(*alike))
        .order_by(parties_t.c.id).limit(200)
    ).all()
    key = _name_key(name)
    return [Similar(*row) for row in rows if _name_key(row.name) == key]


def parse_birth_date(value: object, today: dt.date) -> dt.date | None:
    """Optional; ``JJ/MM/AAAA`` or ISO; from 1 January 1900 to today."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.date):
        day = value
    else:
        text = str(value).strip()
        try:
            if re.fullmatch(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}", text):
                d, m, y = (int(part) for part in text.split("/"))
                day = dt.date(y, m, d)
            else:
                day = dt.date.fromisoformat(text)
        except ValueError:
            raise InvalidInput("Date de naissance invalide (JJ/MM/AAAA).",
                               field="birth_date") from None
    if not dt.date(1900, 1, 1) <= day <= today:
        raise InvalidInput("Date de naissance invalide (JJ/MM/AAAA).", field="birth_date")
    return day


@dataclass(frozen=True)
class _Registered:
    """What the idempotency record keeps (JSON): never the first-password code."""

    party_code: str
    fee_cents: int
    entry_id: int
    membership_until: str
    user_id: int
    username: str
    code_expires_on: str


@dataclass(frozen=True)
class Registration:
    party_code: str
    fee_cents: int
    entry_id: int
    membership_until: dt.date
    username: str
    # The one-time code to choose a first password, in clear: only to the request that
    # registered; None when a second post with the same key replays the first one.
    first_code: str | None
    code_expires_on: dt.date

    @property
    def replayed(self) -> bool:
        return self.first_code is None


def register_soliste(
    uow: UnitOfWork,
    actor: Actor,
    *,
    name: str,
    charter_accepted: bool,
    tender: str,
    phone: str | None = None,
    email: str | None = None,
    address: str | None = None,
    commune: str | None = None,
    birth_date: object = None,
    today: dt.date | None = None,
    idempotency_key: str | None = None,
    allow_duplicate: bool = False,
) -> Registration:
    """A new soliste, their log-in and their first year's membership fee, in one unit
    of work, once per ``idempotency_key`` (a second post replays the first).

    Refused with ``possible_duplicate`` when a soliste of the same name has the same
    phone or birth date, unless ``allow_duplicate`` (the clerk saw them and goes on)."""
    actor.require(Role.BANK, Role.ADMIN)
    if charter_accepted is not True:
        raise InvalidInput("L'adhésion suppose que la personne accepte la charte du Bou'Sol.")
    name = _optional(name, 200, "Nom") or ""
    phone = inputs.phone(phone)
    email = inputs.email(_optional(email, 200, "Courriel"))
    address = _optional(address, 300, "Adresse")
    commune = _optional(commune, 100, "Commune")
    tender_value = _tender(tender)
    today = today or paris_today()
    born = parse_birth_date(birth_date, today)
    issued: dict[int, str] = {}  # user id → the code in clear, for this request only
    request = {"op": "register_soliste", "name": name, "phone": phone, "email": email,
               "address": address, "commune": commune, "tender": tender_value.value,
               "birth_date": born.isoformat() if born else None,
               "allow_duplicate": bool(allow_duplicate)}

    def work(uow: UnitOfWork) -> _Registered:
        conn = uow.conn
        if not allow_duplicate:
            found = similar_solistes(conn, name, phone, born)
            if found:
                raise PossibleDuplicate(codes=[s.code for s in found])
        party = create_party(uow, kind=PartyKind.SOLISTE, name=name)
        conn.execute(
            update(parties_t).where(parties_t.c.id == party.id).values(
                phone=phone, email=email, address=address, commune=commune,
                birth_date=born, charter_accepted_at=utcnow())
        )
        user = create_member_login(uow, party)
        now = utcnow()
        issued[user.user_id] = first_login.issue(conn, user_id=user.user_id,
                                                 actor_user_id=actor.user_id, now=now)
        membership = _take_fee(uow, actor, party.code, tender_value, None, today)
        return _Registered(party.code, membership.fee_cents, membership.entry_id,
                           membership.membership_until.isoformat(), user.user_id,
                           user.username, (now + first_login.CODE_TTL).date().isoformat())

    done = idempotency.run(uow, actor, idempotency_key, request, _Registered, work)
    # The code only if this request's own work is the one that committed (a lost race
    # on the key ran work too, then rolled it back and replays the winner).
    return Registration(done.party_code, done.fee_cents, done.entry_id,
                        dt.date.fromisoformat(done.membership_until), done.username,
                        issued.get(done.user_id),
                        dt.date.fromisoformat(done.code_expires_on))


def renew_membership(uow: UnitOfWork, actor: Actor, *, party_code: str, tender: str,
                     today: dt.date | None = None,
                     seen_until: object = ..., seen_fee_cents: int | None = None
                     ) -> Membership:
    """This year's (or, if paid, next year's) membership fee.

    ``seen_until``: the validity the clerk was shown; if it changed meanwhile (a second
    click, another desk), the fee is refused rather than taken twice."""
    actor.require(Role.BANK, Role.ADMIN)
    tender_value = _tender(tender)
    today = today or paris_today()
    with uow:
        row = uow.conn.execute(
            select(parties_t.c.code, parties_t.c.kind, parties_t.c.membership_until)
            .where(parties_t.c.code == party_code)
            .with_for_update()  # two desks renewing at once: the second sees the first
        ).first()
        if row is None or row.kind not in (PartyKind.SOLISTE, PartyKind.PRESTATAIRE):
            raise UnknownParty()
        if seen_until is not ... and row.membership_until != seen_until:
            raise MembershipChanged()
        membership = _take_fee(uow, actor, party_code, tender_value, row.membership_until,
                               today, row.kind, seen_fee_cents)
        uow.commit()
        return membership


def fee_cents(uow: UnitOfWork, college: College | str = College.SOLISTES) -> int:
    with uow:
        return college_fee_cents(uow.conn, college)


