"""Views shared by several actors' blueprints: the first page of each role, and the
statement pages (history with filters, CSV export, receipts) of the member spaces."""

from __future__ import annotations

from flask import Response, abort, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import Form, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from bousol.ledger.books import queries, rules, statements
from bousol.ledger.books.statements import KIND_LABELS
from bousol.ledger.kernel import settings
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import InvalidInput
from bousol.web import charts, unit_of_work
from bousol.web.forms import FieldMap, refuse


def party_home(title: str):
    party = current_user.party
    with unit_of_work(read_only=True) as uow:  # one snapshot: balance and lines agree
        balances = queries.party_balances(uow.conn, party.id)
        statement = queries.party_statement(uow.conn, party.id, limit=20)
    return render_template(
        "party_home.html", title=title, party=party, balances=balances,
        statement=statement, kind_labels=KIND_LABELS,
    )


def reserve(title: str):
    """Reserve and coverage: today's figures and their history by day."""
    with unit_of_work(read_only=True) as uow:
        supply = queries.money_supply(uow.conn)
        history = queries.coverage_history(uow.conn, days=90)
    labels = [day.day.strftime("%d/%m/%Y") for day in history]
    chart = charts.line_chart(
        _("Bou'Sols en circulation et euros qui les couvrent, par jour"), labels,
        [charts.Series(_("Bou'Sols en circulation"), [d.bsol_in_circulation for d in history],
                       "series-bsol"),
         charts.Series(_("Couverture en euros"), [d.eur_backing for d in history],
                       "series-eur")],
        chart_id="coverage-chart",
    )
    return render_template("reserve.html", title=title, supply=supply, history=history,
                           chart=chart)


def system_home(title: str):
    with unit_of_work(read_only=True) as uow:
        conn = uow.conn
        phase_settings = settings.current(conn, [f"phase.{p.value}" for p in rules.SWITCHABLE])
        supply = queries.money_supply(conn)
        accounts = queries.system_accounts(conn)
        journal = queries.journal(conn, limit=30)
    return render_template(
        "system_home.html",
        title=title,
        supply=supply,
        accounts=accounts,
        journal=journal,
        phases=[(rules.PHASE_LABELS[p], phase_settings[f"phase.{p.value}"] == "on")
                for p in rules.SWITCHABLE],
        kind_labels=KIND_LABELS,
    )


# ---------------------------------------------------------------- member statements

PAGE_SIZE = 50
HOME_LINES = 10
DIRECTION_LABELS = {"in": _l("Entrées"), "out": _l("Sorties")}
# The form's field for each filter the ledger may refuse.
FILTER_FIELDS: FieldMap = {"date_from": "du", "date_to": "au", "kind": "type",
                           "direction": "sens"}


class FilterForm(Form):
    """The statement's filters, sent by GET (they change nothing: no CSRF token, and a
    filtered history can be bookmarked)."""

    # No WTForms validators: the ledger checks each filter, with a French message.
    du = StringField(_l("Du"))
    au = StringField(_l("Au"))
    type = SelectField(_l("Type d'opération"), validate_choice=False)
    sens = SelectField(_l("Sens"), validate_choice=False)
    q = StringField(_l("Recherche (libellé, nom ou code)"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.type.choices = [SelectChoice("", _l("Tous"))] + [
            SelectChoice(kind, _(KIND_LABELS[kind])) for kind in statements.FILTER_KINDS]
        self.sens.choices = [SelectChoice("", _l("Tous"))] + [
            SelectChoice(value, label) for value, label in DIRECTION_LABELS.items()]

    def filters(self) -> statements.Filters | None:
        """The checked filters, or None with the errors on their fields."""
        if not self.validate():
            return None
        try:
            return statements.parse_filters(
                date_from=self.du.data, date_to=self.au.data, kind=self.type.data,
                direction=self.sens.data, q=self.q.data)
        except InvalidInput as error:
            refuse(self, error, "q", fields=FILTER_FIELDS)
            return None

    def args(self) -> dict[str, str]:
        """The filters as query arguments (for the next page and the CSV link)."""
        return {name: self[name].data for name in ("du", "au", "type", "sens", "q")
                if self[name].data}


def past_months(filters: statements.Filters) -> bool:
    """A statement that ends before today: nothing the user just did changes it, so it
    may be read a few seconds stale (the replica); today's lines read the primary."""
    return filters.date_to is not None and filters.date_to < paris_today()


def _before() -> int | None:
    text = request.args.get("avant", "")
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 18):
        abort(400)
    return int(text)


def space_home(space: str, template: str, title: str, **extra):
    """The first page of a member's space: balances and the latest lines."""
    party = current_user.party
    with unit_of_work(read_only=True) as uow:  # one snapshot: balance and lines agree
        balances = queries.party_balances(uow.conn, party.id)
        lines = statements.statement(uow.conn, party.id, limit=HOME_LINES)
        more = {name: fetch(uow.conn, party.id) for name, fetch in extra.items()}
    return render_template(template, title=title, party=party, balances=balances,
                           lines=lines, space=space, kind_labels=KIND_LABELS, **more)


def history(space: str, title: str, *, csv_endpoint: str | None = None):
    """The statement with its filters, a page at a time ("plus anciennes")."""
    party = current_user.party
    form = FilterForm(request.args)
    filters = form.filters()
    page = None
    if filters is not None:
        with unit_of_work(read_only=True, stale_ok=past_months(filters)) as uow:
            page = statements.statement_page(uow.conn, party.id, filters, limit=PAGE_SIZE,
                                             before_entry_id=_before())
    args = form.args()
    older = (url_for(request.endpoint, **args, avant=page.next_before)
             if page and page.next_before else None)
    csv_url = url_for(csv_endpoint, **args) if csv_endpoint and filters is not None else None
    return render_template(
        "member/history.html", title=title, party=party, form=form, page=page,
        space=space, kind_labels=KIND_LABELS, older=older, csv_url=csv_url,
        filtered=bool(filters and filters.active), first_page=_before() is None,
        reset_url=url_for(request.endpoint),
    ), 200 if filters is not None else 422


def history_csv(space: str, title: str, history_endpoint: str):
    """The statement, filtered, as the accountant's CSV (every line, no pages)."""
    party = current_user.party
    form = FilterForm(request.args)
    filters = form.filters()
    if filters is None:
        return history(space, title, csv_endpoint=request.endpoint)
    with unit_of_work(read_only=True, stale_ok=past_months(filters)) as uow:
        lines = statements.statement(
            uow.conn, party.id, date_from=filters.date_from, date_to=filters.date_to,
            kind=filters.kind, direction=filters.direction, q=filters.q,
            limit=statements.CSV_MAX_LINES)
    body = statements.statement_csv(lines).encode("utf-8")
    name = statements.csv_filename(party.code, filters)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Type": "text/csv; charset=utf-8",
        "Cache-Control": "no-store",
    })


def receipt(space: str, entry_id: int):
    """One of the party's own entries; anyone else's is 404 (as a missing one)."""
    party = current_user.party
    with unit_of_work(read_only=True) as uow:
        found = statements.receipt(uow.conn, party.id, entry_id)
    if found is None:
        abort(404)
    return render_template("member/receipt.html", title=_("Reçu n° %(id)s", id=entry_id),
                           party=party, receipt=found, space=space,
                           kind_labels=KIND_LABELS)
