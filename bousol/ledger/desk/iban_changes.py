"""A prestataire's IBAN, entered or changed by the desk, takes effect only once a second
person agrees: the prestataire itself in its space, or an admin. No Flask here.

``requested → confirmed | cancelled`` is the whole state machine (:data:`TRANSITIONS`);
at most one change waits per prestataire (a partial unique index), a new request
replaces the waiting one (cancelled, by the one who asked again). The user who asked
never confirms (``second_person_required``; a CHECK backs it). The prestataire is told
by e-mail at its address and at the previous address we wrote to, if it differs
(someone who changed the e-mail first would otherwise hide the IBAN change). Who asked
and who confirmed are columns of the row, so the audit trail shows them.
Rules and why: docs/duties.md.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import Connection, exc, insert, select, update

from bousol.ledger.books.models import Party, PartyKind, User
from bousol.ledger.desk.models import IbanChange
from bousol.ledger.kernel import iban as ibans
from bousol.ledger.kernel import inputs, mail
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.errors import (
    Forbidden,
    IbanChangeTransition,
    NotAPrestataire,
    SecondPersonRequired,
    UnknownIbanChange,
    UnknownParty,
)
from bousol.ledger.kernel.models import MailMessage, utcnow
from bousol.ledger.kernel.states import StateMachine
from bousol.ledger.kernel.uow import UnitOfWork

changes_t, parties_t, users_t = IbanChange.__table__, Party.__table__, User.__table__
mails_t = MailMessage.__table__
MAIL_KIND = "iban_change"


class ChangeStatus(enum.StrEnum):
    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


TRANSITIONS: frozenset[tuple[ChangeStatus, ChangeStatus]] = frozenset({
    (ChangeStatus.REQUESTED, ChangeStatus.CONFIRMED),
    (ChangeStatus.REQUESTED, ChangeStatus.CANCELLED),
})


MACHINE = StateMachine.moves(TRANSITIONS, lambda current, target: IbanChangeTransition(
    status=str(current), target=target.value))


def check_transition(current: str, target: ChangeStatus) -> None:
    """Refuse (``iban_change_transition``) any move not in :data:`TRANSITIONS`."""
    MACHINE.next(current, target)


@dataclass(frozen=True)
class Change:
    id: int
    party_id: int
    party_code: str
    party_name: str
    iban: str
    bic: str | None
    status: str
    requested_at: dt.datetime
    requested_by: str | None
    requested_by_user_id: int | None
    closed_at: dt.datetime | None
    confirmed_by: str | None
    cancelled_by: str | None
    current_iban: str | None  # the IBAN in force meanwhile

    @property
    def iban_display(self) -> str:
        return ibans.display(self.iban)


def _select():
    asker, confirmer, canceller = (users_t.alias("asker"), users_t.alias("confirmer"),
                                   users_t.alias("canceller"))
    return (
        select(changes_t, parties_t.c.code, parties_t.c.name,
               parties_t.c.iban.label("current_iban"),
               asker.c.username.label("requested_by"),
               confirmer.c.username.label("confirmed_by"),
               canceller.c.username.label("cancelled_by"))
        .select_from(
            changes_t.join(parties_t, parties_t.c.id == changes_t.c.party_id)
            .outerjoin(asker, asker.c.id == changes_t.c.requested_by_user_id)
            .outerjoin(confirmer, confirmer.c.id == changes_t.c.confirmed_by_user_id)
            .outerjoin(canceller, canceller.c.id == changes_t.c.cancelled_by_user_id))
    )


def _change(r) -> Change:
    return Change(r.id, r.party_id, r.code, r.name, r.iban, r.bic, r.status, r.requested_at,
                  r.requested_by, r.requested_by_user_id, r.closed_at, r.confirmed_by,
                  r.cancelled_by, r.current_iban)


def waiting(conn: Connection, party_id: int | None = None) -> list[Change]:
    """The changes waiting for a confirmation (of one prestataire, or all), oldest first."""
    query = _select().where(changes_t.c.status == ChangeStatus.REQUESTED.value)
    if party_id is not None:
        query = query.where(changes_t.c.party_id == party_id)
    return [_change(r) for r in conn.execute(query.order_by(changes_t.c.id)).all()]


def history(conn: Connection, party_id: int, limit: int = 20) -> list[Change]:
    rows = conn.execute(_select().where(changes_t.c.party_id == party_id)
                        .order_by(changes_t.c.id.desc()).limit(limit)).all()
    return [_change(r) for r in rows]


def get(conn: Connection, change_id: int) -> Change | None:
    row = conn.execute(_select().where(changes_t.c.id == change_id)).first()
    return None if row is None else _change(row)


# ---------------------------------------------------------------- asking


@dataclass(frozen=True)
class Requested:
    change_id: int
    party_code: str
    iban: str
    bic: str | None
    mail_ids: tuple[int, ...]  # the messages to deliver (after the commit)

    @property
    def iban_display(self) -> str:
        return ibans.display(self.iban)


def _addresses(conn: Connection, party_id: int, email: str | None) -> list[tuple[str, str]]:
    """(recipient key, address): the prestataire's address, and the last other address
    we wrote to for it (the "old address"), if any."""
    found: list[tuple[str, str]] = []
    if email:
        found.append((f"party:{party_id}", email))
    previous = conn.execute(
        select(mails_t.c.to_address)
        .where(mails_t.c.recipient_key.in_([f"party:{party_id}", f"party:{party_id}:old"]))
        .order_by(mails_t.c.id.desc())
    ).scalars()
    for address in previous:
        if address and address != email:
            found.append((f"party:{party_id}:old", address))
            break
    return found


def _message_text(name: str, code: str, new_iban: str, asked_by: str) -> tuple[str, str]:
    subject = f"Bou'Sol : changement de l'IBAN de {name} à confirmer"
    body = (
        f"Bonjour,\n\n"
        f"Le comptoir de la banque SOL ({asked_by}) a saisi un nouvel IBAN pour les "
        f"virements de reconversion de {name} ({code}) :\n\n    {ibans.display(new_iban)}\n\n"
        f"Il ne s'appliquera qu'après votre confirmation dans votre espace prestataire "
        f"(« Coordonnées bancaires ») ou la validation d'un administrateur de "
        f"l'association. Si vous n'êtes pas à l'origine de ce changement, refusez-le "
        f"dans votre espace et prévenez l'association.\n\n"
        f"L'association Bou'Sol (APMC)\n"
    )
    return subject, body


def request_change(uow: UnitOfWork, actor: Actor, party_code: str, iban: str | None,
                   bic: str | None = None, *, transport: str = "outbox") -> Requested:
    """The desk (bank) or an admin asks for a new IBAN: a change ``requested``; the IBAN
    in force stays until the change is confirmed. A change already waiting for this
    prestataire is cancelled by this one. The e-mails are written (pending) in the same
    transaction; :func:`deliver` sends them once it has committed."""
    actor.require(Role.BANK, Role.ADMIN)
    code = inputs.party_code(party_code)
    iban_value = ibans.validate_iban(iban)
    bic_value = ibans.validate_bic(bic)
    with uow:
        conn = uow.conn
        party = conn.execute(
            select(parties_t.c.id, parties_t.c.kind, parties_t.c.name, parties_t.c.email)
            .where(parties_t.c.code == code).with_for_update()
        ).first()
        if party is None:
            raise UnknownParty(f"Aucun adhérent ne porte le code {code}.")
        if party.kind != PartyKind.PRESTATAIRE:
            raise NotAPrestataire()
        now = utcnow()
        # The party row's lock serialises two requests for one prestataire; the partial
        # unique index backs it.
        conn.execute(
            update(changes_t)
            .where(changes_t.c.party_id == party.id,
                   changes_t.c.status == ChangeStatus.REQUESTED.value)
            .values(status=ChangeStatus.CANCELLED.value, closed_at=now,
                    cancelled_by_user_id=actor.user_id))
        try:
            change_id = conn.execute(insert(changes_t).values(
                party_id=party.id, iban=iban_value, bic=bic_value,
                status=ChangeStatus.REQUESTED.value, requested_at=now,
                requested_by_user_id=actor.user_id,
            ).returning(changes_t.c.id)).scalar_one()
        except exc.IntegrityError:
            raise IbanChangeTransition("Un autre changement d'IBAN vient d'être saisi pour "
                                       "ce prestataire : rechargez la page.") from None
        subject, body = _message_text(party.name, code, iban_value, actor.username)
        mail_ids = []
        for key, address in _addresses(conn, party.id, party.email):
            mail_ids.append(conn.execute(insert(mails_t).values(
                kind=MAIL_KIND, recipient_key=key, period=f"iban-{change_id}",
                to_address=address, subject=subject, body=body, status="pending",
                transport=transport[:16], created_at=now, created_by_user_id=actor.user_id,
            ).returning(mails_t.c.id)).scalar_one())
        uow.commit()
    return Requested(change_id, code, iban_value, bic_value, tuple(mail_ids))


def deliver(uow: UnitOfWork, mailer: mail.Mailer, mail_ids: tuple[int, ...]) -> int:
    """Send the stored messages (outside the change's transaction); each is marked sent
    or failed with the reason, never lost. Returns how many were sent."""
    sent = 0
    for mail_id in mail_ids:
        with uow:
            row = uow.conn.execute(select(mails_t).where(mails_t.c.id == mail_id)).first()
        if row is None:
            continue
        error = mailer.problem()
        if error is None:
            try:
                mailer.send(mail.build(mailer, to=row.to_address, subject=row.subject,
                                       body=row.body))
            except (mail.DeliveryFailed, ValueError) as failure:
                error = str(failure)[:500] or "échec de l'envoi"
        with uow:
            uow.conn.execute(update(mails_t).where(mails_t.c.id == mail_id).values(
                status="failed" if error else "sent", error=error[:500] if error else None,
                sent_at=None if error else utcnow()))
            uow.commit()
        sent += error is None
    return sent


# ---------------------------------------------------------------- confirming, cancelling


def _check_change_id(change_id: object) -> int:
    return inputs.database_id(change_id, UnknownIbanChange())


def _lock(conn: Connection, change_id: int):
    row = conn.execute(select(changes_t).where(changes_t.c.id == change_id)
                       .with_for_update()).first()
    if row is None:
        raise UnknownIbanChange()
    return row


def _own_or_admin(actor: Actor, row) -> None:
    """The prestataire itself (a user of that party) or an admin; nobody else."""
    if actor.role == Role.ADMIN:
        return
    if actor.role == Role.PRESTATAIRE and actor.party_id == row.party_id:
        return
    if actor.role == Role.PRESTATAIRE:
        raise UnknownIbanChange()  # another prestataire's change: not even its existence
    raise Forbidden("Seul le prestataire concerné ou un administrateur confirme un IBAN.")


def confirm(uow: UnitOfWork, actor: Actor, change_id: int) -> Change:
    """The prestataire (in its space) or an admin confirms: the IBAN takes effect."""
    change_id = _check_change_id(change_id)
    with uow:
        conn = uow.conn
        row = _lock(conn, change_id)
        _own_or_admin(actor, row)
        check_transition(row.status, ChangeStatus.CONFIRMED)
        if actor.user_id is None or actor.user_id == row.requested_by_user_id:
            raise SecondPersonRequired(
                "Vous avez saisi ce changement d'IBAN : le prestataire ou un autre "
                "administrateur doit le confirmer.")
        now = utcnow()
        done = conn.execute(
            update(changes_t).where(changes_t.c.id == change_id,
                                    changes_t.c.status == ChangeStatus.REQUESTED.value)
            .values(status=ChangeStatus.CONFIRMED.value, closed_at=now,
                    confirmed_by_user_id=actor.user_id)).rowcount
        if done != 1:
            raise IbanChangeTransition()
        conn.execute(update(parties_t).where(parties_t.c.id == row.party_id)
                     .values(iban=row.iban, bic=row.bic))
        uow.commit()
    with uow:
        return get(uow.conn, change_id)


def cancel(uow: UnitOfWork, actor: Actor, change_id: int) -> Change:
    """The prestataire refuses it, an admin rejects it, or the clerk who asked withdraws
    it: cancelled, the IBAN in force stays."""
    change_id = _check_change_id(change_id)
    with uow:
        conn = uow.conn
        row = _lock(conn, change_id)
        asker = actor.user_id is not None and actor.user_id == row.requested_by_user_id
        if not asker:
            _own_or_admin(actor, row)
        check_transition(row.status, ChangeStatus.CANCELLED)
        conn.execute(
            update(changes_t).where(changes_t.c.id == change_id)
            .values(status=ChangeStatus.CANCELLED.value, closed_at=utcnow(),
                    cancelled_by_user_id=actor.user_id))
        uow.commit()
    with uow:
        return get(uow.conn, change_id)
