"""Members and colleges (issue 7): colleges, the fee of each college, local partners,
the memberships lapsing this month and the reminder e-mail (outbox and SMTP, against
a fake SMTP server on 127.0.0.1: nothing leaves the machine)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import re
import socketserver
import threading

import pytest
import sqlalchemy as sa

from bousol.ledger.association import membership
from bousol.ledger.desk import closing, members
from bousol.ledger.kernel import clock, mail
from bousol.ledger.kernel.errors import (
    FeeChanged,
    Forbidden,
    InvalidInput,
    MembershipChanged,
    UnknownParty,
)
from bousol.ledger.models import College, PartyKind
from tests.helpers import BANK, PASSWORD, csrf_token, hammer, login

DECEMBER = dt.date(2026, 12, 15)


# ------------------------------------------------------------------ helpers


def set_member(ledger, code: str, *, until: dt.date | None = None, email: str | None = None,
               status: str | None = None) -> None:
    values = {"u": until, "e": email, "c": code}
    sql = "UPDATE parties SET membership_until = :u, email = :e"
    if status is not None:
        sql += ", status = :s"
        values["s"] = status
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(sql + " WHERE code = :c"), values)


def set_partner_until(ledger, code: str, until: dt.date | None) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE partners SET membership_until = :u WHERE code = :c"),
                     {"u": until, "c": code})


def rows(ledger, sql: str, **params) -> list:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def read(ledger, function, *args, **kwargs):
    with ledger.uow(read_only=True) as uow:
        return function(uow.conn, *args, **kwargs)


def partner(ledger, admin, **overrides) -> str:
    fields = {"name": "CAB - Communauté d'agglomération du Boulonnais",
              "category": "collectivite", "contact_name": "Mme Dupont",
              "email": "economie@cab.example", "phone": "03 21 10 20 30",
              "address": "1 boulevard du Bassin Napoléon", "commune": "Boulogne-sur-Mer"}
    fields.update(overrides)
    return membership.create_partner(ledger.uow(), admin, **fields)


class Recorder:
    """A mailer that keeps what it was asked to send (thread-safe)."""

    transport = "outbox"

    def __init__(self):
        self.sent: list = []
        self.lock = threading.Lock()

    def problem(self):
        return None

    def sender(self):
        return "Bou'Sol (APMC) <adhesions@bousol.invalid>"

    def send(self, message):
        with self.lock:
            self.sent.append(message)


# ------------------------------------------------------------------ colleges and fees


def test_every_member_kind_has_its_college():
    assert members.college_of("soliste") == College.SOLISTES
    assert members.college_of("prestataire") == College.PRESTATAIRES
    assert members.college_of("ccas") == College.ACTEURS_LOCAUX
    assert members.college_of("bank") == College.ACTEURS_LOCAUX
    assert members.college_of("association") is None  # the association is no member
    assert members.college_of("nonsense") is None
    assert membership.college_of is members.college_of


def test_each_college_has_its_fee(ledger):
    with ledger.uow() as uow:
        assert [members.college_fee_cents(uow.conn, c) for c in College] == [300, 2000, 5000]
    ledger.setting("membership.fee_cents.prestataires", "2500")
    assert members.fee_cents(ledger.uow(), College.PRESTATAIRES) == 2500
    assert members.fee_cents(ledger.uow()) == 300


def test_a_prestataire_renewing_at_the_desk_pays_the_prestataires_fee(ledger):
    baker = ledger.prestataire(name="Boulangerie du Vieux Boulogne")
    marie = ledger.soliste(name="Marie Lefebvre")
    done = members.renew_membership(ledger.uow(), BANK, party_code=baker.party_code,
                                    tender="cheque", today=DECEMBER)
    assert (done.fee_cents, done.membership_until) == (2000, dt.date(2026, 12, 31))
    solo = members.renew_membership(ledger.uow(), BANK, party_code=marie.party_code,
                                    tender="cash", today=DECEMBER)
    assert solo.fee_cents == 300
    assert ledger.system("fees_income") == 2300
    assert ledger.system("eur_outside") == -2300
    ledger.assert_consistent()


def test_the_desk_page_takes_the_prestataires_fee(client, ledger):
    clerk = ledger.user("bank")
    baker = ledger.prestataire(name="Boulangerie du Vieux Boulogne")
    login(client, clerk.username, PASSWORD)
    page = client.get(f"/comptoir/adherents/{baker.party_code}/cotisation")
    assert "20,00" in page.text and "3,00" not in page.text  # what the clerk announces
    done = client.post(f"/comptoir/adherents/{baker.party_code}/cotisation", data={
        "csrf_token": csrf_token(page.text), "tender": "cash", "seen_until": ""},
        follow_redirects=True)
    assert "Cotisation de 20,00" in done.text
    assert ledger.system("fees_income") == 2000


def test_a_fee_changed_after_the_page_showed_it_is_not_taken(client, ledger):
    """The desk announced 20,00 €; a decision raised the fee meanwhile: nothing taken."""
    clerk = ledger.user("bank")
    baker = ledger.prestataire()
    login(client, clerk.username, PASSWORD)
    page = client.get(f"/comptoir/adherents/{baker.party_code}/cotisation")
    assert 'name="seen_fee" type="hidden" value="2000"' in page.text
    ledger.setting("membership.fee_cents.prestataires", "2500")
    done = client.post(f"/comptoir/adherents/{baker.party_code}/cotisation", data={
        "csrf_token": csrf_token(page.text), "tender": "cash", "seen_until": "",
        "seen_fee": "2000"}, follow_redirects=True)
    assert "La cotisation vient de changer" in done.text and "25,00" in done.text
    assert ledger.system("fees_income") == 0
    forged = client.post(f"/comptoir/adherents/{baker.party_code}/cotisation", data={
        "csrf_token": csrf_token(page.text), "tender": "cash", "seen_until": "",
        "seen_fee": "²"})  # a digit to str.isdigit, not to int()
    assert forged.status_code == 400 and ledger.system("fees_income") == 0
    with pytest.raises(FeeChanged):
        membership.record_fee(ledger.uow(), ledger.user("admin"), baker.party_code,
                              "transfer", seen_fee_cents=2000)
    assert ledger.system("fees_income") == 0
    # The fee announced is the fee taken.
    page = client.get(f"/comptoir/adherents/{baker.party_code}/cotisation")
    taken = client.post(f"/comptoir/adherents/{baker.party_code}/cotisation", data={
        "csrf_token": csrf_token(page.text), "tender": "cash", "seen_until": "",
        "seen_fee": "2500"}, follow_redirects=True)
    assert "Cotisation de 25,00" in taken.text and ledger.system("fees_income") == 2500


def test_the_association_form_refuses_a_changed_fee(client, ledger):
    admin = ledger.user("admin", password=PASSWORD)
    code = partner(ledger, admin)
    login(client, admin.username, PASSWORD)
    page = client.get(f"/admin/partenaires/{code}")
    assert 'name="seen_fee" type="hidden" value="5000"' in page.text
    ledger.setting("membership.fee_cents.acteurs_locaux", "6000")
    answer = client.post(f"/admin/partenaires/{code}/cotisation", data={
        "csrf_token": csrf_token(page.text), "tender": "transfer", "seen_until": "",
        "seen_fee": "5000"})
    assert answer.status_code == 409 and "La cotisation vient de changer" in answer.text
    assert ledger.system("fees_income") == 0


# ------------------------------------------------------------------ partners


def test_partners_are_numbered_and_edited(ledger):
    admin = ledger.user("admin")
    first = partner(ledger, admin)
    second = partner(ledger, admin, name="APES", category="reseau_ess", email=None, phone=None)
    assert (first, second) == ("L-000001", "L-000002")
    row = rows(ledger, "SELECT * FROM partners WHERE code = 'L-000001'")[0]
    assert (row.phone, row.category, row.membership_until) == ("0321102030", "collectivite",
                                                               None)
    membership.update_partner(ledger.uow(), admin, "L-000002", name="APES Hauts-de-France",
                              category="reseau_ess", email="contact@apes.example")
    assert rows(ledger, "SELECT name, email FROM partners WHERE code = 'L-000002'")[0] == (
        "APES Hauts-de-France", "contact@apes.example")
    with pytest.raises(UnknownParty):
        membership.update_partner(ledger.uow(), admin, "L-000009", name="X",
                                  category="autre")


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"name": "  "}, "name", "Nom obligatoire"),
    ({"name": "x" * 201}, "name", "200 caractères"),
    ({"category": "banque"}, "category", "Catégorie inconnue"),
    ({"email": "pas-une-adresse"}, "email", "électronique"),
    ({"phone": "12"}, "phone", "téléphone"),
    ({"address": "x" * 301}, "address", "300 caractères"),
    ({"commune": "Bou\x00logne"}, "commune", "non imprimables"),
])
def test_partner_refusals_write_nothing(ledger, overrides, field, message):
    ledger.user("admin")
    admin = ledger.user("admin")
    with pytest.raises(InvalidInput) as info:
        partner(ledger, admin, **overrides)
    assert message in info.value.message and info.value.details["field"] == field
    assert ledger.count("partners") == 0
    assert rows(ledger, "SELECT * FROM counters WHERE name = 'partner:L'") == []


def test_only_the_association_handles_partners(ledger):
    for role in ("bank", "soliste"):
        actor = ledger.user(role)
        with pytest.raises(Forbidden):
            partner(ledger, actor)
        with pytest.raises(Forbidden):
            membership.record_partner_fee(ledger.uow(), actor, "L-000001", "transfer")
    assert ledger.count("partners") == 0


def test_a_partner_fee_by_transfer_extends_the_membership(ledger):
    admin = ledger.user("admin")
    code = partner(ledger, admin)
    done = membership.record_partner_fee(ledger.uow(), admin, code, "transfer",
                                         today=dt.date(2026, 3, 2), seen_until=None)
    assert (done.fee_cents, done.membership_until) == (5000, dt.date(2026, 12, 31))
    ahead = membership.record_partner_fee(ledger.uow(), admin, code, "cheque",
                                          today=dt.date(2026, 11, 20))
    assert ahead.membership_until == dt.date(2027, 12, 31)  # paying ahead: a year more
    lapsed = membership.record_partner_fee(ledger.uow(), admin, code, "transfer",
                                           today=dt.date(2029, 2, 1))
    assert lapsed.membership_until == dt.date(2029, 12, 31)
    assert ledger.system("fees_income") == 15_000
    entry = rows(ledger, "SELECT kind, memo, details FROM entries WHERE id = :i",
                 i=done.entry_id)[0]
    assert entry.kind == "membership_fee" and entry.memo == "Cotisation 2026 — L-000001"
    details = json.loads(entry.details)
    assert details["paid_by"] == "transfer" and "tender" not in details  # not the desk's
    # The desk's cash count ignores what the association received itself.
    with ledger.uow(read_only=True) as uow:
        expected = closing.expected(uow.conn)
    assert all(expected.tender_total(t) == 0 for t in closing.TENDERS)
    history = read(ledger, membership.fee_history, code)
    assert [(h.fee_cents, h.paid_by, h.received_by) for h in history][-1] == (
        5000, "transfer", "association")
    ledger.assert_consistent()


def test_fee_refusals_write_nothing(ledger):
    admin = ledger.user("admin")
    code = partner(ledger, admin)
    with pytest.raises(InvalidInput, match="virement ou chèque"):
        membership.record_partner_fee(ledger.uow(), admin, code, "cash")
    with pytest.raises(UnknownParty):
        membership.record_partner_fee(ledger.uow(), admin, "L-000042", "transfer")
    with pytest.raises(UnknownParty):
        membership.record_partner_fee(ledger.uow(), admin, "S-000001", "transfer")
    with pytest.raises(MembershipChanged):  # the validity shown changed: a second click
        membership.record_partner_fee(ledger.uow(), admin, code, "transfer",
                                      seen_until=dt.date(2026, 12, 31))
    ledger.setting("membership.fee_cents.acteurs_locaux", "0")
    with pytest.raises(InvalidInput, match="0"):
        membership.record_partner_fee(ledger.uow(), admin, code, "transfer")
    assert ledger.count("entries") == 0


def test_the_association_records_a_soliste_fee_by_transfer(ledger):
    admin = ledger.user("admin")
    marie = ledger.soliste(name="Marie Lefebvre")
    done = membership.record_fee(ledger.uow(), admin, marie.party_code, "transfer",
                                 today=DECEMBER)
    assert (done.fee_cents, done.membership_until) == (300, dt.date(2026, 12, 31))
    ccas = ledger.user("ccas")
    assert membership.record_fee(ledger.uow(), admin, ccas.party_code, "cheque",
                                 today=DECEMBER).fee_cents == 5000
    with pytest.raises(UnknownParty):  # the association itself is no member
        membership.record_fee(ledger.uow(), admin, "A-000001", "transfer")
    ledger.assert_consistent()


# ------------------------------------------------------------------ the members


def test_members_by_college_with_their_status(ledger):
    admin = ledger.user("admin")
    marie = ledger.soliste(name="Marie Lefebvre")
    karim = ledger.soliste(name="Karim Benali")
    baker = ledger.prestataire(name="Boulangerie")
    applicant = ledger.prestataire(name="Candidat")
    set_member(ledger, applicant.party_code, status="submitted")
    ccas = ledger.user("ccas", name="CCAS de Boulogne-sur-Mer")
    set_member(ledger, marie.party_code, until=dt.date(2027, 12, 31))
    set_member(ledger, karim.party_code, until=dt.date(2026, 12, 20))
    set_member(ledger, baker.party_code, until=dt.date(2025, 12, 31))
    code = partner(ledger, admin)
    everyone = read(ledger, membership.members, today=DECEMBER)
    shown = {m.code: (m.college, m.status) for m in everyone}
    assert shown == {
        marie.party_code: (College.SOLISTES, "current"),
        karim.party_code: (College.SOLISTES, "lapsing"),
        baker.party_code: (College.PRESTATAIRES, "expired"),
        code: (College.ACTEURS_LOCAUX, "never"),
    }  # not the applicant, not the CCAS (no membership), not the association
    set_member(ledger, ccas.party_code, until=dt.date(2026, 12, 31))
    locals_ = read(ledger, membership.members, "acteurs_locaux", today=DECEMBER)
    assert [m.code for m in locals_] == [code, ccas.party_code]  # by name: CAB, CCAS
    assert [m.code for m in read(ledger, membership.members, None, "benali",
                                 today=DECEMBER)] == [karim.party_code]
    assert [m.code for m in read(ledger, membership.members, None, "l-0000",
                                 today=DECEMBER)] == [code]
    assert [m.code for m in read(ledger, membership.members, status="expired",
                                 today=DECEMBER)] == [baker.party_code]
    tally = {c.college: c for c in read(ledger, membership.counts, today=DECEMBER)}
    assert tally[College.SOLISTES].total == 2
    assert tally[College.ACTEURS_LOCAUX].by_status[membership.MemberStatus.NEVER] == 1
    assert tally[College.ACTEURS_LOCAUX].by_status[membership.MemberStatus.LAPSING] == 1


def test_the_lapsing_list_boundaries(ledger):
    admin = ledger.user("admin")
    people = {until: ledger.soliste(name=f"Soliste {until}") for until in (
        dt.date(2026, 11, 30), dt.date(2026, 12, 1), dt.date(2026, 12, 15),
        dt.date(2026, 12, 31), dt.date(2027, 1, 1))}
    for until, who in people.items():
        set_member(ledger, who.party_code, until=until)
    ledger.soliste(name="Jamais cotisé")
    code = partner(ledger, admin)
    set_partner_until(ledger, code, dt.date(2026, 12, 31))
    due = read(ledger, membership.lapsing, DECEMBER)
    assert {m.code for m in due} == {people[dt.date(2026, 12, d)].party_code
                                     for d in (1, 15, 31)} | {code}
    status = {m.membership_until: m.status for m in due}
    assert status[dt.date(2026, 12, 1)] == "expired"  # already past, still this month
    assert status[dt.date(2026, 12, 15)] == "lapsing"  # today: still valid
    assert status[dt.date(2026, 12, 31)] == "lapsing"  # the month's last day
    # On the month's last day and on the next month's first.
    assert {m.membership_until for m in read(ledger, membership.lapsing,
                                             dt.date(2026, 12, 31))} == {
        dt.date(2026, 12, 1), dt.date(2026, 12, 15), dt.date(2026, 12, 31)}
    assert {m.membership_until for m in read(ledger, membership.lapsing,
                                             dt.date(2027, 1, 1))} == {dt.date(2027, 1, 1)}
    assert membership.month_bounds(dt.date(2028, 2, 10)) == (dt.date(2028, 2, 1),
                                                             dt.date(2028, 2, 29))


# ------------------------------------------------------------------ reminders


def lapsing_people(ledger):
    """Two solistes and a partner whose membership ends in December, one without
    e-mail, and one soliste who is not due."""
    admin = ledger.user("admin")
    marie = ledger.soliste(name="Marie Lefebvre")
    karim = ledger.soliste(name="Karim Benali")
    lucie = ledger.soliste(name="Lucie Caron")
    paul = ledger.soliste(name="Paul Martin")
    set_member(ledger, marie.party_code, until=dt.date(2026, 12, 31),
               email="marie@example.org")
    set_member(ledger, karim.party_code, until=dt.date(2026, 12, 31),
               email="karim@example.org")
    set_member(ledger, lucie.party_code, until=dt.date(2026, 12, 31))  # no e-mail
    # Paul is due neither in December 2026 nor this month, whatever the clock says.
    not_due = dt.date(max(2027, clock.paris_today().year + 1), 12, 31)
    set_member(ledger, paul.party_code, until=not_due, email="paul@example.org")
    code = partner(ledger, admin)
    set_partner_until(ledger, code, dt.date(2026, 12, 31))
    return admin, marie, karim, lucie, code


def test_outbox_reminders_keep_the_mail_and_go_once_a_month(ledger):
    admin, marie, karim, lucie, code = lapsing_people(ledger)
    outbox = mail.OutboxMailer("Bou'Sol (APMC) <adhesions@bousol.invalid>")
    run = membership.send_reminders(ledger.uow, admin, DECEMBER, outbox)
    assert sorted(run.sent) == sorted([marie.party_code, karim.party_code, code])
    assert run.without_email == [lucie.party_code] and run.failed == run.already == []
    kept = rows(ledger, "SELECT * FROM mail_messages ORDER BY id")
    assert {(m.kind, m.period, m.status, m.transport) for m in kept} == {
        ("membership_reminder", "2026-12", "sent", "outbox")}
    to_marie = next(m for m in kept if m.to_address == "marie@example.org")
    with ledger.engine.connect() as conn:
        marie_id = conn.execute(sa.text("SELECT id FROM parties WHERE code = :c"),
                                {"c": marie.party_code}).scalar_one()
    assert to_marie.recipient_key == f"party:{marie_id}" and to_marie.sent_at is not None
    assert to_marie.subject == "Votre adhésion au Bou'Sol prend fin le 31/12/2026"
    body = to_marie.body
    for part in ("Bonjour Marie Lefebvre,", "prend fin le 31/12/2026", "3,00\u00a0€",
                 "comptoir du Crédit Municipal", "virement", marie.party_code,
                 "jusqu'au 31/12/2027", "(APMC)"):
        assert part in body, part
    to_cab = next(m for m in kept if m.recipient_key.startswith("partner:"))
    assert "Bonjour Mme Dupont," in to_cab.body and "50,00\u00a0€" in to_cab.body
    assert "comptoir" not in to_cab.body  # partners pay the association directly
    # A second run in the month sends nothing; the next month reminds again.
    again = membership.send_reminders(ledger.uow, admin, dt.date(2026, 12, 31), outbox)
    assert again.sent == [] and len(again.already) == 3
    assert ledger.count("mail_messages") == 3
    assert membership.send_reminders(ledger.uow, admin, dt.date(2027, 1, 2), outbox).sent == []


class Flaky(Recorder):
    """A mailer whose server refuses the first ``failures`` messages."""

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures

    def send(self, message):
        if self.failures:
            self.failures -= 1
            raise mail.DeliveryFailed("451 try again later")
        super().send(message)


def test_a_name_no_header_accepts_fails_alone(ledger):
    admin, marie, *_ = lapsing_people(ledger)
    with ledger.engine.begin() as conn:  # typed with a line separator (U+2028)
        conn.execute(sa.text("UPDATE parties SET name = :n WHERE code = :c"),
                     {"n": "Marie\u2028Bcc: x@evil.example", "c": marie.party_code})
    recorder = Recorder()
    run = membership.send_reminders(ledger.uow, admin, DECEMBER, recorder)
    assert run.failed == [] and len(run.sent) == 3
    to_marie = next(m for m in recorder.sent if "marie@example.org" in m["To"])
    assert "\u2028" not in to_marie["To"] and "\n" not in to_marie["To"]
    assert to_marie["Bcc"] is None


def test_failed_and_stale_reminders_are_sent_again(ledger):
    admin, *_ = lapsing_people(ledger)
    first = membership.send_reminders(ledger.uow, admin, DECEMBER, Flaky(failures=1))
    assert len(first.failed) == 1 and len(first.sent) == 2
    again = membership.send_reminders(ledger.uow, admin, DECEMBER, Recorder())
    assert again.sent == [first.failed[0][0]] and len(again.already) == 2
    assert {r.status for r in rows(ledger, "SELECT status FROM mail_messages")} == {"sent"}
    # A run that died between its claim and its delivery left a pending row: skipped
    # while fresh (another run may be delivering it), claimed again once stale.
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE mail_messages SET status = 'pending', sent_at = NULL "
                             "WHERE id = (SELECT min(id) FROM mail_messages)"))
    fresh = membership.send_reminders(ledger.uow, admin, DECEMBER, Recorder())
    assert fresh.sent == [] and len(fresh.already) == 3
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE mail_messages SET created_at = :t WHERE status = "
                             "'pending'"),
                     {"t": clock.now() - membership.STALE_PENDING * 2})
    stale = membership.send_reminders(ledger.uow, admin, DECEMBER, Recorder())
    assert len(stale.sent) == 1 and ledger.count("mail_messages") == 3


def test_only_the_association_sends_reminders(ledger):
    lapsing_people(ledger)
    with pytest.raises(Forbidden):
        membership.send_reminders(ledger.uow, ledger.user("bank"), DECEMBER, Recorder())
    assert ledger.count("mail_messages") == 0


def test_concurrent_sends_remind_each_member_once(ledger):
    admin, *_ = lapsing_people(ledger)
    recorder = Recorder()
    outcomes = hammer(lambda i: membership.send_reminders(ledger.uow, admin, DECEMBER,
                                                          recorder), threads=6)
    assert sum(len(run.sent) for run in outcomes) == 3
    assert len(recorder.sent) == 3
    assert sorted(str(m["To"]) for m in recorder.sent) == sorted([
        "CAB - Communauté d'agglomération du Boulonnais <economie@cab.example>",
        "Karim Benali <karim@example.org>", "Marie Lefebvre <marie@example.org>"])
    assert ledger.count("mail_messages") == 3


# PostgreSQL only: on SQLite the write lock taken at BEGIN serialises the runs, so the
# check already sees the other's rows (no such race to provoke).
@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_reminder_claimed_meanwhile_is_skipped(ledger, backend, monkeypatch):
    """The race itself, made certain: another run commits Marie's reminder between our
    check and our insert."""
    admin, marie, *_ = lapsing_people(ledger)
    real_text = membership.reminder_text

    def racing_text(member, fee_cents, today):
        if member.code == marie.party_code:
            with ledger.engine.begin() as conn:
                conn.execute(sa.text(
                    "INSERT INTO mail_messages (kind, recipient_key, period, to_address, "
                    "subject, body, status, created_at) VALUES ('membership_reminder', :k, "
                    "'2026-12', 'marie@example.org', 's', 'b', 'sent', CURRENT_TIMESTAMP)"),
                    {"k": member.recipient_key})
        return real_text(member, fee_cents, today)

    monkeypatch.setattr(membership, "reminder_text", racing_text)
    recorder = Recorder()
    run = membership.send_reminders(ledger.uow, admin, DECEMBER, recorder)
    assert run.already == [marie.party_code] and len(run.sent) == 2
    assert len(recorder.sent) == 2 and ledger.count("mail_messages") == 3


def test_smtp_without_a_server_is_refused_before_writing(ledger):
    admin, *_ = lapsing_people(ledger)
    mailer = mail.from_config({"MAIL_TRANSPORT": "smtp", "MAIL_SENDER": "a@b.example"})
    with pytest.raises(mail.MailNotConfigured, match="MAIL_SERVER"):
        membership.send_reminders(ledger.uow, admin, DECEMBER, mailer)
    odd = mail.from_config({"MAIL_TRANSPORT": "pigeon"})
    with pytest.raises(mail.MailNotConfigured, match="inconnu"):
        membership.send_reminders(ledger.uow, admin, DECEMBER, odd)
    both = mail.from_config({"MAIL_TRANSPORT": "smtp", "MAIL_SERVER": "localhost",
                             "MAIL_SENDER": "a@b.example", "MAIL_USE_TLS": "1",
                             "MAIL_USE_SSL": "1"})
    assert "MAIL_USE_SSL" in both.problem()
    assert ledger.count("mail_messages") == 0


# ------------------------------------------------------------------ a fake SMTP server


class FakeSmtp(socketserver.ThreadingTCPServer):
    """A tiny SMTP server on 127.0.0.1 (random port) that keeps the messages it is
    given, or refuses every recipient with 550 (``refuse=True``)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, refuse: bool = False):
        self.refuse = refuse
        self.messages: list[bytes] = []
        self.recipients: list[str] = []
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()


class SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        server: FakeSmtp = self.server  # type: ignore[assignment]
        self.reply("220 fake.smtp ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            command = line.decode("utf-8", "replace").strip()
            verb = command[:4].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-fake.smtp\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                self.wfile.flush()
            elif verb == "HELO":
                self.reply("250 fake.smtp")
            elif verb == "MAIL":
                self.reply("250 OK")
            elif verb == "RCPT":
                if server.refuse:
                    self.reply("550 5.1.1 Mailbox unavailable")
                else:
                    server.recipients.append(command[8:].strip())
                    self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = []
                while True:
                    chunk = self.rfile.readline()
                    if chunk in (b".\r\n", b".\n", b""):
                        break
                    data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                server.messages.append(b"".join(data))
                self.reply("250 OK queued")
            elif verb == "RSET" or verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


@pytest.fixture
def smtp_server():
    server = FakeSmtp()
    yield server
    server.stop()


@pytest.fixture
def refusing_smtp():
    server = FakeSmtp(refuse=True)
    yield server
    server.stop()


def smtp_config(port: int) -> dict:
    return {"MAIL_TRANSPORT": "smtp", "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port,
            "MAIL_USE_TLS": False, "MAIL_USE_SSL": False, "MAIL_TIMEOUT": 5,
            "MAIL_SENDER": "Bou'Sol (APMC) <adhesions@bousol.invalid>"}


def test_smtp_transport_delivers_to_the_server(ledger, smtp_server):
    admin, *_ = lapsing_people(ledger)
    mailer = mail.from_config(smtp_config(smtp_server.port))
    run = membership.send_reminders(ledger.uow, admin, DECEMBER, mailer)
    assert len(run.sent) == 3 and run.failed == []
    assert len(smtp_server.messages) == 3
    parsed = [email.message_from_bytes(m, policy=email.policy.default)
              for m in smtp_server.messages]
    to_marie = next(p for p in parsed if "marie@example.org" in str(p["To"]))
    assert str(to_marie["Subject"]) == "Votre adhésion au Bou'Sol prend fin le 31/12/2026"
    assert "adhesions@bousol.invalid" in str(to_marie["From"])
    assert "Bonjour Marie Lefebvre," in to_marie.get_content()
    assert "<marie@example.org>" in smtp_server.recipients
    assert {(m.status, m.transport) for m in rows(ledger, "SELECT * FROM mail_messages")} == {
        ("sent", "smtp")}


def test_smtp_failure_marks_the_mail_failed(ledger, refusing_smtp):
    admin, *_ = lapsing_people(ledger)
    run = membership.send_reminders(ledger.uow, admin, DECEMBER,
                                    mail.from_config(smtp_config(refusing_smtp.port)))
    assert run.sent == [] and len(run.failed) == 3
    kept = rows(ledger, "SELECT status, error, sent_at FROM mail_messages")
    assert len(kept) == 3 and all(m.status == "failed" and m.sent_at is None for m in kept)
    assert all("550" in m.error for m in kept)
    # A failed reminder is claimed again by the next run, which may succeed.
    assert len(membership.send_reminders(ledger.uow, admin, DECEMBER,
                                         mail.OutboxMailer()).sent) == 3


def test_a_server_that_does_not_answer_is_a_failure_too(ledger):
    admin, *_ = lapsing_people(ledger)
    closed = FakeSmtp()
    port = closed.port
    closed.stop()  # nothing listens there any more
    run = membership.send_reminders(ledger.uow, admin, DECEMBER,
                                    mail.from_config(smtp_config(port)))
    assert len(run.failed) == 3 and "ConnectionRefusedError" in run.failed[0][1]


# ------------------------------------------------------------------ configuration


def test_tests_and_development_never_send(app):
    from config import DevelopmentConfig, ProductionConfig, TestingConfig

    assert TestingConfig.MAIL_TRANSPORT == "outbox"
    assert app.config["MAIL_TRANSPORT"] == "outbox"
    assert mail.from_config(app.config).transport == "outbox"
    assert isinstance(mail.from_config({"MAIL_TRANSPORT": "outbox"}), mail.OutboxMailer)
    chosen = os.environ.get("BOUSOL_MAIL_TRANSPORT")  # the environment may choose
    assert DevelopmentConfig.MAIL_TRANSPORT == (chosen or "outbox")
    assert ProductionConfig.MAIL_TRANSPORT == (chosen or "smtp")


# ------------------------------------------------------------------ web


@pytest.fixture
def treasurer(client, ledger):
    admin = ledger.user("admin")
    login(client, admin.username, PASSWORD)
    return admin


def test_members_pages_are_for_the_association_only(client, ledger):
    clerk = ledger.user("bank")
    login(client, clerk.username, PASSWORD)
    for url in ("/admin/adherents", "/admin/adherents/echeances", "/admin/partenaires/nouveau",
                "/admin/courriels", "/admin/partenaires/L-000001",
                "/admin/adherents/S-000001/cotisation"):
        assert client.get(url).status_code == 403, url
    token = csrf_token(client.get("/comptoir/").text)
    assert client.post("/admin/adherents/echeances/rappels",
                       data={"csrf_token": token}).status_code == 403
    assert ledger.count("mail_messages") == 0


def test_members_list_with_filters_and_counts(client, ledger, treasurer):
    marie = ledger.soliste(name="Marie Lefebvre")
    ledger.prestataire(name="Boulangerie du Vieux Boulogne")
    set_member(ledger, marie.party_code, until=dt.date(2099, 12, 31))
    partner(ledger, treasurer)
    page = client.get("/admin/adherents")
    assert page.status_code == 200
    assert "Marie Lefebvre" in page.text and "CAB - Communaut" in page.text
    assert re.search(r'data-testid="college-solistes">.*?<td class="num">1</td>', page.text,
                     re.S)
    assert "20,00" in page.text and "50,00" in page.text  # the fees of the colleges
    solos = client.get("/admin/adherents?college=solistes")
    assert "Marie Lefebvre" in solos.text and "Boulangerie du" not in solos.text
    never = client.get("/admin/adherents?statut=never&q=boul")
    assert "Boulangerie du Vieux Boulogne" in never.text and "Marie" not in never.text
    odd = client.get("/admin/adherents?college=rois&statut=zz")
    assert odd.status_code == 200 and "Marie Lefebvre" in odd.text  # unknown: ignored


def test_new_partner_form(client, ledger, treasurer):
    page = client.get("/admin/partenaires/nouveau")
    assert page.status_code == 200
    fields = {"csrf_token": csrf_token(page.text), "name": "Crédit Municipal",
              "category": "credit_municipal", "email": "pas-une-adresse", "phone": "",
              "contact_name": "", "address": "", "commune": ""}
    bad = client.post("/admin/partenaires/nouveau", data=fields)
    assert bad.status_code == 422 and "Adresse électronique invalide" in bad.text
    assert 'aria-invalid="true"' in bad.text
    assert client.post("/admin/partenaires/nouveau",
                       data={**fields, "name": "", "email": ""}).status_code == 422
    assert ledger.count("partners") == 0
    done = client.post("/admin/partenaires/nouveau",
                       data={**fields, "email": "direction@cm.example"})
    assert done.status_code == 303 and done.headers["Location"].endswith(
        "/admin/partenaires/L-000001")
    detail = client.get("/admin/partenaires/L-000001")
    assert detail.status_code == 200 and "Aucune cotisation enregistrée" in detail.text
    assert client.get("/admin/partenaires/L-000099").status_code == 404


def test_partner_edit_and_fee(client, ledger, treasurer):
    code = partner(ledger, treasurer)
    page = client.get(f"/admin/partenaires/{code}")
    token = csrf_token(page.text)
    edit = {"csrf_token": token, "name": "CAB", "category": "collectivite",
            "contact_name": "", "email": "cab@example.org", "phone": "12", "address": "",
            "commune": ""}
    bad = client.post(f"/admin/partenaires/{code}", data=edit)
    assert bad.status_code == 422 and "Numéro de téléphone invalide" in bad.text
    ok = client.post(f"/admin/partenaires/{code}", data={**edit, "phone": ""},
                     follow_redirects=True)
    assert ok.status_code == 200 and "Fiche du partenaire enregistrée" in ok.text
    assert rows(ledger, "SELECT name FROM partners")[0].name == "CAB"
    fee = {"csrf_token": token, "tender": "transfer", "seen_until": ""}
    wrong = client.post(f"/admin/partenaires/{code}/cotisation", data={**fee, "tender": "cash"})
    assert wrong.status_code == 422
    paid = client.post(f"/admin/partenaires/{code}/cotisation", data=fee,
                       follow_redirects=True)
    assert "Cotisation de 50,00" in paid.text and "Adhésion payée jusqu" in paid.text
    twice = client.post(f"/admin/partenaires/{code}/cotisation", data=fee,
                        follow_redirects=True)
    assert "rien n&#39;a été encaissé une seconde fois" in twice.text
    assert ledger.system("fees_income") == 5000
    assert client.post(f"/admin/partenaires/{code}/cotisation",
                       data={"tender": "transfer"}).status_code == 400  # no CSRF token


def test_member_fee_page_for_a_soliste(client, ledger, treasurer):
    marie = ledger.soliste(name="Marie Lefebvre")
    url = f"/admin/adherents/{marie.party_code}/cotisation"
    page = client.get(url)
    assert page.status_code == 200 and "3,00" in page.text
    done = client.post(url, data={"csrf_token": csrf_token(page.text), "tender": "cheque",
                                  "seen_until": ""}, follow_redirects=True)
    assert "Cotisation de 3,00" in done.text
    assert re.search(r"par l(&#39;|')association \(Chèque\)", done.text)
    assert client.get("/admin/adherents/A-000001/cotisation").status_code == 404
    assert client.get("/admin/adherents/S-999999/cotisation").status_code == 404


def test_lapsing_page_sends_reminders_once(client, ledger, treasurer):
    marie = ledger.soliste(name="Marie Lefebvre")
    lucie = ledger.soliste(name="Lucie Caron")
    month_end = membership.month_bounds(membership.paris_today())[1]
    set_member(ledger, marie.party_code, until=month_end, email="marie@example.org")
    set_member(ledger, lucie.party_code, until=month_end)
    page = client.get("/admin/adherents/echeances")
    assert page.status_code == 200 and "sans adresse e-mail" in page.text
    assert "1 rappel à envoyer" in page.text and "Envoyer les rappels" in page.text
    token = csrf_token(page.text)
    assert client.post("/admin/adherents/echeances/rappels").status_code == 400
    sent = client.post("/admin/adherents/echeances/rappels", data={"csrf_token": token},
                       follow_redirects=True)
    assert "Rappels : 1 envoyé," in sent.text and "1 adhérent sans adresse" in sent.text
    assert "0 rappel à envoyer" in sent.text and "marie@example.org" in sent.text
    again = client.post("/admin/adherents/echeances/rappels", data={"csrf_token": token},
                        follow_redirects=True)
    assert "Rappels : 0 envoyé," in again.text and "1 déjà envoyé ce mois-ci" in again.text
    kept = client.get("/admin/courriels")
    assert kept.status_code == 200 and "Bonjour Marie Lefebvre," in kept.text
    assert 'data-testid="outbox-note"' in kept.text
    assert ledger.count("mail_messages") == 1


@pytest.fixture
def smtp_app(database_url):
    from bousol.app import create_app
    from bousol.extensions import db

    def make(**config):
        made = create_app("testing", SQLALCHEMY_DATABASE_URI=database_url, **config)
        apps.append(made)
        return made

    apps: list = []
    yield make
    for made in apps:
        with made.app_context():
            db.engine.dispose()


def test_web_reminders_with_smtp_failures_and_no_server(smtp_app, ledger, refusing_smtp):
    lapsing_people(ledger)
    admin = ledger.user("admin")
    with ledger.engine.begin() as conn:  # this month, whatever today is
        conn.execute(sa.text("UPDATE parties SET membership_until = :u "
                             "WHERE membership_until = :d"),
                     {"u": membership.month_bounds(membership.paris_today())[1],
                      "d": dt.date(2026, 12, 31)})
    unset = smtp_app(MAIL_TRANSPORT="smtp", MAIL_SERVER="").test_client()
    login(unset, admin.username, PASSWORD)
    page = unset.get("/admin/adherents/echeances")
    assert "MAIL_SERVER" in page.text
    refused = unset.post("/admin/adherents/echeances/rappels",
                         data={"csrf_token": csrf_token(page.text)}, follow_redirects=True)
    assert refused.status_code == 200 and "pas configuré" in refused.text
    assert ledger.count("mail_messages") == 0
    failing = smtp_app(**smtp_config(refusing_smtp.port)).test_client()
    login(failing, admin.username, PASSWORD)
    page = failing.get("/admin/adherents/echeances")
    done = failing.post("/admin/adherents/echeances/rappels",
                        data={"csrf_token": csrf_token(page.text)}, follow_redirects=True)
    assert done.status_code == 200 and "2 en échec" in done.text and "550" in done.text
    assert {m.status for m in rows(ledger, "SELECT status FROM mail_messages")} == {"failed"}


# ------------------------------------------------------------------ command line


def test_send_reminders_command_is_idempotent(app, ledger):
    lapsing_people(ledger)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["bousol", "send-reminders", "--date", "2026-12-15"])
    assert first.exit_code == 0, first.output
    assert "Rappels 2026-12 : 3 envoyé(s)" in first.output
    second = runner.invoke(args=["bousol", "send-reminders", "--date", "2026-12-20"])
    assert second.exit_code == 0 and "0 envoyé(s), 0 en échec, 3 déjà" in second.output
    bad = runner.invoke(args=["bousol", "send-reminders", "--date", "15/12/2026"])
    assert bad.exit_code == 2 and "Date invalide" in bad.output
    assert ledger.count("mail_messages") == 3


def test_demo_has_members_partners_and_someone_to_remind(app, ledger):
    result = app.test_cli_runner().invoke(args=["bousol", "demo"])
    assert result.exit_code == 0, result.output
    with ledger.uow(read_only=True) as uow:
        due = membership.lapsing(uow.conn)
        found = membership.members(uow.conn, "acteurs_locaux")
    assert any(m.email and m.party_kind == PartyKind.SOLISTE for m in due)
    assert {m.category for m in found if m.source == "partner"} == {
        "collectivite", "credit_municipal", "reseau_ess"}
    ledger.assert_consistent()
