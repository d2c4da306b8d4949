"""CCAS aid: programmes, vouchers, redemption, expiry, earmarked Bou'Sols."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import sqlalchemy as sa

from bousol.ledger.ccas import voucher_batches, vouchers
from bousol.ledger.ccas import voucher_codes as codes
from bousol.ledger.kernel import csv_text
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import (
    AmountExceedsRemaining,
    EarmarkedVoucherOpen,
    FiliereNotAllowed,
    FlowNotAllowed,
    Forbidden,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidCode,
    InvalidDate,
    InvalidInput,
    NotFound,
    NotReversible,
    VoucherCancelled,
    VoucherExpired,
    VoucherRedeemed,
)
from tests.helpers import hammer

TODAY = paris_today()


@pytest.fixture
def aid(ledger):
    """The CCAS with a food programme funded with 200 € (210 B with the bonus), the
    public-policy phase open, a grocer (alimentation) and a bookshop (loisirs)."""
    ledger.subsidy("100.00")
    ledger.phase("ccas", True)
    ccas = ledger.user("ccas", name="CCAS de Boulogne-sur-Mer")
    programme = vouchers.create_programme(
        ledger.uow(), ccas, name="Aide alimentaire hiver 2026", budget="1000",
        starts_on=TODAY, ends_on=TODAY + dt.timedelta(days=120),
        filieres=["alimentation"], default_validity_days=60, multi_use=True)
    ledger.exchange(ccas, "200.00", programme_id=programme.id)
    grocer = ledger.prestataire("alimentation", name="Épicerie solidaire")
    books = ledger.prestataire("loisirs-culture", name="Librairie")
    return ledger, ccas, programme, grocer, books


def grant(ledger, ccas, programme, amount="30.00", ref="B-0001", **kw):
    return vouchers.grant(ledger.uow(), ccas, beneficiary_ref=ref, amount=amount,
                          programme_id=programme.id if programme else None, **kw)


def test_voucher_state_machine_table():
    table = {("open", "redeem_part"): "open", ("open", "redeem_all"): "redeemed",
             ("open", "expire"): "expired", ("open", "cancel"): "cancelled"}
    errors = {"redeemed": VoucherRedeemed, "expired": VoucherExpired,
              "cancelled": VoucherCancelled}
    for status in ("open", "redeemed", "expired", "cancelled"):
        for action in ("redeem_part", "redeem_all", "expire", "cancel"):
            if (status, action) in table:
                assert vouchers.next_status(status, action) == table[(status, action)]
            else:
                with pytest.raises(errors[status]):
                    vouchers.next_status(status, action)


def test_funding_a_programme_is_an_exchange_into_its_account(aid):
    ledger, ccas, programme, _grocer, _books = aid
    with ledger.engine.connect() as conn:
        figures = vouchers.figures(conn, programme.id)
    assert figures.funded_eur_cents == 20000 and figures.funded_bsol_cents == 21000
    assert figures.available_cents == 21000 and figures.budget_left_eur_cents == 80000
    assert ledger.balance(ccas) == 0  # the CCAS's own account is apart
    # Without the bonus for the CCAS (a setting): 20 € buy 20 B.
    ledger.setting("ccas.bonus", "off")
    ledger.exchange(ccas, "20.00", programme_id=programme.id)
    with ledger.engine.connect() as conn:
        assert vouchers.figures(conn, programme.id).available_cents == 23000
    ledger.assert_consistent()


def test_grant_redeem_in_several_goes(aid):
    ledger, ccas, programme, grocer, _books = aid
    voucher = grant(ledger, ccas, programme, beneficiary_name="Mme Exemple")
    assert voucher.amount_cents == voucher.remaining_cents == 3000 and voucher.status == "open"
    assert voucher.valid_until == TODAY + dt.timedelta(days=60)
    assert voucher.filieres == ("alimentation",) and not voucher.earmarked
    assert ledger.system("vouchers_outstanding") == 3000
    first = vouchers.redeem(ledger.uow(), grocer, code=voucher.code, amount="12,40")
    assert (first.remaining_cents, first.status) == (1760, "open")
    assert ledger.balance(grocer) == 1240
    second = vouchers.redeem(ledger.uow(), grocer, code=voucher.code.lower(), amount="17.60")
    assert (second.remaining_cents, second.status) == (0, "redeemed")
    with pytest.raises(VoucherRedeemed):
        vouchers.redeem(ledger.uow(), grocer, code=voucher.code, amount="1")
    assert ledger.system("vouchers_outstanding") == 0 and ledger.balance(grocer) == 3000
    with ledger.engine.connect() as conn:
        memo = conn.execute(sa.text("SELECT memo FROM entries WHERE id = :i"),
                            {"i": first.entry_id}).scalar()
    assert memo == f"Bon d'aide {voucher.code}"  # in the merchant's statement
    ledger.assert_consistent()


def test_single_use_voucher_returns_what_the_purchase_left(aid):
    ledger, ccas, _programme, grocer, _books = aid
    once = vouchers.create_programme(
        ledger.uow(), ccas, name="Colis de Noël", budget="100", starts_on=TODAY,
        ends_on=TODAY, filieres=None, default_validity_days=30, multi_use=False)
    ledger.exchange(ccas, "40.00", programme_id=once.id)  # 42 B
    voucher = grant(ledger, ccas, once, amount="25.00")
    result = vouchers.redeem(ledger.uow(), grocer, code=voucher.code, amount="18.00")
    assert (result.status, result.remaining_cents, result.returned_cents) == ("redeemed", 0, 700)
    with ledger.engine.connect() as conn:
        assert vouchers.figures(conn, once.id).available_cents == 4200 - 2500 + 700
    ledger.assert_consistent()


def test_every_refusal_of_a_redemption_writes_nothing(aid):
    ledger, ccas, programme, grocer, books = aid
    voucher = grant(ledger, ccas, programme, amount="10.00")
    entries = ledger.count("entries")
    wrong = voucher.code[:-1] + ("0" if voucher.code[-1] != "0" else "1")
    cases = [
        (grocer, wrong, "1", InvalidCode),  # mistyped: the check character says so
        (grocer, codes.display(codes.new_body()), "1", NotFound),  # well formed, unknown
        (books, voucher.code, "1", FiliereNotAllowed),  # a bookshop: not alimentation
        (grocer, voucher.code, "10.01", AmountExceedsRemaining),
        (grocer, voucher.code, "0", Exception),  # invalid amount
    ]
    for shop, code, amount, error in cases:
        with pytest.raises(error):
            vouchers.redeem(ledger.uow(), shop, code=code, amount=amount)
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET status = 'suspended' WHERE code = :c"),
                     {"c": grocer.party_code})
    with pytest.raises(FlowNotAllowed, match="agréé"):
        vouchers.redeem(ledger.uow(), grocer, code=voucher.code, amount="1")
    with pytest.raises(Forbidden):  # a soliste is not a till
        vouchers.redeem(ledger.uow(), ledger.soliste(), code=voucher.code, amount="1")
    assert ledger.count("entries") == entries + 0
    with ledger.engine.connect() as conn:
        assert vouchers.lookup(conn, voucher.code).remaining_cents == 1000


def test_expired_and_cancelled_vouchers_are_refused(aid):
    ledger, ccas, programme, grocer, _books = aid
    old = grant(ledger, ccas, programme, amount="5", ref="B-1")
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE vouchers SET valid_until = :d WHERE id = :i"),
                     {"d": TODAY - dt.timedelta(days=1), "i": old.id})
    with pytest.raises(VoucherExpired):
        vouchers.redeem(ledger.uow(), grocer, code=old.code, amount="1")
    withdrawn = grant(ledger, ccas, programme, amount="7", ref="B-2")
    cancelled = vouchers.cancel(ledger.uow(), ccas, code=withdrawn.code)
    assert cancelled.status == "cancelled" and cancelled.remaining_cents == 0
    with pytest.raises(VoucherCancelled):
        vouchers.redeem(ledger.uow(), grocer, code=withdrawn.code, amount="1")
    with pytest.raises(VoucherCancelled):
        vouchers.cancel(ledger.uow(), ccas, code=withdrawn.code)
    with ledger.engine.connect() as conn:
        figures = vouchers.figures(conn, programme.id)
    assert figures.cancelled_cents == 700 and figures.available_cents == 21000 - 500
    ledger.assert_consistent()


def test_grant_refusals(aid):
    ledger, ccas, programme, _grocer, _books = aid
    with pytest.raises(InsufficientFunds, match="financer"):
        grant(ledger, ccas, programme, amount="211")
    with pytest.raises(InvalidDate):
        grant(ledger, ccas, programme, valid_until=TODAY - dt.timedelta(days=1))
    with pytest.raises(InvalidDate):
        grant(ledger, ccas, programme, valid_until="31/02/2027")
    with pytest.raises(InvalidInput):  # wider than the programme's filières
        grant(ledger, ccas, programme, filieres=["loisirs-culture"])
    with pytest.raises(InvalidInput):
        grant(ledger, ccas, programme, ref="")
    with pytest.raises(Forbidden):
        grant(ledger, ledger.soliste(), programme)
    other_ccas = ledger.user("ccas")
    with pytest.raises(NotFound):  # another CCAS's programme
        grant(ledger, other_ccas, programme)
    assert ledger.count("vouchers") == 0


def test_vouchers_do_not_wait_for_the_public_policy_phase(aid):
    """The phase opens direct CCAS → soliste payments (the flow rules); a voucher is
    the CCAS's own instrument, granted whenever the CCAS holds the Bou'Sols."""
    ledger, ccas, programme, _grocer, _books = aid
    ledger.phase("ccas", False)
    assert grant(ledger, ccas, programme, amount="5").status == "open"


def test_grant_is_idempotent_with_a_key(aid):
    ledger, ccas, programme, _grocer, _books = aid
    first = vouchers.grant(ledger.uow(), ccas, beneficiary_ref="B-9", amount="5",
                           programme_id=programme.id, idempotency_key="g-1")
    again = vouchers.grant(ledger.uow(), ccas, beneficiary_ref="B-9", amount="5",
                           programme_id=programme.id, idempotency_key="g-1")
    assert first.code == again.code and ledger.count("vouchers") == 1


def test_grant_from_the_ccas_own_account_without_programme(aid):
    ledger, ccas, _programme, grocer, books = aid
    ledger.exchange(ccas, "20.00")  # 21 B on the CCAS's own account
    voucher = grant(ledger, ccas, None, amount="21", valid_until=TODAY)
    assert voucher.filieres is None and voucher.valid_until == TODAY  # valid today
    vouchers.redeem(ledger.uow(), books, code=voucher.code, amount="1")  # any filière
    vouchers.redeem(ledger.uow(), grocer, code=voucher.code, amount="20")
    assert ledger.balance(ccas) == 0


def test_two_tills_never_take_more_than_the_voucher(aid):
    ledger, ccas, programme, grocer, _books = aid
    tills = [grocer] + [ledger.prestataire("alimentation") for _ in range(3)]
    voucher = grant(ledger, ccas, programme, amount="10.00")

    def worker(i: int) -> str:
        try:
            vouchers.redeem(ledger.uow(), tills[i % 4], code=voucher.code, amount="3.00")
            return "taken"
        except (AmountExceedsRemaining, VoucherRedeemed):
            return "refused"

    outcomes = Counter(hammer(worker))
    assert outcomes == Counter(taken=3, refused=5)
    assert sum(ledger.balance(t) for t in tills) == 900
    with ledger.engine.connect() as conn:
        assert vouchers.lookup(conn, voucher.code).remaining_cents == 100
    ledger.assert_consistent()


def test_expiry_sweep_returns_the_rest_and_is_idempotent(aid, new_uow):
    ledger, ccas, programme, grocer, _books = aid
    spent = grant(ledger, ccas, programme, amount="10", ref="B-1")
    vouchers.redeem(ledger.uow(), grocer, code=spent.code, amount="4")
    untouched = grant(ledger, ccas, programme, amount="6", ref="B-2")
    fresh = grant(ledger, ccas, programme, amount="9", ref="B-3")
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE vouchers SET valid_until = :d WHERE id IN (:a, :b)"),
                     {"d": TODAY - dt.timedelta(days=1), "a": spent.id, "b": untouched.id})
    first = vouchers.expire_due(new_uow)
    assert (first.expired, first.returned_cents) == (2, 600 + 600)
    second = vouchers.expire_due(new_uow)
    assert (second.expired, second.returned_cents) == (0, 0)
    with ledger.engine.connect() as conn:
        assert vouchers.lookup(conn, spent.code).status == "expired"
        assert vouchers.lookup(conn, fresh.code).status == "open"
        figures = vouchers.figures(conn, programme.id)
    assert figures.expired_cents == 1200 and figures.redeemed_cents == 400
    assert figures.outstanding_cents == 900
    assert figures.available_cents == 21000 - 2500 + 1200
    ledger.assert_consistent()


def test_voucher_entries_cannot_be_reversed(aid):
    ledger, ccas, programme, grocer, _books = aid
    voucher = grant(ledger, ccas, programme, amount="5")
    redemption = vouchers.redeem(ledger.uow(), grocer, code=voucher.code, amount="2")
    with ledger.engine.connect() as conn:
        grant_entry = conn.execute(sa.text("SELECT grant_entry_id FROM vouchers WHERE id = :i"),
                                   {"i": voucher.id}).scalar()
    for entry_id in (grant_entry, redemption.entry_id):
        with pytest.raises(NotReversible):
            ledger.reverse(entry_id)


def test_earmarked_voucher_on_a_soliste_account(aid):
    ledger, ccas, programme, grocer, books = aid
    marie = ledger.soliste()
    ledger.exchange(marie, "20.00")
    voucher = grant(ledger, ccas, programme, amount="15", soliste_code=marie.party_code)
    assert voucher.earmarked
    with ledger.engine.connect() as conn:
        marie_id = conn.execute(sa.text("SELECT id FROM parties WHERE code = :c"),
                                {"c": marie.party_code}).scalar()
        assert vouchers.earmarked_balance(conn, marie_id) == 1500
    assert ledger.balance(marie) == 2100  # her free Bou'Sols are apart
    with pytest.raises(NotFound):  # a till cannot take it by its code
        vouchers.redeem(ledger.uow(), grocer, code=voucher.code, amount="1")
    with pytest.raises(FiliereNotAllowed):
        vouchers.pay_with_earmarked(ledger.uow(), marie, voucher_id=voucher.id,
                                    payee_code=books.party_code, amount="5")
    with pytest.raises(NotFound):  # not someone else's
        vouchers.pay_with_earmarked(ledger.uow(), ledger.soliste(), voucher_id=voucher.id,
                                    payee_code=grocer.party_code, amount="5")
    paid = vouchers.pay_with_earmarked(ledger.uow(), marie, voucher_id=voucher.id,
                                       payee_code=grocer.party_code, amount="5")
    assert paid.remaining_cents == 1000 and ledger.balance(grocer) == 500
    assert ledger.balance(marie) == 2100
    ledger.assert_consistent()


def test_csv_batch_preview_and_all_or_nothing(aid):
    ledger, ccas, programme, _grocer, _books = aid
    bad = "référence;montant;nom\nB-1;20,00;Mme A\nB-2;abc\n;5\nB-1;3\nB-3;5;X;extra\n"
    preview = voucher_batches.preview_batch(bad)
    assert [line.number for line in preview.errors] == [3, 4, 5, 6]
    assert "Montant invalide" in preview.errors[0].error
    assert "déjà à la ligne 2" in preview.errors[2].error
    with pytest.raises(InvalidInput, match="4 ligne"):
        voucher_batches.grant_batch(ledger.uow(), ccas, text=bad, programme_id=programme.id)
    assert ledger.count("vouchers") == 0
    good = "\ufeffB-1;20,00;Mme A\nB-2;15.50\nB-3;5\n".encode()
    result = voucher_batches.grant_batch(ledger.uow(), ccas, text=good, programme_id=programme.id)
    assert len(result.voucher_ids) == 3 and result.total_cents == 4050
    assert ledger.system("vouchers_outstanding") == 4050
    # A file worth more than the programme holds: nothing at all.
    too_much = "\n".join(f"C-{i};30" for i in range(10))
    with pytest.raises(InsufficientFunds):
        voucher_batches.grant_batch(ledger.uow(), ccas, text=too_much, programme_id=programme.id)
    assert ledger.count("vouchers") == 3
    ledger.assert_consistent()


def test_beneficiary_export_and_erasure(aid):
    ledger, ccas, programme, _grocer, _books = aid
    voucher = grant(ledger, ccas, programme, ref="DOS-42", beneficiary_name="M. Martin")
    with ledger.uow(read_only=True) as uow:
        data = vouchers.export_beneficiary(uow.conn, ccas, "DOS-42")
    assert data.name == "M. Martin" and data.vouchers[0]["code"] == voucher.code
    anonymous = vouchers.erase_beneficiary(ledger.uow(), ccas, "DOS-42")
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT ref, name, erased_at FROM beneficiaries")).one()
        assert row.ref == anonymous and row.name is None and row.erased_at is not None
        assert vouchers.lookup(conn, voucher.code).remaining_cents == 3000  # still good
    with ledger.uow(read_only=True) as uow, pytest.raises(NotFound):
        vouchers.export_beneficiary(uow.conn, ccas, "DOS-42")


def test_verify_catches_a_voucher_that_disagrees_with_the_account(aid):
    ledger, ccas, programme, _grocer, _books = aid
    voucher = grant(ledger, ccas, programme, amount="10")
    ledger.assert_consistent()
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE vouchers SET remaining_cents = 900 WHERE id = :i"),
                     {"i": voucher.id})
    report = ledger.verify()
    assert not report.ok and any("bons d'aide" in line and "ÉCHEC" in line
                                 for line in report.lines())


def test_expire_command_is_idempotent(aid, app):
    ledger, ccas, programme, _grocer, _books = aid
    voucher = grant(ledger, ccas, programme, amount="8")
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE vouchers SET valid_until = :d WHERE id = :i"),
                     {"d": TODAY - dt.timedelta(days=1), "i": voucher.id})
    runner = app.test_cli_runner()
    before = runner.invoke(args=["bousol", "expire-vouchers", "--date",
                                 (TODAY - dt.timedelta(days=1)).isoformat()])
    assert before.output.startswith("0 bon(s)")  # still valid on its last day
    first = runner.invoke(args=["bousol", "expire-vouchers"])
    assert first.exit_code == 0 and first.output.startswith("1 bon(s) expiré(s), 8,00")
    second = runner.invoke(args=["bousol", "expire-vouchers"])
    assert second.exit_code == 0 and second.output.startswith("0 bon(s) expiré(s)")
    future = runner.invoke(args=["bousol", "expire-vouchers", "--date",
                                 (TODAY + dt.timedelta(days=1)).isoformat()])
    assert future.exit_code != 0 and "futur" in future.output
    bad = runner.invoke(args=["bousol", "expire-vouchers", "--date", "demain"])
    assert bad.exit_code != 0 and "Date invalide" in bad.output
    ledger.assert_consistent()


# ---------------------------------------------------------------- from the review


def test_earmarked_spending_is_idempotent_with_a_key(aid):
    ledger, ccas, programme, grocer, _books = aid
    marie = ledger.soliste()
    voucher = grant(ledger, ccas, programme, amount="15", soliste_code=marie.party_code)
    for _ in range(2):  # a double submission
        vouchers.pay_with_earmarked(ledger.uow(), marie, voucher_id=voucher.id,
                                    payee_code=grocer.party_code, amount="6",
                                    idempotency_key="spend-1")
    assert ledger.balance(grocer) == 600


def test_same_key_at_once_replays_the_winner_instead_of_refusing(aid):
    ledger, ccas, programme, grocer, _books = aid
    voucher = grant(ledger, ccas, programme, amount="5")

    def worker(i: int) -> int:
        return vouchers.redeem(ledger.uow(), grocer, code=voucher.code, amount="4",
                               idempotency_key="double-click").entry_id

    entries = set(hammer(worker, threads=4))
    assert len(entries) == 1 and ledger.balance(grocer) == 400


def test_expiry_date_cannot_be_in_the_future(aid, new_uow):
    ledger, ccas, programme, _grocer, _books = aid
    grant(ledger, ccas, programme, amount="5")
    with pytest.raises(InvalidDate):
        vouchers.expire_due(new_uow, today=TODAY + dt.timedelta(days=365))
    assert ledger.system("vouchers_outstanding") == 500


def test_a_first_line_that_is_a_reference_is_not_taken_for_a_header():
    preview = voucher_batches.preview_batch("REF-2026-001;25,00\nREF-2026-002;30,00\n")
    assert [line.ref for line in preview.lines] == ["REF-2026-001", "REF-2026-002"]
    assert preview.total_cents == 5500
    assert len(voucher_batches.preview_batch("Référence;Montant\nA-1;5\n").lines) == 1
    classic_mac = voucher_batches.preview_batch("A-1;5\rA-2;6\r")
    assert classic_mac.total_cents == 1100
    with pytest.raises(InvalidInput, match="illisible"):
        voucher_batches.preview_batch('A-1;"' + "x" * 200_000 + "\n")


def test_erased_reference_cannot_be_typed_again(aid):
    ledger, ccas, programme, _grocer, _books = aid
    grant(ledger, ccas, programme, ref="DOS-1", amount="5", beneficiary_name="Mme A")
    anonymous = vouchers.erase_beneficiary(ledger.uow(), ccas, "DOS-1")
    with pytest.raises(InvalidInput):  # nobody can grant to the anonymous reference
        grant(ledger, ccas, programme, ref=anonymous, amount="5")
    again = grant(ledger, ccas, programme, ref="DOS-1", amount="5", beneficiary_name="M. B")
    with ledger.uow(read_only=True) as uow:
        data = vouchers.export_beneficiary(uow.conn, ccas, "DOS-1")
    assert data.name == "M. B" and [v["code"] for v in data.vouchers] == [again.code]


def test_programme_period_and_budget_are_enforced(aid):
    ledger, ccas, programme, _grocer, _books = aid
    old = vouchers.create_programme(
        ledger.uow(), ccas, name="Hiver 2020", budget="100", starts_on="2020-01-01",
        ends_on="2020-03-31", default_validity_days=30)
    ledger.exchange(ccas, "20.00", programme_id=old.id)
    with pytest.raises(InvalidDate, match="2020"):
        grant(ledger, ccas, old, amount="5")
    with pytest.raises(InvalidDate):
        vouchers.create_programme(ledger.uow(), ccas, name="X", budget="1",
                                  starts_on="0001-01-01", ends_on="9999-12-31")
    with pytest.raises(Exception, match="budget"):  # 200 € of 1000 € funded so far
        ledger.exchange(ccas, "800.01", programme_id=programme.id)
    ledger.exchange(ccas, "800.00", programme_id=programme.id)


def test_figures_net_out_a_reversed_funding_and_show_single_use_rests(aid):
    ledger, ccas, programme, grocer, _books = aid
    extra = ledger.exchange(ccas, "10.00", programme_id=programme.id)
    ledger.reverse(extra.entry_id)
    with ledger.engine.connect() as conn:
        figures = vouchers.figures(conn, programme.id)
    assert (figures.funded_eur_cents, figures.funded_bsol_cents) == (20000, 21000)
    assert figures.available_cents == 21000
    once = vouchers.create_programme(
        ledger.uow(), ccas, name="Colis", budget="100", starts_on=TODAY, ends_on=TODAY,
        default_validity_days=10, multi_use=False)
    ledger.exchange(ccas, "20.00", programme_id=once.id)
    voucher = grant(ledger, ccas, once, amount="10")
    vouchers.redeem(ledger.uow(), grocer, code=voucher.code, amount="3")
    with ledger.engine.connect() as conn:
        figures = vouchers.figures(conn, once.id)
    assert (figures.redeemed_cents, figures.single_use_returned_cents) == (300, 700)
    assert figures.granted_cents == (figures.redeemed_cents + figures.single_use_returned_cents
                                     + figures.expired_cents + figures.cancelled_cents
                                     + figures.outstanding_cents)


# ---------------------------------------------------------------- issue 13


def test_erasure_unlinks_the_vouchers_from_the_soliste(aid):
    ledger, ccas, programme, grocer, _books = aid
    marie = ledger.soliste()
    voucher = grant(ledger, ccas, programme, amount="15", ref="DOS-7",
                    soliste_code=marie.party_code, idempotency_key="grant-7")
    vouchers.pay_with_earmarked(ledger.uow(), marie, voucher_id=voucher.id,
                                payee_code=grocer.party_code, amount="5",
                                idempotency_key="spend-7")
    # Open on her account: unlinked, it would be a bearer voucher. Refused, nothing done.
    with pytest.raises(EarmarkedVoucherOpen) as refused:
        vouchers.erase_beneficiary(ledger.uow(), ccas, "DOS-7")
    assert refused.value.http_status == 409
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT erased_at FROM beneficiaries")).scalar() is None
    vouchers.cancel(ledger.uow(), ccas, code=voucher.code)
    vouchers.erase_beneficiary(ledger.uow(), ccas, "DOS-7")
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT soliste_party_id FROM vouchers")).scalar() is None
        keys = dict(conn.execute(sa.text(
            "SELECT key, scope FROM idempotency_keys")).all())
        hashes = conn.execute(sa.text(
            "SELECT request_hash FROM idempotency_keys WHERE key = 'grant-7'")).scalars()
        assert "spend-7" not in keys and f"user:{marie.user_id}" not in keys.values()
        assert list(hashes) == ["0" * 64]
    # Amounts, dates and the prestataire stay; a replay grants nothing more.
    with pytest.raises(IdempotencyConflict):
        grant(ledger, ccas, programme, amount="15", ref="DOS-7",
              soliste_code=marie.party_code, idempotency_key="grant-7")
    assert ledger.count("vouchers") == 1 and ledger.balance(grocer) == 500
    ledger.assert_consistent()


def test_programme_and_batch_are_idempotent_with_a_key(aid):
    ledger, ccas, _programme, _grocer, _books = aid
    made = [vouchers.create_programme(
        ledger.uow(), ccas, name="Rentrée", budget="100", starts_on=TODAY,
        ends_on=TODAY + dt.timedelta(days=10), idempotency_key="prog-1") for _ in range(2)]
    assert made[0] == made[1] and ledger.count("aid_programmes") == 2  # the fixture's + 1
    lots = [voucher_batches.grant_batch(ledger.uow(), ccas, text="B-1;5\nB-2;6\n",
                                 programme_id=_programme.id, idempotency_key="lot-1")
            for _ in range(2)]
    assert lots[0] == lots[1] and ledger.count("voucher_batches") == 1
    assert ledger.count("vouchers") == 2
    with pytest.raises(IdempotencyConflict):
        voucher_batches.grant_batch(ledger.uow(), ccas, text="B-1;5\n", programme_id=_programme.id,
                             idempotency_key="lot-1")


def test_concurrent_batches_with_one_key_make_one_lot(aid):
    ledger, ccas, programme, _grocer, _books = aid

    def worker(_i: int) -> int:
        return voucher_batches.grant_batch(ledger.uow(), ccas, text="B-1;5\nB-2;6\n",
                                    programme_id=programme.id,
                                    idempotency_key="lot-race").batch_id

    assert len(set(hammer(worker, threads=6))) == 1
    assert ledger.count("voucher_batches") == 1 and ledger.count("vouchers") == 2
    ledger.assert_consistent()


@pytest.mark.parametrize(("data", "encoding", "expected"), [
    ("é;œ;€".encode("cp1252"), "auto", ("é;œ;€", "cp1252")),
    ("é;œ;€".encode("cp1252"), "cp1252", ("é;œ;€", "cp1252")),
    ("é;œ;€".encode(), "auto", ("é;œ;€", "utf-8")),
    ("é;œ;€".encode("utf-8-sig"), "auto", ("é;œ;€", "utf-8")),
    ("é;œ;€".encode("utf-8-sig"), "cp1252", ("é;œ;€", "utf-8")),  # the BOM wins
    (b"plain;ascii", "nonsense", ("plain;ascii", "utf-8")),
])
def test_csv_text_decodes_utf8_and_windows_1252(data, encoding, expected):
    assert csv_text.decode(data, encoding) == expected


@pytest.mark.parametrize(("data", "encoding", "reason"), [
    ("é".encode("cp1252"), "utf-8", csv_text.NOT_UTF8),
    (b"\x81", "auto", csv_text.NEITHER),  # no character in Windows-1252, no UTF-8
    (b"\x81", "cp1252", csv_text.NOT_CP1252),
    ("a;b".encode("utf-16"), "auto", csv_text.NOT_TEXT),
    ("a;b".encode("utf-16-le"), "auto", csv_text.NOT_TEXT),
    (b"\x00\x01\x02", "cp1252", csv_text.NOT_TEXT),
])
def test_csv_text_refusals_say_why(data, encoding, reason):
    with pytest.raises(csv_text.CsvEncodingError) as refused:
        csv_text.decode(data, encoding)
    assert refused.value.reason == reason and refused.value.code == "invalid_input"


def test_preview_batch_reads_windows_1252_bytes():
    preview = voucher_batches.preview_batch("B-1;5;Cœur Hélène €\n".encode("cp1252"))
    assert preview.ok and preview.lines[0].name == "Cœur Hélène €"
