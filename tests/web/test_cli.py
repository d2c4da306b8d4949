"""The ``flask bousol`` commands."""

from __future__ import annotations

import sqlalchemy as sa

from tests.helpers import PASSWORD, run_cli


def test_create_user_prints_the_party_code(app):
    result = run_cli(app, "create-user", "marie", "--role", "soliste", "--password", PASSWORD,
                     "--name", "Marie Lefebvre")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "S-000001"
    assert run_cli(app, "create-user", "karim", "--role", "soliste", "--password",
                   PASSWORD).output.strip() == "S-000002"
    assert run_cli(app, "create-user", "pain", "--role", "prestataire", "--password", PASSWORD,
                   "--filiere", "alimentation").output.strip() == "P-000001"
    assert run_cli(app, "create-user", "ccas", "--role", "ccas", "--password",
                   PASSWORD).output.strip() == "C-000001"
    bank = run_cli(app, "create-user", "guichet", "--role", "bank", "--password", PASSWORD)
    assert bank.exit_code == 0 and "guichet" in bank.output


def test_create_user_refusals(app):
    ok = run_cli(app, "create-user", "marie", "--role", "soliste", "--password", PASSWORD)
    assert ok.exit_code == 0
    again = run_cli(app, "create-user", "Marie", "--role", "soliste", "--password", PASSWORD)
    assert again.exit_code == 2 and "duplicate_user" in again.output
    short = run_cli(app, "create-user", "x", "--role", "soliste", "--password", "short")
    assert short.exit_code == 2 and "Mot de passe" in short.output
    no_filiere = run_cli(app, "create-user", "p", "--role", "prestataire", "--password", PASSWORD)
    assert no_filiere.exit_code == 2 and "Filière" in no_filiere.output
    bad_role = run_cli(app, "create-user", "y", "--role", "king", "--password", PASSWORD)
    assert bad_role.exit_code == 2


def test_create_user_joins_an_existing_party(app):
    code = run_cli(app, "create-user", "ccas1", "--role", "ccas", "--password", PASSWORD,
                   "--name", "CCAS de Boulogne-sur-Mer").output.strip()
    second = run_cli(app, "create-user", "ccas2", "--role", "ccas", "--password", PASSWORD,
                     "--party", code)
    assert second.output.strip() == code


def test_phase_switch_is_dated_history(app, engine):
    assert "ouverte" in run_cli(app, "phase", "b2b", "--on").output
    assert "fermée" in run_cli(app, "phase", "b2b", "--off").output
    assert run_cli(app, "phase", "sol-eco", "--off").exit_code == 2  # not switchable
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT value, changed_at FROM setting_changes WHERE key = 'phase.b2b' ORDER BY id"
        )).all()
    assert [r.value for r in rows] == ["on", "off"] and all(r.changed_at for r in rows)


def test_demo_loads_once_and_verifies(app, ledger):
    first = run_cli(app, "demo")
    assert first.exit_code == 0, first.output
    assert "guichet" in first.output and "bousol-demo" in first.output
    counts = (ledger.count("users"), ledger.count("entries"))
    assert counts[0] >= 10 and counts[1] >= 10
    second = run_cli(app, "demo")
    assert second.exit_code == 0 and "rien n'a été changé" in second.output
    assert (ledger.count("users"), ledger.count("entries")) == counts
    ledger.assert_consistent()
    # Every filière has a prestataire in the demo.
    with ledger.engine.connect() as conn:
        filieres = conn.execute(sa.text(
            "SELECT count(DISTINCT filiere) FROM parties WHERE kind = 'prestataire'")).scalar()
    assert filieres == 5


def test_subsidy_command(app, ledger):
    result = run_cli(app, "subsidy", "250,00", "--memo", "Subvention CAB")
    assert result.exit_code == 0 and "250,00" in result.output
    assert ledger.system("bonus_fund") == 25_000
    assert run_cli(app, "subsidy", "-3").exit_code == 2


def test_setting_command_changes_the_fee_with_history(app, ledger):
    assert "reconversion.fee_bp = 500" in run_cli(app, "setting", "reconversion.fee_bp").output
    changed = run_cli(app, "setting", "reconversion.fee_bp", "400", "--reason", "AG du 12/11")
    assert changed.exit_code == 0 and "reconversion.fee_bp = 400" in changed.output
    assert "AG du 12/11" in changed.output
    for bad in ("-1", "10001", "5%", "abc"):
        refused = run_cli(app, "setting", "reconversion.fee_bp", "--", bad)
        assert refused.exit_code == 2 and "points de base" in refused.output
    assert run_cli(app, "setting", "phase.b2b", "maybe").exit_code == 2
    assert run_cli(app, "setting", "no.such.key", "1").exit_code == 2
    ledger.subsidy()
    marie, baker = ledger.soliste(), ledger.prestataire()
    ledger.exchange(marie, "100.00")
    ledger.pay(marie, baker, "100.00")
    assert ledger.reconvert(baker, "100.00").fee_cents == 400


def test_reverse_command(app, ledger):
    ledger.subsidy()
    marie, baker = ledger.soliste(), ledger.prestataire()
    ledger.exchange(marie, "10.00")
    payment = ledger.pay(marie, baker, "4.00")
    done = run_cli(app, "reverse", str(payment.entry_id), "--memo", "Erreur de montant")
    assert done.exit_code == 0 and f"Écriture {payment.entry_id} contre-passée" in done.output
    assert ledger.balance(baker) == 0
    again = run_cli(app, "reverse", str(payment.entry_id))
    assert again.exit_code == 2 and "already_reversed" in again.output
    assert run_cli(app, "reverse", "999999").exit_code == 2
