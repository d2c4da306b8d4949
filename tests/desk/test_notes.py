"""Paper notes: serials, the stock by place, exchange in notes, deposits, reactivation,
and the ledger's notes in circulation always equal to the stock's."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from bousol.ledger.books import operations
from bousol.ledger.desk import note_operations, notes
from bousol.ledger.kernel.errors import (
    FlowNotAllowed,
    IdempotencyConflict,
    InvalidInput,
    MoveNotAllowed,
    NoteExpired,
    NoteNotAvailable,
    NotesMismatch,
    NotesOutOfStock,
    NoteStillValid,
    SerialExists,
    UnknownSerial,
)
from bousol.ledger.models import NotePlace
from tests.helpers import BANK, hammer

TODAY = dt.date(2026, 11, 22)
# (denomination, first number, last number) of the demo delivery of series A26.
DELIVERY = [(20, 1, 30), (10, 101, 130), (5, 201, 230), (2, 301, 330), (1, 401, 430)]


def place_of(ledger, serial: str) -> tuple[str, int | None]:
    with ledger.engine.connect() as conn:
        return tuple(conn.execute(sa.text(
            "SELECT place, desk_id FROM notes WHERE serial = :s"), {"s": serial}).one())


def entries(ledger) -> int:
    return ledger.count("entries")


@pytest.fixture
def stocked(ledger):
    """Series A26 (valid until 31/05/2027) delivered, put in the vault, then at desk G1."""
    ledger.subsidy("200.00")
    ledger.notes_at_desk(DELIVERY, valid_until="31/05/2027")
    return ledger


def exchange(ledger, party, euros="40.00", counts=None, **kw):
    return note_operations.exchange_notes(ledger.uow(), BANK, party_code=party.party_code,
                                          euros=euros,
                                counts=counts if counts is not None else {20: 2, 2: 1},
                                today=kw.pop("today", TODAY), **kw)


# ------------------------------------------------------------------ serials


@pytest.mark.parametrize("text, expected", [
    ("A26-000001", ["A26-000001"]),
    ("a26-000001, A26-000003;A26-000002", ["A26-000001", "A26-000003", "A26-000002"]),
    ("A26-000008..000010", ["A26-000008", "A26-000009", "A26-000010"]),
    ("A26-000008 à A26-000009", ["A26-000008", "A26-000009"]),
    ("A26-000008-000009\nB7-000001", ["A26-000008", "A26-000009", "B7-000001"]),
    ("  ", []),
])
def test_parse_serials(text, expected):
    assert notes.parse_serials(text) == expected


@pytest.mark.parametrize("text", [
    "A26-12",  # too short
    "26-000001",  # a series starts with a letter
    "A26-000010..000008",  # backwards
    "A26-000001..B26-000003",  # across series
    "A26-000001 A26-000001",  # twice
    "A26-000001..002500",  # more than one bundle
    "A26-000001A26-000002",  # glued together
    "drop table notes",
])
def test_parse_serials_refuses(text):
    with pytest.raises(InvalidInput):
        notes.parse_serials(text)


# ------------------------------------------------------------------ stock


def test_delivery_and_moves_are_recorded_with_who_and_where(stocked):
    assert place_of(stocked, "A26-000001")[0] == "desk"
    lines = {(s.place, s.desk_code, s.denomination): s.count
             for s in _stock(stocked)}
    assert lines == {("desk", "G1", d): 30 for d in (1, 2, 5, 10, 20)}
    with stocked.uow(read_only=True) as uow:
        note, moves = notes.note_history(uow.conn, "a26-000001")
    assert note.denomination == 20 and note.series_code == "A26"
    assert [(m.reason, m.from_place, m.to_place) for m in moves] == [
        ("delivery", None, "printed"), ("to_vault", "printed", "vault"),
        ("to_desk", "vault", "desk")]
    stocked.assert_consistent()


def _stock(ledger):
    with ledger.uow(read_only=True) as uow:
        return notes.stock(uow.conn, TODAY)


def test_a_serial_cannot_be_registered_twice(stocked):
    before = stocked.count("notes")
    with pytest.raises(SerialExists):
        notes.register_delivery(stocked.uow(), BANK, series_code="A26", denomination=5,
                                first=25, last=40)  # 30 is already a 20
    assert stocked.count("notes") == before
    with pytest.raises(SerialExists):
        notes.register_series(stocked.uow(), BANK, code="A26", printed_on="2026-11-02",
                              valid_until="2027-01-01")


@pytest.mark.parametrize("kwargs", [
    {"series_code": "ZZ9", "denomination": 5, "first": 1, "last": 2},  # unknown series
    {"series_code": "A26", "denomination": 3, "first": 900, "last": 901},  # no 3 B note
    {"series_code": "A26", "denomination": 5, "first": 902, "last": 901},  # backwards
])
def test_delivery_refusals(stocked, kwargs):
    with pytest.raises(InvalidInput):
        notes.register_delivery(stocked.uow(), BANK, **kwargs)


def test_moves_follow_the_stock_rules(stocked):
    # Into circulation only through an exchange; a never-registered serial is refused.
    with pytest.raises(MoveNotAllowed):
        notes.move(stocked.uow(), BANK, serials="A26-000001", to_place="circulation")
    with pytest.raises(UnknownSerial):
        notes.move(stocked.uow(), BANK, serials="A26-000999", to_place="vault")
    notes.move(stocked.uow(), BANK, serials="A26-000001", to_place="vault")
    with pytest.raises(MoveNotAllowed, match="même endroit"):
        notes.move(stocked.uow(), BANK, serials="A26-000001 A26-000002", to_place="vault")
    with pytest.raises(MoveNotAllowed):  # a note in the vault is not shredded from a desk
        notes.move(stocked.uow(), BANK, serials="A26-000002", to_place="destroyed")
    notes.move(stocked.uow(), BANK, serials="A26-000001", to_place="destroyed")
    assert place_of(stocked, "A26-000001") == ("destroyed", None)
    with pytest.raises(MoveNotAllowed):  # destroyed is final
        notes.move(stocked.uow(), BANK, serials="A26-000001", to_place="vault")


def test_stock_move_table():
    """Every pair of places: allowed exactly when the table says so (as a table test)."""
    allowed = {(a, b) for a, b in notes.STOCK_MOVES}
    assert (NotePlace.DESK, NotePlace.CIRCULATION) not in allowed
    assert (NotePlace.CIRCULATION, NotePlace.RETURNED) not in allowed
    assert not any(a == NotePlace.DESTROYED for a, _ in allowed)
    assert not any(NotePlace.CIRCULATION in pair for pair in allowed)


# ------------------------------------------------------------------ exchange in notes


def test_exchange_40_euros_for_42_bousols_in_notes(stocked):
    marie = stocked.soliste()
    reserve = stocked.system("eur_reserve")
    result = exchange(stocked, marie)
    assert (result.euro_cents, result.bousol_cents, result.bonus_cents) == (4000, 4200, 200)
    # The lowest serials at the desk, largest values first.
    assert result.serials == ["A26-000001", "A26-000002", "A26-000301"]
    assert all(place_of(stocked, s) == ("circulation", None) for s in result.serials)
    assert stocked.system("notes_circulation") == 4200
    assert stocked.system("desk_cash") == 4000
    assert stocked.system("eur_reserve") == reserve + 200
    assert stocked.balance(marie) == 0  # the Bou'Sols are in her hands, not her account
    with stocked.uow(read_only=True) as uow:
        from bousol.ledger.books import queries
        receipt = queries.exchange_receipt(uow.conn, result.entry_id)
        handed = notes.entry_notes(uow.conn, result.entry_id)
    assert (receipt.form, receipt.party_code, receipt.bousol_cents) == ("notes", marie.party_code,
                                                                        4200)
    assert handed == [(20, 2, ["A26-000001", "A26-000002"]), (2, 1, ["A26-000301"])]
    stocked.assert_consistent()


def test_exchange_with_typed_serial_ranges(stocked):
    marie = stocked.soliste()
    result = exchange(stocked, marie, ranges={20: "A26-000010..000011", 2: "A26-000320"})
    assert result.serials == ["A26-000010", "A26-000011", "A26-000320"]
    stocked.assert_consistent()


@pytest.mark.parametrize("counts, ranges, error, message", [
    ({20: 2}, None, NotesMismatch, "il manque 2,00"),
    ({20: 2, 5: 1}, None, NotesMismatch, "3,00\u00a0B de trop"),
    ({20: 2, 2: 1}, {20: "A26-000010"}, NotesMismatch, "2 comptés, 1 numéros"),
    ({20: 2, 2: 1}, {20: "A26-000010 A26-000101"}, NotesMismatch, "pas des billets de 20"),
    ({20: 2, 2: 1}, {20: "A26-000010 A26-000999"}, UnknownSerial, "A26-000999"),
    ({20: 1, 2: 11}, None, InvalidInput, None),  # 11 is fine, but see the next line
    ({20: 2, 3: 1}, None, InvalidInput, "1, 2, 5, 10 ou 20"),
    ({20: "deux", 2: 1}, None, InvalidInput, "un entier"),
])
def test_exchange_refusals_write_nothing(stocked, counts, ranges, error, message):
    marie = stocked.soliste()
    if counts == {20: 1, 2: 11}:  # 20 + 22 = 42: right total, accepted
        assert exchange(stocked, marie, counts=counts).bousol_cents == 4200
        return
    before = (entries(stocked), stocked.count("note_moves"))
    with pytest.raises(error) as raised:
        exchange(stocked, marie, counts=counts, ranges=ranges)
    if message:
        assert message in raised.value.message
    assert (entries(stocked), stocked.count("note_moves")) == before
    assert stocked.system("notes_circulation") == 0


def test_notes_are_whole_bousols(stocked):
    with pytest.raises(NotesMismatch, match="multiple de 20"):
        exchange(stocked, stocked.soliste(), euros="10.00", counts={10: 1})


def test_typed_notes_must_be_at_this_desk(stocked):
    notes.move(stocked.uow(), BANK, serials="A26-000010", to_place="vault")
    with pytest.raises(NoteNotAvailable, match="A26-000010"):
        exchange(stocked, stocked.soliste(), ranges={20: "A26-000010 A26-000011"})


def test_out_of_stock_and_expired_notes_are_never_handed_out(stocked):
    marie = stocked.soliste()
    with pytest.raises(NotesOutOfStock, match="30 billet"):
        exchange(stocked, marie, euros="640.00", counts={20: 31, 10: 5, 2: 1})
    later = dt.date(2027, 6, 1)  # series A26 has expired
    with pytest.raises(NotesOutOfStock):
        exchange(stocked, marie, today=later)
    with pytest.raises(NoteExpired):
        exchange(stocked, marie, ranges={20: "A26-000010..000011"}, today=later)


def test_exchange_in_notes_is_for_solistes(stocked):
    with pytest.raises(FlowNotAllowed):
        exchange(stocked, stocked.prestataire())


def test_exchange_in_notes_once_per_key(stocked):
    marie = stocked.soliste()
    first = exchange(stocked, marie, idempotency_key="k1")
    again = exchange(stocked, marie, idempotency_key="k1")
    assert again == first
    assert stocked.system("notes_circulation") == 4200
    with pytest.raises(IdempotencyConflict):
        exchange(stocked, marie, euros="20.00", counts={20: 1, 1: 1}, idempotency_key="k1")


def test_two_clerks_never_hand_out_the_same_note(stocked):
    """8 exchanges at once from a desk that holds 30 notes of 20: every note goes out
    once, and the stock and the ledger agree."""
    solistes = [stocked.soliste() for _ in range(8)]

    def worker(i: int):
        try:
            return exchange(stocked, solistes[i], euros="80.00", counts={20: 4, 2: 2}).serials
        except NotesOutOfStock:
            return None

    handed = [s for out in hammer(worker) if out for s in out]
    assert len(handed) == len(set(handed))
    assert stocked.system("notes_circulation") == 100 * sum(
        20 if int(s[-6:]) < 100 else 2 for s in handed)
    stocked.assert_consistent()


# ------------------------------------------------------------------ deposits


def test_deposit_credited_to_the_prestataire(stocked):
    marie, shop = stocked.soliste(), stocked.prestataire()
    exchange(stocked, marie)  # the notes now circulate: marie pays the baker in notes
    result = note_operations.deposit(stocked.uow(), BANK, prestataire_code=shop.party_code,
                           serials="A26-000001..000002 A26-000301", today=TODAY)
    assert (result.mode, result.bousol_cents, result.count) == ("credit", 4200, 3)
    assert stocked.balance(shop) == 4200
    assert stocked.system("notes_circulation") == 0
    assert place_of(stocked, "A26-000301") == ("returned", None)
    with pytest.raises(NoteNotAvailable, match="rendu"):  # the same notes twice
        note_operations.deposit(stocked.uow(), BANK, prestataire_code=shop.party_code,
                      serials="A26-000001", today=TODAY)
    stocked.assert_consistent()


def test_deposit_reconverted_pays_euros_less_the_fee(stocked):
    marie, shop = stocked.soliste(), stocked.prestataire()
    exchange(stocked, marie)
    operations.bank_desk_cash(stocked.uow(), BANK, euros="40.00")  # the cash reaches the reserve
    reserve = stocked.system("eur_reserve")
    result = note_operations.deposit(stocked.uow(), BANK, prestataire_code=shop.party_code,
                           serials="A26-000001..000002", mode="reconvert", today=TODAY)
    assert (result.bousol_cents, result.fee_cents, result.euro_cents) == (4000, 200, 3800)
    assert stocked.balance(shop) == 0
    assert stocked.balance(shop, "EUR") == 3800
    assert stocked.system("eur_reserve") == reserve - 4000
    assert stocked.system("notes_circulation") == 200
    with stocked.uow(read_only=True) as uow:
        from bousol.ledger.books import queries
        slip = queries.reconversion_receipt(uow.conn, result.entry_id)
    assert (slip.source, slip.party_code, slip.bousol_cents) == ("notes", shop.party_code, 4000)
    stocked.assert_consistent()


def test_deposit_refusals(stocked):
    marie, shop = stocked.soliste(), stocked.prestataire()
    exchange(stocked, marie)
    before = entries(stocked)
    with pytest.raises(NoteNotAvailable, match="guichet"):  # still at the desk
        note_operations.deposit(stocked.uow(), BANK, prestataire_code=shop.party_code,
                      serials="A26-000003", today=TODAY)
    with pytest.raises(FlowNotAllowed):
        note_operations.deposit(stocked.uow(), BANK, prestataire_code=marie.party_code,
                      serials="A26-000001", today=TODAY)
    with pytest.raises(NoteExpired):
        note_operations.deposit(stocked.uow(), BANK, prestataire_code=shop.party_code,
                      serials="A26-000001", today=dt.date(2027, 6, 1))
    with pytest.raises(UnknownSerial):
        note_operations.deposit(stocked.uow(), BANK, prestataire_code=shop.party_code,
                      serials="A26-000001 Q1-000001", today=TODAY)
    assert entries(stocked) == before


# ------------------------------------------------------------------ reactivation


def test_reactivation_stamps_a_new_date_against_a_fee(stocked):
    marie = stocked.soliste()
    exchange(stocked, marie)
    later = dt.date(2027, 6, 15)
    income = stocked.system("fees_income")
    result = note_operations.reactivate(stocked.uow(), BANK, serials="A26-000001", tender="cash",
                              today=later)
    assert (result.face_cents, result.fee_cents, result.valid_until) == (2000, 100,
                                                                         "2027-12-15")
    assert stocked.system("fees_income") == income + 100
    assert stocked.system("notes_circulation") == 4200
    # Now valid again: it can be deposited; the other 20 cannot.
    shop = stocked.prestataire()
    note_operations.deposit(stocked.uow(), BANK, prestataire_code=shop.party_code,
                  serials="A26-000001", today=later)
    with pytest.raises(NoteExpired):
        note_operations.deposit(stocked.uow(), BANK, prestataire_code=shop.party_code,
                      serials="A26-000002", today=later)
    with pytest.raises(NoteStillValid):
        note_operations.reactivate(stocked.uow(), BANK, serials="A26-000301", tender="cash",
                         today=TODAY)
    stocked.assert_consistent()


def test_reactivation_by_exchange_for_valid_notes(stocked):
    marie = stocked.soliste()
    exchange(stocked, marie)
    later = dt.date(2027, 6, 15)
    with stocked.uow() as uow:  # a fresh series reaches the desk
        uow.conn.execute(sa.text("UPDATE notes SET valid_until = '2027-12-31' "
                                 "WHERE serial IN ('A26-000003', 'A26-000302')"))
        uow.commit()
    result = note_operations.reactivate(stocked.uow(), BANK, serials="A26-000002 A26-000301",
                              tender="card", mode="replace", today=later)
    assert result.returned == ["A26-000002", "A26-000301"]
    assert result.handed_out == ["A26-000003", "A26-000302"]
    assert result.fee_cents == 110  # 5 % of 22 B
    assert place_of(stocked, "A26-000002") == ("returned", None)
    assert place_of(stocked, "A26-000003") == ("circulation", None)
    assert stocked.system("notes_circulation") == 4200
    stocked.assert_consistent()


def test_reactivation_fee_is_a_setting(stocked):
    exchange(stocked, stocked.soliste())
    stocked.setting("notes.reactivation_fee_bp", "1000")
    result = note_operations.reactivate(stocked.uow(), BANK, serials="A26-000001", tender="cheque",
                              today=dt.date(2027, 6, 15))
    assert result.fee_cents == 200


# ------------------------------------------------------------------ verify


def test_verify_catches_a_stock_that_disagrees_with_the_ledger(stocked):
    exchange(stocked, stocked.soliste())
    stocked.assert_consistent()
    with stocked.uow() as uow:
        uow.conn.execute(sa.text("UPDATE notes SET place = 'desk', desk_id = 1 "
                                 "WHERE serial = 'A26-000301'"))
        uow.commit()
    report = stocked.verify()
    failed = [c for c in report.checks if not c.ok]
    assert [c.name for c in failed] == ["billets en circulation = stock"]
    assert "2.00 B" in failed[0].problems[0]


def test_note_moves_are_append_only(stocked):
    with pytest.raises(sa.exc.DatabaseError), stocked.engine.begin() as conn:
        conn.execute(sa.text("UPDATE note_moves SET reason = 'x'"))
    with pytest.raises(sa.exc.DatabaseError), stocked.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM note_move_items"))


def test_a_closed_day_takes_no_notes_for_cash_nor_reactivation_fees(stocked, monkeypatch):
    from bousol.ledger.desk import closing
    from bousol.ledger.desk.closing import DayClosed

    monkeypatch.setattr(closing, "business_today", lambda: TODAY)
    marie = stocked.soliste()
    exchange(stocked, marie)
    closing.close_day(stocked.uow(), BANK, counts={2000: 2}, today=TODAY)
    with pytest.raises(DayClosed):
        exchange(stocked, marie)
    with pytest.raises(DayClosed):
        note_operations.reactivate(stocked.uow(), BANK, serials="A26-000001", tender="cash",
                         today=dt.date(2027, 6, 15))
    # A bank transfer does not go through the drawer.
    assert exchange(stocked, marie, tender="transfer").bousol_cents == 4200
    stocked.assert_consistent()


def test_entries_that_moved_notes_are_not_reversed(stocked):
    """Reversing the postings alone would leave the notes where they are: the ledger and
    the stock would disagree (and a reversed exchange in notes would create money)."""
    from bousol.ledger.kernel.errors import NotReversible

    marie, shop = stocked.soliste(), stocked.prestataire()
    bought = exchange(stocked, marie)
    deposited = note_operations.deposit(stocked.uow(), BANK, prestataire_code=shop.party_code,
                              serials="A26-000301", today=TODAY)
    for entry_id in (bought.entry_id, deposited.entry_id):
        with pytest.raises(NotReversible, match="billets"):
            stocked.reverse(entry_id)
    stocked.assert_consistent()


def test_a_free_reactivation_is_not_a_setting():
    from bousol.ledger.kernel import settings

    with pytest.raises(InvalidInput):
        settings.VALIDATORS["notes.reactivation_fee_bp"]("0")
    assert settings.VALIDATORS["notes.reactivation_fee_bp"]("1") == "1"
