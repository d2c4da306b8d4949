"""Test helpers shared by the test modules (a test module never imports another one):
a small façade over the ledger to set up parties and money, the one test password,
threads started together, approval applications, and the web forms' round trips."""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable

import sqlalchemy as sa

from bousol.ledger.access.parties import create_user
from bousol.ledger.books import operations
from bousol.ledger.books.verify import verify
from bousol.ledger.desk import exchange as desk_exchange
from bousol.ledger.desk import iban_changes, notes
from bousol.ledger.kernel import settings, siret
from bousol.ledger.kernel.actors import SYSTEM, Actor
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.merchants import approval
from bousol.ledger.models import Account, Role

BANK = Actor(user_id=None, role=Role.BANK, username="bank-test")
# The password of every user the tests make (Ledger.user's default), typed at the login.
PASSWORD = "password-123"
_names = itertools.count(1)


class Ledger:
    def __init__(self, engine: sa.Engine, new_uow: Callable[[], UnitOfWork]):
        self.engine = engine
        self.uow = new_uow

    # parties -----------------------------------------------------------
    def user(self, role: str, *, name: str | None = None, filiere: str | None = None,
             password: str = PASSWORD) -> Actor:
        username = f"{role}{next(_names)}"
        created = create_user(self.uow(), SYSTEM, username=username, password=password,
                              role=role, name=name or username, filiere=filiere)
        return Actor(created.user_id, Role(role), party_code=created.party_code,
                     username=username)

    def soliste(self, **kw) -> Actor:
        return self.user("soliste", **kw)

    def prestataire(self, filiere: str = "alimentation", **kw) -> Actor:
        return self.user("prestataire", filiere=filiere, **kw)

    # money -------------------------------------------------------------
    def subsidy(self, euros: str = "1000.00"):
        return operations.record_subsidy(self.uow(), BANK, euros=euros)

    def exchange(self, party: Actor | str, euros: str, **kw):
        code = party if isinstance(party, str) else party.party_code
        return desk_exchange.exchange(self.uow(), BANK, party_code=code, euros=euros, **kw)

    def pay(self, payer: Actor, payee: Actor | str, amount: str, **kw):
        code = payee if isinstance(payee, str) else payee.party_code
        return operations.pay(self.uow(), payer, payee_code=code, amount=amount, **kw)

    def reconvert(self, prestataire: Actor | str, bousols: str, **kw):
        code = prestataire if isinstance(prestataire, str) else prestataire.party_code
        return operations.reconvert(self.uow(), BANK, prestataire_code=code, bousols=bousols,
                                    **kw)

    def reverse(self, entry_id: int, **kw):
        return operations.reverse(self.uow(), BANK, entry_id=entry_id, **kw)

    def phase(self, name: str, on: bool) -> None:
        with self.uow() as uow:
            settings.change(uow.conn, f"phase.{name}", "on" if on else "off", user_id=None)
            uow.commit()

    def setting(self, key: str, value: str) -> None:
        with self.uow() as uow:
            settings.change(uow.conn, key, value, user_id=None)
            uow.commit()

    def notes_at_desk(self, deliveries, *, series: str = "A26",
                      valid_until: str = "2099-12-31") -> None:
        """A series, each ``(value, first, last)`` delivered, put in the vault, then
        at the desk (the only one: G1)."""
        notes.register_series(self.uow(), BANK, code=series, printed_on="2026-11-01",
                               valid_until=valid_until)
        for value, first, last in deliveries:
            notes.register_delivery(self.uow(), BANK, series_code=series,
                                    denomination=value, first=first, last=last)
            span = f"{series}-{first:06d}..{last:06d}"
            notes.move(self.uow(), BANK, serials=span, to_place="vault")
            notes.move(self.uow(), BANK, serials=span, to_place="desk")

    # reading -----------------------------------------------------------
    def balance(self, party: Actor | str, currency: str = "BSOL") -> int:
        code = party if isinstance(party, str) else party.party_code
        with self.engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT a.balance FROM accounts a JOIN parties p ON p.id = a.party_id "
                "WHERE p.code = :code AND a.currency = :cur AND a.purpose = 'main'"),
                {"code": code, "cur": currency}
            ).scalar_one()

    def system(self, code: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(Account.balance).where(Account.system_code == code)
            ).scalar_one()

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608

    def verify(self):
        with self.uow(read_only=True) as uow:
            return verify(uow.conn)

    def assert_consistent(self) -> None:
        report = self.verify()
        assert report.ok, "\n".join(report.lines())


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client, username: str, password: str, follow_redirects: bool = True):
    page = client.get("/connexion")
    return client.post(
        "/connexion",
        data={"csrf_token": csrf_token(page.text), "username": username, "password": password},
        follow_redirects=follow_redirects,
    )


# A French IBAN with a valid key, for prestataires' payouts.
IBAN_FR = "FR7630006000011234567890189"


def set_iban(ledger: Ledger, code: str, iban_value: str, bic: str | None = None):
    """The two-person rule: the desk asks, an admin validates (docs/duties.md)."""
    asked = iban_changes.request_change(ledger.uow(), BANK, code, iban_value, bic)
    return iban_changes.confirm(ledger.uow(), ledger.user("admin"), asked.change_id)


# ------------------------------------------------------------------ concurrency

THREADS = 8


def hammer(worker, threads: int = THREADS) -> list:
    """Run ``worker(i)`` in threads started together; return outcomes, raise crashes."""
    barrier = threading.Barrier(threads)
    outcomes: list = [None] * threads
    crashes: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = worker(i)
        except BaseException as error:
            crashes.append(error)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in pool), "a worker hung (deadlock?)"
    if crashes:
        raise crashes[0]
    return outcomes


# ------------------------------------------------------------------ approval (agrément)

# Establishments of SIREN 732 829 320 with a valid key: distinct SIRETs for the tests.
VALID_SIRETS = [s for s in (f"732829320{nic:05d}" for nic in range(1, 5_000))
                if siret.luhn_ok(s)]
_applications = itertools.count(1)


def valid_siret(n: int) -> str:
    return VALID_SIRETS[n % len(VALID_SIRETS)]


COMPLETE_APPLICATION = {
    "name": "Épicerie du Portel", "legal_form": "sarl", "address": "12 rue de la Plage",
    "commune": "Le Portel", "filiere": "alimentation", "contact_name": "Claire Dubois",
    "phone": "06 12 34 56 78", "email": "claire.dubois@epicerie.example",
    "iban": "FR76 3000 6000 0112 3456 7890 189", "bic": "", "charter_accepted": True,
}


def application(**overrides) -> dict:
    """A complete application (approval.apply's fields), with a SIRET of its own."""
    return {**COMPLETE_APPLICATION, "siret": valid_siret(next(_applications)), **overrides}


def apply(ledger: Ledger, *, submit: bool = False, **overrides) -> approval.Applied:
    return approval.apply(ledger.uow(), username=f"shop{next(_applications)}",
                          password=PASSWORD, submit=submit, **application(**overrides))


# The public application form (/agrement), filled in completely.
APPLICATION_FORM = {
    "name": "Le Fournil de l'Estran", "legal_form": "ei", "siret": "732 829 320 00074",
    "address": "3 quai Gambetta", "commune": "Boulogne-sur-Mer", "filiere": "alimentation",
    "contact_name": "Hélène Caron", "phone": "06 98 76 54 32",
    "email": "helene.caron@fournil.example", "iban": "FR76 3000 6000 0112 3456 7890 189",
    "bic": "", "username": "fournil", "password": PASSWORD, "password_confirm": PASSWORD,
}


# ------------------------------------------------------------------ web round trips


def post_form(client, path: str, page_path: str | None = None, **data):
    """Open the form's page (``path`` unless told), then post ``data`` with its CSRF token."""
    page = client.get(page_path or path)
    return client.post(path, data={"csrf_token": csrf_token(page.text), **data})


def enter_exchange(client, code: str, euros: str, tender: str = "cash"):
    """The desk's exchange form filled in: the answer is the page to confirm."""
    page = client.get(f"/comptoir/change/{code}")
    return client.post(f"/comptoir/change/{code}", data={
        "csrf_token": csrf_token(page.text), "euros": euros, "tender": tender})


def confirm_exchange(client, code: str, preview):
    """Confirm the exchange shown on ``preview``: (the answer, the fields posted)."""
    key = re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"', preview.text)
    assert key, "the confirmation page carries its request key"
    fields = {"csrf_token": csrf_token(preview.text), "request_key": key.group(1),
              "euros": re.search(r'name="euros" value="([^"]*)"', preview.text).group(1),
              "tender": re.search(r'name="tender" value="([^"]*)"', preview.text).group(1),
              "confirm": "1"}
    return client.post(f"/comptoir/change/{code}", data=fields), fields


def run_cli(app, *args):
    """``flask bousol <args>`` in the app, through Click's test runner."""
    return app.test_cli_runner().invoke(args=["bousol", *args])
