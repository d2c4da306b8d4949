"""Build a big, consistent ledger by COPY, for bench/scale.py (issue 18).

The generator walks the books forward in time, one entry per slot, keeping every
balance in Python, so the ledger it writes is one the posting engine could have
written: every entry balances per currency, every posting is in its account's
currency, no account that forbids it ever ends below zero, reversals mirror their
original, the bonus fund is fed by subsidies before it pays a bonus, the reserve pays
a reconversion only when it holds the euros, the desk's cash is banked every evening.
The notes and vouchers tables stay empty (``notes_circulation`` and
``vouchers_outstanding`` stay at zero), so their invariants hold too.

What is written, by COPY (psycopg 3 ``cursor.copy``), into the tables the real
migrations made: parties (solistes, prestataires with their filière and commune),
their two accounts each (Bou'Sol and euros, with the final balances), entries and
postings. During the COPY the connection runs with ``session_replication_role =
replica`` (the append-only and balance triggers and the foreign keys are not fired
row by row: ``verify`` proves the same afterwards, as one aggregate), and the plain
secondary indexes of entries and postings are dropped, then rebuilt from their own
definitions. The load is one audit record, as an honest bulk operation.
"""

from __future__ import annotations

import bisect
import datetime as dt
import importlib
import itertools
import json
import math
import random
import time
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg

from bousol.ledger.books.models import Filiere
from bousol.ledger.kernel import money
from bousol.ledger.kernel.text import sort_name

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
FEE_BP = 500  # the default reconversion fee (reconversion.fee_bp)

# The communes of the Boulonnais (the Communauté d'agglomération and around it).
COMMUNES = (
    "Boulogne-sur-Mer", "Outreau", "Le Portel", "Saint-Martin-Boulogne", "Wimereux",
    "Saint-Léonard", "Saint-Étienne-au-Mont", "Wimille", "Équihen-Plage", "Condette",
    "Neufchâtel-Hardelot", "Baincthun", "Isques", "Pont-de-Briques", "Conteville-lès-Boulogne",
    "La Capelle-lès-Boulogne", "Pittefaux", "Pernes-lès-Boulogne", "Echinghen", "Dannes",
    "Nesles", "Hesdin-l'Abbé", "Samer", "Desvres", "Marquise",
)
# Weights: Boulogne itself holds a third of the territory's people and shops.
COMMUNE_WEIGHTS = (33, 8, 6, 7, 5, 4, 3, 3, 2, 2, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 4, 3)
FIRST_NAMES = ("Marie", "Jean", "Camille", "Louis", "Léa", "Hugo", "Chloé", "Lucas",
               "Manon", "Jules", "Emma", "Gabriel", "Inès", "Arthur", "Zoé", "Nathan",
               "Sarah", "Théo", "Lucie", "Paul", "Alice", "Tom", "Julie", "Karim",
               "Yasmine", "Pierre", "Anne", "Éric", "Sophie", "Michel")
LAST_NAMES = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand",
              "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia",
              "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Caron",
              "Delattre", "Lemaire", "Wimet", "Dufour", "Fontaine", "Boulanger",
              "Lecomte", "Duhamel", "Pruvost")
SHOPS = {
    Filiere.ALIMENTATION.value: ("Boulangerie", "Épicerie", "Primeur", "Boucherie",
                                 "Fromagerie", "Poissonnerie", "Maraîcher"),
    Filiere.LOISIRS_CULTURE.value: ("Librairie", "Cinéma", "Disquaire", "Atelier",
                                    "Galerie"),
    Filiere.SERVICES_DE_PROXIMITE.value: ("Cordonnerie", "Coiffure", "Pressing",
                                          "Garage", "Quincaillerie"),
    Filiere.MOBILITE_DOUCE.value: ("Vélos", "Cycles", "Trottinettes"),
    Filiere.HABITAT_DURABLE.value: ("Éco-Habitat", "Menuiserie", "Isolation"),
}
FILIERE_WEIGHTS = {Filiere.ALIMENTATION.value: 40, Filiere.LOISIRS_CULTURE.value: 15,
                   Filiere.SERVICES_DE_PROXIMITE.value: 30, Filiere.MOBILITE_DOUCE.value: 5,
                   Filiere.HABITAT_DURABLE.value: 10}
BIG_MERCHANT_NAME = "Hypermarché du Boulonnais"
MEMOS = ("Courses", "Marché du samedi", "Merci !", "Pain et viennoiseries", "Réparation",
         "Cadeau", "Abonnement", "Facture")
# Tenders of the exchanges, in the desk's proportions; the details the engine writes.
TENDERS = (("cash", 45), ("card", 45), ("cheque", 5), ("transfer", 5))
RATE = f"{money.RATE_EUR}:{money.RATE_BSOL}"
NULL = "\\N"  # COPY's text format
EXCHANGE_EUROS = (20, 20, 30, 50, 50, 50, 100, 100, 150, 200)


@dataclass
class Shape:
    """How big the ledger is and how its entries are spread."""

    entries: int = 10_000_000
    solistes: int = 160_000
    prestataires: int = 6_000
    days: int = 730
    end: dt.datetime | None = None  # the last day's end (default: the clock's now)
    big_share: float = 0.10  # the entries that touch the big merchant
    seed: int = 18
    reconversion_rate: float = 0.006  # a slot is a reconversion
    b2b_rate: float = 0.02  # a slot is a prestataire paying another
    reversal_rate: float = 0.001  # a payment is reversed at once


@dataclass
class Loaded:
    """What the load wrote, for the benchmark to find its accounts."""

    entries: int = 0
    postings: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    big_merchant_code: str = "P-000001"
    small_merchant_code: str = ""
    soliste_code: str = "S-000001"
    seconds: dict[str, float] = field(default_factory=dict)
    first_day: str = ""
    last_day: str = ""


def _party_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def _zipf_cum(n: int, exponent: float, offset: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (r + offset) ** exponent for r in range(n)))


class _Picker:
    """Draws ranks 0…n-1 with zipf-ish weights, a batch of draws at a time."""

    def __init__(self, rng: random.Random, n: int, exponent: float, offset: float):
        self.rng, self.cum, self.n = rng, _zipf_cum(n, exponent, offset), n
        self.total = self.cum[-1]
        self.buffer: list[int] = []

    def __call__(self) -> int:
        if not self.buffer:
            cum, total, rand, bis, last = (self.cum, self.total, self.rng.random,
                                           bisect.bisect, self.n - 1)
            self.buffer = [min(bis(cum, rand() * total), last) for _ in range(4096)]
        return self.buffer.pop()


def _day_bounds(shape: Shape, end: dt.datetime) -> list[dt.datetime]:
    """Each day's opening instant (08:00 in Boulogne), in UTC, oldest first."""
    last_day = end.astimezone(PARIS).date() - dt.timedelta(days=1)
    days = [last_day - dt.timedelta(days=shape.days - 1 - d) for d in range(shape.days)]
    return [dt.datetime.combine(d, dt.time(8), PARIS).astimezone(dt.UTC) for d in days]


class Timeline:
    """The instant of the i-th of n entries: n spread over the days, each day's between
    08:00 and 20:00 in Boulogne, strictly increasing with i (entry ids follow time)."""

    def __init__(self, shape: Shape, end: dt.datetime, n: int):
        self.opens = _day_bounds(shape, end)
        self.n, self.days = n, len(self.opens)
        self.prefix = [o.strftime("%Y-%m-%d") for o in self.opens]
        self.open_seconds = [o.hour * 3600 + o.minute * 60 for o in self.opens]

    def day_of(self, i: int) -> int:
        return min(i * self.days // self.n, self.days - 1)

    def at(self, i: int) -> str:
        d = self.day_of(i)
        first = -(-d * self.n // self.days)
        following = -(-(d + 1) * self.n // self.days)
        span = max(following - first, 1)
        micros = self.open_seconds[d] * 1_000_000 + (i - first) * (12 * 3600 * 1_000_000) // span
        s, us = divmod(micros, 1_000_000)
        h, s = divmod(s, 3600)
        m, s = divmod(s, 60)
        return f"{self.prefix[d]} {h:02d}:{m:02d}:{s:02d}.{us:06d}+00"


@dataclass
class Ids:
    """Where the loaded rows start, and the system accounts' ids."""

    party: int
    account: int
    entry: int
    posting: int
    system: dict[str, int]


def read_ids(conn: psycopg.Connection) -> Ids:
    def top(table: str) -> int:
        row = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    system: dict[str, int] = dict(conn.execute(
        "SELECT system_code, id FROM accounts WHERE system_code IS NOT NULL").fetchall())
    return Ids(top("parties") + 1, top("accounts") + 1, top("entries") + 1,
               top("postings") + 1, system)


def _copy_text(value: object) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def party_rows(shape: Shape, ids: Ids, rng: random.Random, created: str
               ) -> tuple[list[str], list[tuple[int, str, str]]]:
    """COPY lines of the parties; and, per party, (id, code, kind) in load order:
    the solistes first, then the prestataires (the big merchant is P-000001)."""
    lines: list[str] = []
    parties: list[tuple[int, str, str]] = []
    row: tuple[object, ...] = ()
    filieres = list(FILIERE_WEIGHTS)
    weights = list(FILIERE_WEIGHTS.values())
    member_until = "2027-12-31"
    pid = ids.party
    columns_order = ("id", "kind", "number", "code", "name", "sort_name", "filiere",
                     "commune", "status", "created_at", "membership_until",
                     "charter_accepted_at")
    for n in range(1, shape.solistes + 1):
        code = f"S-{n:06d}"
        commune = rng.choices(COMMUNES, COMMUNE_WEIGHTS)[0]
        name = _party_name(rng)
        row = (pid, "soliste", n, code, name, sort_name(name), None, commune, "active",
               created, member_until, None)
        lines.append("\t".join(_copy_text(v) for v in row))
        parties.append((pid, code, "soliste"))
        pid += 1
    for n in range(1, shape.prestataires + 1):
        code = f"P-{n:06d}"
        if n == 1:
            name, filiere, commune = BIG_MERCHANT_NAME, Filiere.ALIMENTATION.value, COMMUNES[3]
        else:
            filiere = rng.choices(filieres, weights)[0]
            commune = rng.choices(COMMUNES, COMMUNE_WEIGHTS)[0]
            name = f"{rng.choice(SHOPS[filiere])} {rng.choice(LAST_NAMES)} ({n})"
        row = (pid, "prestataire", n, code, name, sort_name(name), filiere, commune,
               "approved", created, member_until, created)
        lines.append("\t".join(_copy_text(v) for v in row))
        parties.append((pid, code, "prestataire"))
        pid += 1
    assert len(columns_order) == len(row)
    return lines, parties


PARTY_COLUMNS = ("id, kind, number, code, name, sort_name, filiere, commune, status, "
                 "created_at, membership_until, charter_accepted_at")


class Generator:
    """The entries and postings, as COPY lines, in time order; balances kept."""

    def __init__(self, shape: Shape, ids: Ids, end: dt.datetime):
        self.shape, self.ids = shape, ids
        self.rng = random.Random(shape.seed)
        self.time = Timeline(shape, end, shape.entries)
        n_parties = shape.solistes + shape.prestataires
        top_account = ids.account + 2 * n_parties
        self.balance = [0] * top_account
        self.kinds: dict[str, int] = {}
        self.entry_id = ids.entry
        self.posting_id = ids.posting
        self.emitted = 0
        self.big_touches = 0
        sys_ = ids.system
        self.issuance, self.outside = sys_["issuance"], sys_["eur_outside"]
        self.reserve, self.desk_cash = sys_["eur_reserve"], sys_["desk_cash"]
        self.bonus_fund, self.fees = sys_["bonus_fund"], sys_["fees_income"]
        self.pick_soliste = _Picker(self.rng, shape.solistes, 0.7, 10.0)
        # The big merchant apart (index 0); the others zipf-ish among themselves.
        self.pick_shop = _Picker(self.rng, max(shape.prestataires - 1, 1), 1.0, 3.0)
        self.pick_any_shop = _Picker(self.rng, shape.prestataires, 1.0, 1.0)
        self.tenders = [t for t, w in TENDERS for _ in range(w)]
        self.details_exchange = {t: json.dumps({"rate": RATE, "tender": t}, sort_keys=True)
                                 for t, _ in TENDERS}
        self.details_reconversion = json.dumps({"fee_bp": FEE_BP}, sort_keys=True)
        self.day = -1
        self.entries: list[str] = []
        self.postings: list[str] = []

    # accounts of the loaded parties (load order: solistes, then prestataires)
    def soliste_account(self, s: int) -> int:
        return self.ids.account + 2 * s

    def shop_account(self, p: int, euros: bool = False) -> int:
        return self.ids.account + 2 * (self.shape.solistes + p) + (1 if euros else 0)

    def _entry(self, kind: str, legs: list[tuple[int, str, int]], *, memo: str | None = None,
               reverses: int | None = None, details: str | None = None) -> int:
        entry_id = self.entry_id
        self.entry_id += 1
        at = self.time.at(self.emitted)
        self.emitted += 1
        self.entries.append(
            f"{entry_id}\t{kind}\t{at}\t{NULL}\t{memo or NULL}\t"
            f"{NULL if reverses is None else reverses}\t{details or NULL}")
        balance, postings = self.balance, self.postings
        pid = self.posting_id
        for account, currency, amount in legs:
            postings.append(f"{pid}\t{entry_id}\t{account}\t{currency}\t{amount}")
            balance[account] += amount
            pid += 1
        self.posting_id = pid
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        return entry_id

    # ------------------------------------------------------------ the operations

    def subsidy(self, euro_cents: int) -> None:
        self._entry("subsidy", [(self.outside, "EUR", -euro_cents),
                                (self.bonus_fund, "EUR", euro_cents)],
                    memo="Subvention d'un partenaire")

    def exchange(self, s: int, need: int) -> None:
        euros = self.rng.choice(EXCHANGE_EUROS)
        while euros * 105 < need:  # enough for what the soliste is about to pay
            euros *= 2
        euro_cents = euros * 100
        bousol_cents, bonus_cents = money.bousols_for_euros(euro_cents)
        if self.balance[self.bonus_fund] < bonus_cents:
            self.subsidy(max(1_000_000, bonus_cents))
        tender = self.rng.choice(self.tenders)
        into = self.desk_cash if tender in ("cash", "cheque") else self.reserve
        legs = [(self.outside, "EUR", -euro_cents), (into, "EUR", euro_cents),
                (self.issuance, "BSOL", -bousol_cents),
                (self.soliste_account(s), "BSOL", bousol_cents)]
        if bonus_cents:
            legs += [(self.bonus_fund, "EUR", -bonus_cents), (self.reserve, "EUR", bonus_cents)]
        self._entry("exchange", legs, details=self.details_exchange[tender])

    def payment(self, payer: int, payee: int, amount: int) -> None:
        memo = self.rng.choice(MEMOS) if self.rng.random() < 0.05 else None
        entry_id = self._entry("payment", [(payer, "BSOL", -amount), (payee, "BSOL", amount)],
                               memo=memo)
        if self.rng.random() < self.shape.reversal_rate:  # corrected at once, at the desk
            self._entry("reversal", [(payer, "BSOL", amount), (payee, "BSOL", -amount)],
                        memo=f"Contre-passation de l'écriture {entry_id}", reverses=entry_id)

    def reconversion(self, p: int) -> bool:
        account = self.shop_account(p)
        held = self.balance[account]
        bousol_cents = (held * 9 // 10) // 100 * 100
        if bousol_cents < 5_000 or self.balance[self.reserve] < bousol_cents:
            return False
        fee = money.fee_for(bousol_cents, FEE_BP)
        self._entry("reconversion", [
            (account, "BSOL", -bousol_cents), (self.issuance, "BSOL", bousol_cents),
            (self.reserve, "EUR", -bousol_cents),
            (self.shop_account(p, euros=True), "EUR", bousol_cents - fee),
            (self.fees, "EUR", fee)], details=self.details_reconversion)
        return True

    def cash_deposit(self) -> None:
        held = self.balance[self.desk_cash]
        if held > 0:
            self._entry("cash_deposit", [(self.desk_cash, "EUR", -held),
                                         (self.reserve, "EUR", held)],
                        memo="Remise en banque de la caisse du jour")

    def _amount(self, median_euros: float, sigma: float, cap_cents: int) -> int:
        return max(50, min(int(self.rng.lognormvariate(math.log(median_euros * 100), sigma)),
                           cap_cents))

    # ------------------------------------------------------------ the walk

    def slot(self) -> None:
        rng, shape = self.rng, self.shape
        day = self.time.day_of(self.emitted)
        if day != self.day:
            if self.day >= 0:
                self.cash_deposit()
            self.day = day
        roll = rng.random()
        big = self.shop_account(0)
        if roll < shape.reconversion_rate:
            p = 0 if rng.random() < 0.02 else self.pick_any_shop()
            if self.reconversion(p):
                if p == 0:
                    self.big_touches += 1
                return
        if roll < shape.reconversion_rate + shape.b2b_rate:
            payer_p = self.pick_any_shop()
            payee_p = 1 + self.pick_shop()
            payer = self.shop_account(payer_p)
            amount = self._amount(120, 1.0, 300_000)
            if payee_p != payer_p and self.balance[payer] >= amount:
                self.payment(payer, self.shop_account(payee_p), amount)
                if payer_p == 0:
                    self.big_touches += 1
                return
        s = self.pick_soliste()
        payer = self.soliste_account(s)
        to_big = self.big_touches < shape.big_share * (self.emitted + 1)
        amount = self._amount(45 if to_big else 18, 0.8, 50_000)
        if self.balance[payer] < amount:
            self.exchange(s, amount - self.balance[payer])
        payee = big if to_big else self.shop_account(1 + self.pick_shop())
        if to_big:
            self.big_touches += 1
        self.payment(payer, payee, amount)

    def chunks(self, rows: int = 200_000) -> Iterator[tuple[list[str], list[str]]]:
        """(entry lines, posting lines) until ``shape.entries`` entries are written."""
        while self.emitted < self.shape.entries:
            self.slot()
            if len(self.entries) >= rows:
                yield self.entries, self.postings
                self.entries, self.postings = [], []
        yield self.entries, self.postings
        self.entries, self.postings = [], []


# ------------------------------------------------------------------ the load


def _plain_indexes(conn: psycopg.Connection, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, definition) of the indexes of ``tables`` that no constraint owns."""
    return conn.execute(
        """SELECT i.relname, pg_get_indexdef(i.oid)
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relname = ANY(%s) AND t.relnamespace = current_schema()::regnamespace
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)""",
        (list(tables),)).fetchall()


def load(conninfo: str, shape: Shape, *, end: dt.datetime,
         say: Callable[[str], None] = print) -> Loaded:
    """Write the parties, accounts, entries and postings of ``shape`` into the migrated,
    empty ledger at ``conninfo``; return what was written."""
    loaded = Loaded()
    started = time.perf_counter()
    rng = random.Random(shape.seed + 1)
    with psycopg.connect(conninfo) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET synchronous_commit = off")
        ids = read_ids(conn)
        created = (end - dt.timedelta(days=shape.days + 30)).astimezone(dt.UTC).isoformat()
        lines, parties = party_rows(shape, ids, rng, created)
        with conn.cursor().copy(f"COPY parties ({PARTY_COLUMNS}) FROM STDIN") as copy:
            copy.write("\n".join(lines) + "\n")
        generator = Generator(shape, ids, end)
        loaded.first_day = generator.time.prefix[0]
        loaded.last_day = generator.time.prefix[-1]
        indexes = _plain_indexes(conn, ("entries", "postings"))
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.commit()
        say(f"  parties: {len(parties)} ({time.perf_counter() - started:.1f} s); "
            f"secondary indexes dropped: {', '.join(n for n, _ in indexes) or 'none'}")

        # Entries and postings: two COPY streams on two connections, fed chunk by chunk.
        t0 = time.perf_counter()
        with psycopg.connect(conninfo) as conn2:
            conn2.execute("SET session_replication_role = replica")
            conn2.execute("SET synchronous_commit = off")
            cur1, cur2 = conn.cursor(), conn2.cursor()
            with cur1.copy("COPY entries (id, kind, created_at, actor_user_id, memo, "
                           "reverses_id, details) FROM STDIN") as copy_e, \
                 cur2.copy("COPY postings (id, entry_id, account_id, currency, amount) "
                           "FROM STDIN") as copy_p:
                next_report = time.perf_counter() + 15
                for entries, postings in generator.chunks():
                    if entries:
                        copy_e.write("\n".join(entries) + "\n")
                    if postings:
                        copy_p.write("\n".join(postings) + "\n")
                    if time.perf_counter() > next_report:
                        next_report += 15
                        rate = generator.emitted / (time.perf_counter() - t0)
                        say(f"  … {generator.emitted:,} entries ({rate:,.0f}/s)")
            conn2.commit()
        conn.commit()
        loaded.seconds["copy"] = time.perf_counter() - t0
        loaded.entries = generator.entry_id - ids.entry
        loaded.postings = generator.posting_id - ids.posting
        loaded.kinds = dict(generator.kinds)
        say(f"  entries: {loaded.entries:,}, postings: {loaded.postings:,} "
            f"({loaded.seconds['copy']:.1f} s); kinds: {loaded.kinds}; big merchant: "
            f"{generator.big_touches:,} entries")

        # Accounts, with the balances the walk ended on; system accounts updated.
        t0 = time.perf_counter()
        balance = generator.balance
        with conn.cursor().copy("COPY accounts (id, party_id, currency, purpose, label, "
                                "balance, allow_negative, created_at) FROM STDIN") as copy:
            out = []
            for j, (party_id, code, _kind) in enumerate(parties):
                bsol, eur = ids.account + 2 * j, ids.account + 2 * j + 1
                out.append(f"{bsol}\t{party_id}\tBSOL\tmain\tCompte Bou'Sol {code}\t"
                           f"{balance[bsol]}\tf\t{created}")
                out.append(f"{eur}\t{party_id}\tEUR\tmain\tCompte euros {code}\t"
                           f"{balance[eur]}\tf\t{created}")
            copy.write("\n".join(out) + "\n")
        with conn.cursor() as cur:
            cur.executemany("UPDATE accounts SET balance = balance + %s WHERE id = %s",
                            [(balance[a], a) for a in ids.system.values() if balance[a]])
        conn.execute("UPDATE counters SET value = %s WHERE name = 'party:S'", (shape.solistes,))
        conn.execute("UPDATE counters SET value = %s WHERE name = 'party:P'",
                     (shape.prestataires,))
        for table in ("parties", "accounts", "entries", "postings"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT max(id) FROM {table}))")
        conn.commit()
        say(f"  accounts: {2 * len(parties):,} ({time.perf_counter() - t0:.1f} s)")

        t0 = time.perf_counter()
        for _name, definition in indexes:
            conn.execute(definition)
            conn.commit()
        loaded.seconds["indexes"] = time.perf_counter() - t0
        say(f"  indexes rebuilt ({loaded.seconds['indexes']:.1f} s)")

        # The soliste and the small merchant the pages are measured for: the busiest
        # soliste, a prestataire of the middle of the ranking.
        loaded.soliste_code = "S-000001"
        loaded.small_merchant_code = f"P-{max(2, shape.prestataires // 2):06d}"
    loaded.seconds["load"] = time.perf_counter() - started
    return loaded


def vacuum_analyze(conninfo: str) -> float:
    t0 = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        for table in ("entries", "postings", "accounts", "parties"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        conn.execute("ANALYZE")
    return time.perf_counter() - t0


# ------------------------------------------------------------------ after the load


MAINTAINED = (  # (module, function): each that exists is rebuilt after the load
    ("bousol.ledger.association.report_figures", "rebuild"),
    ("bousol.ledger.books.account_days", "rebuild"),
    ("bousol.ledger.books.seals", "seal_closed_months"),  # what `verify --seal` makes
)


def _rebuild_one(url: str, module_name: str, function: str, limit_mib: int | None,
                 results) -> None:
    """In a child process: one rebuild, under an address-space limit (a rebuild that
    holds the whole journal in memory fails with MemoryError instead of taking the
    shared machine down)."""
    import resource

    from bousol.ledger.kernel.db import make_engine

    if limit_mib:
        resource.setrlimit(resource.RLIMIT_AS, (limit_mib << 20, limit_mib << 20))
    t0 = time.perf_counter()
    try:
        engine = make_engine(url)
        with engine.begin() as conn:
            getattr(importlib.import_module(module_name), function)(conn)
        engine.dispose()
        results.put(round(time.perf_counter() - t0, 2))
    except BaseException as error:
        results.put(f"FAILED after {time.perf_counter() - t0:.0f} s: "
                    f"{type(error).__name__}: {error}"[:300])


def rebuild_maintained(engine, *, isolate_mib: int | None = None,
                       only: tuple[str, ...] = ()) -> dict[str, float | str]:
    """Call each maintained figures' ``rebuild(conn)`` that exists, in one transaction
    each; return what ran (seconds) or why not. ``isolate_mib``: run each in a child
    process limited to that much memory."""
    import multiprocessing

    ran: dict[str, float | str] = {}
    url = engine.url.render_as_string(hide_password=False)
    for module_name, function in MAINTAINED:
        name = f"{module_name}.{function}"
        if only and module_name not in only:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            ran[name] = "absent"
            continue
        rebuild = getattr(module, function, None)
        if rebuild is None:
            ran[name] = f"no {function}()"
            continue
        if isolate_mib:
            context = multiprocessing.get_context("fork")
            results = context.Queue()
            child = context.Process(target=_rebuild_one,
                                    args=(url, module_name, function, isolate_mib, results))
            child.start()
            child.join()
            ran[name] = (results.get() if not results.empty()
                         else f"FAILED: the process ended with code {child.exitcode}")
            continue
        t0 = time.perf_counter()
        try:
            with engine.begin() as conn:
                rebuild(conn)
        except Exception as error:  # reported, the bench goes on
            ran[name] = f"FAILED: {type(error).__name__}: {error}"[:300]
            continue
        ran[name] = round(time.perf_counter() - t0, 2)
    return ran


def audit_load(engine, loaded: Loaded, shape: Shape) -> int:
    """The load is one audit record, in the chain like any other."""
    from bousol.ledger.kernel import audit

    context = audit.Context(user_id=None, username="bench-scale", address="cli",
                            action="bench/scale.py : chargement en masse (COPY)")
    details = {"changes": [
        {"table": "parties", "op": "insert", "rows": shape.solistes + shape.prestataires,
         "columns": [], "values": {}},
        {"table": "accounts", "op": "insert",
         "rows": 2 * (shape.solistes + shape.prestataires), "columns": [], "values": {}},
        {"table": "entries", "op": "insert", "rows": loaded.entries, "columns": [],
         "values": {"kind": sorted(loaded.kinds)}},
        {"table": "postings", "op": "insert", "rows": loaded.postings, "columns": [],
         "values": {}},
    ], "bulk": {"seed": shape.seed, "entries": shape.entries}}
    with engine.begin() as conn:
        return audit.append(conn, context, details)
