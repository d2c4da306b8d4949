"""Service tests of each operation, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bousol.ledger.books import operations
from bousol.ledger.desk import exchange as desk_exchange
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.errors import (
    AlreadyReversed,
    BonusAdvanceExceeded,
    DeskCashInsufficient,
    FlowNotAllowed,
    Forbidden,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidInput,
    NotReversible,
    ReserveInsufficient,
    UnknownEntry,
    UnknownParty,
)
from bousol.ledger.models import Role
from tests.helpers import BANK


@pytest.fixture
def funded(ledger):
    """A bonus fund, a soliste with 42 B, two approved prestataires."""
    ledger.subsidy("100.00")
    marie = ledger.soliste(name="Marie")
    ledger.exchange(marie, "40.00")
    baker = ledger.prestataire(name="Boulangerie")
    farmer = ledger.prestataire(name="Maraîcher")
    return marie, baker, farmer


# ---------------------------------------------------------------- exchange


def test_exchange_posts_one_balanced_entry(ledger):
    ledger.subsidy("10.00")
    marie = ledger.soliste()
    result = ledger.exchange(marie, "40.00", tender="cash")
    assert (result.euro_cents, result.bousol_cents, result.bonus_cents) == (4000, 4200, 200)
    assert result.balance_cents == 4200 == ledger.balance(marie)
    assert ledger.system("issuance") == -4200
    assert ledger.system("desk_cash") == 4000  # cash waits in the drawer
    assert ledger.system("eur_reserve") == 200  # the bonus, backed by the fund
    assert ledger.system("bonus_fund") == 1000 - 200
    assert ledger.system("eur_outside") == -1000 - 4000
    assert ledger.count("entries") == 2
    ledger.assert_consistent()


@pytest.mark.parametrize(("tender", "account"), [
    ("cash", "desk_cash"), ("cheque", "desk_cash"), ("card", "eur_reserve"),
    ("transfer", "eur_reserve")])
def test_exchange_tender_decides_where_euros_go(ledger, tender, account):
    ledger.subsidy("10.00")
    ledger.exchange(ledger.soliste(), "20.00", tender=tender)
    expected = 2000 + (100 if account == "eur_reserve" else 0)
    assert ledger.system(account) == expected


def test_exchange_to_ccas_is_allowed(ledger):
    ledger.subsidy("50.00")
    ccas = ledger.user("ccas", name="CCAS de Boulogne-sur-Mer")
    assert ledger.exchange(ccas, "300.00").bousol_cents == 31_500


def test_exchange_without_a_subsidy_advances_the_bonus(ledger):
    """No partner's subsidy yet: the exchange still gives 21 B for 20 €; the bonus fund
    goes below zero by the bonus the association owes the reserve."""
    marie = ledger.soliste()
    assert ledger.exchange(marie, "20.00").bousol_cents == 2100
    assert ledger.system("bonus_fund") == -100 and ledger.system("eur_reserve") == 2100
    ledger.subsidy("1.00")  # the subsidy covers the advance
    assert ledger.system("bonus_fund") == 0
    ledger.assert_consistent()


def test_the_bonus_advance_has_a_ceiling(ledger):
    """Past the setting exchange.bonus_advance_max_cents, an exchange is refused with a
    clear error and moves nothing; a subsidy makes room again (docs/duties.md)."""
    ledger.setting("exchange.bonus_advance_max_cents", "150")  # 1,50 € of bonus advanced
    marie = ledger.soliste()
    ledger.exchange(marie, "20.00")  # 1,00 € advanced
    entries = ledger.count("entries")
    with pytest.raises(BonusAdvanceExceeded) as refused:
        ledger.exchange(marie, "20.00")  # 1,00 € more: 2,00 € > 1,50 €
    assert refused.value.code == "bonus_advance_exceeded"
    assert refused.value.http_status == 409
    assert "0,50" in refused.value.message and "subvention" in refused.value.message
    assert ledger.count("entries") == entries and ledger.system("bonus_fund") == -100
    ledger.exchange(marie, "10.00")  # 0,50 € more: exactly the ceiling
    assert ledger.system("bonus_fund") == -150
    ledger.subsidy("1.00")
    ledger.exchange(marie, "20.00")
    assert ledger.system("bonus_fund") == -150
    ledger.assert_consistent()


def test_exchange_refusals(ledger):
    ledger.subsidy()
    marie, baker = ledger.soliste(), ledger.prestataire()
    with pytest.raises(UnknownParty):
        ledger.exchange("S-999999", "20.00")
    with pytest.raises(FlowNotAllowed):
        ledger.exchange(baker, "20.00")
    with pytest.raises(InvalidAmount):
        ledger.exchange(marie, "-20")
    with pytest.raises(InvalidAmount):
        ledger.exchange(marie, "20.001")
    with pytest.raises(InvalidInput):
        ledger.exchange(marie, "20", tender="bitcoin")
    with pytest.raises(Forbidden):
        desk_exchange.exchange(ledger.uow(), marie, party_code=marie.party_code, euros="20")
    assert ledger.count("entries") == 1  # only the subsidy
    ledger.assert_consistent()


# ---------------------------------------------------------------- payment


def test_payment(ledger, funded):
    marie, baker, _ = funded
    result = ledger.pay(marie, baker, "12.50", memo="Pain")
    assert (result.amount_cents, result.balance_cents) == (1250, 4200 - 1250)
    assert ledger.balance(marie) == 2950 and ledger.balance(baker) == 1250
    ledger.assert_consistent()


def test_payment_refused_when_not_covered(ledger, funded):
    marie, baker, _ = funded
    with pytest.raises(InsufficientFunds):
        ledger.pay(marie, baker, "42.01")
    ledger.pay(marie, baker, "42.00")  # exactly the balance is fine
    with pytest.raises(InsufficientFunds):
        ledger.pay(marie, baker, "0.01")
    assert ledger.balance(marie) == 0


def test_payment_refusals(ledger, funded):
    marie, baker, _farmer = funded
    with pytest.raises(UnknownParty):
        ledger.pay(marie, "P-999999", "1.00")
    with pytest.raises(FlowNotAllowed):
        ledger.pay(marie, marie, "1.00")
    other = ledger.soliste()
    with pytest.raises(FlowNotAllowed):  # soliste → soliste: no circuit
        ledger.pay(marie, other, "1.00")
    with pytest.raises(InvalidAmount):
        ledger.pay(marie, baker, "0")
    with pytest.raises(Forbidden):
        operations.pay(ledger.uow(), BANK, payee_code=baker.party_code, amount="1")
    assert ledger.balance(marie) == 4200


def test_unapproved_prestataire_cannot_be_paid(ledger, funded, engine):
    marie, baker, _ = funded
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET status = 'suspended' WHERE code = :c"),
                     {"c": baker.party_code})
    with pytest.raises(FlowNotAllowed) as info:
        ledger.pay(marie, baker, "1.00")
    assert "agréé" in info.value.message


def test_b2b_before_and_after_the_switch(ledger, funded):
    marie, baker, farmer = funded
    ledger.pay(marie, baker, "20.00")
    with pytest.raises(FlowNotAllowed) as info:
        ledger.pay(baker, farmer, "5.00", memo="Facture 42")
    assert "B2B" in info.value.message
    ledger.phase("b2b", True)
    assert ledger.pay(baker, farmer, "5.00", memo="Facture 42").balance_cents == 1500
    ledger.phase("b2b", False)
    with pytest.raises(FlowNotAllowed):
        ledger.pay(baker, farmer, "5.00")
    ledger.assert_consistent()


def test_ccas_pays_solistes_only_in_its_phase(ledger):
    ledger.subsidy()
    ccas, marie = ledger.user("ccas", name="CCAS"), ledger.soliste()
    ledger.exchange(ccas, "100.00")
    with pytest.raises(FlowNotAllowed):
        ledger.pay(ccas, marie, "10.00")
    ledger.phase("ccas", True)
    ledger.pay(ccas, marie, "10.00")
    assert ledger.balance(marie) == 1000


# ---------------------------------------------------------------- reconversion


def test_reconversion_with_default_fee(ledger, funded):
    marie, baker, _ = funded
    # Card exchanges settle in the reserve, which pays reconversions.
    ledger.exchange(ledger.soliste(), "100.00", tender="card")
    ledger.pay(marie, baker, "40.00")
    reserve = ledger.system("eur_reserve")
    result = ledger.reconvert(baker, "40.00")
    assert (result.bousol_cents, result.fee_cents, result.euro_cents) == (4000, 200, 3800)
    assert ledger.balance(baker) == 0
    assert ledger.balance(baker, "EUR") == 3800  # owed to the baker until the transfer
    assert ledger.system("eur_reserve") == reserve - 4000
    assert ledger.system("fees_income") == 200
    ledger.assert_consistent()


def test_reconversion_100_gives_95(ledger, funded):
    _marie, baker, _ = funded
    ledger.phase("b2b", True)
    ledger.exchange(ledger.soliste(), "200.00", tender="transfer")
    big = ledger.soliste()
    ledger.exchange(big, "100.00", tender="transfer")
    ledger.pay(big, baker, "100.00")
    result = ledger.reconvert(baker, "100.00")
    assert (result.fee_cents, result.euro_cents) == (500, 9500)


def test_reconversion_fee_is_a_setting(ledger, funded):
    marie, baker, _ = funded
    ledger.exchange(ledger.soliste(), "100.00", tender="card")
    ledger.pay(marie, baker, "40.00")
    ledger.setting("reconversion.fee_bp", "250")
    assert ledger.reconvert(baker, "40.00").fee_cents == 100


def test_reconversion_refused_if_reserve_cannot_pay(ledger):
    ledger.subsidy("10.00")
    lucie, baker = ledger.soliste(), ledger.prestataire()
    # Cash waits in the drawer until banked: the reserve holds only the 2 € bonus.
    ledger.exchange(lucie, "40.00", tender="cash")
    ledger.pay(lucie, baker, "42.00")
    assert ledger.system("eur_reserve") == 200 and ledger.system("desk_cash") == 4000
    with pytest.raises(ReserveInsufficient):
        ledger.reconvert(baker, "2.01")
    assert ledger.balance(baker) == 4200 and ledger.system("eur_reserve") == 200
    assert ledger.reconvert(baker, "2.00").euro_cents == 190
    ledger.assert_consistent()


def test_reconversion_refusals(ledger, funded):
    marie, baker, _ = funded
    with pytest.raises(InsufficientFunds):
        ledger.reconvert(baker, "1.00")
    with pytest.raises(FlowNotAllowed):
        ledger.reconvert(marie, "1.00")
    with pytest.raises(UnknownParty):
        ledger.reconvert("P-424242", "1.00")
    ledger.pay(marie, baker, "1.00")
    with pytest.raises(InvalidAmount):  # 0,01 B: the 5 % fee rounds up to all of it
        ledger.reconvert(baker, "0.01")
    with pytest.raises(Forbidden):
        operations.reconvert(ledger.uow(), baker, prestataire_code=baker.party_code,
                             bousols="1.00")


# ---------------------------------------------------------------- reversal


def test_reversal_restores_every_balance(ledger, funded):
    marie, baker, _ = funded
    payment = ledger.pay(marie, baker, "10.00")
    result = ledger.reverse(payment.entry_id, memo="Erreur de caisse")
    assert result.reversed_entry_id == payment.entry_id
    assert ledger.balance(marie) == 4200 and ledger.balance(baker) == 0
    with pytest.raises(AlreadyReversed):
        ledger.reverse(payment.entry_id)
    with pytest.raises(NotReversible):
        ledger.reverse(result.entry_id)
    with pytest.raises(UnknownEntry):
        ledger.reverse(10**9)
    ledger.assert_consistent()


def test_reversal_of_an_exchange_returns_the_bonus(ledger):
    ledger.subsidy("10.00")
    marie = ledger.soliste()
    exchange = ledger.exchange(marie, "20.00")
    ledger.reverse(exchange.entry_id)
    assert ledger.system("bonus_fund") == 1000
    assert ledger.system("issuance") == 0 and ledger.system("eur_reserve") == 0
    ledger.assert_consistent()


def test_reversal_refused_when_the_money_is_spent(ledger, funded):
    marie, baker, _ = funded
    exchange = ledger.exchange(marie, "20.00")
    ledger.pay(marie, baker, "50.00")
    with pytest.raises(InsufficientFunds):
        ledger.reverse(exchange.entry_id)
    ledger.assert_consistent()


def test_only_the_bank_reverses(ledger, funded):
    marie, baker, _ = funded
    payment = ledger.pay(marie, baker, "1.00")
    with pytest.raises(Forbidden):
        operations.reverse(ledger.uow(), marie, entry_id=payment.entry_id)


# ---------------------------------------------------------------- idempotency


def test_same_key_same_request_returns_the_first_result(ledger, funded):
    marie, baker, _ = funded
    first = ledger.pay(marie, baker, "5.00", idempotency_key="till-1-0001")
    again = ledger.pay(marie, baker, "5.00", idempotency_key="till-1-0001")
    assert again == first
    assert ledger.balance(marie) == 4200 - 500
    assert ledger.count("entries") == 3  # subsidy, exchange, one payment


def test_same_key_other_request_is_a_conflict(ledger, funded):
    marie, baker, _ = funded
    ledger.pay(marie, baker, "5.00", idempotency_key="k-1")
    with pytest.raises(IdempotencyConflict):
        ledger.pay(marie, baker, "6.00", idempotency_key="k-1")
    assert ledger.balance(marie) == 3700


def test_keys_belong_to_their_actor(ledger, funded):
    marie, baker, _ = funded
    karim = ledger.soliste()
    ledger.exchange(karim, "20.00")
    ledger.pay(marie, baker, "5.00", idempotency_key="same")
    ledger.pay(karim, baker, "5.00", idempotency_key="same")
    assert ledger.balance(baker) == 1000


def test_a_refused_request_stays_refused(ledger, funded):
    marie, baker, _ = funded
    with pytest.raises(InsufficientFunds):
        ledger.pay(marie, baker, "50.00", idempotency_key="retry-me")
    ledger.exchange(marie, "20.00")  # now it would be covered…
    with pytest.raises(InsufficientFunds):  # …but the key already answered
        ledger.pay(marie, baker, "50.00", idempotency_key="retry-me")
    assert ledger.pay(marie, baker, "50.00", idempotency_key="new-key").amount_cents == 5000


@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "has space", "tab\t", "k\n", 7])
def test_malformed_keys_are_refused(ledger, funded, key):
    marie, baker, _ = funded
    with pytest.raises(InvalidInput):
        ledger.pay(marie, baker, "1.00", idempotency_key=key)


@pytest.mark.parametrize("op", ["exchange", "reconvert", "reverse", "subsidy"])
def test_every_operation_is_idempotent(ledger, funded, op):
    marie, baker, _ = funded
    payment = ledger.pay(marie, baker, "10.00")
    calls = {
        "exchange": lambda: ledger.exchange(marie, "20.00", idempotency_key="k"),
        "reconvert": lambda: ledger.reconvert(baker, "10.00", idempotency_key="k"),
        "reverse": lambda: ledger.reverse(payment.entry_id, idempotency_key="k"),
        "subsidy": lambda: operations.record_subsidy(ledger.uow(), BANK, euros="5",
                                                     idempotency_key="k"),
    }
    before = ledger.count("entries")
    assert calls[op]() == calls[op]()
    assert ledger.count("entries") == before + 1
    ledger.assert_consistent()


def test_actor_without_party_cannot_pay(ledger, funded):
    _, baker, _ = funded
    admin = Actor(user_id=None, role=Role.ADMIN)
    with pytest.raises(Forbidden):
        operations.pay(ledger.uow(), admin, payee_code=baker.party_code, amount="1")


def test_bank_and_association_own_their_accounts(engine):
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT a.system_code, p.code, p.kind FROM accounts a "
            "LEFT JOIN parties p ON p.id = a.party_id WHERE a.system_code IS NOT NULL")).all()
    owners = {r.system_code: (r.code, r.kind) for r in rows}
    assert owners["issuance"] == ("A-000001", "association")
    assert owners["bonus_fund"] == owners["fees_income"] == ("A-000001", "association")
    assert owners["eur_reserve"] == owners["desk_cash"] == ("B-000001", "bank")
    assert owners["notes_circulation"] == ("B-000001", "bank")
    assert owners["eur_outside"] == (None, None)


def test_nobody_pays_the_bank_or_the_association(ledger, funded):
    marie = funded[0]
    for code in ("B-000001", "A-000001"):
        with pytest.raises(UnknownParty):
            ledger.pay(marie, code, "1.00")
        with pytest.raises(UnknownParty):
            ledger.exchange(code, "1.00")


# ---------------------------------------------------------------- desk cash


def test_banking_desk_cash_lets_the_reserve_pay(ledger):
    ledger.subsidy("10.00")
    lucie, baker = ledger.soliste(), ledger.prestataire()
    ledger.exchange(lucie, "40.00", tender="cash")
    ledger.pay(lucie, baker, "42.00")
    with pytest.raises(ReserveInsufficient):
        ledger.reconvert(baker, "40.00")
    result = operations.bank_desk_cash(ledger.uow(), BANK, euros="40.00", memo="Remise")
    assert (result.source_cents, result.target_cents) == (0, 4200)  # drawer, reserve
    assert ledger.reconvert(baker, "40.00").euro_cents == 3800
    with pytest.raises(DeskCashInsufficient):
        operations.bank_desk_cash(ledger.uow(), BANK, euros="0.01")
    with pytest.raises(Forbidden):
        operations.bank_desk_cash(ledger.uow(), baker, euros="1")
    ledger.assert_consistent()


def test_every_member_party_has_a_bousol_and_a_euro_account(ledger, engine):
    for actor in (ledger.soliste(), ledger.prestataire(), ledger.user("ccas", name="CCAS")):
        with engine.connect() as conn:
            currencies = conn.execute(sa.text(
                "SELECT a.currency FROM accounts a JOIN parties p ON p.id = a.party_id "
                "WHERE p.code = :c ORDER BY a.currency"), {"c": actor.party_code}).scalars()
            assert list(currencies) == ["BSOL", "EUR"]


# ---------------------------------------------------------------- odd input


@pytest.mark.parametrize("code", [123, b"S-000001", ["S-000001"], None, "S-1", "s-000001",
                                  "S-0000001", "S-000001\n", "X-000001"])
def test_odd_party_codes_name_nobody(ledger, funded, code):
    marie = funded[0]
    with pytest.raises(UnknownParty):
        operations.pay(ledger.uow(), marie, payee_code=code, amount="1.00",
                       idempotency_key="odd")
    with pytest.raises(UnknownParty):
        desk_exchange.exchange(ledger.uow(), BANK, party_code=code, euros="1")
    with pytest.raises(UnknownParty):
        operations.reconvert(ledger.uow(), BANK, prestataire_code=code, bousols="1")
    assert ledger.balance(marie) == 4200


@pytest.mark.parametrize("memo", ["a\x00b", "a\ud800b", "tab\there", "bell\x07", 42, "x" * 501])
def test_odd_memos_are_refused(ledger, funded, memo):
    marie, baker, _ = funded
    with pytest.raises(InvalidInput):
        ledger.pay(marie, baker, "1.00", memo=memo)
    assert ledger.balance(marie) == 4200


def test_accented_memo_is_kept(ledger, funded):
    marie, baker, _ = funded
    ledger.pay(marie, baker, "1.00", memo="  Pain au levain — fête de l'été  ")
    with ledger.engine.connect() as conn:
        memo = conn.execute(sa.text("SELECT memo FROM entries ORDER BY id DESC LIMIT 1")).scalar()
    assert memo == "Pain au levain — fête de l'été"


@pytest.mark.parametrize("entry_id", [0, -1, 2**63, True, "1", 1.0, None])
def test_odd_entry_ids_are_refused(ledger, entry_id):
    with pytest.raises(InvalidInput):
        ledger.reverse(entry_id)


def test_replayed_error_keeps_its_details(ledger, funded):
    marie, baker, _ = funded
    payment = ledger.pay(marie, baker, "1.00")
    first = ledger.reverse(payment.entry_id)
    errors = []
    for _ in range(2):
        with pytest.raises(AlreadyReversed) as info:
            ledger.reverse(payment.entry_id, idempotency_key="again")
        errors.append(info.value.details)
    assert errors[0] == errors[1] == {"reversal": first.entry_id}
