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
from bousol.ledger.books.operations import Tender, _memo, parse_tender
from bousol.ledger.books.posting import Leg, lock_accounts, post
from bousol.ledger.desk import closing
from bousol.ledger.kernel import idempotency, money, settings
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.clock import paris_today  # membership years: the local calendar
from bousol.ledger.kernel.errors import (
    DomainError,
    FeeChanged,
    InvalidInput,
    MembershipChanged,
    UnknownParty,
)
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.models import College, Party, PartyKind, Role, SystemAccount, utcnow

parties_t = Party.__table__
FEE_KEY = "membership.fee_cents"  # the solistes' fee (the first one, kept for its key)
FEE_KEYS = {
    College.SOLISTES: FEE_KEY,
    College.PRESTATAIRES: "membership.fee_cents.prestataires",
    College.ACTEURS_LOCAUX: "membership.fee_cents.acteurs_locaux",
}
# Which college a party of each kind belongs to (local partners without an account,
# the ``partners`` rows, are acteurs locaux too). The association is no member.
_KIND_COLLEGE = {
    PartyKind.SOLISTE: College.SOLISTES,
    PartyKind.PRESTATAIRE: College.PRESTATAIRES,
    PartyKind.CCAS: College.ACTEURS_LOCAUX,
    PartyKind.BANK: College.ACTEURS_LOCAUX,
}
_EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,185}\.[^@\s]{2,}")
DESK_TENDERS = (Tender.CASH, Tender.CHEQUE, Tender.CARD)


def normalise_phone(phone: str | None) -> str | None:
    """Digits only, with a leading + kept (``06 12 34 56 78`` → ``0612345678``)."""
    if phone is None or not phone.strip():
        return None
    text = phone.strip()
    digits = re.sub(r"[\s.\-()]", "", text)
    if not re.fullmatch(r"\+?[0-9]{6,15}", digits):
        raise InvalidInput("Numéro de téléphone invalide (6 à 15 chiffres).")
    return digits


def _optional(value: str | None, limit: int, label: str) -> str | None:
    if value is None or not value.strip():
        return None
    value = _memo(value)
    if value is not None and len(value) > limit:
        raise InvalidInput(f"{label} : {limit} caractères au plus.")
    return value


@dataclass(frozen=True)
class Membership:
    party_code: str
    fee_cents: int
    entry_id: int
    membership_until: dt.date


def college_of(kind: str) -> College | None:
    """The college of a party of this kind (None: the association, not a member)."""
    try:
        return _KIND_COLLEGE.get(PartyKind(kind))
    except ValueError:
        return None


def college_fee_cents(conn: Connection, college: College | str) -> int:
    """The yearly fee of a member of this college, in cents (a dated setting)."""
    key = FEE_KEYS[College(college)]
    return int(settings.current(conn, [key])[key])


def _year_end(today: dt.date) -> dt.date:
    return dt.date(today.year, 12, 31)


def next_until(paid_until: dt.date | None, today: dt.date) -> dt.date:
    """The validity a fee paid ``today`` gives: 31 December of this year, or of the
    year after ``paid_until`` when the membership already runs to this year's end."""
    until = _year_end(today)
    if paid_until is not None and paid_until >= until:
        until = dt.date(paid_until.year + 1, 12, 31)  # paying ahead extends by a year
    return until


def fee_due(conn: Connection, college: College, seen_fee_cents: int | None = None) -> int:
    """The fee to take from a member of ``college``. ``seen_fee_cents``: the fee the
    page showed; if it changed since (an adopted decision, a setting), nothing is
    taken (``fee_changed``): never an amount nobody announced."""
    fee_cents = college_fee_cents(conn, college)
    if seen_fee_cents is not None and seen_fee_cents != fee_cents:
        raise FeeChanged(f"La cotisation vient de changer : {money.format_fr(fee_cents, '€')} "
                         "désormais. Rien n'a été encaissé ni enregistré.")
    if fee_cents == 0:
        raise InvalidInput("La cotisation est à 0 : rien à encaisser.")
    return fee_cents


def post_fee(conn: Connection, actor: Actor, code: str, fee_cents: int, until: dt.date,
             details: dict, *, desk_day: dt.date | None = None) -> int:
    """The fee's one entry: euros from outside to ``fees_income``. ``desk_day``: taken
    at the desk that day, refused once the day is closed (checked under the lock)."""
    locked = lock_accounts(conn, system=(SystemAccount.EUR_OUTSIDE, SystemAccount.FEES_INCOME))
    if desk_day is not None:
        closing.ensure_desk_open(conn, desk_day)
    return post(
        conn, kind="membership_fee",
        legs=[Leg(locked.system(SystemAccount.EUR_OUTSIDE), -fee_cents),
              Leg(locked.system(SystemAccount.FEES_INCOME), fee_cents)],
        actor_user_id=actor.user_id, memo=f"Cotisation {until.year} — {code}",
        details=details,
    )


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
        desk_day=today)
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
    phone = normalise_phone(phone)
    email = _optional(email, 200, "Courriel")
    if email is not None and not _EMAIL_RE.fullmatch(email):
        raise InvalidInput("Adresse électronique invalide.")
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


