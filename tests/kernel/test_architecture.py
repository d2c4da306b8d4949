"""The house's rules (docs/architecture.md), checked by what runs, not only by the text.

- Importing every module of the ledger loads no Flask, no web layer, no app.
- The import contracts of ``pyproject.toml`` hold, and a broken one fails ``lint-imports``
  (which ``make test`` runs): a contract that could not fail would prove nothing.
- The books consult the domains only through what they registered (books/hooks.py), and
  refuse to work before the domains are loaded rather than skip their checks.
"""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bousol.ledger

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _ledger_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(bousol.ledger.__path__, "bousol.ledger."))


def test_the_ledger_is_split_by_domain():
    packages = {m.name for m in pkgutil.iter_modules(bousol.ledger.__path__) if m.ispkg}
    assert packages == {"kernel", "books", "access", "desk", "merchants", "ccas", "association"}
    flat = {m.name for m in pkgutil.iter_modules(bousol.ledger.__path__) if not m.ispkg}
    assert flat == {"demo", "domains", "models"}  # the composition, the seed, the aggregate


def test_importing_the_whole_ledger_loads_no_flask_and_no_web_layer():
    modules = _ledger_modules()
    assert len(modules) > 40
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('flask', 'flask_sqlalchemy', 'flask_login', 'flask_wtf', 'flask_babel', "
        "'flask_migrate') or m in ('bousol.app', 'bousol.cli', 'bousol.extensions') "
        "or m.startswith('bousol.web'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120)
    assert out.stdout.strip() == ""


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def house_copy(tmp_path_factory) -> Path:
    """A copy of the package and its contracts, to break on purpose."""
    root = tmp_path_factory.mktemp("house")
    shutil.copytree(ROOT / "bousol", root / "bousol",
                    ignore=shutil.ignore_patterns("__pycache__", "translations"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_contracts_hold():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract", "arrow"), [
    ("bousol/ledger/kernel/clock.py", "import flask", "import no Flask",
     "bousol.ledger.kernel.clock -> flask"),
    ("bousol/ledger/books/posting.py", "from bousol.ledger.desk import notes",
     "Ledger layers", "bousol.ledger.books.posting -> bousol.ledger.desk.notes"),
    ("bousol/ledger/ccas/voucher_codes.py", "from bousol.ledger.merchants import refunds",
     "Ledger layers", "bousol.ledger.ccas.voucher_codes -> bousol.ledger.merchants.refunds"),
    ("bousol/ledger/kernel/money.py", "import bousol.web", "import no Flask",
     "bousol.ledger.kernel.money -> bousol.web"),
], ids=["flask-in-kernel", "books-on-a-domain", "domain-on-a-domain", "web-in-ledger"])
def test_a_broken_contract_fails(house_copy, module, line, contract, arrow):
    path = house_copy / module
    original = path.read_text()
    path.write_text(original + f"\n{line}  # noqa\n")
    try:
        result = _lint(house_copy)
    finally:
        path.write_text(original)
    assert result.returncode != 0
    assert contract in result.stdout
    assert arrow in result.stdout  # the very import added, named with its line


def test_the_books_refuse_to_reverse_or_verify_before_the_domains_are_loaded():
    """In a fresh interpreter that never called domains.load(), the books fail closed."""
    code = (
        "from bousol.ledger.books import hooks\n"
        "try:\n"
        "    hooks.guards(under_locks=False)\n"
        "except hooks.DomainsNotLoaded:\n"
        "    print('refused')\n"
        "from bousol.ledger import domains\n"
        "domains.load()\n"
        "print(sorted(hooks._irreversible))\n"
        "print(len(hooks.guards(under_locks=False)), len(hooks.guards(under_locks=True)),"
        " len(hooks.invariants()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120).stdout.splitlines()
    assert out[0] == "refused"
    assert out[1] == str(sorted(["cash_discrepancy", "payout", "refund", "voucher_grant",
                                 "voucher_redemption", "voucher_expiry",
                                 "voucher_cancellation"]))
    # notes + closing deposits; open batches + refunds; the daily figures, the report
    # figures, notes, vouchers
    assert out[2] == "2 2 4"
