"""Collegial decisions (issue 7): the management collective, its motions and votes.
No Flask here.

The association has no president: a collegial management collective (collectif de
gestion) drawn from three colleges — solistes, prestataires, acteurs locaux — decides,
one person = one vote. A *seat*
(:class:`~bousol.ledger.association.models.CollectiveMember`) makes a user a voting
member for one college. A *motion* is put to the vote with a closing
date; each member votes once (for, against, abstain) and may change the vote until the
close (the same ``votes`` row, updated). Closing counts the votes per college and
overall, checks the quorum (setting ``decisions.quorum_pct``) and applies the motion's
effect — a setting's new value, a prestataire's approval — in the same transaction,
only when adopted. A motion's status moves only along :data:`TRANSITIONS`::

    open --adopt--> adopted       (closed after its date: quorum reached, for > against)
    open --reject--> rejected     (closed after its date: otherwise)
    open --withdraw--> withdrawn  (by its proposer or an admin, before any vote)

Each write locks the motion row (``FOR UPDATE`` on PostgreSQL; on SQLite every writing
transaction begins with ``BEGIN IMMEDIATE``), so a vote and the close never interleave
and a motion is closed, and its effect applied, once. Rules and why: docs/decisions.md.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, and_, case, exc, func, insert, or_, select, update

from bousol.ledger.association.models import CollectiveMember, College, Motion, Vote
from bousol.ledger.books.models import Party, PartyKind, User
from bousol.ledger.kernel import inputs, settings
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import PARIS, as_utc
from bousol.ledger.kernel.errors import (
    AlreadyInCollective,
    DomainError,
    Forbidden,
    InvalidDate,
    InvalidInput,
    MotionClosed,
    MotionHasVotes,
    MotionNotDue,
    NotInCollective,
    UnknownMotion,
)
from bousol.ledger.kernel.models import SettingChange, utcnow
from bousol.ledger.kernel.states import StateMachine
from bousol.ledger.kernel.text import N_
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.merchants import approval

members_t, motions_t, votes_t = (CollectiveMember.__table__, Motion.__table__,
                                 Vote.__table__)
users_t, parties_t, changes_t = User.__table__, Party.__table__, SettingChange.__table__


class Status(enum.StrEnum):
    OPEN = "open"
    ADOPTED = "adopted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Action(enum.StrEnum):
    ADOPT = "adopt"
    REJECT = "reject"
    WITHDRAW = "withdraw"


# The whole state machine: (from, action) → to. Anything else is ``motion_closed``.
TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.OPEN, Action.ADOPT): Status.ADOPTED,
    (Status.OPEN, Action.REJECT): Status.REJECTED,
    (Status.OPEN, Action.WITHDRAW): Status.WITHDRAWN,
}


class Choice(enum.StrEnum):
    FOR = "for"
    AGAINST = "against"
    ABSTAIN = "abstain"


class Effect(enum.StrEnum):
    NONE = "none"
    SETTING = "setting"
    APPROVAL = "approval"


STATUS_LABELS = {
    Status.OPEN: N_("Vote en cours"),
    Status.ADOPTED: N_("Adoptée"),
    Status.REJECTED: N_("Rejetée"),
    Status.WITHDRAWN: N_("Retirée"),
}

CHOICE_LABELS = {
    Choice.FOR: N_("Pour"),
    Choice.AGAINST: N_("Contre"),
    Choice.ABSTAIN: N_("Abstention"),
}

EFFECT_LABELS = {
    Effect.NONE: N_("Aucun effet automatique (avis, orientation)"),
    Effect.SETTING: N_("Changer un réglage (commission, cotisation, phase…)"),
    Effect.APPROVAL: N_("Agréer un prestataire dont la demande attend une décision"),
}

# What each setting means, in the unit its value is typed in (the proposal form and the
# settings page); a key missing here shows as itself.
SETTING_LABELS = {
    "phase.b2b": N_("Phase B2B : les prestataires paient leurs fournisseurs (on / off)"),
    "phase.ccas": N_("Phase politique publique : aides du CCAS en Bou'Sols (on / off)"),
    "reconversion.fee_bp": N_("Commission de reconversion, en points de base (500 = 5 %)"),
    "membership.fee_cents": N_("Cotisation annuelle d'un soliste, en centimes (300 = 3,00 €)"),
    "membership.fee_cents.prestataires": N_(
        "Cotisation annuelle d'un prestataire, en centimes (2000 = 20,00 €)"),
    "membership.fee_cents.acteurs_locaux": N_(
        "Cotisation annuelle d'un acteur local, en centimes (5000 = 50,00 €)"),
    "decisions.quorum_pct": N_("Quorum des décisions du collectif, en % des membres (50)"),
    "notes.reactivation_fee_bp": N_(
        "Frais de réactivation d'un billet périmé, en points de base (500 = 5 %)"),
    "notes.validity_months": N_("Validité d'un billet réactivé, en mois"),
    "payment_requests.ttl_minutes": N_("Durée d'une demande de paiement en caisse, en minutes"),
    "payment_requests.invoice_ttl_days": N_(
        "Durée d'une demande de paiement sur facture, en jours"),
    "refunds.max_days": N_("Délai pour rembourser un paiement, en jours"),
    "ccas.bonus": N_("Bonification de 5 % sur les Bou'Sols achetés par le CCAS (on / off)"),
    "exchange.bonus_advance_max_cents": N_(
        "Avance maximale du fonds de bonification, en centimes (100000 = 1 000,00 €)"),
    "exchange.approval_above_cents": N_(
        "Échange soumis à une deuxième personne au-delà de, en centimes (50000 = 500,00 €)"),
    "exchange.approval_daily_above_cents": N_(
        "Échanges d'un adhérent par jour soumis à une deuxième personne au-delà de, "
        "en centimes (100000 = 1 000,00 €)"),
}

QUORUM_KEY = "decisions.quorum_pct"
TITLE_MAX = 200
BODY_MAX = 5000
# A vote lasts at least an hour (time to read and vote) and at most a year.
MIN_DURATION = dt.timedelta(hours=1)
MAX_DURATION = dt.timedelta(days=365)

# The college a seat takes by default, from the user's party kind (or role, for the
# bank's clerks, who have no party); an admin without a party names it.
KIND_COLLEGE = {
    PartyKind.SOLISTE.value: College.SOLISTES,
    PartyKind.PRESTATAIRE.value: College.PRESTATAIRES,
    PartyKind.CCAS.value: College.ACTEURS_LOCAUX,
    PartyKind.BANK.value: College.ACTEURS_LOCAUX,
    PartyKind.ASSOCIATION.value: College.ACTEURS_LOCAUX,
}
ROLE_COLLEGE = {
    Role.SOLISTE.value: College.SOLISTES,
    Role.PRESTATAIRE.value: College.PRESTATAIRES,
    Role.CCAS.value: College.ACTEURS_LOCAUX,
    Role.BANK.value: College.ACTEURS_LOCAUX,
}


MACHINE = StateMachine(TRANSITIONS, lambda current, action: MotionClosed(
    _closed_words(current), status=str(current), action=str(action)))


def check_transition(current: str, action: str) -> Status:
    """The status ``action`` leads to from ``current``, or ``motion_closed``."""
    return MACHINE.next(current, action)


def _closed_words(current: str) -> str:
    words = {
        Status.OPEN: "Cette décision est encore soumise au vote.",
        Status.ADOPTED: "Le vote est clos : la décision a été adoptée.",
        Status.REJECTED: "Le vote est clos : la décision a été rejetée.",
        Status.WITHDRAWN: "Cette décision a été retirée : elle n'est plus soumise au vote.",
    }
    try:
        return words[Status(current)]
    except ValueError:
        return MotionClosed.default_message


def setting_label(key: str) -> str:
    return SETTING_LABELS.get(key, key)


# ---------------------------------------------------------------- input


_TIME_RE = re.compile(r"([01]?[0-9]|2[0-3])\s*(?:[:hH]\s*([0-5][0-9])?)?")


def parse_closing(date_text: object, time_text: object) -> dt.datetime:
    """A closing date typed as ``jj/mm/aaaa`` (or ``aaaa-mm-jj``) and ``hh:mm`` (or
    ``18h``, ``18h30``), Paris time, as an aware UTC datetime; ``invalid_date``
    (``details["field"]``: ``closes_on`` or ``closes_time``) otherwise."""
    day = None
    if isinstance(date_text, str):
        for fmt in ("%d/%m/%Y", "%Y-%m-%d"):
            try:
                day = dt.datetime.strptime(date_text.strip(), fmt).date()  # noqa: DTZ007
                break
            except ValueError:
                pass
    if day is None or not 2000 <= day.year <= 2999:  # UTC of year 1 or 9999 overflows
        raise InvalidDate("Date de clôture invalide (jj/mm/aaaa).", field="closes_on")
    match = _TIME_RE.fullmatch(time_text.strip()) if isinstance(time_text, str) else None
    if match is None:
        raise InvalidDate("Heure de clôture invalide (hh:mm, par exemple 18:00).",
                          field="closes_time")
    local = dt.datetime.combine(day, dt.time(int(match[1]), int(match[2] or 0)), PARIS)
    return local.astimezone(dt.UTC)


def _now(now: dt.datetime | None) -> dt.datetime:
    return utcnow() if now is None else as_utc(now)


def _motion_id(motion_id: object) -> int:
    return inputs.database_id(motion_id, UnknownMotion())


def _lock_motion(conn: Connection, motion_id: object):
    """The motion row, locked (FOR UPDATE; SQLite: the unit of work's write lock)."""
    row = conn.execute(
        select(motions_t).where(motions_t.c.id == _motion_id(motion_id)).with_for_update()
    ).first()
    if row is None:
        raise UnknownMotion(f"Aucune décision n° {motion_id}.")
    return row


# ---------------------------------------------------------------- the collective's seats


@dataclass(frozen=True)
class Seat:
    id: int
    user_id: int
    username: str
    role: str
    party_code: str | None
    party_name: str | None
    college: str
    since: dt.datetime


def _seat_query():
    return (select(members_t.c.id, members_t.c.user_id, users_t.c.username, users_t.c.role,
                   parties_t.c.code, parties_t.c.name, members_t.c.college, members_t.c.since)
            .select_from(members_t.join(users_t, users_t.c.id == members_t.c.user_id)
                         .outerjoin(parties_t, parties_t.c.id == users_t.c.party_id))
            .where(members_t.c.until.is_(None)))


def collective(conn: Connection) -> list[Seat]:
    """The current seats, by college (in :class:`College` order), then username."""
    order = case({c.value: i for i, c in enumerate(College)}, value=members_t.c.college)
    rows = conn.execute(_seat_query().order_by(order, users_t.c.username)).all()
    return [Seat(*row) for row in rows]


def seat(conn: Connection, user_id: int | None) -> Seat | None:
    """The user's current seat, or None (not a member of the collective)."""
    if user_id is None:
        return None
    row = conn.execute(_seat_query().where(members_t.c.user_id == user_id)).first()
    return None if row is None else Seat(*row)


def default_college(role: str, party_kind: str | None) -> College | None:
    """The college a user sits in unless told otherwise; None: it must be named."""
    if party_kind is not None and party_kind in KIND_COLLEGE:
        return KIND_COLLEGE[party_kind]
    return ROLE_COLLEGE.get(role)


def add_member(uow: UnitOfWork, actor: Actor, username: str, college: str | None = None, *,
               now: dt.datetime | None = None) -> Seat:
    """Seat ``username`` in the collective (admins only); one current seat per person.

    ``college`` defaults from the user's party (:func:`default_college`); an admin
    without a party must be given one. ``already_in_collective`` when seated already.
    """
    actor.require(Role.ADMIN)
    name = inputs.text(username, 80, "Identifiant", field="username", required=True).lower()
    if college not in (None, ""):
        try:
            college = College(college)
        except ValueError:
            raise InvalidInput("Collège inconnu : solistes, prestataires ou acteurs locaux.",
                               field="college") from None
    else:
        college = None
    now = _now(now)
    with uow:
        conn = uow.conn
        user = conn.execute(
            select(users_t.c.id, users_t.c.role, users_t.c.active, parties_t.c.kind)
            .select_from(users_t.outerjoin(parties_t, parties_t.c.id == users_t.c.party_id))
            .where(users_t.c.username == name)).first()
        if user is None:
            raise InvalidInput(f"Aucun utilisateur ne porte l'identifiant {name}.",
                               field="username")
        if not user.active:
            raise InvalidInput("Ce compte est désactivé : il ne peut pas siéger.",
                               field="username")
        college = college or default_college(user.role, user.kind)
        if college is None:
            raise InvalidInput("Ce compte n'est rattaché à aucun adhérent : choisissez son "
                               "collège.", field="college")
        if seat(conn, user.id) is not None:
            raise AlreadyInCollective(field="username")
        try:
            conn.execute(insert(members_t).values(
                user_id=user.id, college=college.value, since=now,
                added_by_user_id=actor.user_id))
        except exc.IntegrityError:  # seated at the same instant (the partial unique index)
            raise AlreadyInCollective(field="username") from None
        made = seat(conn, user.id)
        uow.commit()
    return made


def remove_member(uow: UnitOfWork, actor: Actor, username: str, *,
                  now: dt.datetime | None = None) -> None:
    """End ``username``'s seat (admins only); the seat's row stays as history. Votes
    already cast on open motions no longer count (see :func:`close`)."""
    actor.require(Role.ADMIN)
    name = inputs.text(username, 80, "Identifiant", field="username", required=True).lower()
    with uow:
        conn = uow.conn
        row = conn.execute(
            select(members_t.c.id)
            .select_from(members_t.join(users_t, users_t.c.id == members_t.c.user_id))
            .where(users_t.c.username == name, members_t.c.until.is_(None))
            .with_for_update()).first()
        if row is None:
            raise NotInCollective(f"{name} ne siège pas au collectif de gestion.")
        conn.execute(update(members_t).where(members_t.c.id == row.id)
                     .values(until=_now(now), removed_by_user_id=actor.user_id))
        uow.commit()


# ---------------------------------------------------------------- motions


def _may_propose(conn: Connection, actor: Actor) -> None:
    if actor.role != Role.ADMIN and seat(conn, actor.user_id) is None:
        raise NotInCollective("Seuls les membres du collectif de gestion et les "
                              "administrateurs proposent des décisions.")


def propose(uow: UnitOfWork, actor: Actor, *, title: object, body: object = None,
            closes_at: dt.datetime, effect: object = Effect.NONE,
            setting_key: object = None, setting_value: object = None,
            prestataire_code: object = None, now: dt.datetime | None = None) -> int:
    """Put a motion to the collective's vote; its id.

    Who: an admin or a current member of the collective (``not_in_collective``).
    ``closes_at``: an aware datetime, one hour to one year from now. ``effect``:
    ``none``; ``setting`` (``setting_key`` one of :data:`settings.DEFAULTS`, the value
    checked now by :func:`settings.validate`, so that an adopted motion always
    applies); ``approval`` (``prestataire_code`` of a prestataire in status
    ``submitted``). Errors name their field in ``details["field"]``.
    """
    now = _now(now)
    title = inputs.text(title, TITLE_MAX, "Titre", field="title", required=True)
    body = inputs.text(body, BODY_MAX, "Exposé des motifs", field="body", multiline=True)
    if not isinstance(closes_at, dt.datetime) or closes_at.tzinfo is None:
        raise InvalidDate("Date de clôture invalide.", field="closes_at")
    closes_at = closes_at.astimezone(dt.UTC)
    if closes_at < now + MIN_DURATION:
        raise InvalidDate("La clôture du vote doit être au moins une heure plus tard que "
                          "maintenant.", field="closes_at")
    if closes_at > now + MAX_DURATION:
        raise InvalidDate("La clôture du vote doit être dans moins d'un an.",
                          field="closes_at")
    try:
        effect = Effect(effect)
    except ValueError:
        raise InvalidInput("Effet inconnu : aucun, réglage ou agrément.",
                           field="effect") from None
    values: dict[str, object] = {"effect": effect.value}
    if effect == Effect.SETTING:
        if not isinstance(setting_key, str) or setting_key not in settings.DEFAULTS:
            raise InvalidInput("Choisissez le réglage à changer dans la liste.",
                               field="setting_key")
        try:
            values["setting_value"] = settings.validate(setting_key, setting_value or "")
        except DomainError as error:
            error.details["field"] = "setting_value"
            raise
        values["setting_key"] = setting_key
    with uow:
        conn = uow.conn
        _may_propose(conn, actor)
        if effect == Effect.APPROVAL:
            values["prestataire_party_id"] = _submitted_prestataire(conn, prestataire_code)
        motion_id = conn.execute(insert(motions_t).values(
            title=title, body=body, closes_at=closes_at, opens_at=now, created_at=now,
            status=Status.OPEN.value, created_by_user_id=actor.user_id, **values,
        ).returning(motions_t.c.id)).scalar_one()
        uow.commit()
    return motion_id


def _submitted_prestataire(conn: Connection, code: object) -> int:
    row = None
    if isinstance(code, str) and 0 < len(code.strip()) <= 16:
        row = conn.execute(select(parties_t.c.id, parties_t.c.kind, parties_t.c.status)
                           .where(parties_t.c.code == code.strip())).first()
    if row is None or row.kind != PartyKind.PRESTATAIRE.value:
        raise InvalidInput("Choisissez le prestataire à agréer dans la liste.",
                           field="prestataire")
    if row.status != approval.Status.SUBMITTED.value:
        raise InvalidInput("Ce prestataire n'attend pas de décision d'agrément : seule une "
                           "demande envoyée peut être soumise au vote.", field="prestataire")
    return row.id


@dataclass(frozen=True)
class Cast:
    motion_id: int
    choice: str
    first: bool  # the member's first vote on this motion
    changed: bool  # a new choice (False: the same choice again, nothing written)


def vote(uow: UnitOfWork, actor: Actor, motion_id: int, choice: object, *,
         now: dt.datetime | None = None) -> Cast:
    """The member's vote: the first inserts the row, a later one changes its choice.

    ``not_in_collective`` for anyone without a current seat; ``motion_closed`` once the
    closing date has passed (closed or not yet) or when the motion is not open.
    """
    try:
        choice = Choice(choice)
    except ValueError:
        raise InvalidInput("Choisissez pour, contre ou abstention.", field="choice") from None
    now = _now(now)
    with uow:
        conn = uow.conn
        row = _lock_motion(conn, motion_id)
        check_transition(row.status, Action.ADOPT)  # still open
        if now >= as_utc(row.closes_at):
            raise MotionClosed("Le vote est clos : la date de clôture est passée.")
        member = seat(conn, actor.user_id)
        if member is None:
            raise NotInCollective()
        mine = conn.execute(select(votes_t.c.id, votes_t.c.choice).where(
            votes_t.c.motion_id == row.id, votes_t.c.user_id == actor.user_id)).first()
        if mine is None:
            # The motion's lock makes a concurrent first vote of the same person wait
            # here and then see this row: one row per person and motion.
            conn.execute(insert(votes_t).values(
                motion_id=row.id, user_id=actor.user_id, college=member.college,
                choice=choice.value, cast_at=now))
            cast = Cast(row.id, choice.value, first=True, changed=True)
        elif mine.choice != choice.value:
            conn.execute(update(votes_t).where(votes_t.c.id == mine.id).values(
                choice=choice.value, college=member.college, changed_at=now))
            cast = Cast(row.id, choice.value, first=False, changed=True)
        else:
            cast = Cast(row.id, choice.value, first=False, changed=False)
        uow.commit()
    return cast


def withdraw(uow: UnitOfWork, actor: Actor, motion_id: int, *,
             now: dt.datetime | None = None) -> None:
    """Its proposer or an admin withdraws an open motion before anybody has voted and
    before its closing date; after a first vote, the vote goes on to its close."""
    now = _now(now)
    with uow:
        conn = uow.conn
        row = _lock_motion(conn, motion_id)
        check_transition(row.status, Action.WITHDRAW)
        if actor.role != Role.ADMIN and (actor.user_id is None
                                         or actor.user_id != row.created_by_user_id):
            raise Forbidden("Seul l'auteur de la proposition ou un administrateur peut la "
                            "retirer.")
        if now >= as_utc(row.closes_at):
            raise MotionClosed("La date de clôture est passée : la décision se clôt, elle "
                               "ne se retire plus.")
        if conn.execute(select(func.count()).select_from(votes_t)
                        .where(votes_t.c.motion_id == row.id)).scalar_one():
            raise MotionHasVotes()
        conn.execute(update(motions_t)
                     .where(motions_t.c.id == row.id, motions_t.c.status == Status.OPEN.value)
                     .values(status=Status.WITHDRAWN.value, closed_at=now,
                             closed_by_user_id=actor.user_id))
        uow.commit()


# ---------------------------------------------------------------- counting


@dataclass(frozen=True)
class Count:
    """Members of the collective (seats) and their votes; ``for_``, ``against`` and
    ``abstain`` are None while the vote is open (only participation is shown)."""

    seats: int
    voted: int
    for_: int | None = None
    against: int | None = None
    abstain: int | None = None

    @property
    def not_voted(self) -> int:
        return self.seats - self.voted

    def as_json(self) -> dict[str, int | None]:
        return {"seats": self.seats, "voted": self.voted, "for": self.for_,
                "against": self.against, "abstain": self.abstain,
                "not_voted": self.not_voted}

    @classmethod
    def from_json(cls, data: dict) -> Count:
        return cls(data["seats"], data["voted"], data["for"], data["against"],
                   data["abstain"])


@dataclass(frozen=True)
class Results:
    final: bool  # False: the vote is open, only participation is known
    colleges: dict[str, Count]  # College value → its count, in College order
    overall: Count
    quorum_pct: int
    quorum_needed: int  # members who must take part (abstaining counts)
    quorum_reached: bool
    adopted: bool | None  # None while open
    discarded: int  # votes of people who no longer sat in the collective at the close

    @property
    def participation_pct(self) -> int | None:
        """Participation in whole per cent, rounded down (None: nobody seated)."""
        seats = self.overall.seats
        return None if seats == 0 else self.overall.voted * 100 // seats

    def as_json(self) -> str:
        return json.dumps({
            "colleges": {c: count.as_json() for c, count in self.colleges.items()},
            **self.overall.as_json(), "quorum_pct": self.quorum_pct,
            "quorum_needed": self.quorum_needed, "quorum_reached": self.quorum_reached,
            "adopted": self.adopted, "discarded": self.discarded,
        }, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Results:
        data = json.loads(text)
        return cls(True, {c.value: Count.from_json(data["colleges"][c.value]) for c in College
                          if c.value in data["colleges"]},
                   Count.from_json(data), data["quorum_pct"], data["quorum_needed"],
                   data["quorum_reached"], data["adopted"], data["discarded"])


def quorum_needed(seats: int, quorum_pct: int) -> int:
    """The least number of members whose taking part reaches ``quorum_pct`` % of the
    seats (rounded up: 50 % of 5 seats is 3 members)."""
    return (seats * quorum_pct + 99) // 100


def _seated_at(at: dt.datetime | None):
    """The seats held at ``at`` (None: now, the current seats)."""
    if at is None:
        return members_t.c.until.is_(None)
    return and_(members_t.c.since <= at,
                or_(members_t.c.until.is_(None), members_t.c.until > at))


def _tally(conn: Connection, motion_id: int, *, final: bool,
           at: dt.datetime | None = None) -> Results:
    """The votes of the members seated at ``at`` (the closing date, for the final count:
    seating or removing someone after the vote ended cannot change its outcome), in the
    college of that seat."""
    seated = _seated_at(at)
    seats = dict(conn.execute(
        select(members_t.c.college, func.count()).where(seated)
        .group_by(members_t.c.college)).all())
    counted = conn.execute(
        select(members_t.c.college, votes_t.c.choice, func.count())
        .select_from(votes_t.join(members_t, and_(members_t.c.user_id == votes_t.c.user_id,
                                                  seated)))
        .where(votes_t.c.motion_id == motion_id)
        .group_by(members_t.c.college, votes_t.c.choice)).all()
    every_vote = conn.execute(select(func.count()).select_from(votes_t)
                              .where(votes_t.c.motion_id == motion_id)).scalar_one()
    by = {(college, choice): n for college, choice, n in counted}

    def count(colleges: list[str]) -> Count:
        numbers = {c: sum(by.get((college, c.value), 0) for college in colleges)
                   for c in Choice}
        voted = sum(numbers.values())
        total = sum(seats.get(college, 0) for college in colleges)
        if not final:
            return Count(total, voted)
        return Count(total, voted, numbers[Choice.FOR], numbers[Choice.AGAINST],
                     numbers[Choice.ABSTAIN])

    colleges = {c.value: count([c.value]) for c in College}
    overall = count([c.value for c in College])
    quorum_pct = int(settings.current(conn, [QUORUM_KEY])[QUORUM_KEY])
    needed = quorum_needed(overall.seats, quorum_pct)
    reached = overall.voted >= needed
    adopted = (reached and overall.for_ > overall.against) if final else None
    return Results(final, colleges, overall, quorum_pct, needed, reached, adopted,
                   every_vote - overall.voted if final else 0)


# ---------------------------------------------------------------- closing


@dataclass(frozen=True)
class Closed:
    motion_id: int
    title: str
    status: str
    results: Results
    effect_note: str | None


def close(uow: UnitOfWork, actor: Actor, motion_id: int, *,
          now: dt.datetime | None = None) -> Closed:
    """Count the votes of a motion whose closing date has passed; adopt it (quorum
    reached and more for than against) or reject it; apply an adopted motion's effect
    in the same transaction. Admins, or the command line's system actor.

    ``motion_not_due`` before the closing date; ``motion_closed`` when already closed
    or withdrawn (a second close changes nothing).
    """
    actor.require(Role.ADMIN)
    now = _now(now)
    with uow:
        conn = uow.conn
        row = _lock_motion(conn, motion_id)
        check_transition(row.status, Action.ADOPT)
        if now < as_utc(row.closes_at):
            raise MotionNotDue()
        results = _tally(conn, row.id, final=True, at=as_utc(row.closes_at))
        status = check_transition(row.status,
                                  Action.ADOPT if results.adopted else Action.REJECT)
        note = _apply(uow, actor, row, now) if results.adopted else _unchanged(row)
        done = conn.execute(
            update(motions_t)
            .where(motions_t.c.id == row.id, motions_t.c.status == Status.OPEN.value)
            .values(status=status.value, closed_at=now, closed_by_user_id=actor.user_id,
                    result=results.as_json(), effect_note=note)).rowcount
        if done != 1:  # the lock made this impossible; a second guard
            raise MotionClosed()
        closed = Closed(row.id, row.title, status.value, results, note)
        uow.commit()
    return closed


def _apply(uow: UnitOfWork, actor: Actor, row, now: dt.datetime) -> str | None:
    """The adopted motion's effect, in the closing transaction; what it did, in words."""
    conn = uow.conn
    if row.effect == Effect.SETTING:
        before = settings.current(conn, [row.setting_key])[row.setting_key]
        try:
            settings.change(conn, row.setting_key, row.setting_value, user_id=actor.user_id,
                            reason=f"Décision n° {row.id} : {row.title}", motion_id=row.id)
        except DomainError as error:  # the setting's rules changed since the proposal
            return f"Réglage {row.setting_key} inchangé : {error.message}"
        return f"Réglage {row.setting_key} : {before} → {row.setting_value}."
    if row.effect == Effect.APPROVAL:
        party = conn.execute(select(parties_t.c.code, parties_t.c.status)
                             .where(parties_t.c.id == row.prestataire_party_id)
                             .with_for_update()).one()
        if party.status != approval.Status.SUBMITTED.value:
            return (f"Rien n'a changé : le prestataire {party.code} n'attend plus de "
                    f"décision d'agrément (statut : {party.status}).")
        approval.decide_within(uow, actor, party.code, approval.Action.APPROVE,
                               f"Décision n° {row.id} du collectif de gestion : {row.title}",
                               now=now)
        return f"Prestataire {party.code} agréé."
    return None


def _unchanged(row) -> str | None:
    if row.effect == Effect.SETTING:
        return f"Rejetée : le réglage {row.setting_key} ne change pas."
    if row.effect == Effect.APPROVAL:
        return "Rejetée : la demande d'agrément reste en attente d'une décision."
    return None


def close_due(new_uow: Callable[..., UnitOfWork], actor: Actor, *,
              now: dt.datetime | None = None) -> list[Closed]:
    """Close every open motion whose closing date has passed (the command line's
    ``close-motions``, for a cron). Idempotent: a second run finds nothing to close;
    a motion closed meanwhile by someone else is skipped."""
    actor.require(Role.ADMIN)
    now = _now(now)
    with new_uow(read_only=True) as uow:
        due = uow.conn.execute(
            select(motions_t.c.id).where(motions_t.c.status == Status.OPEN.value,
                                         motions_t.c.closes_at <= now)
            .order_by(motions_t.c.closes_at, motions_t.c.id)).scalars().all()
    closed = []
    for motion_id in due:
        try:
            closed.append(close(new_uow(), actor, motion_id, now=now))
        except (MotionClosed, MotionNotDue):
            continue
    return closed


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class MotionView:
    id: int
    title: str
    body: str | None
    effect: str
    setting_key: str | None
    setting_value: str | None
    prestataire_code: str | None
    prestataire_name: str | None
    opens_at: dt.datetime
    closes_at: dt.datetime
    status: str
    created_by: str | None  # username; None: the command line
    created_by_user_id: int | None
    closed_at: dt.datetime | None
    closed_by: str | None
    effect_note: str | None
    votes: int  # vote rows (members who voted, former members included)

    @property
    def is_open(self) -> bool:
        return self.status == Status.OPEN

    def past_closing(self, now: dt.datetime | None = None) -> bool:
        return _now(now) >= as_utc(self.closes_at)


def motion(conn: Connection, motion_id: int) -> MotionView:
    """One motion; ``unknown_motion`` when there is none."""
    creators, closers = users_t.alias("creators"), users_t.alias("closers")
    votes = (select(func.count()).select_from(votes_t)
             .where(votes_t.c.motion_id == motions_t.c.id).scalar_subquery())
    row = conn.execute(
        select(motions_t.c.id, motions_t.c.title, motions_t.c.body, motions_t.c.effect,
               motions_t.c.setting_key, motions_t.c.setting_value, parties_t.c.code,
               parties_t.c.name, motions_t.c.opens_at, motions_t.c.closes_at,
               motions_t.c.status, creators.c.username, motions_t.c.created_by_user_id,
               motions_t.c.closed_at, closers.c.username, motions_t.c.effect_note,
               votes)
        .select_from(motions_t
                     .outerjoin(parties_t, parties_t.c.id == motions_t.c.prestataire_party_id)
                     .outerjoin(creators, creators.c.id == motions_t.c.created_by_user_id)
                     .outerjoin(closers, closers.c.id == motions_t.c.closed_by_user_id))
        .where(motions_t.c.id == _motion_id(motion_id))).first()
    if row is None:
        raise UnknownMotion()
    return MotionView(*row)


def results(conn: Connection, motion_id: int) -> Results | None:
    """What may be shown of the count: while the vote is open, participation only
    (seats, members who voted, per college, and the quorum) — the totals for and
    against stay hidden until the close, so that early votes do not sway later ones;
    after the close, the final totals stored then. None for a withdrawn motion."""
    row = conn.execute(select(motions_t.c.status, motions_t.c.result)
                       .where(motions_t.c.id == _motion_id(motion_id))).first()
    if row is None:
        raise UnknownMotion()
    if row.status == Status.OPEN:
        return _tally(conn, motion_id, final=False)
    if row.result is None:
        return None
    return Results.from_json(row.result)


@dataclass(frozen=True)
class MyVote:
    choice: str
    cast_at: dt.datetime
    changed_at: dt.datetime | None


def my_vote(conn: Connection, motion_id: int, user_id: int | None) -> MyVote | None:
    if user_id is None:
        return None
    row = conn.execute(select(votes_t.c.choice, votes_t.c.cast_at, votes_t.c.changed_at)
                       .where(votes_t.c.motion_id == _motion_id(motion_id),
                              votes_t.c.user_id == user_id)).first()
    return None if row is None else MyVote(*row)


@dataclass(frozen=True)
class MotionLine:
    id: int
    title: str
    status: str
    effect: str
    closes_at: dt.datetime
    closed_at: dt.datetime | None
    votes: int
    my_choice: str | None  # the reader's vote, if any


def motions(conn: Connection, user_id: int | None = None) -> list[MotionLine]:
    """Every motion: open ones first (closing soonest first), then the others (latest
    closed first)."""
    votes = (select(func.count()).select_from(votes_t)
             .where(votes_t.c.motion_id == motions_t.c.id).scalar_subquery())
    mine = (select(votes_t.c.choice)
            .where(votes_t.c.motion_id == motions_t.c.id, votes_t.c.user_id == user_id)
            .scalar_subquery())
    is_open = case((motions_t.c.status == Status.OPEN.value, 0), else_=1)
    rows = conn.execute(
        select(motions_t.c.id, motions_t.c.title, motions_t.c.status, motions_t.c.effect,
               motions_t.c.closes_at, motions_t.c.closed_at, votes, mine)
        .order_by(is_open, case((motions_t.c.status == Status.OPEN.value,
                                 motions_t.c.closes_at)),
                  motions_t.c.closed_at.desc(), motions_t.c.id.desc())).all()
    return [MotionLine(*row) for row in rows]


def pending(conn: Connection, user_id: int | None, *, now: dt.datetime | None = None
            ) -> int | None:
    """How many open motions await this member's vote; None for a non-member."""
    if seat(conn, user_id) is None:
        return None
    voted = select(votes_t.c.id).where(votes_t.c.motion_id == motions_t.c.id,
                                       votes_t.c.user_id == user_id)
    return conn.execute(
        select(func.count()).select_from(motions_t)
        .where(motions_t.c.status == Status.OPEN.value, motions_t.c.closes_at > _now(now),
               ~voted.exists())).scalar_one()


# ---------------------------------------------------------------- settings' history


@dataclass(frozen=True)
class SettingLine:
    value: str
    changed_at: dt.datetime
    by: str | None  # username; None: the command line (or a system actor)
    reason: str | None
    motion_id: int | None  # the collective's adopted decision that made the change
    motion_title: str | None


@dataclass(frozen=True)
class SettingState:
    key: str
    value: str  # the current value (the default when never changed)
    default: str
    history: list[SettingLine]  # latest first


def settings_overview(conn: Connection) -> list[SettingState]:
    """Every setting with its current value and its history: who, when, why, and which
    decision of the collective when a vote changed it."""
    rows = conn.execute(
        select(changes_t.c.key, changes_t.c.value, changes_t.c.changed_at,
               users_t.c.username, changes_t.c.reason, changes_t.c.motion_id,
               motions_t.c.title)
        .select_from(changes_t
                     .outerjoin(users_t, users_t.c.id == changes_t.c.changed_by_user_id)
                     .outerjoin(motions_t, motions_t.c.id == changes_t.c.motion_id))
        .order_by(changes_t.c.id.desc())).all()
    history: dict[str, list[SettingLine]] = {}
    for row in rows:
        history.setdefault(row.key, []).append(SettingLine(*row[1:]))
    return [SettingState(key, history[key][0].value if key in history else default, default,
                         history.get(key, []))
            for key, default in settings.DEFAULTS.items()]
