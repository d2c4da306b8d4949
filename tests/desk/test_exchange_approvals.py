"""Exchanges above the thresholds wait for a second person (issue 13, docs/duties.md):
the state machine, the thresholds (per operation, per member and day), approving,
refusing, cancelling, the rules applied at the approval, once under concurrency."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import sqlalchemy as sa

from bousol.ledger.desk import exchange as desk_exchange
from bousol.ledger.desk import exchange_approvals, note_operations
from bousol.ledger.desk.exchange_approvals import TRANSITIONS, Status
from bousol.ledger.kernel import settings
from bousol.ledger.kernel.errors import (
    BonusAdvanceExceeded,
    ExchangeApprovalTransition,
    Forbidden,
    InvalidInput,
    NotesAboveApprovalLimit,
    SecondPersonRequired,
    UnknownExchangeApproval,
)
from tests.helpers import PASSWORD, THREADS, hammer


@pytest.fixture
def desk(ledger):
    """A soliste, the clerk who asks, and a second clerk."""
    ledger.subsidy("1000.00")
    return ledger.soliste(), ledger.user("bank"), ledger.user("bank")


def ask(ledger, clerk, member, euros: str, **kw):
    return desk_exchange.exchange(ledger.uow(), clerk, party_code=member.party_code, euros=euros,
                               **kw)


def status_of(ledger, approval_id: int) -> str:
    with ledger.uow(read_only=True) as uow:
        return exchange_approvals.get(uow.conn, approval_id).status


# ---------------------------------------------------------------- the state machine


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)))
def test_the_state_machine_is_the_table(current, target):
    allowed = {(Status.PENDING, Status.APPROVED), (Status.PENDING, Status.REFUSED),
               (Status.PENDING, Status.CANCELLED)}
    assert TRANSITIONS == allowed
    if (current, target) in allowed:
        exchange_approvals.check_transition(current.value, target)
    else:
        with pytest.raises(ExchangeApprovalTransition) as refused:
            exchange_approvals.check_transition(current.value, target)
        assert refused.value.http_status == 409


def test_an_unknown_status_moves_nowhere():
    with pytest.raises(ExchangeApprovalTransition):
        exchange_approvals.check_transition("paid", Status.APPROVED)


# ---------------------------------------------------------------- the thresholds


def test_the_thresholds_are_dated_settings_with_checked_values(ledger):
    assert settings.DEFAULTS["exchange.approval_above_cents"] == "50000"
    assert settings.DEFAULTS["exchange.approval_daily_above_cents"] == "100000"
    assert settings.validate("exchange.approval_above_cents", " 75000 ") == "75000"
    for bad in ("-1", "abc", "1.5", "100000001"):
        with pytest.raises(InvalidInput):
            settings.validate("exchange.approval_daily_above_cents", bad)


def test_at_the_thresholds_the_exchange_posts_at_once(ledger, desk):
    marie, clerk, _other = desk
    result = ask(ledger, clerk, marie, "500.00")
    assert result.status == "posted" and result.entry_id and result.approval_id is None
    assert ask(ledger, clerk, marie, "500.00").status == "posted"  # 1 000 € today: at it
    assert ledger.balance(marie) == 105_000
    assert ledger.count("exchange_approvals") == 0


def test_above_the_per_operation_amount_nothing_moves(ledger, desk):
    marie, clerk, _other = desk
    entries, reserve = ledger.count("entries"), ledger.system("eur_reserve")
    result = ask(ledger, clerk, marie, "500.01", tender="card", memo="Achat groupé")
    assert result.pending and result.status == "pending_approval"
    assert result.entry_id is None and result.approval_id
    assert result.euro_cents == 50_001 and result.bousol_cents == 52_501
    assert ledger.count("entries") == entries and ledger.system("eur_reserve") == reserve
    assert ledger.balance(marie) == 0
    with ledger.uow(read_only=True) as uow:
        waiting = exchange_approvals.pending(uow.conn)
        assert exchange_approvals.pending_count(uow.conn) == 1
    assert [(w.id, w.rule, w.euro_cents, w.tender, w.memo, w.requested_by, w.status)
            for w in waiting] == [(result.approval_id, "operation", 50_001, "card",
                                   "Achat groupé", clerk.username, "pending")]
    ledger.assert_consistent()  # a pending request moves no money


def test_above_the_per_day_amount_counts_the_day_and_the_pending(ledger, desk):
    marie, clerk, _other = desk
    ask(ledger, clerk, marie, "400.00")
    ask(ledger, clerk, marie, "400.00")
    assert ask(ledger, clerk, ledger.soliste(), "300.00").status == "posted"  # another member
    third = ask(ledger, clerk, marie, "300.00")  # 1 100 € today
    assert third.pending
    with ledger.uow(read_only=True) as uow:
        assert exchange_approvals.get(uow.conn, third.approval_id).rule == "day"
        assert exchange_approvals.exchanged_today(uow.conn, _party_id(uow.conn, marie)) \
            == 110_000
    # The pending 300 € count: 200 € more would make 1 300 € today.
    assert ask(ledger, clerk, marie, "150.00").pending


def test_a_reversed_exchange_no_longer_counts_for_the_day(ledger, desk):
    marie, clerk, _other = desk
    mistake = ask(ledger, clerk, marie, "500.00")
    ledger.reverse(mistake.entry_id)
    assert ask(ledger, clerk, marie, "500.00").status == "posted"
    assert ask(ledger, clerk, marie, "500.00").status == "posted"
    assert ask(ledger, clerk, marie, "0.01").pending


def test_lower_thresholds_apply_from_their_change(ledger, desk):
    marie, clerk, _other = desk
    ledger.setting("exchange.approval_above_cents", "2000")
    assert ask(ledger, clerk, marie, "20.00").status == "posted"
    assert ask(ledger, clerk, marie, "20.01").pending


def test_a_replayed_key_answers_the_same_pending_request(ledger, desk):
    marie, clerk, _other = desk
    first = ask(ledger, clerk, marie, "800.00", idempotency_key="desk-1")
    again = ask(ledger, clerk, marie, "800.00", idempotency_key="desk-1")
    assert again == first and again.pending
    assert ledger.count("exchange_approvals") == 1


# ---------------------------------------------------------------- approving


def test_a_second_person_approves_and_the_exchange_is_posted(ledger, desk):
    marie, clerk, other = desk
    asked = ask(ledger, clerk, marie, "600.00", tender="cash", memo="Épargne")
    done = exchange_approvals.approve(ledger.uow(), other, asked.approval_id)
    assert done.status == "approved" and done.decided_by == other.username
    assert done.entry_id is not None
    assert ledger.balance(marie) == 63_000
    assert ledger.system("desk_cash") == 60_000  # the clerk takes the cash now
    with ledger.engine.connect() as conn:
        entry = conn.execute(sa.text("SELECT kind, actor_user_id, memo, details FROM entries "
                                     "WHERE id = :id"), {"id": done.entry_id}).one()
    assert entry.kind == "exchange" and entry.actor_user_id == clerk.user_id
    assert entry.memo == "Épargne" and f'"approval": {asked.approval_id}' in entry.details
    ledger.assert_consistent()
    with pytest.raises(ExchangeApprovalTransition, match="déjà approuvée"):
        exchange_approvals.approve(ledger.uow(), other, asked.approval_id)
    assert ledger.balance(marie) == 63_000


def test_an_admin_approves_too(ledger, desk):
    marie, clerk, _other = desk
    asked = ask(ledger, clerk, marie, "600.00")
    assert exchange_approvals.approve(ledger.uow(), ledger.user("admin"),
                                      asked.approval_id).status == "approved"


def test_the_one_who_asked_neither_approves_nor_refuses(ledger, desk):
    marie, clerk, _other = desk
    asked = ask(ledger, clerk, marie, "600.00")
    with pytest.raises(SecondPersonRequired) as refused:
        exchange_approvals.approve(ledger.uow(), clerk, asked.approval_id)
    assert refused.value.code == "second_person_required"
    with pytest.raises(SecondPersonRequired):
        exchange_approvals.refuse(ledger.uow(), clerk, asked.approval_id, "Pas moi")
    with pytest.raises(Forbidden):
        exchange_approvals.approve(ledger.uow(), marie, asked.approval_id)
    assert status_of(ledger, asked.approval_id) == "pending"
    assert ledger.balance(marie) == 0


def test_the_database_refuses_the_asker_as_approver(ledger, desk, engine):
    marie, clerk, _other = desk
    asked = ask(ledger, clerk, marie, "600.00")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE exchange_approvals SET status = 'refused', reason = 'x', "
            "decided_at = requested_at, decided_by_user_id = requested_by_user_id "
            "WHERE id = :id"), {"id": asked.approval_id})
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("UPDATE exchange_approvals SET status = 'done' WHERE id = :id"),
                     {"id": asked.approval_id})
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # approved, no entry
        conn.execute(sa.text(
            "UPDATE exchange_approvals SET status = 'approved', decided_at = requested_at "
            "WHERE id = :id"), {"id": asked.approval_id})


def test_the_approval_applies_the_rules_of_an_exchange(ledger, desk):
    marie, clerk, other = desk
    asked = ask(ledger, clerk, marie, "600.00")
    ledger.setting("exchange.bonus_advance_max_cents", "0")
    with ledger.uow() as uow:  # the subsidy is spent elsewhere meanwhile
        uow.conn.execute(sa.text("UPDATE accounts SET balance = 0 WHERE system_code = "
                                 "'bonus_fund'"))
        uow.conn.execute(sa.text("UPDATE accounts SET balance = balance + 100000 WHERE "
                                 "system_code = 'eur_outside'"))
        uow.commit()
    with pytest.raises(BonusAdvanceExceeded):
        exchange_approvals.approve(ledger.uow(), other, asked.approval_id)
    assert status_of(ledger, asked.approval_id) == "pending"  # still waits, nothing moved
    assert ledger.balance(marie) == 0


def test_refusing_needs_a_reason_and_moves_nothing(ledger, desk):
    marie, clerk, other = desk
    asked = ask(ledger, clerk, marie, "600.00")
    with pytest.raises(InvalidInput, match="motif"):
        exchange_approvals.refuse(ledger.uow(), other, asked.approval_id, "  ")
    done = exchange_approvals.refuse(ledger.uow(), other, asked.approval_id,
                                     "Origine des fonds à justifier")
    assert (done.status, done.reason, done.decided_by) == (
        "refused", "Origine des fonds à justifier", other.username)
    assert ledger.balance(marie) == 0
    with pytest.raises(ExchangeApprovalTransition, match="refusée"):
        exchange_approvals.approve(ledger.uow(), other, asked.approval_id)
    # Refused, it no longer counts for the day.
    assert ask(ledger, clerk, marie, "500.00").status == "posted"


def test_only_the_one_who_asked_cancels(ledger, desk):
    marie, clerk, other = desk
    asked = ask(ledger, clerk, marie, "600.00")
    with pytest.raises(Forbidden):
        exchange_approvals.cancel(ledger.uow(), other, asked.approval_id)
    done = exchange_approvals.cancel(ledger.uow(), clerk, asked.approval_id)
    assert done.status == "cancelled" and done.cancelled_by == clerk.username
    with pytest.raises(ExchangeApprovalTransition, match="annulée"):
        exchange_approvals.approve(ledger.uow(), other, asked.approval_id)


@pytest.mark.parametrize("bad", [0, -1, 2**31, True, "1"])
def test_an_unknown_request_is_a_404(ledger, desk, bad):
    with pytest.raises(UnknownExchangeApproval) as refused:
        exchange_approvals.approve(ledger.uow(), desk[2], bad)
    assert refused.value.http_status == 404
    with pytest.raises(UnknownExchangeApproval):
        exchange_approvals.approve(ledger.uow(), desk[2], 999_999)


def test_the_ccas_funding_a_programme_waits_too(ledger):
    from bousol.ledger.ccas import vouchers

    ccas = ledger.user("ccas")
    programme = vouchers.create_programme(
        ledger.uow(), ccas, name="Hiver", budget="2000", starts_on="2026-01-01",
        ends_on="2028-12-31", default_validity_days=30)
    clerk, other = ledger.user("bank"), ledger.user("admin")
    asked = ask(ledger, clerk, ccas, "800.00", programme_id=programme.id)
    assert asked.pending
    with ledger.uow(read_only=True) as uow:
        assert exchange_approvals.get(uow.conn, asked.approval_id).programme_name == "Hiver"
    assert exchange_approvals.approve(ledger.uow(), other, asked.approval_id).entry_id
    ledger.assert_consistent()


# ---------------------------------------------------------------- notes


def test_an_exchange_in_notes_above_the_thresholds_is_refused(ledger):
    ledger.subsidy("1000.00")
    ledger.notes_at_desk([(20, 1, 40), (2, 100, 110), (1, 200, 210)])
    marie = ledger.soliste()
    ledger.setting("exchange.approval_above_cents", "4000")
    entries = ledger.count("entries")
    with pytest.raises(NotesAboveApprovalLimit, match="40,00") as refused:
        note_operations.exchange_notes(
            ledger.uow(), ledger.user("bank"), party_code=marie.party_code,
                             euros="60.00", counts={20: 3, 2: 1, 1: 1})
    assert refused.value.code == "notes_above_approval_limit"
    assert ledger.count("entries") == entries and ledger.count("exchange_approvals") == 0
    assert note_operations.exchange_notes(ledger.uow(), ledger.user("bank"),
                                party_code=marie.party_code, euros="40.00",
                                counts={20: 2, 2: 1}).entry_id


# ---------------------------------------------------------------- concurrency


def test_approving_at_once_posts_once(ledger, desk):
    marie, clerk, _other = desk
    asked = ask(ledger, clerk, marie, "600.00")
    approvers = [ledger.user("bank"), ledger.user("admin")]

    def worker(i: int) -> str:
        try:
            exchange_approvals.approve(ledger.uow(), approvers[i % 2], asked.approval_id)
            return "approved"
        except ExchangeApprovalTransition:
            return "refused"

    assert Counter(hammer(worker)) == {"approved": 1, "refused": THREADS - 1}
    assert ledger.balance(marie) == 63_000
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM entries WHERE kind = 'exchange'")
                            ).scalar_one() == 1
    ledger.assert_consistent()


def test_approving_and_refusing_at_once_do_one_of_them(ledger, desk):
    marie, clerk, other = desk
    asked = ask(ledger, clerk, marie, "600.00")

    def worker(i: int) -> str:
        try:
            if i % 2:
                exchange_approvals.approve(ledger.uow(), other, asked.approval_id)
                return "approved"
            exchange_approvals.refuse(ledger.uow(), other, asked.approval_id, "Non merci")
            return "refused"
        except ExchangeApprovalTransition:
            return "late"

    outcomes = Counter(hammer(worker))
    assert outcomes["late"] == THREADS - 1
    status = status_of(ledger, asked.approval_id)
    assert ledger.balance(marie) == (63_000 if status == "approved" else 0)
    ledger.assert_consistent()


def test_exchanges_at_once_never_slip_under_the_daily_amount(ledger, desk):
    """Eight 300 € exchanges at once for one member: three post (900 €), the others
    wait — never four posted (1 200 €) because they checked the day together."""
    marie, clerk, _other = desk

    def worker(i: int) -> str:
        return ask(ledger, clerk, marie, "300.00").status

    outcomes = Counter(hammer(worker))
    assert outcomes == {"posted": 3, "pending_approval": THREADS - 3}
    assert ledger.balance(marie) == 3 * 31_500
    ledger.assert_consistent()


def _party_id(conn, member) -> int:
    return conn.execute(sa.text("SELECT id FROM parties WHERE code = :c"),
                        {"c": member.party_code}).scalar_one()


# ---------------------------------------------------------------- the desk's pages


def _desk_exchange(client, code: str, euros: str, **extra):
    """Enter, see the preview, confirm: the desk's two steps."""
    import re

    from tests.helpers import csrf_token

    page = client.get(f"/comptoir/change/{code}")
    preview = client.post(f"/comptoir/change/{code}", data={
        "csrf_token": csrf_token(page.text), "euros": euros, "tender": "cash", **extra})
    if preview.status_code != 200:
        return preview, preview
    key = re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"', preview.text)
    done = client.post(f"/comptoir/change/{code}", data={
        "csrf_token": csrf_token(preview.text), "request_key": key.group(1), "euros": euros,
        "tender": "cash", "given_as": "electronic", "confirm": "1"})
    return preview, done


def test_the_desk_asks_then_another_clerk_approves(client, app, ledger, desk):
    from tests.helpers import csrf_token, login

    marie, clerk, other = desk
    login(client, clerk.username, PASSWORD)
    preview, done = _desk_exchange(client, marie.party_code, "750,00")
    assert 'data-testid="needs-approval"' in preview.text
    assert "Demander l&#39;approbation" in preview.text or "Demander l'approbation" in preview.text
    assert done.status_code == 302 and "/comptoir/changes-a-approuver/" in done.location
    page = client.get(done.location)
    assert "En attente d&#39;approbation par une deuxième personne" in page.text \
        or "En attente d'approbation par une deuxième personne" in page.text
    approval_id = int(done.location.rsplit("/", 1)[1])
    assert f"n° {approval_id}" in page.text
    assert f'data-testid="approve-{approval_id}"' not in page.text  # not the asker's
    assert f'data-testid="cancel-{approval_id}"' in page.text
    assert ledger.balance(marie) == 0 and ledger.system("desk_cash") == 0
    assert 'data-testid="pending-exchanges"' in client.get("/comptoir/").text
    assert "(1)" in client.get("/comptoir/").text
    # The asker's own POST is refused by the ledger, with the message.
    refused = client.post(f"/comptoir/changes-a-approuver/{approval_id}/approuver",
                          data={"csrf_token": csrf_token(page.text)}, follow_redirects=True)
    assert "un autre agent de la banque" in refused.text and ledger.balance(marie) == 0

    second = app.test_client()
    login(second, other.username, PASSWORD)
    listing = second.get("/comptoir/changes-a-approuver")
    assert f'data-testid="approve-{approval_id}"' in listing.text
    assert "750,00\u00a0€" in listing.text
    approved = second.post(f"/comptoir/changes-a-approuver/{approval_id}/approuver",
                           data={"csrf_token": csrf_token(listing.text)})
    assert approved.status_code == 302
    assert ledger.balance(marie) == 78_750 and ledger.system("desk_cash") == 75_000
    again = second.post(f"/comptoir/changes-a-approuver/{approval_id}/approuver",
                        data={"csrf_token": csrf_token(listing.text)}, follow_redirects=True)
    assert "déjà approuvée" in again.text and ledger.balance(marie) == 78_750
    shown = client.get(f"/comptoir/changes-a-approuver/{approval_id}")
    assert 'data-testid="approval-approved"' in shown.text and "/comptoir/recu/" in shown.text
    ledger.assert_consistent()


def test_the_desk_refuses_with_a_reason_and_the_asker_cancels(client, app, ledger, desk):
    from tests.helpers import csrf_token, login

    marie, clerk, other = desk
    login(client, clerk.username, PASSWORD)
    _p, first = _desk_exchange(client, marie.party_code, "600.00")
    _p, second_ask = _desk_exchange(client, marie.party_code, "700.00")
    first_id = int(first.location.rsplit("/", 1)[1])
    second_id = int(second_ask.location.rsplit("/", 1)[1])
    page = client.get(second_ask.location)
    cancelled = client.post(f"/comptoir/changes-a-approuver/{second_id}/annuler",
                            data={"csrf_token": csrf_token(page.text)}, follow_redirects=True)
    assert 'data-testid="approval-cancelled"' in cancelled.text

    other_client = app.test_client()
    login(other_client, other.username, PASSWORD)
    listing = other_client.get("/comptoir/changes-a-approuver")
    empty = other_client.post(f"/comptoir/changes-a-approuver/{first_id}/refuser",
                              data={"csrf_token": csrf_token(listing.text), "reason": ""})
    assert empty.status_code == 422 and "motif du refus" in empty.text
    refused = other_client.post(f"/comptoir/changes-a-approuver/{first_id}/refuser",
                                data={"csrf_token": csrf_token(listing.text),
                                      "reason": "Pièce d'identité manquante"},
                                follow_redirects=True)
    assert "Pièce d&#39;identité manquante" in refused.text
    assert ledger.balance(marie) == 0 and ledger.count("entries") == 1  # the subsidy only
    assert other_client.post(f"/comptoir/changes-a-approuver/{first_id}/approuver",
                             data={}).status_code == 400  # no CSRF token
    assert other_client.get("/comptoir/changes-a-approuver/999999").status_code == 404


def test_notes_above_the_thresholds_are_refused_at_the_preview(client, ledger, desk):
    from tests.helpers import login

    marie, clerk, _other = desk
    login(client, clerk.username, PASSWORD)
    preview, _done = _desk_exchange(client, marie.party_code, "600.00", given_as="notes",
                                    n20="31", n10="1")
    assert preview.status_code == 409
    assert "ne peut pas se faire en billets" in preview.text
    assert ledger.count("exchange_approvals") == 0


def test_the_pending_list_is_for_the_bank_and_admins(app, ledger, desk):
    from tests.helpers import login

    marie, _clerk, _other = desk
    client = app.test_client()
    login(client, marie.username, PASSWORD)
    assert client.get("/comptoir/changes-a-approuver").status_code == 403
