"""Test helpers: a small façade over the ledger to set up parties and money."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import sqlalchemy as sa

from bousol.ledger.access.parties import create_user
from bousol.ledger.books import operations
from bousol.ledger.books.verify import verify
from bousol.ledger.desk import notes
from bousol.ledger.kernel import settings
from bousol.ledger.kernel.actors import SYSTEM, Actor
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.models import Account, Role

BANK = Actor(user_id=None, role=Role.BANK, username="bank-test")
_names = itertools.count(1)


class Ledger:
    def __init__(self, engine: sa.Engine, new_uow: Callable[[], UnitOfWork]):
        self.engine = engine
        self.uow = new_uow

    # parties -----------------------------------------------------------
    def user(self, role: str, *, name: str | None = None, filiere: str | None = None,
             password: str = "password-123") -> Actor:
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
        return operations.exchange(self.uow(), BANK, party_code=code, euros=euros, **kw)

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
