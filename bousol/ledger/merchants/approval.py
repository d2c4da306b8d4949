"""The approval (agrément) of prestataires, and the public directory. No Flask here.

A business, an association or a public service applies online (:func:`apply`): that
makes its login (role ``prestataire``) and its party, in status ``draft``, or
``submitted`` at once. From there the status moves only along :data:`TRANSITIONS`,
each step one :class:`ApprovalDecision` row (who, when, from, to, why) written in the
same unit of work as the party's new status, under the party row's lock::

    draft --submit--> submitted --approve--> approved --suspend--> suspended
                          |                     ^                      |
                          +--refuse--> refused  +------reinstate-------+
                                          |
    draft <-------------amend-------------+

``submit`` and ``amend`` are the applicant's own (its login, its party); the others
are the association's (role ``admin``). Only an approved prestataire can be paid
(:func:`bousol.ledger.books.operations.pay`); a suspended one keeps its balance and can still
reconvert it. The directory ("Où payer en Bou'Sol ?") lists approved prestataires only,
with their public fields only. Rules and why: docs/prestataires.md.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, fields

from sqlalchemy import Connection, and_, case, exc, insert, select, update
from werkzeug.security import generate_password_hash

from bousol.ledger.access import parties
from bousol.ledger.books.models import Filiere, Party, PartyKind, User
from bousol.ledger.kernel import iban as ibans
from bousol.ledger.kernel import inputs
from bousol.ledger.kernel import siret as sirets
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.errors import (
    ApprovalTransition,
    DomainError,
    DuplicateUser,
    Forbidden,
    InvalidIban,
    InvalidInput,
    InvalidSiret,
    NotAPrestataire,
    UnknownParty,
)
from bousol.ledger.kernel.models import utcnow
from bousol.ledger.kernel.states import StateMachine
from bousol.ledger.kernel.text import N_, sort_name
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.merchants.models import ApprovalDecision

parties_t, users_t = Party.__table__, User.__table__
decisions_t = ApprovalDecision.__table__


class Status(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REFUSED = "refused"
    SUSPENDED = "suspended"


class Action(enum.StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REFUSE = "refuse"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    AMEND = "amend"


# The whole state machine: (from, action) → to. Anything else is ``approval_transition``.
TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.DRAFT, Action.SUBMIT): Status.SUBMITTED,
    (Status.SUBMITTED, Action.APPROVE): Status.APPROVED,
    (Status.SUBMITTED, Action.REFUSE): Status.REFUSED,
    (Status.APPROVED, Action.SUSPEND): Status.SUSPENDED,
    (Status.SUSPENDED, Action.REINSTATE): Status.APPROVED,
    (Status.REFUSED, Action.AMEND): Status.DRAFT,
}

# Who may take each action: the applicant itself (role prestataire, its own party) or
# the association (role admin).
APPLICANT_ACTIONS = frozenset({Action.SUBMIT, Action.AMEND})
ADMIN_ACTIONS = frozenset({Action.APPROVE, Action.REFUSE, Action.SUSPEND, Action.REINSTATE})
ACTION_ROLE: dict[Action, Role] = {
    **{action: Role.PRESTATAIRE for action in APPLICANT_ACTIONS},
    **{action: Role.ADMIN for action in ADMIN_ACTIONS},
}
REASON_REQUIRED = frozenset({Action.REFUSE, Action.SUSPEND})
REASON_MAX = 1000

STATUS_LABELS = {
    Status.DRAFT: N_("Brouillon"),
    Status.SUBMITTED: N_("Demande envoyée, en cours d'examen"),
    Status.APPROVED: N_("Agréé"),
    Status.REFUSED: N_("Demande refusée"),
    Status.SUSPENDED: N_("Agrément suspendu"),
}

ACTION_LABELS = {
    Action.SUBMIT: N_("Demande envoyée"),
    Action.APPROVE: N_("Agrément accordé"),
    Action.REFUSE: N_("Demande refusée"),
    Action.SUSPEND: N_("Agrément suspendu"),
    Action.REINSTATE: N_("Agrément rétabli"),
    Action.AMEND: N_("Demande rouverte pour correction"),
}

# The legal forms offered on the application (stored as the key).
LEGAL_FORMS: dict[str, str] = {
    "ei": N_("Entreprise individuelle, micro-entreprise"),
    "sarl": N_("SARL, EURL"),
    "sas": N_("SAS, SASU"),
    "sa": N_("SA"),
    "scop": N_("SCOP, SCIC"),
    "association": N_("Association"),
    "public": N_("Service public, collectivité"),
    "autre": N_("Autre"),
}

OPENING_HOURS_MAX = 500
DESCRIPTION_MAX = 2000


MACHINE = StateMachine(TRANSITIONS, lambda current, action: ApprovalTransition(
    "Ce changement de statut d'agrément n'est pas possible : "
    f"{_where(current)}.", status=str(current), action=str(action)))


def check_transition(current: str, action: str) -> Status:
    """The status ``action`` leads to from ``current``, or ``approval_transition``."""
    return MACHINE.next(current, action)


def _where(current: str) -> str:
    words = {
        Status.DRAFT: "la demande est encore un brouillon",
        Status.SUBMITTED: "la demande est déjà envoyée et en cours d'examen",
        Status.APPROVED: "le prestataire est déjà agréé",
        Status.REFUSED: "la demande a été refusée (corrigez-la d'abord)",
        Status.SUSPENDED: "l'agrément est suspendu",
    }
    try:
        return words[Status(current)]
    except (ValueError, KeyError):
        return "ce compte n'a pas de demande d'agrément"


def allowed_actions(status: str, role: Role | str) -> list[Action]:
    """The actions this role may take from this status (what buttons a page shows)."""
    try:
        status, role = Status(status), Role(role)
    except ValueError:
        return []
    return [action for action in MACHINE.allowed(status) if ACTION_ROLE[action] == role]


# ---------------------------------------------------------------- input


def _text(value: object, limit: int, label: str, field: str) -> str | None:
    """A field of the application: trimmed text or None, on one line. Its characters are
    checked before its blankness (a lone tab is refused, not taken as empty)."""
    return inputs.text(value, limit, label, field=field, blank_first=False)


@dataclass(frozen=True)
class ApplicationData:
    """What an applicant types; every field optional until the application is sent."""

    name: str | None = None
    legal_form: str | None = None
    siret: str | None = None
    address: str | None = None
    commune: str | None = None
    filiere: str | None = None
    contact_name: str | None = None
    phone: str | None = None
    email: str | None = None
    iban: str | None = None
    bic: str | None = None
    charter_accepted: bool = False


# The fields, in the form's order, with the label the messages use; all but the BIC are
# needed to send the application.
FIELD_LABELS = {
    "name": "Nom de l'entreprise ou de la structure",
    "legal_form": "Forme juridique",
    "siret": "SIRET",
    "address": "Adresse",
    "commune": "Commune",
    "filiere": "Filière",
    "contact_name": "Nom de la personne à contacter",
    "phone": "Téléphone",
    "email": "Courriel",
    "iban": "IBAN",
    "bic": "BIC",
    "charter_accepted": "Charte",
}
REQUIRED_TO_SUBMIT = tuple(name for name in FIELD_LABELS if name != "bic")


def _check_field(name: str, value: object) -> object:
    label = FIELD_LABELS[name]
    if name == "name":
        return _text(value, 200, label, name)
    if name == "legal_form":
        value = _text(value, 32, label, name)
        if value is not None and value not in LEGAL_FORMS:
            raise InvalidInput("Forme juridique inconnue : choisissez-en une dans la liste.",
                               field=name)
        return value
    if name == "siret":
        text = _text(value, 40, label, name)
        return None if text is None else sirets.validate_siret(text)
    if name == "address":
        return _text(value, 300, label, name)
    if name == "commune":
        return _text(value, 100, label, name)
    if name == "filiere":
        value = _text(value, 32, label, name)
        if value is not None:
            try:
                value = Filiere(value).value
            except ValueError:
                raise InvalidInput("Filière inconnue : choisissez-en une dans la liste.",
                                   field=name) from None
        return value
    if name == "contact_name":
        return _text(value, 200, label, name)
    if name == "phone":
        return inputs.phone(_text(value, 32, label, name))
    if name == "email":
        return inputs.email(_text(value, 200, label, name), field=name,
                            message="Adresse électronique invalide (ex. contact@exemple.fr).")
    if name == "iban":
        text = _text(value, 50, label, name)
        return None if text is None else ibans.validate_iban(text)
    if name == "bic":
        return ibans.validate_bic(_text(value, 20, label, name))
    if name == "charter_accepted":
        return value is True
    raise KeyError(name)  # pragma: no cover - FIELD_LABELS lists them all


def _missing_message(name: str) -> str:
    if name == "charter_accepted":
        return N_("Pour envoyer la demande, l'entreprise doit accepter la charte du Bou'Sol.")
    if name == "name":  # N_: the web layer shows them translated (English mode)
        return N_("Le nom de l'entreprise ou de la structure est obligatoire.")
    if name == "filiere":
        return N_("La filière est obligatoire.")
    return f"{FIELD_LABELS[name]} : obligatoire pour envoyer la demande."


def check_application(data: ApplicationData, *, to_submit: bool) -> dict[str, object]:
    """The application's values, normalised, or the first error (``details["field"]``)
    with every field's error in ``details["fields"]`` (field → French message).

    A draft needs a name and a filière (the party's own); every field given is checked;
    sending the application needs every field but the BIC, and the charter accepted.
    """
    values: dict[str, object] = {}
    errors: list[tuple[str, DomainError]] = []
    for name in FIELD_LABELS:
        try:
            values[name] = _check_field(name, getattr(data, name))
        except DomainError as error:
            errors.append((name, error))
            continue
        needed = (to_submit and name in REQUIRED_TO_SUBMIT) or name in ("name", "filiere")
        if needed and not values[name]:
            kind = {"siret": InvalidSiret, "iban": InvalidIban}.get(name, InvalidInput)
            errors.append((name, kind(_missing_message(name))))
    if errors:
        first_name, first = errors[0]
        first.details["field"] = first_name
        first.details["fields"] = {name: error.message for name, error in errors}
        raise first
    return values


def _columns(values: dict[str, object], now: dt.datetime,
             charter_was: dt.datetime | None = None) -> dict[str, object]:
    columns = {name: value for name, value in values.items() if name != "charter_accepted"}
    columns["charter_accepted_at"] = (charter_was or now) if values["charter_accepted"] else None
    if "name" in columns:  # the members' list order (docs/members.md)
        columns["sort_name"] = sort_name(str(columns["name"] or ""))
    return columns


def _check_siret_free(conn: Connection, siret: object, party_id: int | None) -> None:
    """A SIRET names one establishment: one prestataire (checked under the write lock)."""
    if not siret:
        return
    query = select(parties_t.c.id).where(parties_t.c.kind == PartyKind.PRESTATAIRE.value,
                                         parties_t.c.siret == siret)
    if party_id is not None:
        query = query.where(parties_t.c.id != party_id)
    if conn.execute(query.limit(1)).first() is not None:
        raise _siret_taken()


def _siret_taken() -> InvalidSiret:
    return InvalidSiret(
        "Ce SIRET est déjà celui d'un prestataire inscrit : connectez-vous à son compte "
        "ou contactez l'association.", reason="taken", field="siret",
        fields={"siret": "Ce SIRET est déjà celui d'un prestataire inscrit."})


def _write_application(conn: Connection, party_id: int, columns: dict) -> None:
    """The unique index on prestataires' SIRETs backs the check above when two
    applications with the same SIRET arrive at once (PostgreSQL)."""
    try:
        conn.execute(update(parties_t).where(parties_t.c.id == party_id).values(**columns))
    except exc.IntegrityError as error:
        # PostgreSQL names the index, SQLite the column: anything else is not ours.
        if "siret" not in str(error.orig).lower():
            raise
        raise _siret_taken() from None


# ---------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Decision:
    party_code: str
    action: str
    from_status: str
    to_status: str
    reason: str | None
    decided_by_user_id: int | None
    decided_at: dt.datetime


def _lock_party(conn: Connection, party_code: str):
    """The party row, locked (FOR UPDATE; SQLite: the unit of work's write lock)."""
    if not isinstance(party_code, str) or len(party_code) > 16:
        raise UnknownParty()
    row = conn.execute(
        select(parties_t).where(parties_t.c.code == party_code).with_for_update()
    ).first()
    if row is None:
        raise UnknownParty(f"Aucun adhérent ne porte le code {party_code}.")
    if row.kind != PartyKind.PRESTATAIRE.value:
        raise NotAPrestataire("Seul un prestataire a un agrément.")
    return row


def _own_party(actor: Actor, row) -> None:
    """The applicant's actions: only its own login's party."""
    own = actor.party_id == row.id if actor.party_id is not None else (
        actor.party_code is not None and actor.party_code == row.code)
    if actor.role != Role.PRESTATAIRE or not own:
        raise Forbidden("Seul le prestataire lui-même peut agir sur sa demande d'agrément.")


def _record(conn: Connection, row, action: Action, actor: Actor, reason: str | None,
            now: dt.datetime) -> Decision:
    target = check_transition(row.status, action)
    done = conn.execute(
        update(parties_t)
        .where(and_(parties_t.c.id == row.id, parties_t.c.status == row.status))
        .values(status=target.value, status_changed_at=now)
    ).rowcount
    if done != 1:  # the lock made this impossible; a second guard
        raise ApprovalTransition()
    conn.execute(insert(decisions_t).values(
        party_id=row.id, action=action.value, from_status=row.status, to_status=target.value,
        reason=reason, decided_by_user_id=actor.user_id, decided_at=now))
    return Decision(row.code, action.value, row.status, target.value, reason, actor.user_id,
                    now)


def _application_values(row) -> ApplicationData:
    return ApplicationData(
        name=row.name, legal_form=row.legal_form, siret=row.siret, address=row.address,
        commune=row.commune, filiere=row.filiere, contact_name=row.contact_name,
        phone=row.phone, email=row.email, iban=row.iban, bic=row.bic,
        charter_accepted=row.charter_accepted_at is not None)


def decide(uow: UnitOfWork, actor: Actor, party_code: str, action: str,
           reason: str | None = None) -> Decision:
    """Take one step of :data:`TRANSITIONS` on ``party_code``'s approval.

    ``submit`` and ``amend``: the applicant itself; the others: role admin (anyone else
    is ``forbidden``). ``refuse`` and ``suspend`` need a reason. ``submit`` needs a
    complete application with the charter accepted. The party row is locked and its
    status checked under that lock, so two decisions at the same instant apply once
    (the second is ``approval_transition``).
    """
    action, reason = _checked(actor, action, reason)
    with uow:
        decision = _decide(uow.conn, actor, party_code, action, reason, utcnow())
        uow.commit()
    return decision


def decide_within(uow: UnitOfWork, actor: Actor, party_code: str, action: str,
                  reason: str | None = None, *, now: dt.datetime | None = None) -> Decision:
    """:func:`decide` in the caller's open transaction, committing nothing: the
    collective's adopted decision approves a prestataire in the unit of work that
    closes its vote (bousol/ledger/association/decisions.py). Same checks, lock and row."""
    action, reason = _checked(actor, action, reason)
    return _decide(uow.conn, actor, party_code, action, reason, now or utcnow())


def _checked(actor: Actor, action: str, reason: str | None) -> tuple[Action, str | None]:
    """The action and its reason, checked before any row is read."""
    try:
        action = Action(action)
    except ValueError:
        raise ApprovalTransition("Action d'agrément inconnue.", action=str(action)) from None
    actor.require(ACTION_ROLE[action])
    reason = inputs.text(reason, REASON_MAX, "Motif", field="reason", multiline=True,
                         blank_first=False)
    if action in REASON_REQUIRED and reason is None:
        raise InvalidInput(
            "Motif obligatoire : le prestataire le verra." if action == Action.REFUSE
            else "Motif obligatoire pour suspendre un agrément : le prestataire le verra.",
            field="reason")
    return action, reason


def _decide(conn: Connection, actor: Actor, party_code: str, action: Action,
            reason: str | None, now: dt.datetime) -> Decision:
    row = _lock_party(conn, party_code)
    if action in APPLICANT_ACTIONS:
        _own_party(actor, row)
    check_transition(row.status, action)
    if action == Action.SUBMIT:
        check_application(_application_values(row), to_submit=True)
    return _record(conn, row, action, actor, reason, now)


def submit(uow: UnitOfWork, actor: Actor, party_code: str) -> Decision:
    return decide(uow, actor, party_code, Action.SUBMIT)


def amend(uow: UnitOfWork, actor: Actor, party_code: str) -> Decision:
    return decide(uow, actor, party_code, Action.AMEND)


def approve(uow: UnitOfWork, actor: Actor, party_code: str,
            reason: str | None = None) -> Decision:
    return decide(uow, actor, party_code, Action.APPROVE, reason)


def refuse(uow: UnitOfWork, actor: Actor, party_code: str, reason: str) -> Decision:
    return decide(uow, actor, party_code, Action.REFUSE, reason)


def suspend(uow: UnitOfWork, actor: Actor, party_code: str, reason: str) -> Decision:
    return decide(uow, actor, party_code, Action.SUSPEND, reason)


def reinstate(uow: UnitOfWork, actor: Actor, party_code: str,
              reason: str | None = None) -> Decision:
    return decide(uow, actor, party_code, Action.REINSTATE, reason)


# ---------------------------------------------------------------- applying


@dataclass(frozen=True)
class Applied:
    user_id: int
    username: str
    party_id: int
    party_code: str
    status: str


def apply(uow: UnitOfWork, *, username: str, password: str, submit: bool = False,
          **application: object) -> Applied:
    """An online application: the login (role prestataire) and its party, in ``draft``,
    or ``submitted`` at once (with the applicant's ``submit`` decision) when ``submit``.

    ``application``: the fields of :class:`ApplicationData`. Nothing is written when any
    check fails (see :func:`check_application`; the username: ``duplicate_user``).
    """
    data = ApplicationData(**application)  # an unknown field is a TypeError: a bug
    first: DomainError | None = None
    problems: dict[str, str] = {}
    try:
        values = check_application(data, to_submit=submit)
    except DomainError as error:
        first = error
        problems.update(error.details["fields"])
    try:  # the login's fields come last on the form: their error too
        username = parties.check_credentials(username, password)
    except DomainError as error:
        first = first or error
        problems.update(error.details["fields"])
    if first is not None:
        first.details["fields"] = problems
        raise first
    password_hash = generate_password_hash(password, method=parties.PASSWORD_METHOD)
    with uow:
        conn, session = uow.conn, uow.session
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise DuplicateUser(field="username",
                                fields={"username": DuplicateUser.default_message})
        _check_siret_free(conn, values["siret"], None)
        now = utcnow()
        party = parties.create_party(uow, kind=PartyKind.PRESTATAIRE, name=values["name"],
                                     filiere=values["filiere"], status=Status.DRAFT.value)
        _write_application(conn, party.id,
                           {"status_changed_at": now, **_columns(values, now)})
        user = User(username=username, password_hash=password_hash,
                    role=Role.PRESTATAIRE.value, party_id=party.id)
        session.add(user)
        try:
            session.flush()
        except exc.IntegrityError:
            raise DuplicateUser(field="username") from None
        status = Status.DRAFT.value
        if submit:
            applicant = Actor(user.id, Role.PRESTATAIRE, party.id, party.code, username)
            row = _lock_party(conn, party.code)
            status = _record(conn, row, Action.SUBMIT, applicant, None, now).to_status
        applied = Applied(user.id, username, party.id, party.code, status)
        uow.commit()
    return applied


def update_application(uow: UnitOfWork, actor: Actor, *, submit: bool = False,
                       **application: object) -> Decision | None:
    """The applicant corrects its draft (after a refusal: :func:`amend` first), and sends
    it when ``submit`` (one unit of work: saved and sent, or nothing)."""
    actor.require(Role.PRESTATAIRE)
    data = ApplicationData(**application)
    values = check_application(data, to_submit=submit)
    with uow:
        conn = uow.conn
        row = _lock_party(conn, _actor_code(conn, actor))
        _own_party(actor, row)
        if row.status != Status.DRAFT:
            raise ApprovalTransition(
                f"La demande ne se modifie qu'à l'état de brouillon : {_where(row.status)}.",
                status=row.status, action="update")
        _check_siret_free(conn, values["siret"], row.id)
        now = utcnow()
        _write_application(conn, row.id, _columns(values, now, row.charter_accepted_at))
        decision = None
        if submit:
            row = _lock_party(conn, row.code)
            decision = _record(conn, row, Action.SUBMIT, actor, None, now)
        uow.commit()
    return decision


def _actor_code(conn: Connection, actor: Actor) -> str:
    """The actor's party code (a web actor has it; look it up from the user otherwise)."""
    if actor.party_code is not None:
        return actor.party_code
    code = None
    if actor.user_id is not None:
        code = conn.execute(
            select(parties_t.c.code)
            .select_from(users_t.join(parties_t, parties_t.c.id == users_t.c.party_id))
            .where(users_t.c.id == actor.user_id)).scalar_one_or_none()
    if code is None:
        raise Forbidden("Ce compte n'a pas de fiche de prestataire.")
    return code


def update_public_profile(uow: UnitOfWork, actor: Actor, *, opening_hours: str | None,
                          description: str | None) -> None:
    """The prestataire's own public page: opening hours and description (any status;
    shown in the directory once approved)."""
    actor.require(Role.PRESTATAIRE)
    hours = inputs.text(opening_hours, OPENING_HOURS_MAX, "Horaires d'ouverture",
                        field="opening_hours", multiline=True, blank_first=False)
    text = inputs.text(description, DESCRIPTION_MAX, "Présentation", field="description",
                       multiline=True, blank_first=False)
    with uow:
        conn = uow.conn
        row = _lock_party(conn, _actor_code(conn, actor))
        _own_party(actor, row)
        conn.execute(update(parties_t).where(parties_t.c.id == row.id)
                     .values(opening_hours=hours, description=text))
        uow.commit()


# ---------------------------------------------------------------- reading (private)


@dataclass(frozen=True)
class Application:
    """A prestataire's application: personal data, for the association and itself."""

    party_id: int
    code: str
    status: str
    status_changed_at: dt.datetime | None
    created_at: dt.datetime
    name: str
    legal_form: str | None
    siret: str | None
    address: str | None
    commune: str | None
    filiere: str | None
    contact_name: str | None
    phone: str | None
    email: str | None
    iban: str | None
    bic: str | None
    charter_accepted_at: dt.datetime | None
    opening_hours: str | None
    description: str | None
    usernames: tuple[str, ...]

    @property
    def missing(self) -> list[str]:
        """The fields still needed to send the application (names of FIELD_LABELS)."""
        return [name for name in REQUIRED_TO_SUBMIT
                if not (self.charter_accepted_at if name == "charter_accepted"
                        else getattr(self, name))]

    def data(self) -> ApplicationData:
        return ApplicationData(**{f.name: getattr(self, f.name) for f in fields(ApplicationData)
                                  if f.name != "charter_accepted"},
                               charter_accepted=self.charter_accepted_at is not None)


_APPLICATION_COLUMNS = (
    "id", "code", "status", "status_changed_at", "created_at", "name", "legal_form",
    "siret", "address", "commune", "filiere", "contact_name", "phone", "email", "iban",
    "bic", "charter_accepted_at", "opening_hours", "description",
)


def application(conn: Connection, party: int | str) -> Application | None:
    """A prestataire's application by party id or code; None for anyone else."""
    key = parties_t.c.id if isinstance(party, int) else parties_t.c.code
    row = conn.execute(
        select(*(parties_t.c[name] for name in _APPLICATION_COLUMNS))
        .where(key == party, parties_t.c.kind == PartyKind.PRESTATAIRE.value)
    ).first()
    if row is None:
        return None
    usernames = tuple(conn.execute(
        select(users_t.c.username).where(users_t.c.party_id == row.id).order_by(users_t.c.id)
    ).scalars())
    values = dict(row._mapping)
    values["party_id"] = values.pop("id")
    return Application(**values, usernames=usernames)


@dataclass(frozen=True)
class DecisionLine:
    action: str
    from_status: str
    to_status: str
    reason: str | None
    decided_by: str | None  # the username; None: the association's command line
    decided_by_role: str | None
    decided_at: dt.datetime

    @property
    def by_association(self) -> bool:
        return self.action in ADMIN_ACTIONS


def decisions(conn: Connection, party_id: int) -> list[DecisionLine]:
    """Every step of a prestataire's approval, oldest first."""
    rows = conn.execute(
        select(decisions_t.c.action, decisions_t.c.from_status, decisions_t.c.to_status,
               decisions_t.c.reason, decisions_t.c.decided_at,
               users_t.c.username, users_t.c.role)
        .select_from(decisions_t.outerjoin(
            users_t, users_t.c.id == decisions_t.c.decided_by_user_id))
        .where(decisions_t.c.party_id == party_id)
        .order_by(decisions_t.c.id)
    ).all()
    return [DecisionLine(r.action, r.from_status, r.to_status, r.reason, r.username, r.role,
                         r.decided_at) for r in rows]


@dataclass(frozen=True)
class ApplicationSummary:
    code: str
    name: str
    filiere: str | None
    commune: str | None
    status: str
    status_changed_at: dt.datetime | None


# The association's list: applications to examine first, then the others.
STATUS_ORDER = (Status.SUBMITTED, Status.SUSPENDED, Status.APPROVED, Status.REFUSED,
                Status.DRAFT)


def list_by_status(conn: Connection, status: str | None = None) -> list[ApplicationSummary]:
    """Prestataires in ``status`` (all of them when None): applications waiting for a
    decision first (oldest first), then by :data:`STATUS_ORDER` and name."""
    order = case({s.value: i for i, s in enumerate(STATUS_ORDER)}, value=parties_t.c.status,
                 else_=len(STATUS_ORDER))
    query = (
        select(parties_t.c.code, parties_t.c.name, parties_t.c.filiere, parties_t.c.commune,
               parties_t.c.status, parties_t.c.status_changed_at)
        .where(parties_t.c.kind == PartyKind.PRESTATAIRE.value)
        .order_by(order, parties_t.c.status_changed_at, parties_t.c.name, parties_t.c.id)
    )
    if status is not None:
        query = query.where(parties_t.c.status == status)
    return [ApplicationSummary(r.code, r.name, r.filiere, r.commune, r.status,
                               r.status_changed_at) for r in conn.execute(query).all()]
