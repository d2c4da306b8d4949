"""The association's activity report, month by month (no Flask here; issue 7).

For a period of calendar months (Europe/Paris; the last twelve up to the current month
by default, 36 at most): the money supply at each month's end (electronic, notes, aid
vouchers), the euros that back it and the coverage; the payments made at prestataires
(number and volume, by filière and by commune of the payee), the active solistes and
prestataires, the velocity, the share of B2B, and the CCAS aid spent. Every amount is
integer cents; every ratio a ``Fraction`` (or None when its denominator is zero).
The figures are read from the tables kept with every entry (report_figures.py, issue 18):
a few rows a month and prestataire, whatever the journal's size.

The rules (docs/reports.md says why):
- **Months** are Paris calendar months: a month runs from its first day at 00:00 in
  Boulogne to the next month's first day at 00:00, turned into UTC instants here; an
  entry belongs to the month its ``created_at`` falls in.
- **Money supply at a month's end** is the running sum of every posting written before
  the end of the month (never today's balances): electronic = the Bou'Sol accounts of
  members (every account with no ``system_code``, the CCAS's programme accounts
  included), notes = ``notes_circulation``, vouchers = ``vouchers_outstanding``, total =
  −``issuance`` (= the three together). Backing = ``eur_reserve`` + ``desk_cash``.
- **A payment** is a purchase at a prestataire: an entry ``payment`` whose payee is a
  prestataire (from a soliste: *achat*; from another prestataire: *B2B*), or an entry
  ``voucher_redemption`` (an aid voucher spent at a prestataire: a paper voucher taken at
  the till, or an earmarked one spent by its soliste). A payment that was reversed is
  left out altogether, in its month, whenever the reversal was made; the reversal is not
  counted either. A refund (entry ``refund``) is deducted from the volume of the month it
  was made in, under the refunding prestataire's filière and commune, as B2B when the
  customer it pays back is a prestataire; it does not change the number of payments.
  A payment from the CCAS to a soliste (public-policy phase) is aid handed over, not a
  purchase: it is reported apart (*aides versées*), outside the payments.
- **Filière and commune** are the payee prestataire's as they stand today; a commune
  left blank is "Non renseignée" (key None).
- **Active**: a soliste that made at least one payment in the month (Bou'Sols or an
  earmarked voucher of its own; reversed payments excepted); a prestataire that received
  at least one payment in the month.
- **Velocity** = the month's payments volume / the total money supply at the month's
  end (a monthly figure, not annualised).
- **B2B share** = the month's B2B volume / its payments volume (None without payments).
- **CCAS aid spent** = the voucher redemptions of the month, paper and earmarked.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy import Connection, func, select

from bousol.ledger.association import report_figures
from bousol.ledger.association.models import ReportDayFlow, ReportMonth, ReportMonthParty
from bousol.ledger.books import statements
from bousol.ledger.books.models import Filiere, Party, PartyKind, SystemAccount
from bousol.ledger.ccas.voucher_reports import filiere_name
from bousol.ledger.kernel import money
from bousol.ledger.kernel.clock import PARIS, paris_today
from bousol.ledger.kernel.errors import InvalidDate
from bousol.ledger.kernel.text import N_

parties_t = Party.__table__
flows_t, figures_t = ReportDayFlow.__table__, ReportMonthParty.__table__
months_t = ReportMonth.__table__

DEFAULT_MONTHS = 12
MAX_MONTHS = 36
FIRST_YEAR, LAST_YEAR = 2000, 2100
NO_COMMUNE = N_("Non renseignée")

_MONTH_ISO = re.compile(r"([0-9]{4})-([0-9]{1,2})")
_MONTH_FR = re.compile(r"([0-9]{1,2})/([0-9]{4})")


# ---------------------------------------------------------------- months


def month_of(day: dt.date) -> dt.date:
    """The first day of the month ``day`` falls in: how a month is named here."""
    return day.replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def months_in(first: dt.date, last: dt.date) -> int:
    """How many months from ``first`` to ``last``, both included."""
    return (last.year - first.year) * 12 + last.month - first.month + 1


def month_start_utc(month: dt.date) -> dt.datetime:
    """The UTC instant at which this Paris month begins."""
    return dt.datetime.combine(month, dt.time(0), tzinfo=PARIS).astimezone(dt.UTC)


def parse_month(value: object, field: str = "du") -> dt.date | None:
    """``2026-11`` (what ``<input type="month">`` sends) or ``11/2026`` → the month's first
    day; blank → None; anything else ``invalid_date`` naming the field."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidDate("Mois invalide (aaaa-mm).", field=field)
    text = value.strip()
    if not text:
        return None
    if match := _MONTH_ISO.fullmatch(text):
        year, month = int(match.group(1)), int(match.group(2))
    elif match := _MONTH_FR.fullmatch(text):
        month, year = int(match.group(1)), int(match.group(2))
    else:
        raise InvalidDate(f"Mois invalide : « {text[:20]} » (aaaa-mm).", field=field)
    if not 1 <= month <= 12:
        raise InvalidDate(f"Ce mois n'existe pas : « {text[:20]} ».", field=field)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidDate(f"Mois hors limites : « {text[:20]} » ({FIRST_YEAR}–{LAST_YEAR}).",
                          field=field)
    return dt.date(year, month, 1)


def resolve_period(first: dt.date | None, last: dt.date | None,
                   today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The period to report: the months given, or the last twelve up to the current
    month (from ``first``: twelve months on, at most up to the current month; to
    ``last``: the twelve months that end with it). Refused with ``invalid_date`` (and
    ``details["field"]``, ``du`` or ``au``): a month after the current one, an end
    before the start, more than 36 months."""
    current = month_of(today or paris_today())
    first = month_of(first) if first else None
    last = month_of(last) if last else None
    if first is not None and first > current:
        raise InvalidDate("Le mois de début ne peut pas dépasser le mois en cours.",
                          field="du")
    if last is not None and last > current:
        raise InvalidDate("Le mois de fin ne peut pas dépasser le mois en cours.", field="au")
    if last is None:
        last = current if first is None else min(add_months(first, DEFAULT_MONTHS - 1),
                                                  current)
    if first is None:
        first = add_months(last, -(DEFAULT_MONTHS - 1))
    if last < first:
        raise InvalidDate("Le mois de fin précède le mois de début.", field="au")
    if months_in(first, last) > MAX_MONTHS:
        raise InvalidDate(f"Une période de {MAX_MONTHS} mois au plus.", field="du")
    return first, last


# ---------------------------------------------------------------- figures


@dataclass(frozen=True)
class Tally:
    count: int
    cents: int


ZERO = Tally(0, 0)


@dataclass(frozen=True)
class Supply:
    """The Bou'Sols in existence at a month's end, and the euros that back them."""

    electronic: int
    notes: int
    vouchers: int
    total: int  # −issuance = electronic + notes + vouchers
    eur_backing: int  # eur_reserve + desk_cash

    @property
    def coverage_ratio(self) -> Fraction | None:
        return Fraction(self.eur_backing, self.total) if self.total else None


@dataclass(frozen=True)
class GroupFigures:
    """Payments at the prestataires of one filière or one commune, in one month (or
    over the period): their number and their volume net of refunds."""

    key: str | None  # filière slug, or commune (None: not given)
    count: int
    cents: int


@dataclass(frozen=True)
class MonthFigures:
    month: dt.date  # its first day
    supply: Supply  # at the month's end
    purchases: Tally  # soliste → prestataire (payments not reversed)
    b2b: Tally  # prestataire → prestataire
    vouchers_paper: Tally  # paper aid vouchers redeemed at the till
    vouchers_earmarked: Tally  # earmarked aid vouchers spent by their soliste
    refunds_purchases: Tally  # refunds to solistes (cents positive, deducted)
    refunds_b2b: Tally  # refunds to prestataires
    aid_transfers: Tally  # CCAS → soliste payments (not purchases)
    active_solistes: int
    active_prestataires: int
    by_filiere: tuple[GroupFigures, ...]  # every filière, in the usual order
    by_commune: tuple[GroupFigures, ...]  # communes with payments, largest volume first

    @property
    def refunds(self) -> Tally:
        return _add(self.refunds_purchases, self.refunds_b2b)

    @property
    def aid_spent(self) -> Tally:
        return _add(self.vouchers_paper, self.vouchers_earmarked)

    @property
    def payments(self) -> Tally:
        """Every payment at a prestataire, the volume net of the month's refunds."""
        gross = _add(self.purchases, self.b2b, self.aid_spent)
        return Tally(gross.count, gross.cents - self.refunds.cents)

    @property
    def purchases_net_cents(self) -> int:
        return self.purchases.cents - self.refunds_purchases.cents

    @property
    def b2b_net_cents(self) -> int:
        return self.b2b.cents - self.refunds_b2b.cents

    @property
    def velocity(self) -> Fraction | None:
        return velocity(self.payments.cents, self.supply.total)

    @property
    def b2b_share(self) -> Fraction | None:
        return share(self.b2b_net_cents, self.payments.cents)


def velocity(payments_cents: int, supply_cents: int) -> Fraction | None:
    return Fraction(payments_cents, supply_cents) if supply_cents > 0 else None


def share(part_cents: int, whole_cents: int) -> Fraction | None:
    return Fraction(part_cents, whole_cents) if whole_cents > 0 else None


def _add(*tallies: Tally) -> Tally:
    return Tally(sum(t.count for t in tallies), sum(t.cents for t in tallies))


@dataclass(frozen=True)
class ActivityReport:
    first_month: dt.date
    last_month: dt.date
    generated_on: dt.date
    months: tuple[MonthFigures, ...]

    @property
    def end_supply(self) -> Supply:
        return self.months[-1].supply

    def total(self, name: str) -> Tally:
        """A tally (``purchases``, ``payments``, ``aid_spent``…) over the whole period."""
        return _add(*(getattr(m, name) for m in self.months))

    @property
    def b2b_net_cents(self) -> int:
        return sum(m.b2b_net_cents for m in self.months)

    @property
    def b2b_share(self) -> Fraction | None:
        return share(self.b2b_net_cents, self.total("payments").cents)

    @property
    def by_filiere(self) -> tuple[GroupFigures, ...]:
        """Over the period, every filière in the usual order."""
        return _merge((m.by_filiere for m in self.months), _filiere_order)

    @property
    def by_commune(self) -> tuple[GroupFigures, ...]:
        """Over the period, largest volume first, "Non renseignée" last."""
        return _merge((m.by_commune for m in self.months), _commune_order)


def _filiere_order(line: GroupFigures):
    order = {f.value: i for i, f in enumerate(Filiere)}
    return (order.get(line.key or "", len(order)), line.key or "")


def _commune_order(line: GroupFigures):
    return (line.key is None, -line.cents, -line.count, (line.key or "").lower())


def _merge(groups: Iterable[Iterable[GroupFigures]], order) -> tuple[GroupFigures, ...]:
    totals: dict[str | None, list[int]] = {}
    for lines in groups:
        for line in lines:
            total = totals.setdefault(line.key, [0, 0])
            total[0] += line.count
            total[1] += line.cents
    return tuple(sorted((GroupFigures(k, c, s) for k, (c, s) in totals.items()), key=order))


# ---------------------------------------------------------------- from the figures
# The report reads the figures kept with the entries (report_figures.py, issue 18): a
# few hundred rows a month whatever the journal's size; tests/association/
# reference_reports.py keeps the journal's own computation that they must equal.

_SUPPLY_CODES = (SystemAccount.ISSUANCE, SystemAccount.NOTES_CIRCULATION,
                 SystemAccount.VOUCHERS_OUTSTANDING, SystemAccount.EUR_RESERVE,
                 SystemAccount.DESK_CASH)
_SUPPLY_KEYS = (report_figures.MEMBERS, *(c.value for c in _SUPPLY_CODES))


def _supplies(conn: Connection, first: dt.date, months: list[dt.date]) -> list[Supply]:
    """The money supply at the end of each month: running sums of the days' flows."""
    after = add_months(months[-1], 1)
    running: dict[str, int] = defaultdict(int)
    for code, cents in conn.execute(
            select(flows_t.c.code, func.sum(flows_t.c.cents))
            .where(flows_t.c.day < first, flows_t.c.code.in_(_SUPPLY_KEYS))
            .group_by(flows_t.c.code)):
        running[code] += int(cents)
    by_month: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, code, cents in conn.execute(
            select(flows_t.c.day, flows_t.c.code, func.sum(flows_t.c.cents))
            .where(flows_t.c.day >= first, flows_t.c.day < after,
                   flows_t.c.code.in_(_SUPPLY_KEYS))
            .group_by(flows_t.c.day, flows_t.c.code)):
        by_month[month_of(_as_date(day))][code] += int(cents)
    supplies = []
    for month in months:
        for code, cents in by_month.get(month, {}).items():
            running[code] += cents
        supplies.append(Supply(
            electronic=running[report_figures.MEMBERS],
            notes=running[SystemAccount.NOTES_CIRCULATION.value],
            vouchers=running[SystemAccount.VOUCHERS_OUTSTANDING.value],
            total=-running[SystemAccount.ISSUANCE.value],
            eur_backing=running[SystemAccount.EUR_RESERVE.value]
            + running[SystemAccount.DESK_CASH.value],
        ))
    return supplies


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _commune(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


# (tally name, count column, cents column) of report_month_parties
_TALLIES = (("purchases", "purchases_count", "purchases_cents"),
            ("b2b", "b2b_count", "b2b_cents"),
            ("vouchers_paper", "paper_count", "paper_cents"),
            ("vouchers_earmarked", "earmarked_count", "earmarked_cents"),
            ("refunds_purchases", "refunds_count", "refunds_cents"),
            ("refunds_b2b", "refunds_b2b_count", "refunds_b2b_cents"),
            ("aid_transfers", "aid_count", "aid_cents"))


def activity_report(conn: Connection, first_month: dt.date | None = None,
                    last_month: dt.date | None = None, *,
                    today: dt.date | None = None) -> ActivityReport:
    """The report of the months ``first_month`` … ``last_month`` (see the module's doc;
    :func:`resolve_period` fills in and checks the period)."""
    today = today or paris_today()
    first, last = resolve_period(first_month, last_month, today)
    months = [add_months(first, i) for i in range(months_in(first, last))]
    after = add_months(last, 1)
    supplies = _supplies(conn, first, months)

    tallies: dict[str, dict[dt.date, Tally]] = defaultdict(dict)
    filiere: dict[dt.date, dict[str | None, list[int]]] = defaultdict(dict)
    commune: dict[dt.date, dict[str | None, list[int]]] = defaultdict(dict)
    c = figures_t.c
    sums = [func.sum(c[name]) for name in report_figures.COLUMNS]
    rows = conn.execute(
        select(c.month, c.party_kind, parties_t.c.filiere, parties_t.c.commune, *sums)
        .select_from(figures_t.join(parties_t, parties_t.c.id == c.party_id))
        .where(c.party_kind.in_((PartyKind.PRESTATAIRE.value, PartyKind.CCAS.value)),
               c.month >= first, c.month < after)
        .group_by(c.month, c.party_kind, parties_t.c.filiere, parties_t.c.commune))
    prestataire = PartyKind.PRESTATAIRE.value
    for row in rows:
        month = _as_date(row[0])
        values = dict(zip(report_figures.COLUMNS, (int(v or 0) for v in row[4:]),
                          strict=True))
        for name, count, cents in _TALLIES:
            if values[count] or values[cents]:
                before = tallies[name].get(month, ZERO)
                tallies[name][month] = Tally(before.count + values[count],
                                             before.cents + values[cents])
        received = sum(values[n] for n in ("purchases_count", "b2b_count", "paper_count",
                                           "earmarked_count"))
        if row[1] != prestataire or not (received + values["refunds_count"]
                                         + values["refunds_b2b_count"]):
            continue
        cents = (values["purchases_cents"] + values["b2b_cents"] + values["paper_cents"]
                 + values["earmarked_cents"] - values["refunds_cents"]
                 - values["refunds_b2b_cents"])
        for table, key in ((filiere, row[2]), (commune, _commune(row[3]))):
            line = table[month].setdefault(key, [0, 0])
            line[0] += received
            line[1] += cents
    active = {_as_date(m): (int(s), int(p)) for m, s, p in conn.execute(
        select(months_t.c.month, months_t.c.active_solistes, months_t.c.active_prestataires)
        .where(months_t.c.month >= first, months_t.c.month < after))}

    figures = []
    for index, month in enumerate(months):
        by_filiere = {f.value: GroupFigures(f.value, 0, 0) for f in Filiere}
        by_filiere.update({k: GroupFigures(k, n, s)
                           for k, (n, s) in filiere.get(month, {}).items()})
        by_commune = [GroupFigures(k, n, s) for k, (n, s) in commune.get(month, {}).items()]
        solistes, prestataires = active.get(month, (0, 0))
        figures.append(MonthFigures(
            month=month, supply=supplies[index],
            purchases=tallies["purchases"].get(month, ZERO),
            b2b=tallies["b2b"].get(month, ZERO),
            vouchers_paper=tallies["vouchers_paper"].get(month, ZERO),
            vouchers_earmarked=tallies["vouchers_earmarked"].get(month, ZERO),
            refunds_purchases=tallies["refunds_purchases"].get(month, ZERO),
            refunds_b2b=tallies["refunds_b2b"].get(month, ZERO),
            aid_transfers=tallies["aid_transfers"].get(month, ZERO),
            active_solistes=solistes,
            active_prestataires=prestataires,
            by_filiere=tuple(sorted(by_filiere.values(), key=_filiere_order)),
            by_commune=tuple(sorted(by_commune, key=_commune_order)),
        ))
    return ActivityReport(first, last, today, tuple(figures))


# ---------------------------------------------------------------- CSV

CSV_TABLES = ("mois", "filieres", "communes")


def ratio_plain(ratio: Fraction | None, places: int = 4) -> str:
    """``0.2105``: a ratio to ``places`` decimals, rounded half away from zero, exact (no
    float); None → empty."""
    if ratio is None:
        return ""
    scale = 10 ** places
    scaled = math.floor(abs(ratio) * scale + Fraction(1, 2))
    sign = "-" if ratio < 0 and scaled else ""
    return f"{sign}{scaled // scale}.{scaled % scale:0{places}d}"


def ratio_fr(ratio: Fraction | None, places: int = 4) -> str:
    """``0,2105`` (a spreadsheet in French reads it as a number)."""
    return ratio_plain(ratio, places).replace(".", ",")


def commune_name(key: str | None, translate: Callable[[str], str] = str) -> str:
    return key if key else translate(NO_COMMUNE)


def _amount_columns(label: str) -> tuple[str, str]:
    return label, f"{label} (machine)"


# The monthly table: (header, what it holds, kind) — kinds: "cents" (written twice,
# French and machine), "count", "ratio" (twice too).
_MONTH_COLUMNS: tuple[tuple[str, Callable[[MonthFigures], object], str], ...] = (
    (N_("Masse électronique (B)"), lambda m: m.supply.electronic, "cents"),
    (N_("Billets en circulation (B)"), lambda m: m.supply.notes, "cents"),
    (N_("Bons d'aide en cours (B)"), lambda m: m.supply.vouchers, "cents"),
    (N_("Masse monétaire totale (B)"), lambda m: m.supply.total, "cents"),
    (N_("Couverture en euros (€)"), lambda m: m.supply.eur_backing, "cents"),
    (N_("Taux de couverture"), lambda m: m.supply.coverage_ratio, "ratio"),
    (N_("Paiements (nombre)"), lambda m: m.payments.count, "count"),
    (N_("Paiements, volume net (B)"), lambda m: m.payments.cents, "cents"),
    (N_("Achats des solistes (nombre)"), lambda m: m.purchases.count, "count"),
    (N_("Achats des solistes (B)"), lambda m: m.purchases.cents, "cents"),
    (N_("Paiements B2B (nombre)"), lambda m: m.b2b.count, "count"),
    (N_("Paiements B2B (B)"), lambda m: m.b2b.cents, "cents"),
    (N_("Bons d'aide utilisés (nombre)"), lambda m: m.aid_spent.count, "count"),
    (N_("Aide du CCAS dépensée (B)"), lambda m: m.aid_spent.cents, "cents"),
    (N_("dont bons papier (B)"), lambda m: m.vouchers_paper.cents, "cents"),
    (N_("dont bons fléchés (B)"), lambda m: m.vouchers_earmarked.cents, "cents"),
    (N_("Remboursements (nombre)"), lambda m: m.refunds.count, "count"),
    (N_("Remboursements (B)"), lambda m: m.refunds.cents, "cents"),
    (N_("dont remboursements B2B (B)"), lambda m: m.refunds_b2b.cents, "cents"),
    (N_("Aides versées aux solistes par le CCAS (nombre)"),
     lambda m: m.aid_transfers.count, "count"),
    (N_("Aides versées aux solistes par le CCAS (B)"), lambda m: m.aid_transfers.cents,
     "cents"),
    (N_("Solistes actifs"), lambda m: m.active_solistes, "count"),
    (N_("Prestataires actifs"), lambda m: m.active_prestataires, "count"),
    (N_("Vitesse de circulation"), lambda m: m.velocity, "ratio"),
    (N_("Part du B2B"), lambda m: m.b2b_share, "ratio"),
)


def _writer():
    out = io.StringIO()
    out.write("\ufeff")  # so that a spreadsheet reads the accents
    return out, csv.writer(out, delimiter=";", lineterminator="\r\n")


def _cells(value: object, kind: str) -> list[str]:
    if kind == "cents":
        return [statements.amount_fr(value), money.format_plain(value)]  # type: ignore[arg-type]
    if kind == "ratio":
        return [ratio_fr(value), ratio_plain(value)]  # type: ignore[arg-type]
    return [str(value)]


def report_csv(report: ActivityReport, table: str,
               translate: Callable[[str], str] = str) -> str:
    """One table of the report as a spreadsheet, as the statements' CSV: UTF-8 with a
    BOM, ``;``, CRLF, amounts twice (``1234,50`` and ``1234.50``), ratios twice
    (``0,2105`` and ``0.2105``), months as ``2026-11``. Text that a spreadsheet would run
    as a formula (a commune typed ``=…``) gets a leading apostrophe.

    ``mois``: one row a month, every figure; ``filieres``: one row a month and filière
    (every filière); ``communes``: one row a month and commune that saw payments."""
    t = translate
    out, writer = _writer()
    if table == "mois":
        header = [t(N_("Mois"))]
        for label, _value, kind in _MONTH_COLUMNS:
            header += (list(_amount_columns(t(label))) if kind in ("cents", "ratio")
                       else [t(label)])
        writer.writerow(header)
        for month in report.months:
            row = [f"{month.month:%Y-%m}"]
            for _label, value, kind in _MONTH_COLUMNS:
                row += _cells(value(month), kind)
            writer.writerow(row)
    elif table in ("filieres", "communes"):
        by_filiere = table == "filieres"
        names = ([t(N_("Filière")), t(N_("Code de la filière"))] if by_filiere
                 else [t(N_("Commune"))])
        writer.writerow([t(N_("Mois")), *names, t(N_("Paiements (nombre)")),
                         *_amount_columns(t(N_("Paiements, volume net (B)")))])
        for month in report.months:
            for line in (month.by_filiere if by_filiere else month.by_commune):
                name = (filiere_name(line.key, t) if by_filiere
                        else commune_name(line.key, t))
                writer.writerow([f"{month.month:%Y-%m}", statements.safe_cell(name),
                                 *([statements.safe_cell(line.key)] if by_filiere else []),
                                 str(line.count), statements.amount_fr(line.cents),
                                 money.format_plain(line.cents)])
    else:
        raise ValueError(f"unknown table {table!r}")
    return out.getvalue()


def csv_filename(report: ActivityReport, table: str) -> str:
    """``rapport-mois-2026-01-au-2026-11.csv``."""
    return (f"rapport-{table}-{report.first_month:%Y-%m}-au-{report.last_month:%Y-%m}.csv")
