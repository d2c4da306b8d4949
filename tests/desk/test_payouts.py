"""SEPA payouts of reconverted euros: IBAN/BIC checks, batches, the pain.001 file
(validated against the ISO 20022 schema), paying once, cancelling, and the pages."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import sepaxml
import sqlalchemy as sa
import xmlschema

from bousol.ledger.desk import iban_changes, payouts
from bousol.ledger.kernel import iban
from bousol.ledger.kernel.actors import SYSTEM, Actor
from bousol.ledger.kernel.errors import (
    DomainError,
    Forbidden,
    InvalidBic,
    InvalidIban,
    NotAPrestataire,
    NothingToPay,
    NotReversible,
    PayoutBatchOpen,
    PayoutBatchTransition,
    PayoutNotConfigured,
    SecondPersonRequired,
    UnknownParty,
    UnknownPayoutBatch,
)
from bousol.ledger.models import Role
from tests.helpers import (
    BANK,
    IBAN_FR,
    PASSWORD,
    THREADS,
    csrf_token,
    hammer,
    login,
    set_iban,
)

# The official ISO 20022 schema, as the sepaxml package ships it (a test dependency):
# a clone with nothing beside it (a contributor's laptop) validates the files too.
XSD = Path(sepaxml.__file__).resolve().parent / "schemas" / "pain.001.001.03.xsd"
NS = {"p": payouts.PAIN_NS}
IBAN_DE = "DE89370400440532013000"
IBAN_BE = "BE68539007547034"
DEBTOR = payouts.Debtor("Crédit Municipal de Boulogne-sur-Mer", "FR14 2004 1010 0505 0001 3M0 2606",
                        "PSSTFRPPLIL")


def pay_batch(ledger, batch_id: int, who=None):
    """A second person releases the batch, then marks it paid."""
    who = who or ledger.user("admin")
    payouts.release(ledger.uow(), who, batch_id)
    return payouts.mark_paid(ledger.uow(), who, batch_id)


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    assert XSD.exists(), f"the pain.001 schema is expected at {XSD}"
    return xmlschema.XMLSchema(str(XSD))


# ---------------------------------------------------------------- IBAN and BIC


@pytest.mark.parametrize(("given", "normalised"), [
    (IBAN_FR, IBAN_FR),
    ("fr76 3000 6000 0112 3456 7890 189", IBAN_FR),
    ("FR76\u00a03000\u202f6000 0112 3456 7890 189", IBAN_FR),
    (IBAN_DE, IBAN_DE),
    ("DE89 3704 0044 0532 0130 00", IBAN_DE),
    (IBAN_BE, IBAN_BE),
    ("GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432"),
])
def test_valid_ibans_are_normalised(given, normalised):
    assert iban.validate_iban(given) == normalised


@pytest.mark.parametrize(("given", "reason"), [
    ("FR7630006000011234567890188", "checksum"),  # last digit wrong
    ("FR7630006000011234567809189", "checksum"),  # two digits swapped
    ("DE89370400440532013001", "checksum"),
    ("BE68539007547035", "checksum"),
    ("FR763000600001123456789018", "length"),  # 26 characters
    ("FR76300060000112345678901899", "length"),
    ("DE8937040044053201300", "length"),
    ("BE6853900754703", "length"),
    ("US12345678901234567890", "country"),  # not a SEPA country
    ("hello", "format"),
    ("FR76-3000-6000", "format"),
    ("7630006000011234567890189", "format"),
    ("FR7630006000011234567890189" + "1" * 10, "format"),  # beyond 34
    ("", "empty"),
    ("   ", "empty"),
    (None, "empty"),
])
def test_invalid_ibans_say_why(given, reason):
    with pytest.raises(InvalidIban) as refused:
        iban.validate_iban(given)
    assert refused.value.code == "invalid_iban"
    assert refused.value.details["reason"] == reason
    assert refused.value.message.startswith("IBAN")


def test_a_wrong_length_names_the_expected_one():
    with pytest.raises(InvalidIban, match="27 caractères, celui-ci en a 26"):
        iban.validate_iban("FR763000600001123456789018")


@pytest.mark.parametrize(("given", "normalised"), [
    ("AGRIFRPP", "AGRIFRPP"), ("agrifrpp882", "AGRIFRPP882"), ("PSST FR PP LIL", "PSSTFRPPLIL"),
    ("", None), ("  ", None), (None, None),
])
def test_valid_bics(given, normalised):
    assert iban.validate_bic(given) == normalised


@pytest.mark.parametrize("given", ["AGRIFRP", "AGRIFRPP1", "AGRIFRPP12", "AGRIFRPP1234",
                                   "AGRIFR1P", "AGRIFRPO", "1GRIFRPP", "AGRI-FRPP"])
def test_invalid_bics(given):
    with pytest.raises(InvalidBic) as refused:
        iban.validate_bic(given)
    assert refused.value.code == "invalid_bic"


def test_iban_displayed_in_groups_of_four():
    assert iban.display(IBAN_FR) == "FR76 3000 6000 0112 3456 7890 189"
    assert iban.display(IBAN_BE) == "BE68 5390 0754 7034"
    assert iban.display(None) == ""


@pytest.mark.parametrize(("given", "expected"), [
    ("Boulangerie du Portel", "Boulangerie du Portel"),
    ("Épicerie Ménard & Fils", "Epicerie Menard + Fils"),
    ("L’Œuf « frais » — n°3", "L'OEuf ' frais ' - no3"),
    ("Straße ☃  Café", "Strasse Cafe"),
    ("x" * 100, "x" * 70),
])
def test_names_transliterated_to_the_sepa_latin_set(given, expected):
    assert payouts.sepa_text(given, 70) == expected


@pytest.mark.parametrize(("cents", "text"), [(1, "0.01"), (10, "0.10"), (9_500, "95.00"),
                                             (123_456, "1234.56"), (100_000_000, "1000000.00")])
def test_amounts_from_integer_cents(cents, text):
    assert payouts.cents_text(cents) == text


@pytest.mark.parametrize("bad", [1.5, -1, True, "12"])
def test_amounts_refuse_anything_but_cents(bad):
    with pytest.raises(ValueError):
        payouts.cents_text(bad)


# ---------------------------------------------------------------- bank details


def test_set_bank_details_of_a_prestataire(ledger):
    baker = ledger.prestataire(name="Boulangerie du Portel")
    saved = set_iban(ledger, baker.party_code,
                     "fr76 3000 6000 0112 3456 7890 189", "agrifrpp")
    assert (saved.iban, saved.bic, saved.status) == (IBAN_FR, "AGRIFRPP", "confirmed")
    with ledger.uow(read_only=True) as uow:
        stored = payouts.bank_details(uow.conn, baker.party_code)
    assert (stored.iban, stored.bic, stored.iban_display) == (
        IBAN_FR, "AGRIFRPP", "FR76 3000 6000 0112 3456 7890 189")
    set_iban(ledger, baker.party_code, IBAN_DE)  # BIC dropped
    with ledger.uow(read_only=True) as uow:
        assert payouts.bank_details(uow.conn, baker.party_code).bic is None


@pytest.mark.parametrize(("who", "iban_value", "bic", "error"), [
    ("soliste", IBAN_FR, None, NotAPrestataire),
    ("ccas", IBAN_FR, None, NotAPrestataire),
    ("B-000001", IBAN_FR, None, NotAPrestataire),
    ("P-999999", IBAN_FR, None, UnknownParty),
    ("nonsense", IBAN_FR, None, UnknownParty),
    ("prestataire", "FR7630006000011234567890188", None, InvalidIban),
    ("prestataire", IBAN_FR, "NOPE", InvalidBic),
])
def test_set_bank_details_refusals(ledger, who, iban_value, bic, error):
    if who == "prestataire":
        code = ledger.prestataire().party_code
    elif who in ("soliste", "ccas"):
        code = ledger.user(who).party_code
    else:
        code = who
    with pytest.raises(error):
        set_iban(ledger, code, iban_value, bic)


def test_only_bank_and_admin_record_bank_details(ledger):
    baker = ledger.prestataire()
    with pytest.raises(Forbidden):
        iban_changes.request_change(ledger.uow(), baker, baker.party_code, IBAN_FR)


# ---------------------------------------------------------------- batches


@pytest.fixture
def owed(ledger):
    """Three prestataires owed euros after reconverting; two of them have an IBAN."""
    ledger.subsidy("100.00")
    marie = ledger.soliste()
    ledger.exchange(marie, "400.00", tender="card")  # 420,00 B
    baker = ledger.prestataire(name="Boulangerie du Portel")
    grocer = ledger.prestataire(name="Épicerie Ménard & Fils")
    florist = ledger.prestataire(name="Fleurs sans IBAN")
    for shop, amount in ((baker, "100.00"), (grocer, "50.00"), (florist, "30.00")):
        ledger.pay(marie, shop, amount)
        ledger.reconvert(shop, amount)
    set_iban(ledger, baker.party_code, IBAN_FR, "AGRIFRPP")
    set_iban(ledger, grocer.party_code, IBAN_BE)
    return {"marie": marie, "baker": baker, "grocer": grocer, "florist": florist}


def _pending(ledger):
    with ledger.uow(read_only=True) as uow:
        return payouts.pending(uow.conn)


def _batch(ledger, batch_id):
    with ledger.uow(read_only=True) as uow:
        return payouts.batch(uow.conn, batch_id)


def _xml(ledger, batch_id, debtor=DEBTOR, **kw) -> bytes:
    with ledger.uow(read_only=True) as uow:
        return payouts.pain001_xml(uow.conn, batch_id, debtor, **kw)


def test_pending_lists_every_prestataire_owed_with_missing_ibans(ledger, owed):
    pending = {p.party_code: p for p in _pending(ledger)}
    assert set(pending) == {owed[k].party_code for k in ("baker", "grocer", "florist")}
    assert pending[owed["baker"].party_code].eur_cents == 9_500
    assert pending[owed["grocer"].party_code].eur_cents == 4_750
    florist = pending[owed["florist"].party_code]
    assert florist.eur_cents == 2_850 and not florist.payable and florist.iban is None


def test_create_batch_pays_each_euro_balance_and_skips_missing_ibans(ledger, owed):
    made = payouts.create_batch(ledger.uow(), BANK)
    assert (made.status, made.count, made.total_cents) == ("prepared", 2, 9_500 + 4_750)
    assert len(made.message_id) <= 35
    lines = {line.party_code: line for line in _batch(ledger, made.id).lines}
    assert set(lines) == {owed["baker"].party_code, owed["grocer"].party_code}
    for key in ("baker", "grocer"):
        line = lines[owed[key].party_code]
        assert line.amount_cents == ledger.balance(owed[key], "EUR")
        assert len(line.end_to_end_id) <= 35
    assert lines[owed["baker"].party_code].iban == IBAN_FR
    assert lines[owed["baker"].party_code].bic == "AGRIFRPP"
    assert lines[owed["grocer"].party_code].bic is None
    assert len({line.end_to_end_id for line in lines.values()}) == 2
    # Nothing moved yet; the pending list says what is already in the open batch.
    assert ledger.balance(owed["baker"], "EUR") == 9_500
    pending = {p.party_code: p for p in _pending(ledger)}
    assert pending[owed["baker"].party_code].in_open_batch_cents == 9_500
    assert pending[owed["florist"].party_code].in_open_batch_cents == 0


def test_a_second_open_batch_is_refused(ledger, owed):
    first = payouts.create_batch(ledger.uow(), BANK)
    with pytest.raises(PayoutBatchOpen) as refused:
        payouts.create_batch(ledger.uow(), BANK)
    assert refused.value.code == "payout_batch_open"
    assert refused.value.details["batch"] == first.id
    assert ledger.count("payout_batches") == 1


def test_nothing_to_pay(ledger):
    ledger.prestataire()
    with pytest.raises(NothingToPay) as refused:
        payouts.create_batch(ledger.uow(), BANK)
    assert refused.value.code == "nothing_to_pay"


def test_nothing_to_pay_when_no_one_owed_has_an_iban(ledger):
    ledger.subsidy("10.00")
    marie, florist = ledger.soliste(), ledger.prestataire()
    ledger.exchange(marie, "20.00", tender="card")
    ledger.pay(marie, florist, "10.00")
    ledger.reconvert(florist, "10.00")
    with pytest.raises(NothingToPay):
        payouts.create_batch(ledger.uow(), BANK)
    assert [p.payable for p in _pending(ledger)] == [False]


@pytest.mark.parametrize("role", [Role.SOLISTE, Role.PRESTATAIRE, Role.CCAS])
def test_only_bank_and_admin_handle_batches(ledger, owed, role):
    someone = Actor(user_id=None, role=role)
    made = payouts.create_batch(ledger.uow(), BANK)
    for call in (lambda: payouts.create_batch(ledger.uow(), someone),
                 lambda: payouts.mark_paid(ledger.uow(), someone, made.id),
                 lambda: payouts.release(ledger.uow(), someone, made.id),
                 lambda: payouts.cancel(ledger.uow(), someone, made.id)):
        with pytest.raises(Forbidden):
            call()


# ---------------------------------------------------------------- two people (issue 13)


def test_the_preparer_neither_releases_nor_downloads_nor_pays(ledger, owed):
    clerk, treasurer = ledger.user("bank"), ledger.user("admin")
    made = payouts.create_batch(ledger.uow(), clerk)
    assert made.status == "prepared"
    with pytest.raises(PayoutBatchTransition):  # not released yet: nobody pays it
        payouts.mark_paid(ledger.uow(), treasurer, made.id)
    with pytest.raises(PayoutBatchTransition):  # nor downloads its file
        payouts.check_download(_batch(ledger, made.id).summary, treasurer)
    with pytest.raises(SecondPersonRequired) as refused:
        payouts.release(ledger.uow(), clerk, made.id)
    assert refused.value.http_status == 403
    with pytest.raises(SecondPersonRequired):  # the system (no user) is nobody's second
        payouts.release(ledger.uow(), BANK, made.id)
    released = payouts.release(ledger.uow(), treasurer, made.id)
    assert (released.status, released.released_by) == ("released", treasurer.username)
    with pytest.raises(SecondPersonRequired):
        payouts.check_download(released, clerk)
    payouts.check_download(released, treasurer)  # the second person downloads it
    with pytest.raises(SecondPersonRequired):
        payouts.mark_paid(ledger.uow(), clerk, made.id)
    assert ledger.balance(owed["baker"], "EUR") == 9_500
    paid = payouts.mark_paid(ledger.uow(), treasurer, made.id)
    assert paid.total_cents == 14_250 and ledger.balance(owed["baker"], "EUR") == 0
    ledger.assert_consistent()


def test_the_database_refuses_a_release_by_the_preparer(ledger, owed):
    clerk = ledger.user("bank")
    made = payouts.create_batch(ledger.uow(), clerk)
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE payout_batches SET released_at = created_at, "
                             "released_by_user_id = created_by_user_id WHERE id = :id"),
                     {"id": made.id})


def test_the_preparer_may_cancel(ledger, owed):
    clerk = ledger.user("bank")
    made = payouts.create_batch(ledger.uow(), clerk)
    payouts.cancel(ledger.uow(), clerk, made.id)  # nothing moves: no second person needed
    assert _batch(ledger, made.id).summary.status == "cancelled"


@pytest.mark.parametrize("batch_id", [999, 0, -1, True, "1"])
def test_unknown_batches(ledger, batch_id):
    with pytest.raises(UnknownPayoutBatch):
        payouts.mark_paid(ledger.uow(), BANK, batch_id)
    with pytest.raises(UnknownPayoutBatch):
        payouts.release(ledger.uow(), BANK, batch_id)
    with pytest.raises(UnknownPayoutBatch):
        payouts.cancel(ledger.uow(), BANK, batch_id)


# ---------------------------------------------------------------- the pain.001 file


def test_pain001_is_valid_against_the_iso_schema(ledger, owed, schema):
    made = payouts.create_batch(ledger.uow(), BANK)
    document = _xml(ledger, made.id, execution_date=dt.date(2026, 11, 23))
    schema.validate(document.decode("utf-8"))  # raises on any violation
    assert document.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")

    root = ET.fromstring(document)  # noqa: S314 - our own output
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header.findtext("p:MsgId", namespaces=NS) == made.message_id
    assert header.findtext("p:NbOfTxs", namespaces=NS) == "2"
    assert header.findtext("p:CtrlSum", namespaces=NS) == "142.50"
    assert header.findtext("p:InitgPty/p:Nm", namespaces=NS) == (
        "Credit Municipal de Boulogne-sur-Mer")
    info = root.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    for path, value in (("p:PmtMtd", "TRF"), ("p:BtchBookg", "true"), ("p:NbOfTxs", "2"),
                        ("p:CtrlSum", "142.50"), ("p:PmtTpInf/p:SvcLvl/p:Cd", "SEPA"),
                        ("p:ReqdExctnDt", "2026-11-23"), ("p:ChrgBr", "SLEV"),
                        ("p:DbtrAcct/p:Id/p:IBAN", "FR1420041010050500013M02606"),
                        ("p:DbtrAgt/p:FinInstnId/p:BIC", "PSSTFRPPLIL")):
        assert info.findtext(path, namespaces=NS) == value, path
    transactions = info.findall("p:CdtTrfTxInf", NS)
    by_name = {t.findtext("p:Cdtr/p:Nm", namespaces=NS): t for t in transactions}
    assert set(by_name) == {"Boulangerie du Portel", "Epicerie Menard + Fils"}
    baker = by_name["Boulangerie du Portel"]
    amount = baker.find("p:Amt/p:InstdAmt", NS)
    assert (amount.text, amount.get("Ccy")) == ("95.00", "EUR")
    assert baker.findtext("p:CdtrAgt/p:FinInstnId/p:BIC", namespaces=NS) == "AGRIFRPP"
    assert baker.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == IBAN_FR
    assert owed["baker"].party_code in baker.findtext("p:RmtInf/p:Ustrd", namespaces=NS)
    grocer = by_name["Epicerie Menard + Fils"]
    assert grocer.find("p:CdtrAgt", NS) is None  # no BIC known: IBAN only
    assert grocer.findtext("p:Amt/p:InstdAmt", namespaces=NS) == "47.50"
    ids = [t.findtext("p:PmtId/p:EndToEndId", namespaces=NS) for t in transactions]
    assert len(set(ids)) == 2 and all(len(i) <= 35 for i in ids)


def test_pain001_long_names_and_a_debtor_without_bic(ledger, schema):
    ledger.subsidy("10.00")
    marie = ledger.soliste()
    shop = ledger.prestataire(name="Société coopérative d'intérêt collectif « Les Jardins "
                                   "de la Côte d'Opale » — maraîchage biologique")
    ledger.exchange(marie, "20.00", tender="card")
    ledger.pay(marie, shop, "0.03")
    ledger.reconvert(shop, "0.03")  # fee 0,01 € rounded up: 0,02 € owed
    set_iban(ledger, shop.party_code, IBAN_DE)
    made = payouts.create_batch(ledger.uow(), BANK)
    document = _xml(ledger, made.id, debtor=payouts.Debtor("Banque SOL", IBAN_FR))
    schema.validate(document.decode("utf-8"))
    root = ET.fromstring(document)  # noqa: S314 - our own output
    name = root.findtext(".//p:Cdtr/p:Nm", namespaces=NS)
    assert len(name) <= 70 and name.startswith("Societe cooperative d'interet collectif ' Les")
    assert root.findtext(".//p:InstdAmt", namespaces=NS) == "0.02"
    assert root.findtext(".//p:DbtrAgt/p:FinInstnId/p:Othr/p:Id", namespaces=NS) == "NOTPROVIDED"


@pytest.mark.parametrize("debtor", [
    payouts.Debtor("", IBAN_FR), payouts.Debtor("Banque SOL", ""),
    payouts.Debtor("Banque SOL", "FR7630006000011234567890188"),
    payouts.Debtor("Banque SOL", IBAN_FR, "NOPE"),
])
def test_pain001_refuses_a_missing_or_invalid_debtor(ledger, owed, debtor):
    made = payouts.create_batch(ledger.uow(), BANK)
    with pytest.raises(PayoutNotConfigured) as refused:
        _xml(ledger, made.id, debtor=debtor)
    assert refused.value.code == "payout_not_configured"


def test_the_file_is_the_same_when_downloaded_again(ledger, owed):
    made = payouts.create_batch(ledger.uow(), BANK)
    day = dt.date(2026, 11, 23)
    assert _xml(ledger, made.id, execution_date=day) == _xml(ledger, made.id, execution_date=day)


# ---------------------------------------------------------------- paid, cancelled


def _entry_sums(ledger, entry_id):
    with ledger.engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "SELECT currency, SUM(amount) FROM postings WHERE entry_id = :e GROUP BY currency"),
            {"e": entry_id}).all())


def test_mark_paid_moves_the_euros_out_once(ledger, owed):
    outside_before = ledger.system("eur_outside")
    made = payouts.create_batch(ledger.uow(), BANK)
    paid = pay_batch(ledger, made.id)
    assert (paid.total_cents, paid.count) == (14_250, 2)
    assert ledger.balance(owed["baker"], "EUR") == 0
    assert ledger.balance(owed["grocer"], "EUR") == 0
    assert ledger.balance(owed["florist"], "EUR") == 2_850  # no IBAN: still owed
    assert ledger.system("eur_outside") == outside_before + 14_250
    assert _entry_sums(ledger, paid.entry_id) == {"EUR": 0}
    with ledger.engine.connect() as conn:
        kind, legs = conn.execute(sa.text(
            "SELECT e.kind, COUNT(p.id) FROM entries e JOIN postings p ON p.entry_id = e.id "
            "WHERE e.id = :e GROUP BY e.kind"), {"e": paid.entry_id}).one()
    assert (kind, legs) == ("payout", 3)
    summary = _batch(ledger, made.id).summary
    assert (summary.status, summary.entry_id) == ("paid", paid.entry_id)
    assert summary.closed_at is not None
    ledger.assert_consistent()
    # The next batch pays what was owed since, and only that.
    assert [p.party_code for p in _pending(ledger)] == [owed["florist"].party_code]
    ledger.pay(owed["marie"], owed["baker"], "10.00")
    ledger.reconvert(owed["baker"], "10.00")
    again = payouts.create_batch(ledger.uow(), BANK)
    assert (again.count, again.total_cents) == (1, 950)
    assert again.message_id != made.message_id


def test_euros_in_an_open_batch_cannot_be_unowed(ledger, owed):
    """The file may already be at the bank: the reconversion that owed those euros is
    not reversed while its batch is open; once cancelled, it can be."""
    ledger.pay(owed["marie"], owed["baker"], "10.00")
    late = ledger.reconvert(owed["baker"], "10.00")
    made = payouts.create_batch(ledger.uow(), BANK)  # 95,00 + 9,50 for the baker
    with pytest.raises(NotReversible, match="lot de virements ouvert"):
        ledger.reverse(late.entry_id)
    payouts.cancel(ledger.uow(), BANK, made.id)
    ledger.reverse(late.entry_id)  # the baker's euros fall to 95,00
    assert payouts.create_batch(ledger.uow(), BANK).total_cents == 14_250
    ledger.assert_consistent()


def test_a_paid_transfer_is_not_reversed(ledger, owed):
    made = payouts.create_batch(ledger.uow(), BANK)
    paid = pay_batch(ledger, made.id)
    with pytest.raises(NotReversible):
        ledger.reverse(paid.entry_id)
    assert _pending(ledger) and all(p.party_code == owed["florist"].party_code
                                    for p in _pending(ledger))


def test_cancel_moves_nothing(ledger, owed):
    entries = ledger.count("entries")
    made = payouts.create_batch(ledger.uow(), BANK)
    payouts.cancel(ledger.uow(), BANK, made.id)
    assert ledger.count("entries") == entries
    assert ledger.balance(owed["baker"], "EUR") == 9_500
    summary = _batch(ledger, made.id).summary
    assert (summary.status, summary.entry_id) == ("cancelled", None)
    again = payouts.create_batch(ledger.uow(), BANK)  # the euros go into the next batch
    assert again.total_cents == made.total_cents and again.message_id != made.message_id
    ledger.assert_consistent()


_S = payouts.BatchStatus


@pytest.mark.parametrize(("current", "target", "allowed"), [
    ("prepared", _S.RELEASED, True),
    ("prepared", _S.CANCELLED, True),
    ("prepared", _S.PAID, False),  # nobody pays a batch no second person released
    ("prepared", _S.PREPARED, False),
    ("released", _S.PAID, True),
    ("released", _S.CANCELLED, True),
    ("released", _S.RELEASED, False),
    ("released", _S.PREPARED, False),
    ("paid", _S.PAID, False),
    ("paid", _S.CANCELLED, False),
    ("paid", _S.RELEASED, False),
    ("paid", _S.PREPARED, False),
    ("cancelled", _S.PAID, False),
    ("cancelled", _S.CANCELLED, False),
    ("cancelled", _S.RELEASED, False),
    ("cancelled", _S.PREPARED, False),
    ("open", _S.PAID, False),  # the stored value is never a state
    ("bogus", _S.PAID, False),
])
def test_state_machine_table(current, target, allowed):
    if allowed:
        payouts.check_transition(current, target)
    else:
        with pytest.raises(PayoutBatchTransition) as refused:
            payouts.check_transition(current, target)
        assert refused.value.code == "payout_batch_transition"


@pytest.mark.parametrize(("first", "then", "expected"), [
    ("mark_paid", "mark_paid", "payout_batch_transition"),
    ("mark_paid", "cancel", "payout_batch_transition"),
    ("cancel", "mark_paid", "payout_batch_transition"),
    ("cancel", "cancel", "payout_batch_transition"),
])
def test_closed_batches_do_not_change(ledger, owed, first, then, expected):
    made = payouts.create_batch(ledger.uow(), BANK)
    other = ledger.user("admin")
    payouts.release(ledger.uow(), other, made.id)
    getattr(payouts, first)(ledger.uow(), other, made.id)
    entries = ledger.count("entries")
    with pytest.raises(DomainError) as refused:
        getattr(payouts, then)(ledger.uow(), other, made.id)
    assert refused.value.code == expected
    assert ledger.count("entries") == entries
    ledger.assert_consistent()


# ---------------------------------------------------------------- concurrency


def test_paying_a_batch_concurrently_moves_the_money_once(ledger, owed):
    made = payouts.create_batch(ledger.uow(), BANK)
    other = ledger.user("admin")
    payouts.release(ledger.uow(), other, made.id)
    outside = ledger.system("eur_outside")

    def worker(i: int) -> str:
        try:
            payouts.mark_paid(ledger.uow(), other, made.id)
            return "paid"
        except PayoutBatchTransition:
            return "refused"

    assert Counter(hammer(worker)) == {"paid": 1, "refused": THREADS - 1}
    assert ledger.system("eur_outside") == outside + 14_250
    assert ledger.balance(owed["baker"], "EUR") == 0
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT COUNT(*) FROM entries WHERE kind = 'payout'")).scalar_one() == 1
    ledger.assert_consistent()


def test_paying_and_cancelling_at_once_do_one_of_them(ledger, owed):
    made = payouts.create_batch(ledger.uow(), BANK)
    other = ledger.user("admin")
    payouts.release(ledger.uow(), other, made.id)

    def worker(i: int) -> str:
        action = payouts.mark_paid if i % 2 else payouts.cancel
        try:
            action(ledger.uow(), other, made.id)
            return action.__name__
        except PayoutBatchTransition:
            return "refused"

    outcomes = Counter(hammer(worker))
    assert outcomes["refused"] == THREADS - 1
    status = _batch(ledger, made.id).summary.status
    assert status == ("paid" if outcomes["mark_paid"] else "cancelled")
    assert ledger.balance(owed["baker"], "EUR") == (0 if status == "paid" else 9_500)
    ledger.assert_consistent()


def test_releasing_a_batch_concurrently_releases_it_once(ledger, owed):
    clerk, others = ledger.user("bank"), [ledger.user("admin") for _ in range(2)]
    made = payouts.create_batch(ledger.uow(), clerk)

    def worker(i: int) -> str:
        try:
            payouts.release(ledger.uow(), others[i % 2], made.id)
            return "released"
        except PayoutBatchTransition:
            return "refused"

    assert Counter(hammer(worker)) == {"released": 1, "refused": THREADS - 1}
    summary = _batch(ledger, made.id).summary
    assert summary.status == "released"
    assert summary.released_by in {o.username for o in others}


def test_preparing_batches_concurrently_opens_one(ledger, owed):
    def worker(i: int) -> str:
        try:
            payouts.create_batch(ledger.uow(), BANK)
            return "made"
        except PayoutBatchOpen:
            return "refused"

    assert Counter(hammer(worker)) == {"made": 1, "refused": THREADS - 1}
    assert ledger.count("payout_batches") == 1 and ledger.count("payouts") == 2


# ---------------------------------------------------------------- pages


@pytest.fixture
def treasurer(client, ledger, owed):
    admin = ledger.user("admin")
    login(client, admin.username, PASSWORD)
    return admin


def _post(client, path, page_path, **data):
    form = client.get(page_path)
    return client.post(path, data={"csrf_token": csrf_token(form.text), **data})


def test_payouts_page_lists_what_is_owed_and_flags_missing_ibans(client, treasurer, owed):
    home = client.get("/admin/")
    assert 'href="/admin/virements"' in home.text
    listing = client.get("/admin/virements")
    assert listing.status_code == 200
    assert "Boulangerie du Portel" in listing.text and "95,00\u00a0€" in listing.text
    assert "FR76 3000 6000 0112 3456 7890 189" in listing.text
    assert listing.text.count('data-testid="missing-iban"') == 1
    assert f"/comptoir/prestataire/{owed['florist'].party_code}/banque" in listing.text
    assert "Préparer un lot" in listing.text


def test_prepare_download_and_pay_a_batch_on_the_pages(app, client, ledger, treasurer, owed,
                                                       schema):
    made = _post(client, "/admin/virements/lots", "/admin/virements")
    assert made.status_code == 302 and "/admin/virements/lots/" in made.location
    batch_page = client.get(made.location)
    assert batch_page.status_code == 200
    assert "142,50\u00a0€" in batch_page.text and "BE68 5390 0754 7034" in batch_page.text
    batch_id = int(made.location.rstrip("/").rsplit("/", 1)[1])
    # The preparer is told a second person releases it; no file, no "paid" for it.
    assert 'data-testid="second-person"' in batch_page.text
    assert "Télécharger le fichier SEPA (pain.001)" not in batch_page.text
    assert "Marquer comme payé" not in batch_page.text
    refused = client.get(f"/admin/virements/lots/{batch_id}/pain001.xml")
    assert refused.status_code == 302 and "libérer" in client.get(refused.location).text
    own = _post(client, f"/admin/virements/lots/{batch_id}/liberer", made.location,
                confirm_release="y")
    assert "une autre personne doit le libérer" in client.get(own.location).text

    again = _post(client, "/admin/virements/lots", "/admin/virements")
    assert "déjà ouvert" in client.get(again.location).text

    # The second person: a bank clerk, on its own browser.
    clerk = ledger.user("bank")
    client = app.test_client()
    login(client, clerk.username, PASSWORD)
    second = client.get(made.location).text
    assert "Libérer le lot" in second and "Télécharger le fichier" not in second
    unticked = _post(client, f"/admin/virements/lots/{batch_id}/liberer", made.location)
    assert unticked.status_code == 422 and "Cochez la case" in unticked.text
    released = _post(client, f"/admin/virements/lots/{batch_id}/liberer", made.location,
                     confirm_release="y")
    shown = client.get(released.location).text
    assert "Lot libéré" in shown and "Télécharger le fichier SEPA (pain.001)" in shown
    assert clerk.username in shown  # who released it

    download = client.get(f"/admin/virements/lots/{batch_id}/pain001.xml")
    assert download.status_code == 200 and download.mimetype == "application/xml"
    assert download.headers["Content-Disposition"].startswith("attachment; filename=")
    assert ".xml" in download.headers["Content-Disposition"]
    schema.validate(download.data.decode("utf-8"))

    unconfirmed = _post(client, f"/admin/virements/lots/{batch_id}/payer", made.location)
    assert unconfirmed.status_code == 422 and "Cochez la case" in unconfirmed.text
    assert 'aria-invalid="true"' in unconfirmed.text
    assert ledger.balance(owed["baker"], "EUR") == 9_500

    paid = _post(client, f"/admin/virements/lots/{batch_id}/payer", made.location,
                 confirm_paid="y")
    assert paid.status_code == 302
    shown = client.get(paid.location).text
    assert "marqué comme payé" in shown and 'data-testid="batch-status"><strong>payé' in shown
    assert ledger.balance(owed["baker"], "EUR") == 0
    twice = _post(client, f"/admin/virements/lots/{batch_id}/payer", made.location,
                  confirm_paid="y")
    assert "déjà payé" in client.get(twice.location).text
    assert ledger.system("eur_outside") < 0  # still net euros in, once paid out
    # A paid batch's file is not offered again.
    gone = client.get(f"/admin/virements/lots/{batch_id}/pain001.xml")
    assert gone.status_code == 302
    listing = client.get("/admin/virements").text
    assert "payé" in listing and "Aucun lot ouvert" in listing
    assert "Virements SEPA de reconversion" in client.get("/comptoir/").text  # the journal
    ledger.assert_consistent()


def test_cancel_a_batch_on_the_pages(client, ledger, treasurer, owed):
    made = _post(client, "/admin/virements/lots", "/admin/virements")
    batch_id = int(made.location.rsplit("/", 1)[1])
    done = _post(client, f"/admin/virements/lots/{batch_id}/annuler", made.location,
                 confirm_cancel="y")
    assert "Lot annulé" in client.get(done.location).text
    assert ledger.balance(owed["baker"], "EUR") == 9_500


def test_payout_pages_need_a_csrf_token(client, treasurer):
    assert client.post("/admin/virements/lots").status_code == 400


@pytest.mark.parametrize("role", ["bank", "admin"])
def test_bank_and_admin_see_the_payouts(app, ledger, owed, role):
    user = ledger.user(role)
    other = app.test_client()
    login(other, user.username, PASSWORD)
    assert other.get("/admin/virements").status_code == 200
    assert "Virements de reconversion" in other.get("/comptoir/" if role == "bank"
                                                    else "/admin/").text


@pytest.mark.parametrize("role", ["soliste", "prestataire", "ccas"])
def test_others_are_refused(app, ledger, owed, role):
    made = payouts.create_batch(ledger.uow(), BANK)
    user = ledger.prestataire() if role == "prestataire" else ledger.user(role)
    other = app.test_client()
    login(other, user.username, PASSWORD)
    for path in ("/admin/virements", f"/admin/virements/lots/{made.id}",
                 f"/admin/virements/lots/{made.id}/pain001.xml",
                 f"/comptoir/prestataire/{owed['florist'].party_code}/banque"):
        assert other.get(path).status_code == 403, path
    own = other.get("/connexion", follow_redirects=True)  # their own first page
    assert other.post("/admin/virements/lots", data={
        "csrf_token": csrf_token(own.text)}).status_code == 403


def test_unknown_batch_page_is_not_found(client, treasurer):
    assert client.get("/admin/virements/lots/999").status_code == 404
    assert client.get("/admin/virements/lots/999/pain001.xml").status_code == 404


@pytest.fixture
def clerk(client, ledger, owed):
    user = ledger.user("bank")
    login(client, user.username, PASSWORD)
    return user


def test_iban_form_at_the_desk(client, ledger, clerk, owed):
    code = owed["florist"].party_code
    reconversion = client.get(f"/comptoir/reconversion/{code}")
    assert "IBAN manquant" in reconversion.text
    assert f"/comptoir/prestataire/{code}/banque" in reconversion.text
    path = f"/comptoir/prestataire/{code}/banque"
    form = client.get(path)
    assert form.status_code == 200 and "Aucun IBAN enregistré" in form.text

    wrong = _post(client, path, path, iban="FR76 3000 6000 0112 3456 7890 188", bic="")
    assert wrong.status_code == 422
    assert "clé de contrôle" in wrong.text
    assert re.search(r'id="iban"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="iban"',
                     wrong.text)
    assert 'aria-describedby="iban-error"' in wrong.text and 'id="iban-error"' in wrong.text

    bad_bic = _post(client, path, path, iban=IBAN_FR, bic="NOPE")
    assert bad_bic.status_code == 422 and 'id="bic-error"' in bad_bic.text

    saved = _post(client, path, path, iban="fr76 3000 6000 0112 3456 7890 189", bic="")
    assert saved.status_code == 302 and saved.location.endswith(path)
    back = client.get(saved.location).text
    assert "FR76 3000 6000 0112 3456 7890 189" in back and "confirmé" in back
    assert 'data-testid="iban-change-waiting"' in back
    # Not in force yet: the euros owed are still not payable.
    assert [p.payable for p in _pending(ledger) if p.party_code == code] == [False]


def _florist_with_user(ledger, owed, email="fleurs@example.org"):
    """The florist's party, with a user who logs in as it and an e-mail address."""
    from bousol.ledger.access.parties import create_user
    code = owed["florist"].party_code
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET email = :e WHERE code = :c"),
                     {"e": email, "c": code})
    made = create_user(ledger.uow(), SYSTEM, username=f"fleurs-{code}", password=PASSWORD,
                       role="prestataire", party_code=code)
    with ledger.engine.connect() as conn:
        party_id = conn.execute(sa.text("SELECT id FROM parties WHERE code = :c"),
                                {"c": code}).scalar_one()
    return code, Actor(made.user_id, Role.PRESTATAIRE, party_id=party_id, party_code=code,
                       username=made.username)


def _mails(ledger, kind="iban_change"):
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT to_address, subject, body, status, recipient_key FROM mail_messages "
            "WHERE kind = :k ORDER BY id"), {"k": kind}).all()


def test_an_iban_typed_at_the_desk_waits_for_the_prestataire(app, client, ledger, clerk, owed):
    code, made = _florist_with_user(ledger, owed)
    # An address we wrote to before: the "old" one, told too.
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO mail_messages (kind, recipient_key, period, to_address, subject, "
            "body, status, created_at) VALUES ('membership_reminder', :k, '2026-10', "
            "'ancienne@example.org', 's', 'b', 'sent', CURRENT_TIMESTAMP)"),
            {"k": f"party:{made.party_id}"})
    path = f"/comptoir/prestataire/{code}/banque"
    asked = _post(client, path, path, iban=IBAN_FR, bic="")
    assert asked.status_code == 302
    sent = _mails(ledger)
    assert sorted(m.to_address for m in sent) == ["ancienne@example.org", "fleurs@example.org"]
    assert all("FR76 3000 6000 0112 3456 7890 189" in m.body and m.status == "sent"
               for m in sent)
    assert _pending_iban(ledger, code) is None

    shop = app.test_client()
    login(shop, f"fleurs-{code}", PASSWORD)
    mine = shop.get("/prestataire/banque")
    assert mine.status_code == 200 and 'data-testid="iban-change-waiting"' in mine.text
    assert "Confirmer ce nouvel IBAN" in mine.text and clerk.username in mine.text
    change_id = int(re.search(r"/prestataire/banque/(\d+)/confirmer", mine.text).group(1))
    # The clerk cannot confirm its own request.
    with pytest.raises(DomainError):
        iban_changes.confirm(ledger.uow(), clerk, change_id)
    done = _post(shop, f"/prestataire/banque/{change_id}/confirmer", "/prestataire/banque")
    assert done.status_code == 302
    assert "Nouvel IBAN confirmé" in shop.get(done.location).text
    assert _pending_iban(ledger, code) == IBAN_FR
    # Who asked and who confirmed are on the row (and so in the audit trail).
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT status, requested_by_user_id, confirmed_by_user_id FROM iban_changes "
            "WHERE id = :i"), {"i": change_id}).one()
        trail = conn.execute(sa.text(
            "SELECT details FROM audit_records ORDER BY seq DESC LIMIT 1")).scalar_one()
    assert tuple(row) == ("confirmed", clerk.user_id, made.user_id)
    assert "confirmed_by_user_id" in trail and str(made.user_id) in trail
    again = _post(shop, f"/prestataire/banque/{change_id}/confirmer", "/prestataire/banque")
    assert "plus en attente" in shop.get(again.location).text


def _pending_iban(ledger, code):
    with ledger.uow(read_only=True) as uow:
        return payouts.bank_details(uow.conn, code).iban


def test_the_prestataire_refuses_an_iban_and_others_cannot_touch_it(app, client, ledger,
                                                                    clerk, owed):
    code, _shop_user = _florist_with_user(ledger, owed)
    asked = iban_changes.request_change(ledger.uow(), clerk, code, IBAN_DE)
    stranger = app.test_client()
    other = ledger.prestataire()
    login(stranger, other.username, PASSWORD)
    poke = _post(stranger, f"/prestataire/banque/{asked.change_id}/confirmer",
                 "/prestataire/banque")
    assert poke.status_code == 404  # another prestataire's change does not exist for it
    shop = app.test_client()
    login(shop, f"fleurs-{code}", PASSWORD)
    refused = _post(shop, f"/prestataire/banque/{asked.change_id}/refuser",
                    "/prestataire/banque")
    assert "refusé" in shop.get(refused.location).text
    assert _pending_iban(ledger, code) is None


def test_an_admin_validates_an_iban_it_did_not_type(app, client, ledger, clerk, owed):
    code = owed["florist"].party_code
    admin = ledger.user("admin")
    own = iban_changes.request_change(ledger.uow(), admin, code, IBAN_BE)
    with pytest.raises(SecondPersonRequired):
        iban_changes.confirm(ledger.uow(), admin, own.change_id)
    asked = iban_changes.request_change(ledger.uow(), clerk, code, IBAN_FR)  # replaces it
    with ledger.uow(read_only=True) as uow:
        assert iban_changes.get(uow.conn, own.change_id).status == "cancelled"
    treasurer = app.test_client()
    login(treasurer, admin.username, PASSWORD)
    listing = treasurer.get("/admin/virements").text
    assert 'data-testid="iban-change-waiting"' in listing and "Valider" in listing
    done = _post(treasurer, f"/admin/virements/iban/{asked.change_id}/valider",
                 "/admin/virements")
    assert "validé" in treasurer.get(done.location).text
    assert _pending_iban(ledger, code) == IBAN_FR
    # The clerk (bank) may not validate: admins only.
    assert _post(client, f"/admin/virements/iban/{asked.change_id}/valider",
                 "/comptoir/").status_code == 403


@pytest.mark.parametrize(("current", "target", "allowed"), [
    ("requested", iban_changes.ChangeStatus.CONFIRMED, True),
    ("requested", iban_changes.ChangeStatus.CANCELLED, True),
    ("requested", iban_changes.ChangeStatus.REQUESTED, False),
    ("confirmed", iban_changes.ChangeStatus.CONFIRMED, False),
    ("confirmed", iban_changes.ChangeStatus.CANCELLED, False),
    ("confirmed", iban_changes.ChangeStatus.REQUESTED, False),
    ("cancelled", iban_changes.ChangeStatus.CONFIRMED, False),
    ("cancelled", iban_changes.ChangeStatus.CANCELLED, False),
    ("cancelled", iban_changes.ChangeStatus.REQUESTED, False),
    ("bogus", iban_changes.ChangeStatus.CONFIRMED, False),
])
def test_iban_change_state_machine_table(current, target, allowed):
    if allowed:
        iban_changes.check_transition(current, target)
    else:
        with pytest.raises(DomainError) as refused:
            iban_changes.check_transition(current, target)
        assert refused.value.code == "iban_change_transition"


def test_confirming_an_iban_concurrently_confirms_once(ledger, owed):
    code = owed["florist"].party_code
    asked = iban_changes.request_change(ledger.uow(), BANK, code, IBAN_FR)
    admins = [ledger.user("admin") for _ in range(2)]

    def worker(i: int) -> str:
        action = iban_changes.confirm if i % 2 else iban_changes.cancel
        try:
            action(ledger.uow(), admins[i % 2], asked.change_id)
            return action.__name__
        except DomainError as error:
            assert error.code == "iban_change_transition"
            return "refused"

    outcomes = Counter(hammer(worker))
    assert outcomes["refused"] == THREADS - 1
    assert _pending_iban(ledger, code) == (IBAN_FR if outcomes["confirm"] else None)


def test_iban_page_only_for_prestataires(client, clerk, owed):
    assert client.get(f"/comptoir/prestataire/{owed['marie'].party_code}/banque"
                      ).status_code == 404
