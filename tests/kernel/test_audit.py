"""The audit trail (issue 7): every transaction that writes leaves one record — who,
when, what, from where — chained by hashes; verify catches an edit, a deletion, a cut
tail; the append-only triggers refuse updates and deletes."""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from bousol.ledger.kernel import audit, audit_capture
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.models import AuditRecord
from tests.helpers import confirm_exchange, csrf_token, enter_exchange, hammer, login, run_cli


def records(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT seq, username, address, action, details, prev_hash, hash "
            "FROM audit_records ORDER BY seq")).all()


def changes(record) -> dict[str, dict]:
    return {f"{c['op']} {c['table']}": c for c in json.loads(record.details)["changes"]}


def chain_problems(engine) -> list[str]:
    with engine.connect() as conn:
        return audit.verify_chain(conn).problems


def tamper(engine, sql: str, **params) -> None:
    """Change the trail as someone with the database's keys would: around the triggers."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_records_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_records_no_delete")
        conn.execute(sa.text(sql), params)


# ------------------------------------------------------------------ what is recorded


def test_an_exchange_leaves_one_record_naming_what_it_wrote(ledger):
    marie = ledger.soliste()
    before = len(records(ledger.engine))
    result = ledger.exchange(marie, "20.00")
    after = records(ledger.engine)
    assert len(after) == before + 1
    record = after[-1]
    written = changes(record)
    assert written["insert entries"]["values"]["kind"] == ["exchange"]
    assert written["insert entries"]["values"]["id"] == [result.entry_id]
    assert written["insert postings"]["rows"] == 6
    assert "update accounts" in written
    assert record.username == "system" and record.address == "system"


def test_reads_and_refusals_leave_no_record(ledger):
    marie = ledger.soliste()
    count = len(records(ledger.engine))
    ledger.verify()  # a read-only unit of work
    with pytest.raises(DomainError):
        ledger.pay(marie, ledger.prestataire(), "5.00")  # nothing to spend
    # The prestataire's creation is one record; the refused payment rolled back with none.
    assert len(records(ledger.engine)) == count + 1


def test_personal_data_and_secrets_are_named_not_copied(ledger):
    ledger.soliste(name="Marie Lefebvre", password="tres-secret-123")
    record = records(ledger.engine)[-1]
    assert "Lefebvre" not in record.details
    assert "tres-secret" not in record.details
    written = changes(record)
    assert "name" in written["insert parties"]["columns"]
    assert "password_hash" in written["insert users"]["columns"]
    assert "password_hash" not in written["insert users"]["values"]


def test_records_chain_in_order(ledger):
    marie = ledger.soliste()
    ledger.exchange(marie, "20.00")
    ledger.exchange(marie, "40.00")
    rows = records(ledger.engine)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == audit.GENESIS
    for previous, record in itertools.pairwise(rows):
        assert record.prev_hash == previous.hash
    assert chain_problems(ledger.engine) == []
    ledger.assert_consistent()  # verify's 10th check


# ------------------------------------------------------------------ tampering


@pytest.fixture
def trail(ledger):
    marie = ledger.soliste()
    for euros in ("20.00", "40.00", "60.00"):
        ledger.exchange(marie, euros)
    return ledger


def test_an_edited_record_is_detected(trail):
    target = records(trail.engine)[2]
    tamper(trail.engine, "UPDATE audit_records SET username = 'quelqu_un' WHERE seq = :seq",
           seq=target.seq)
    problems = chain_problems(trail.engine)
    assert problems == [f"enregistrement {target.seq} : contenu modifié "
                        "(l'empreinte ne correspond plus)"]
    report = trail.verify()
    assert not report.ok
    assert [c.name for c in report.checks if not c.ok] == ["journal d'audit chaîné"]


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(trail):
    table = AuditRecord.__table__
    with trail.engine.connect() as conn:
        target = conn.execute(sa.select(table).where(table.c.seq == 2)).one()
    forged = SimpleNamespace(**{**target._mapping,
                                "details": target.details.replace("exchange", "subsidy")})
    tamper(trail.engine, "UPDATE audit_records SET details = :d, hash = :h WHERE seq = 2",
           d=forged.details, h=audit.record_hash(forged))
    assert chain_problems(trail.engine) == ["enregistrement 3 : maillon précédent rompu"]


def test_a_deleted_record_is_detected(trail):
    tamper(trail.engine, "DELETE FROM audit_records WHERE seq = 2")
    problems = chain_problems(trail.engine)
    assert "enregistrements 2 à 2 manquants" in problems
    assert "enregistrement 3 : maillon précédent rompu" in problems


def test_a_cut_tail_is_detected_by_the_head(trail):
    last = records(trail.engine)[-1].seq
    tamper(trail.engine, "DELETE FROM audit_records WHERE seq = :seq", seq=last)
    problems = chain_problems(trail.engine)
    assert len(problems) == 1 and problems[0].startswith(f"la tête de chaîne (n° {last})")


@pytest.mark.parametrize("statement", [
    "UPDATE audit_records SET username = 'x' WHERE seq = 1",
    "DELETE FROM audit_records WHERE seq = 1",
])
def test_the_trail_is_append_only(trail, statement):
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), trail.engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert chain_problems(trail.engine) == []


def test_verify_command_fails_on_a_tampered_trail(app, ledger):
    ledger.exchange(ledger.soliste(), "20.00")
    assert run_cli(app, "verify").exit_code == 0
    tamper(ledger.engine, "UPDATE audit_records SET address = '10.0.0.66' WHERE seq = 1")
    result = run_cli(app, "verify")
    assert result.exit_code == 1
    assert "[ÉCHEC] journal d'audit chaîné" in result.output


# ------------------------------------------------------------------ who and from where


def test_a_web_action_names_the_user_the_address_and_the_request(app, client, ledger):
    clerk = ledger.user("bank", password="guichet-123")
    marie = ledger.soliste()
    login(client, clerk.username, "guichet-123")
    preview = enter_exchange(client, marie.party_code, "20,00")
    answer, _fields = confirm_exchange(client, marie.party_code, preview)
    assert answer.status_code == 302, answer.text
    exchange = [r for r in records(ledger.engine)
                if "exchange" in json.dumps(changes(r).get("insert entries", {}))]
    assert len(exchange) == 1
    assert exchange[0].username == clerk.username
    assert exchange[0].address == "127.0.0.1"
    # The route's rule, not the path (a path can carry a secret: a pay link, a code).
    assert exchange[0].action == "POST /comptoir/change/<code>"
    assert changes(exchange[0])["update accounts"]["rows"] >= 2


def test_a_login_attempt_is_recorded_with_its_address(client, ledger):
    marie = ledger.soliste()
    login(client, marie.username, "not-the-password")
    last = records(ledger.engine)[-1]
    assert last.action == "POST /connexion" and last.address == "127.0.0.1"
    attempt = changes(last)["insert login_attempts"]["values"]
    assert attempt["succeeded"] == [False] and attempt["username"] == [marie.username]


def test_a_pin_set_on_the_pay_pages_names_its_user(client, ledger):
    marie = ledger.soliste(password="marie-pass-123")
    login(client, marie.username, "marie-pass-123")
    page = client.get("/payer/code-pin")
    answer = client.post("/payer/code-pin", data={
        "csrf_token": csrf_token(page.text), "password": "marie-pass-123",
        "pin": "4821", "pin_again": "4821"})
    assert answer.status_code in (200, 302), answer.text
    last = records(ledger.engine)[-1]
    assert "update users" in changes(last)
    assert last.username == marie.username
    assert "pin_hash" in changes(last)["update users"]["columns"]
    assert "4821" not in last.details


def test_secrets_in_paths_and_codes_stay_out_of_the_trail(ledger):
    """A voucher's code is a bearer instrument: the trail names the column only."""
    from bousol.ledger.kernel.audit_capture import _SECRET

    assert ("vouchers", "code") in _SECRET
    with ledger.engine.begin() as conn:
        table = sa.table("vouchers", sa.column("code"))
        audit.note_write(conn, sa.insert(table), 1, [{"code": "ABCD1234EFGH5678"}])
        written = conn.info[audit_capture._WRITES]["insert vouchers"]
        assert written.columns == {"code"} and written.values == {}


def test_a_command_names_itself(app, ledger):
    result = run_cli(app, "setting", "reconversion.fee_bp", "400", "--reason", "AG 2026")
    assert result.exit_code == 0, result.output
    last = records(ledger.engine)[-1]
    assert last.action == "flask bousol setting"
    assert last.username.startswith("cli:") and last.address.startswith("cli@")
    assert changes(last)["insert setting_changes"]["values"]["value"] == ["400"]


# ------------------------------------------------------------------ the admin page


def test_admin_searches_the_trail(client, ledger):
    admin = ledger.user("admin", password="admin-123")
    marie = ledger.soliste()
    ledger.exchange(marie, "20.00")
    login(client, admin.username, "admin-123")
    page = client.get("/admin/audit?q=exchange")
    assert page.status_code == 200
    assert "entries : 1 ajout" in page.text and "kind=exchange" in page.text
    assert client.get("/admin/audit?qui=personne").text.count('data-testid="no-records"') == 1
    assert "Chaîne intacte" in client.get("/admin/audit?verifier=1").text
    tamper(ledger.engine, "UPDATE audit_records SET action = 'rien' WHERE seq = 1")
    assert "Chaîne rompue" in client.get("/admin/audit?verifier=1").text


def test_audit_page_refuses_others(client, ledger):
    marie = ledger.soliste(password="marie-123")
    login(client, marie.username, "marie-123")
    assert client.get("/admin/audit").status_code == 403


def test_audit_page_refuses_bad_dates(client, ledger):
    admin = ledger.user("admin", password="admin-123")
    login(client, admin.username, "admin-123")
    assert client.get("/admin/audit?du=2026-13-45").status_code == 422
    assert client.get("/admin/audit?du=0001-01-01").status_code == 422
    assert client.get("/admin/audit?au=9999-12-31").status_code == 422
    assert client.get("/admin/audit?du=2026-11-22&au=2026-11-01").status_code == 422
    assert client.get("/admin/audit?q=%25_%5C&page=abc").status_code == 200


# ------------------------------------------------------------------ concurrency


def test_concurrent_writers_keep_one_unbroken_chain(ledger):
    ledger.subsidy("100.00")
    payers = [ledger.soliste() for _ in range(8)]
    shop = ledger.prestataire()
    for payer in payers:
        ledger.exchange(payer, "20.00")
    before = len(records(ledger.engine))
    hammer(lambda i: ledger.pay(payers[i], shop, "1.00"))
    rows = records(ledger.engine)
    assert len(rows) == before + 8
    assert chain_problems(ledger.engine) == []
