"""The FEC export (docs/fec.md): the file of a real history passes the format's rules
(checked by fec.check, which is itself proved to catch broken files), its lines say the
right thing, the treasurer's mapping changes the accounts, the pages and the command."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
import sqlalchemy as sa

from bousol.ledger.association import fec
from bousol.ledger.books import operations, posting
from bousol.ledger.books.queries import KIND_LABELS
from bousol.ledger.ccas import vouchers
from bousol.ledger.desk import members
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import DomainError, Forbidden, InvalidDate, InvalidInput
from bousol.ledger.models import SystemAccount
from tests.helpers import BANK, PASSWORD, csrf_token, login

YEAR_2026 = fec.Period(dt.date(2026, 1, 1), dt.date(2026, 12, 31))


def at(monkeypatch, when: dt.datetime) -> None:
    """Entries posted from now on carry this UTC time."""
    monkeypatch.setattr(posting, "utcnow", lambda: when)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def export(ledger, period: fec.Period = YEAR_2026) -> str:
    with ledger.uow(read_only=True) as uow:
        return fec.export_text(uow.conn, period)


def records(text: str) -> list[dict[str, str]]:
    rows = [line.split("\t") for line in text.split("\r\n")[1:] if line]
    return [dict(zip(fec.HEADER, row, strict=True)) for row in rows]


def entry_lines(text: str, entry_id: int) -> list[dict[str, str]]:
    return [r for r in records(text) if r["PieceRef"] == f"E{entry_id}"]


def brief(line: dict[str, str]) -> tuple[str, ...]:
    return (line["CompteNum"], line["CompAuxNum"], line["Debit"], line["Credit"],
            line["Montantdevise"], line["Idevise"])


class History:
    """Who did what, and the entries' ids."""


@pytest.fixture
def history(ledger, monkeypatch) -> History:
    """A year of the Bou'Sol in 2026 (winter: Paris = UTC+1): a subsidy, exchanges, a
    payment, a reconversion, a reversal, a membership fee, a cash deposit, a CCAS
    programme funded, a voucher granted and redeemed; and one entry on each side of
    the year, around midnight Paris time."""
    h = History()
    h.ledger = ledger
    at(monkeypatch, utc(2025, 12, 31, 22, 30))  # 31/12/2025 23:30 in Paris: not 2026
    h.before = ledger.subsidy("50.00").entry_id
    at(monkeypatch, utc(2025, 12, 31, 23, 30))  # 01/01/2026 00:30 in Paris
    h.subsidy = ledger.subsidy("100.00").entry_id
    h.marie = ledger.soliste(name="Marie Lefebvre")
    h.baker = ledger.prestataire(name="Boulangerie du Port")
    at(monkeypatch, utc(2026, 3, 10, 9, 0))
    h.exchange = ledger.exchange(h.marie, "20.00").entry_id  # transfer: into the reserve
    at(monkeypatch, utc(2026, 3, 11, 9, 0))
    h.payment = ledger.pay(h.marie, h.baker, "12.50", memo="Pain de\u2028campagne  bio").entry_id
    at(monkeypatch, utc(2026, 3, 12, 9, 0))
    h.reconversion = ledger.reconvert(h.baker, "10.00").entry_id
    at(monkeypatch, utc(2026, 3, 13, 9, 0))
    h.cash_exchange = ledger.exchange(h.marie, "40.00", tender="cash").entry_id
    at(monkeypatch, utc(2026, 3, 13, 10, 0))
    h.kept_exchange = ledger.exchange(h.marie, "20.00", tender="cash").entry_id
    at(monkeypatch, utc(2026, 3, 14, 9, 0))
    h.reversal = ledger.reverse(h.cash_exchange).entry_id
    at(monkeypatch, utc(2026, 3, 15, 9, 0))
    h.fee = members.renew_membership(ledger.uow(), BANK, party_code=h.marie.party_code,
                                     tender="cash").entry_id
    h.deposit = operations.bank_desk_cash(ledger.uow(), BANK, euros="3.00").entry_id
    at(monkeypatch, utc(2026, 6, 1, 9, 0))
    ledger.phase("ccas", True)
    h.ccas = ledger.user("ccas", name="CCAS de Boulogne-sur-Mer")
    today = paris_today()
    programme = vouchers.create_programme(
        ledger.uow(), h.ccas, name="Aide alimentaire", budget="500", starts_on=today,
        ends_on=today + dt.timedelta(days=120), filieres=["alimentation"],
        default_validity_days=60, multi_use=True)
    h.funding = ledger.exchange(h.ccas, "100.00", programme_id=programme.id).entry_id
    voucher = vouchers.grant(ledger.uow(), h.ccas, beneficiary_ref="B-0001", amount="30.00",
                             programme_id=programme.id)
    with ledger.engine.connect() as conn:
        h.grant = conn.execute(sa.text("SELECT grant_entry_id FROM vouchers WHERE id = :v"),
                               {"v": voucher.id}).scalar_one()
    at(monkeypatch, utc(2026, 6, 2, 9, 0))
    h.redemption = vouchers.redeem(ledger.uow(), h.baker, code=voucher.code,
                                   amount="10.00").entry_id
    at(monkeypatch, utc(2026, 12, 31, 23, 30))  # 01/01/2027 00:30 in Paris: not 2026
    h.after = ledger.subsidy("5.00").entry_id
    return h


# ---------------------------------------------------------------- tables in code


def test_every_entry_kind_has_a_journal(engine):
    """A kind without a journal would be exported nowhere sensible: add it to
    fec.KIND_JOURNALS (this test fails until then)."""
    with engine.connect() as conn:
        kinds = set(conn.execute(sa.text("SELECT name FROM entry_kinds")).scalars())
    assert kinds, "the migrations seed the entry kinds"
    missing = (kinds | set(KIND_LABELS)) - set(fec.KIND_JOURNALS)
    assert not missing, f"entry kinds without an FEC journal: {sorted(missing)}"
    assert set(fec.KIND_JOURNALS.values()) <= set(fec.JOURNALS)
    for code, label in fec.JOURNALS.items():
        assert re.fullmatch(r"[A-Z]{2}", code) and label


def test_every_system_account_has_a_group(engine):
    with engine.connect() as conn:
        codes = set(conn.execute(sa.text(
            "SELECT system_code FROM accounts WHERE system_code IS NOT NULL")).scalars())
    codes |= {account.value for account in SystemAccount}
    assert {f"system:{code}" for code in codes} <= set(fec.GROUP_BY_KEY)


def test_default_accounts_are_well_formed():
    assert len(fec.GROUP_BY_KEY) == len(fec.GROUPS)
    for group in fec.GROUPS:
        assert fec.validate_number(group.number) == group.number
        assert fec.validate_label(group.account_label) == group.account_label
        assert group.currency in ("EUR", "BSOL")
    assert fec.validate_number(fec.FALLBACK_NUMBER) == fec.FALLBACK_NUMBER


# ---------------------------------------------------------------- the file of a history


def test_history_exports_a_valid_file(history):
    text = export(history.ledger)
    assert fec.check(text) == [], fec.check(text)
    assert text.startswith("\t".join(fec.HEADER) + "\r\n")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    # Every posting of the period's entries, one line each; and every account it
    # touched has a group of its own (nothing fell on the suspense account).
    with history.ledger.engine.connect() as conn:
        postings = conn.execute(sa.text(
            "SELECT count(*) FROM postings WHERE entry_id NOT IN (:a, :b)"),
            {"a": history.before, "b": history.after}).scalar_one()
    lines = records(text)
    assert len(lines) == postings
    assert fec.FALLBACK_NUMBER not in {line["CompteNum"] for line in lines}
    pieces = {line["PieceRef"] for line in lines}
    assert f"E{history.before}" not in pieces and f"E{history.after}" not in pieces
    # The subsidy of 01/01/2026 00:30 Paris (31/12/2025 UTC) is the year's first entry.
    first = lines[0]
    assert (first["PieceRef"], first["EcritureDate"]) == (f"E{history.subsidy}", "20260101")
    assert (first["JournalCode"], first["EcritureNum"]) == ("BQ", "BQ000001")


def test_exchange_lines_are_exact(history):
    text = export(history.ledger)
    lines = entry_lines(text, history.exchange)
    marie = history.marie.party_code
    assert [brief(line) for line in lines] == [
        ("471000", "", "0,00", "20,00", "", ""),  # the euros came from outside
        ("512100", "", "20,00", "0,00", "", ""),  # into the reserve (a transfer)
        ("467100", "", "0,00", "21,00", "21,00", "BSOL"),  # issued
        ("467200", marie, "21,00", "0,00", "21,00", "BSOL"),  # to Marie
        ("512200", "", "0,00", "1,00", "", ""),  # the bonus, from the bonus fund
        ("512100", "", "1,00", "0,00", "", ""),  # into the reserve
    ]
    for line in lines:
        assert (line["JournalCode"], line["JournalLib"], line["EcritureNum"]) == (
            "CH", "Change", "CH000001")
        assert line["EcritureDate"] == line["PieceDate"] == line["ValidDate"] == "20260310"
        assert line["EcritureLib"] == "Change euros → Bou'Sols"
        assert line["EcritureLet"] == line["DateLet"] == ""
    assert lines[3]["CompAuxLib"] == f"Soliste {marie}"
    assert lines[1]["CompteLib"] == "Banque - fonds de garantie Bou'Sol"


def test_other_entries_lines(history):
    text = export(history.ledger)
    baker = history.baker.party_code
    payment = entry_lines(text, history.payment)
    assert [brief(line) for line in payment] == [
        ("467200", history.marie.party_code, "0,00", "12,50", "12,50", "BSOL"),
        ("467300", baker, "12,50", "0,00", "12,50", "BSOL"),
    ]
    assert payment[0]["EcritureNum"] == "PA000001"
    assert payment[0]["EcritureLib"] == "Paiement - Pain de campagne bio"  # no line break
    assert payment[1]["CompAuxLib"] == "Boulangerie du Port"
    reconversion = entry_lines(text, history.reconversion)
    assert [brief(line) for line in reconversion] == [
        ("467300", baker, "0,00", "10,00", "10,00", "BSOL"),
        ("467100", "", "10,00", "0,00", "10,00", "BSOL"),
        ("512100", "", "0,00", "10,00", "", ""),
        ("467500", baker, "9,50", "0,00", "", ""),  # owed to the baker
        ("512300", "", "0,50", "0,00", "", ""),  # the association's fee
    ]
    assert reconversion[0]["JournalCode"] == "RC"
    # The reversal is an entry like any other, in the journal of the exchange it undoes.
    original = entry_lines(text, history.cash_exchange)
    reversal = entry_lines(text, history.reversal)
    assert original[1]["CompteNum"] == "530000"  # cash: into the desk's drawer
    assert [brief(line) for line in reversal] == [
        (o["CompteNum"], o["CompAuxNum"], o["Credit"], o["Debit"], o["Montantdevise"],
         o["Idevise"]) for o in original]
    assert (original[0]["EcritureNum"], reversal[0]["EcritureNum"]) == ("CH000002", "CH000004")
    assert reversal[0]["EcritureLib"] == (
        f"Contre-passation de l'écriture E{history.cash_exchange} (Change euros → Bou'Sols)")
    fee = entry_lines(text, history.fee)
    assert [brief(line) for line in fee] == [("471000", "", "0,00", "3,00", "", ""),
                                             ("512300", "", "3,00", "0,00", "", "")]
    assert fee[0]["JournalCode"] == "CO"
    deposit = entry_lines(text, history.deposit)
    assert [brief(line) for line in deposit] == [("530000", "", "0,00", "3,00", "", ""),
                                                 ("512100", "", "3,00", "0,00", "", "")]
    assert deposit[0]["EcritureNum"] == "BQ000002"  # after the subsidy of 1 January
    funding = entry_lines(text, history.funding)
    ccas = history.ccas.party_code
    assert ("467410", ccas, "105,00", "0,00", "105,00", "BSOL") in map(brief, funding)
    assert funding[3]["CompAuxLib"] == "CCAS de Boulogne-sur-Mer"
    grant = entry_lines(text, history.grant)
    assert [brief(line) for line in grant] == [
        ("467410", ccas, "0,00", "30,00", "30,00", "BSOL"),
        ("467120", "", "30,00", "0,00", "30,00", "BSOL")]
    assert (grant[0]["JournalCode"], grant[0]["EcritureNum"]) == ("BO", "BO000001")
    redemption = entry_lines(text, history.redemption)
    assert redemption[0]["EcritureNum"] == "BO000002"
    assert ("467300", baker, "10,00", "0,00", "10,00", "BSOL") in map(brief, redemption)


def test_fields_are_sanitised():
    assert fec.clean("a\tb\r\nc\x00d\u2028e\u2029f\x85g  h ") == "a b c d e f g h"
    assert fec.clean(None) == ""
    assert fec.entry_label("payment", "Café\tcroissant", None, None) == (
        "Paiement - Café croissant")
    assert fec.entry_label("voucher_grant", "Bon d'aide attribué", None, None) == (
        "Bon d'aide attribué")
    assert fec.amount(0) == "0,00" and fec.amount(5) == "0,05" and fec.amount(123456) == (
        "1234,56")
    with pytest.raises(ValueError, match="sign"):
        fec.amount(-1)


def test_aid_vouchers_codes_never_appear(history):
    """A voucher's code leads to its beneficiary: the accountant sees the kind only."""
    text = export(history.ledger)
    with history.ledger.engine.connect() as conn:
        codes = conn.execute(sa.text("SELECT code FROM vouchers")).scalars().all()
        memos = conn.execute(sa.text(
            "SELECT memo FROM entries WHERE kind = 'voucher_redemption'")).scalars().all()
    assert codes and memos and any(vouchers_display(c) in m for c in codes for m in memos)
    for code in codes:
        assert code not in text and vouchers_display(code) not in text
    assert "Bon d'aide encaissé" in text


def vouchers_display(code: str) -> str:
    from bousol.ledger.ccas import voucher_codes
    return voucher_codes.display(code)


def test_soliste_names_never_appear(history):
    text = export(history.ledger)
    assert "Marie" not in text and "Lefebvre" not in text
    assert f"Soliste {history.marie.party_code}" in text


def test_next_year_and_empty_period(history):
    text = export(history.ledger, fec.Period(dt.date(2027, 1, 1), dt.date(2027, 1, 31)))
    assert fec.check(text) == []
    lines = records(text)
    assert {line["PieceRef"] for line in lines} == {f"E{history.after}"}
    assert lines[0]["EcritureDate"] == "20270101" and lines[0]["EcritureNum"] == "BQ000001"
    empty = export(history.ledger, fec.Period(dt.date(2026, 2, 1), dt.date(2026, 2, 28)))
    assert empty == "\t".join(fec.HEADER) + "\r\n" and fec.check(empty) == []


# ---------------------------------------------------------------- the mapping


def test_mapping_edits_change_the_accounts(history):
    ledger = history.ledger
    admin = ledger.user("admin")
    saved = fec.set_mapping(ledger.uow(), admin, "system:eur_reserve", " 5121cm ",
                            "  Crédit Municipal - réserve ")
    assert (saved.number, saved.account_label, saved.changed) == (
        "5121CM", "Crédit Municipal - réserve", True)
    fec.set_mapping(ledger.uow(), admin, "party:soliste:BSOL:main", "4191", "Solistes")
    text = export(ledger)
    assert fec.check(text) == []
    lines = entry_lines(text, history.exchange)
    assert [line["CompteNum"] for line in lines] == [
        "471000", "5121CM", "467100", "4191", "512200", "5121CM"]
    assert lines[1]["CompteLib"] == "Crédit Municipal - réserve"
    with ledger.uow(read_only=True) as uow:
        views = {m.key: m for m in fec.mappings(uow.conn)}
    assert views["system:eur_reserve"].updated_by == admin.username
    assert not views["system:desk_cash"].changed
    # Saved again: one row per group, the last value wins.
    fec.set_mapping(ledger.uow(), admin, "system:eur_reserve", "512150", "Réserve")
    assert ledger.count("fec_mappings") == 2
    assert entry_lines(export(ledger), history.exchange)[1]["CompteNum"] == "512150"
    # Back to the default.
    assert fec.reset_mapping(ledger.uow(), admin, "system:eur_reserve") is True
    assert fec.reset_mapping(ledger.uow(), admin, "system:eur_reserve") is False
    assert entry_lines(export(ledger), history.exchange)[1]["CompteNum"] == "512100"
    assert ledger.count("fec_mappings") == 1


@pytest.mark.parametrize(("key", "number", "label", "field"), [
    ("system:nothing", "512100", "Banque", "ledger_key"),
    ("party:soliste:BSOL:main ; DROP", "512100", "Banque", "ledger_key"),
    (None, "512100", "Banque", "ledger_key"),
    ("system:eur_reserve", "", "Banque", "account_number"),
    ("system:eur_reserve", "51", "Banque", "account_number"),
    ("system:eur_reserve", "A12100", "Banque", "account_number"),
    ("system:eur_reserve", "51A100", "Banque", "account_number"),
    ("system:eur_reserve", "512-100", "Banque", "account_number"),
    ("system:eur_reserve", "512 100", "Banque", "account_number"),
    ("system:eur_reserve", "5121É", "Banque", "account_number"),
    ("system:eur_reserve", "5" * 21, "Banque", "account_number"),
    ("system:eur_reserve", "512ß", "Banque", "account_number"),
    ("system:eur_reserve", 512100, "Banque", "account_number"),
    ("system:eur_reserve", "512100", "", "account_label"),
    ("system:eur_reserve", "512100", "   ", "account_label"),
    ("system:eur_reserve", "512100", "x" * 201, "account_label"),
    ("system:eur_reserve", "512100", "Banque\tréserve", "account_label"),
    ("system:eur_reserve", "512100", "Banque\nréserve", "account_label"),
    ("system:eur_reserve", "512100", "Banque\u2028réserve", "account_label"),
    ("system:eur_reserve", "512100", "Banque\ud800", "account_label"),
])
def test_invalid_mapping_is_refused_and_writes_nothing(ledger, key, number, label, field):
    admin = ledger.user("admin")
    with pytest.raises(InvalidInput) as refused:
        fec.set_mapping(ledger.uow(), admin, key, number, label)
    assert refused.value.details["field"] == field
    assert refused.value.message  # French, for the form
    assert ledger.count("fec_mappings") == 0


def test_only_an_admin_edits_the_mapping(ledger):
    for actor in (BANK, ledger.soliste(), ledger.user("ccas")):
        with pytest.raises(Forbidden):
            fec.set_mapping(ledger.uow(), actor, "system:eur_reserve", "512100", "Banque")
        with pytest.raises(Forbidden):
            fec.reset_mapping(ledger.uow(), actor, "system:eur_reserve")
    assert fec.validate_number("512100") == "512100"
    assert ledger.count("fec_mappings") == 0
    with pytest.raises(InvalidInput):
        fec.reset_mapping(ledger.uow(), ledger.user("admin"), "system:nothing")


# ---------------------------------------------------------------- period, name, SIREN


def test_period_rules():
    assert fec.parse_period("2026-01-01", "2026-12-31") == YEAR_2026
    assert fec.parse_period("01/01/2026", "31/12/2026") == YEAR_2026
    assert fec.parse_period("2026-03-01", "2026-03-01").end == dt.date(2026, 3, 1)
    assert fec.parse_period("2025-01-01", "2026-12-31").start == dt.date(2025, 1, 1)
    assert fec.parse_period("2024-02-29", "2026-02-27").end == dt.date(2026, 2, 27)
    refusals = [
        (("2026-12-31", "2026-01-01"), "date_to", "précède"),
        (("2025-01-01", "2027-01-01"), "date_to", "trop longue"),
        (("2024-02-29", "2026-02-28"), "date_to", "trop longue"),
        (("2026-02-30", "2026-03-01"), "date_from", "n'existe pas"),
        (("2026-01-01", "demain"), "date_to", "invalide"),
        (("", "2026-03-01"), "date_from", "obligatoire"),
        (("2026-01-01", None), "date_to", "obligatoire"),
        (("1999-01-01", "1999-02-01"), "date_from", "hors limites"),
    ]
    for (start, end), field, words in refusals:
        with pytest.raises(InvalidDate) as refused:
            fec.parse_period(start, end)
        assert refused.value.details["field"] == field, (start, end)
        assert words in refused.value.message, refused.value.message


def test_file_name_and_siren():
    assert fec.filename("999999998", YEAR_2026) == "999999998FEC20261231.txt"
    assert fec.check_siren("999 999 998") == "999999998"
    for bad in ("", None, "99999999", "999999997", "9999999980", "abcdefghi"):
        with pytest.raises(fec.FecNotConfigured) as refused:
            fec.check_siren(bad)
        assert "ASSOCIATION_SIREN" in refused.value.message


# ---------------------------------------------------------------- the checker catches


def _edit(text: str, change) -> str:
    """Apply ``change(rows)`` to the rows (lists of fields, header first)."""
    rows = [line.split("\t") for line in text.split("\r\n")[:-1]]
    change(rows)
    return "".join("\t".join(row) + "\r\n" for row in rows)


def _col(name: str) -> int:
    return fec.HEADER.index(name)


def _set(row_index: int, name: str, value: str):
    def change(rows):
        rows[row_index][_col(name)] = value
    return change


def _first_debit_row(rows) -> int:
    return next(i for i, row in enumerate(rows) if i and row[_col("Debit")] != "0,00")


def _unbalance(rows):
    rows[_first_debit_row(rows)][_col("Debit")] = "99,99"


def _drop_header_column(rows):
    del rows[0][_col("EcritureLet")]


def _short_line(rows):
    del rows[3][_col("DateLet")]


def _long_line(rows):
    rows[3].append("extra")


def _drop_entry(rows):
    """The lines of the journal's second entry: the numbering skips one."""
    rows[:] = [row for row in rows if row[_col("EcritureNum")] != "CH000002"]


def _earlier(rows):
    """CH000003 dated before CH000002."""
    for row in rows:
        if row[_col("EcritureNum")] == "CH000003":
            for name in ("EcritureDate", "PieceDate", "ValidDate"):
                row[_col(name)] = "20260102"


def _pipes(rows):
    rows[:] = [["|".join(row)] for row in rows]


def _scatter(rows):
    """One line of an entry moved to the end of the file."""
    rows.append(rows.pop(2))


def _renumber_from_two(rows):
    for row in rows:
        if row[_col("JournalCode")] == "RC":
            row[_col("EcritureNum")] = "RC000002"


def _no_devise(rows):
    row = next(r for r in rows[1:] if r[_col("Idevise")] == "BSOL")
    row[_col("Idevise")] = ""


def _aux_without_label(rows):
    row = next(r for r in rows[1:] if r[_col("CompAuxNum")])
    row[_col("CompAuxLib")] = ""


BROKEN = {
    "unbalanced entry": (_unbalance, "déséquilibrée"),
    "header column missing": (_drop_header_column, "colonnes manquantes : EcritureLet"),
    "line with 17 fields": (_short_line, "17 champs au lieu de 18"),
    "line with 19 fields": (_long_line, "19 champs au lieu de 18"),
    "JournalCode empty": (_set(1, "JournalCode", ""), "JournalCode obligatoire"),
    "CompteLib empty": (_set(2, "CompteLib", ""), "CompteLib obligatoire"),
    "PieceRef empty": (_set(2, "PieceRef", ""), "PieceRef obligatoire"),
    "EcritureLib empty": (_set(1, "EcritureLib", " "), "EcritureLib obligatoire"),
    "Credit empty": (_set(1, "Credit", ""), "Credit obligatoire"),
    "ValidDate empty": (_set(1, "ValidDate", ""), "ValidDate obligatoire"),
    "date not a day": (_set(1, "EcritureDate", "20260230"), "date AAAAMMJJ"),
    "date with dashes": (_set(1, "PieceDate", "2026-01-01"), "date AAAAMMJJ"),
    "date as dd/mm/yyyy": (_set(1, "ValidDate", "01/01/2026"), "date AAAAMMJJ"),
    "DateLet not a day": (_set(1, "DateLet", "20261301"), "DateLet"),
    "decimal point": (_set(1, "Debit", "100.00"), "virgule décimale"),
    "thousands separator": (_set(1, "Credit", "1 100,00"), "virgule décimale"),
    "three decimals": (_set(1, "Credit", "100,000"), "virgule décimale"),
    "one decimal": (_set(1, "Credit", "100,0"), "virgule décimale"),
    "signed amount": (_set(1, "Credit", "-100,00"), "virgule décimale"),
    "Montantdevise with a point": (_set(3, "Montantdevise", "1.00"), "Montantdevise"),
    "Idevise without Montantdevise": (_no_devise, "Montantdevise et Idevise"),
    "CompteNum not starting with 3 digits": (_set(1, "CompteNum", "51A100"), "3 chiffres"),
    "CompAuxNum without its label": (_aux_without_label, "CompAuxNum et CompAuxLib"),
    "gap in a journal's numbering": (_drop_entry, "numérotation discontinue"),
    "numbering not starting at 1": (_renumber_from_two, "numérotation discontinue"),
    "not chronological": (_earlier, "ordre chronologique"),
    "pipe separator": (_pipes, "séparateur"),
    "an entry's lines apart": (_scatter, "ne se suivent pas"),
}


@pytest.fixture
def good_file(history) -> str:
    text = export(history.ledger)
    assert fec.check(text) == []
    return text


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_checker_catches_a_broken_file(good_file, case):
    change, expected = BROKEN[case]
    broken = _edit(good_file, change)
    assert broken != good_file
    problems = fec.check(broken)
    assert any(expected in p for p in problems), problems


def test_checker_catches_broken_text(good_file):
    assert fec.check("") == ["fichier vide : l'en-tête des 18 colonnes manque"]
    reordered = good_file.replace("Debit\tCredit", "Credit\tDebit", 1)
    assert any("mauvais ordre" in p for p in fec.check(reordered))
    mixed = good_file.replace("\r\n", "\n", 3).replace("\n", "\r\n", 1)
    assert any("fins de ligne" in p for p in fec.check(mixed))
    blank = good_file.replace("\r\n", "\r\n\r\n", 2)
    assert any("ligne vide" in p for p in fec.check(blank))
    # LF endings throughout, or no final line end, are accepted.
    assert fec.check(good_file.replace("\r\n", "\n")) == []
    assert fec.check(good_file.removesuffix("\r\n")) == []


# ---------------------------------------------------------------- the pages


def _admin_client(client, ledger):
    admin = ledger.user("admin")
    login(client, admin.username, PASSWORD)
    return admin


def test_page_for_the_admin_only(app, client, ledger):
    for user in (ledger.soliste(), ledger.user("bank"), ledger.user("ccas")):
        other = app.test_client()
        login(other, user.username, PASSWORD)
        assert other.get("/admin/comptabilite").status_code == 403
        assert other.get("/admin/comptabilite/fec?du=2026-01-01&au=2026-12-31"
                         ).status_code == 403
        assert other.post("/admin/comptabilite", data={
            "csrf_token": csrf_token(other.get("/compte/jetons").text),
            "ledger_key": "system:desk_cash", "account_number": "531",
            "account_label": "X", "action": "save"}).status_code == 403
    assert ledger.count("fec_mappings") == 0
    anonymous = client.get("/admin/comptabilite")
    assert anonymous.status_code == 302 and "/connexion" in anonymous.location
    _admin_client(client, ledger)
    home = client.get("/admin/").text
    assert "/admin/comptabilite" in home
    page = client.get("/admin/comptabilite")
    assert page.status_code == 200
    for group in fec.GROUPS:
        assert group.key in page.text
    today = paris_today()
    assert f'value="{today.year}-01-01"' in page.text and f'value="{today}"' in page.text
    assert 'type="date"' in page.text and "999999998" in page.text


def test_mapping_edit_on_the_page(client, ledger):
    _admin_client(client, ledger)
    page = client.get("/admin/comptabilite")
    token = csrf_token(page.text)
    saved = client.post("/admin/comptabilite", data={
        "csrf_token": token, "ledger_key": "system:desk_cash", "account_number": "531",
        "account_label": "Caisse du guichet G1", "action": "save"})
    assert saved.status_code == 302
    shown = client.get("/admin/comptabilite").text
    assert "Caisse du guichet G1" in shown and "modifié" in shown
    refused = client.post("/admin/comptabilite", data={
        "csrf_token": token, "ledger_key": "system:desk_cash", "account_number": "5A1",
        "account_label": "Caisse", "action": "save"})
    assert refused.status_code == 422
    assert "commençant par 3 chiffres" in refused.text
    assert 'aria-invalid="true"' in refused.text
    unknown = client.post("/admin/comptabilite", data={
        "csrf_token": token, "ledger_key": "system:nope", "account_number": "512",
        "account_label": "X", "action": "save"})
    assert unknown.status_code == 422 and "Groupe de comptes inconnu" in unknown.text
    no_csrf = client.post("/admin/comptabilite", data={
        "ledger_key": "system:desk_cash", "account_number": "512", "account_label": "X"})
    assert no_csrf.status_code == 400
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT account_number FROM fec_mappings")).scalars(
        ).all() == ["531"]
    reset = client.post("/admin/comptabilite", data={
        "csrf_token": token, "ledger_key": " system:desk_cash ", "action": "reset"})
    assert reset.status_code == 302  # the key typed with spaces: read as the ledger does
    assert ledger.count("fec_mappings") == 0


def test_download(client, history):
    _admin_client(client, history.ledger)
    response = client.get("/admin/comptabilite/fec?du=2026-01-01&au=2026-12-31")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "999999998FEC20261231.txt" in disposition
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data().decode("utf-8")
    response.close()
    assert fec.check(text) == []
    assert text == export(history.ledger)
    # Typed the French way too.
    other = client.get("/admin/comptabilite/fec?du=01/03/2026&au=31/03/2026")
    assert "999999998FEC20260331.txt" in other.headers["Content-Disposition"]
    other.close()


@pytest.mark.parametrize(("query", "words"), [
    ("du=2026-12-31&au=2026-01-01", "précède"),
    ("du=2024-01-01&au=2026-12-31", "trop longue"),
    ("du=2026-13-01&au=2026-12-31", "n'existe pas"),
    ("du=2026-1-1x&au=2026-12-31", "invalide"),
    ("du=2026-02-30&au=2026-12-31", "n'existe pas"),
    ("du=&au=2026-12-31", "obligatoire"),
    ("", "obligatoire"),
    ("du=2026-01-01&au=31-12-2026", "invalide"),
])
def test_bad_period_is_a_form_error(client, ledger, query, words):
    _admin_client(client, ledger)
    response = client.get(f"/admin/comptabilite/fec?{query}")
    assert response.status_code == 422
    assert response.headers["Content-Type"].startswith("text/html")
    assert words in html.unescape(response.text) and 'aria-invalid="true"' in response.text


def test_no_export_without_a_siren(database_url, ledger):
    from bousol.app import create_app
    from bousol.extensions import db

    app = create_app("testing", SQLALCHEMY_DATABASE_URI=database_url, ASSOCIATION_SIREN="")
    try:
        client = app.test_client()
        _admin_client(client, ledger)
        page = client.get("/admin/comptabilite")
        assert "n'est pas configuré" in page.text
        refused = client.get("/admin/comptabilite/fec?du=2026-01-01&au=2026-12-31")
        assert refused.status_code == 409
        assert "ASSOCIATION_SIREN" in refused.text
        runner = app.test_cli_runner()
        result = runner.invoke(args=["bousol", "fec", "--from", "2026-01-01",
                                     "--to", "2026-12-31"])
        assert result.exit_code == 2 and "ASSOCIATION_SIREN" in result.output
    finally:
        with app.app_context():
            db.engine.dispose()


# ---------------------------------------------------------------- the command


def test_command_writes_the_file(app, history, tmp_path):
    runner = app.test_cli_runner()
    tmp_path = tmp_path / "exports"
    tmp_path.mkdir()
    target = tmp_path / "export.txt"
    result = runner.invoke(args=["bousol", "fec", "--from", "2026-01-01", "--to",
                                 "2026-12-31", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert str(target) in result.output
    written = target.read_bytes().decode("utf-8")
    assert fec.check(written) == [] and written == export(history.ledger)
    # A folder: the file takes its legal name there.
    result = runner.invoke(args=["bousol", "fec", "--from", "2026-03-01", "--to",
                                 "2026-03-31", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert fec.check((tmp_path / "999999998FEC20260331.txt").read_text(encoding="utf-8")) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "999999998FEC20260331.txt", "export.txt"]  # no partial file left
    refused = runner.invoke(args=["bousol", "fec", "--from", "2026-12-31", "--to",
                                  "2026-01-01", "--output", str(target)])
    assert refused.exit_code == 2 and "précède" in refused.output
    missing = runner.invoke(args=["bousol", "fec", "--from", "2026-01-01", "--to",
                                  "2026-01-31", "--output", str(tmp_path / "no" / "f.txt")])
    assert missing.exit_code == 2


def test_domain_errors_are_domain_errors():
    assert issubclass(fec.FecNotConfigured, DomainError)
    assert fec.FecNotConfigured.http_status == 409
