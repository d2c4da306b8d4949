"""The database itself backs the rules: append-only journal, limits, one reversal."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError


@pytest.fixture
def paid(ledger):
    ledger.subsidy("10.00")
    marie, baker = ledger.soliste(), ledger.prestataire()
    ledger.exchange(marie, "20.00")
    payment = ledger.pay(marie, baker, "5.00")
    return marie, baker, payment


@pytest.mark.parametrize("statement", [
    "UPDATE postings SET amount = amount + 1",
    "DELETE FROM postings",
    "UPDATE entries SET memo = 'rewritten'",
    "DELETE FROM entries WHERE id = :entry",
])
def test_journal_is_append_only(engine, paid, statement):
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text(statement), {"entry": paid[2].entry_id})


def test_balance_cannot_go_negative_in_the_database(engine, paid):
    marie = paid[0]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE accounts SET balance = -1 WHERE party_id = "
            "(SELECT id FROM parties WHERE code = :c)"), {"c": marie.party_code})


def test_posting_must_be_in_its_account_currency(engine, paid):
    with pytest.raises(IntegrityError), engine.begin() as conn:
        entry = conn.execute(sa.text(
            "INSERT INTO entries (kind, created_at) VALUES ('payment', CURRENT_TIMESTAMP) "
            "RETURNING id")).scalar_one()
        account = conn.execute(sa.text(
            "SELECT id FROM accounts WHERE currency = 'BSOL' AND party_id IS NOT NULL LIMIT 1"
        )).scalar_one()
        conn.execute(sa.text(
            "INSERT INTO postings (entry_id, account_id, currency, amount) "
            "VALUES (:e, :a, 'EUR', 5)"), {"e": entry, "a": account})


def test_zero_posting_refused(engine, paid):
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO postings (entry_id, account_id, currency, amount) "
            "SELECT entry_id, account_id, currency, 0 FROM postings LIMIT 1"))


def test_an_entry_is_reversed_at_most_once_in_the_database(engine, ledger, paid):
    reversal = ledger.reverse(paid[2].entry_id)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO entries (kind, created_at, reverses_id) "
            "VALUES ('reversal', CURRENT_TIMESTAMP, :r)"), {"r": paid[2].entry_id})
    assert reversal.reversed_entry_id == paid[2].entry_id


def test_unbalanced_entry_at_commit(engine, backend, ledger, paid):
    """PostgreSQL refuses it at commit (deferred trigger). SQLite has no deferred
    triggers: there the posting engine refuses it, and verify finds any that slip in."""
    forge = ("INSERT INTO postings (entry_id, account_id, currency, amount) "
             "SELECT entry_id, account_id, currency, 7 FROM postings LIMIT 1")
    if backend == "postgresql":
        with pytest.raises(IntegrityError, match="does not balance"), engine.begin() as conn:
            conn.execute(sa.text(forge))
        assert ledger.verify().ok
    else:
        with engine.begin() as conn:
            conn.execute(sa.text(forge))
        failed = [c.name for c in ledger.verify().checks if not c.ok]
        assert "écritures équilibrées" in failed


def test_every_kind_of_entry_has_a_label(engine):
    """A page listing an entry of a kind without a label would fail (a 500)."""
    from bousol.ledger.books.queries import KIND_LABELS

    with engine.connect() as conn:
        kinds = set(conn.execute(sa.text("SELECT name FROM entry_kinds")).scalars())
    assert kinds and kinds <= set(KIND_LABELS), kinds - set(KIND_LABELS)


def test_one_prestataire_per_siret_in_the_database(ledger):
    """Backs approval's check when two applications with one SIRET arrive at once."""
    first, second, soliste = ledger.prestataire(), ledger.prestataire(), ledger.soliste()
    siret = "73282932000074"
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET siret = :s WHERE code = :c"),
                     {"s": siret, "c": first.party_code})
        conn.execute(sa.text("UPDATE parties SET siret = :s WHERE code = :c"),  # not a shop
                     {"s": siret, "c": soliste.party_code})
    with pytest.raises(IntegrityError), ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET siret = :s WHERE code = :c"),
                     {"s": siret, "c": second.party_code})


def test_party_status_is_one_of_the_known_ones(ledger):
    baker = ledger.prestataire()
    with pytest.raises((IntegrityError, DBAPIError)), ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET status = 'validated' WHERE code = :c"),
                     {"c": baker.party_code})
