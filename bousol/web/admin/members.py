"""Members and colleges (role admin, the association's treasurer): the members by
college with their membership's status, the memberships lapsing this month and their
reminder e-mail, the local partners (acteurs locaux without an account) and the fees
the association receives itself, and the page of every e-mail kept. Routes of the admin
blueprint; the rules are in docs/members.md."""

from __future__ import annotations

import datetime as dt

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from bousol.ledger.association import membership
from bousol.ledger.books import queries
from bousol.ledger.desk.members import college_fee_cents, college_of
from bousol.ledger.kernel import mail
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import DomainError, MembershipChanged
from bousol.ledger.models import COLLEGE_LABELS, PARTNER_CATEGORY_LABELS, College
from bousol.web import current_actor, role_required, seen_cents, unit_of_work
from bousol.web.admin.views import bp
from bousol.web.formatting import fr_date, fr_money, ngettext
from bousol.web.forms import flash_refusal, page_status, refuse

KIND_LABELS = {"soliste": _l("Soliste"), "prestataire": _l("Prestataire"),
               "ccas": _l("CCAS"), "bank": _l("Banque SOL")}
MAIL_STATUS_LABELS = {"pending": _l("en attente"), "sent": _l("envoyé"),
                      "failed": _l("échec")}
TRANSPORT_LABELS = {"smtp": _l("SMTP"), "outbox": _l("gardé ici (rien n'est parti)")}
FEE_TENDER_LABELS = {"transfer": _l("Virement"), "cheque": _l("Chèque")}


class PartnerForm(FlaskForm):
    name = StringField(_l("Nom"), validators=[DataRequired(), Length(max=200)])
    category = SelectField(
        _l("Catégorie"),
        choices=[SelectChoice(c.value, _l(label)) for c, label in PARTNER_CATEGORY_LABELS.items()],
        validators=[DataRequired()])
    contact_name = StringField(_l("Personne à contacter"), validators=[Length(max=200)])
    email = StringField(_l("Courriel"), validators=[Length(max=200)])
    phone = StringField(_l("Téléphone"), validators=[Length(max=32)])
    address = StringField(_l("Adresse"), validators=[Length(max=300)])
    commune = StringField(_l("Commune"), validators=[Length(max=100)])

    def values(self) -> dict:
        return {name: getattr(self, name).data for name in (
            "name", "category", "contact_name", "email", "phone", "address", "commune")}


class FeeForm(FlaskForm):
    tender = RadioField(
        _l("Cotisation reçue par"),
        choices=[SelectChoice(value, label) for value, label in FEE_TENDER_LABELS.items()],
        default="transfer", validators=[DataRequired()])
    seen_until = HiddenField()  # the validity shown: a second click cannot record twice
    seen_fee = HiddenField()  # the fee shown: a fee changed meanwhile is not recorded


def _seen(form: FeeForm) -> dt.date | None:
    seen = form.seen_until.data or ""
    try:
        return dt.date.fromisoformat(seen) if seen else None
    except ValueError:
        abort(400)


def _fee_flash(done: membership.FeeRecorded) -> None:
    flash(_("Cotisation de %(fee)s enregistrée (écriture n° %(entry)s) : adhésion valable "
            "jusqu'au %(until)s.", fee=fr_money(done.fee_cents, "EUR"), entry=done.entry_id,
            until=fr_date(done.membership_until)), "info")


# ---------------------------------------------------------------- the members


@bp.route("/adherents")
@role_required("admin")
def members_list():
    college = request.args.get("college", "")
    status = request.args.get("statut", "")
    text = request.args.get("q", "")[:100]
    college = college if college in {c.value for c in College} else ""
    status = status if status in {s.value for s in membership.MemberStatus} else ""
    today = paris_today()
    # A page of the list (keyset: "apres" / "avant" name a member's code; anything
    # else gives the first page), the totals from the counts (docs/members.md).
    with unit_of_work(read_only=True) as uow:
        page = membership.members_page(uow.conn, college or None, text, status or None,
                                       after=request.args.get("apres", "")[:32],
                                       before=request.args.get("avant", "")[:32],
                                       today=today)
        tally = membership.counts(uow.conn, today=today)
        fees = {c: college_fee_cents(uow.conn, c) for c in College}
    filters = {"college": college or None, "statut": status or None,
               "q": text.strip() or None}
    total = None  # the members the filters keep, when the counts say it
    if not text.strip():
        rows = [row for row in tally if college in ("", row.college.value)]
        total = sum(row.by_status[membership.MemberStatus(status)] if status else row.total
                    for row in rows)
    return render_template(
        "admin/members.html", title=_("Adhérents et collèges"), members=page.members,
        page=page, filters=filters, total=total, tally=tally,
        fees=fees, college=college, status=status, q=text, today=today,
        college_labels=COLLEGE_LABELS, status_labels=membership.MEMBER_STATUS_LABELS,
        kind_labels=KIND_LABELS, category_labels=PARTNER_CATEGORY_LABELS,
        # Translated once, not once per row (a page has a hundred).
        college_names={c: _(label) for c, label in COLLEGE_LABELS.items()},
        status_names={s: _(label) for s, label in membership.MEMBER_STATUS_LABELS.items()},
        category_names={c: _(label) for c, label in PARTNER_CATEGORY_LABELS.items()},
        filtered=bool(college or status or text.strip()))


def _lapsing_page(form: FlaskForm, status: int = 200):
    today = paris_today()
    with unit_of_work(read_only=True) as uow:
        due = membership.lapsing(uow.conn, today)
        sent = membership.sent_this_month(uow.conn, today)
    reminded = {}
    for row in sent:
        reminded.setdefault(row.recipient_key, row)
    mailer = mail.from_config(current_app.config)
    return render_template(
        "admin/members_lapsing.html", title=_("Adhésions qui prennent fin ce mois-ci"),
        due=due, sent=sent, reminded=reminded, form=form, today=today,
        month=membership.month_bounds(today), college_labels=COLLEGE_LABELS,
        status_labels=membership.MEMBER_STATUS_LABELS, mail_status_labels=MAIL_STATUS_LABELS,
        transport=mailer.transport, mail_problem=mailer.problem(),
        transport_labels=TRANSPORT_LABELS,
        to_remind=sum(1 for m in due if m.email and m.recipient_key not in reminded),
    ), status


@bp.route("/adherents/echeances")
@role_required("admin")
def members_lapsing():
    return _lapsing_page(FlaskForm())


@bp.route("/adherents/echeances/rappels", methods=["POST"])
@role_required("admin")
def members_remind():
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)  # only the CSRF token: a missing one is a bad request
    mailer = mail.from_config(current_app.config)
    try:
        run = membership.send_reminders(lambda **kw: unit_of_work(**kw), current_actor(),
                                        None, mailer)
    except DomainError as error:
        flash_refusal(error)
        return redirect(url_for("admin.members_lapsing"), 303)
    flash(_("Rappels : %(sent)s, %(failed)s en échec, %(already)s, %(without)s.",
            sent=ngettext("%(num)d envoyé", "%(num)d envoyés", len(run.sent)),
            failed=len(run.failed),
            already=ngettext("%(num)d déjà envoyé ce mois-ci",
                             "%(num)d déjà envoyés ce mois-ci", len(run.already)),
            without=ngettext("%(num)d adhérent sans adresse e-mail",
                             "%(num)d adhérents sans adresse e-mail", len(run.without_email))),
          "error" if run.failed else "info")
    return redirect(url_for("admin.members_lapsing"), 303)


def _party_fee_page(code: str, form: FeeForm, status: int = 200):
    with unit_of_work(read_only=True) as uow:
        member = queries.party_by_code(uow.conn, code)
        college = college_of(member.kind) if member is not None else None
        if member is None or college is None:
            abort(404)
        fee = college_fee_cents(uow.conn, college)
        fees = membership.fee_history(uow.conn, member.code)
    form.seen_until.data = member.membership_until.isoformat() if member.membership_until else ""
    form.seen_fee.data = str(fee)
    return render_template(
        "admin/members_fee.html", title=_("Cotisation de %(name)s", name=member.name),
        member=member, college=college, fee_cents=fee, form=form, fees=fees,
        tender_labels=FEE_TENDER_LABELS,
        college_labels=COLLEGE_LABELS, kind_labels=KIND_LABELS,
        member_status=membership.status_of(member.membership_until, paris_today()),
        status_labels=membership.MEMBER_STATUS_LABELS,
    ), status


@bp.route("/adherents/<code>/cotisation", methods=["GET", "POST"])
@role_required("admin")
def member_fee(code: str):
    form = FeeForm()
    if form.validate_on_submit():
        try:
            done = membership.record_fee(unit_of_work(), current_actor(), code,
                                         form.tender.data, seen_until=_seen(form),
                                         seen_fee_cents=seen_cents(form.seen_fee.data))
        except MembershipChanged as error:  # a second click: nothing recorded twice
            flash_refusal(error)
            return redirect(url_for("admin.member_fee", code=code), 303)
        except DomainError as error:
            return _party_fee_page(code, form, refuse(form, error, "tender",
                                                      not_found_404=True))
        _fee_flash(done)
        return redirect(url_for("admin.member_fee", code=code), 303)
    return _party_fee_page(code, form, page_status(form))


# ---------------------------------------------------------------- partners


@bp.route("/partenaires/nouveau", methods=["GET", "POST"])
@role_required("admin")
def partner_new():
    form = PartnerForm()
    status = 200
    if form.validate_on_submit():
        try:
            code = membership.create_partner(unit_of_work(), current_actor(), **form.values())
        except DomainError as error:
            status = refuse(form, error, "name")
        else:
            flash(_("Partenaire %(code)s enregistré dans le collège des acteurs locaux.",
                    code=code), "info")
            return redirect(url_for("admin.partner_detail", code=code), 303)
    return render_template("admin/partner_form.html", title=_("Nouveau partenaire"),
                           form=form), page_status(form, status)


def _partner_page(code: str, form: PartnerForm | None, fee_form: FeeForm | None,
                  status: int = 200):
    with unit_of_work(read_only=True) as uow:
        found = membership.partner(uow.conn, code)
        if found is None:
            abort(404)
        fee = college_fee_cents(uow.conn, College.ACTEURS_LOCAUX)
        fees = membership.fee_history(uow.conn, code)
    if form is None:
        form = PartnerForm(formdata=None, data={
            "name": found.name, "category": found.category,
            "contact_name": found.contact_name, "email": found.email, "phone": found.phone,
            "address": found.address, "commune": found.commune})
    if fee_form is None:
        fee_form = FeeForm(formdata=None)
    fee_form.seen_until.data = found.membership_until.isoformat() if found.membership_until else ""
    fee_form.seen_fee.data = str(fee)
    return render_template(
        "admin/partner.html", title=found.name, partner=found, form=form,
        fee_form=fee_form, fee_cents=fee, fees=fees, tender_labels=FEE_TENDER_LABELS,
        member_status=membership.status_of(found.membership_until, paris_today()),
        status_labels=membership.MEMBER_STATUS_LABELS,
        category_labels=PARTNER_CATEGORY_LABELS,
    ), status


@bp.route("/partenaires/<code>", methods=["GET", "POST"])
@role_required("admin")
def partner_detail(code: str):
    if request.method == "GET":
        return _partner_page(code, None, None)
    form = PartnerForm()
    if form.validate_on_submit():
        try:
            membership.update_partner(unit_of_work(), current_actor(), code, **form.values())
        except DomainError as error:
            return _partner_page(code, form, None,
                                 refuse(form, error, "name", not_found_404=True))
        flash(_("Fiche du partenaire enregistrée."), "info")
        return redirect(url_for("admin.partner_detail", code=code), 303)
    return _partner_page(code, form, None, 422)


@bp.route("/partenaires/<code>/cotisation", methods=["POST"])
@role_required("admin")
def partner_fee(code: str):
    fee_form = FeeForm()
    if fee_form.validate_on_submit():
        try:
            done = membership.record_partner_fee(unit_of_work(), current_actor(), code,
                                                 fee_form.tender.data,
                                                 seen_until=_seen(fee_form),
                                                 seen_fee_cents=seen_cents(fee_form.seen_fee.data))
        except MembershipChanged as error:
            flash_refusal(error)
            return redirect(url_for("admin.partner_detail", code=code), 303)
        except DomainError as error:
            return _partner_page(code, None, fee_form,
                                 refuse(fee_form, error, "tender", not_found_404=True))
        _fee_flash(done)
        return redirect(url_for("admin.partner_detail", code=code), 303)
    if "csrf_token" in fee_form.errors:
        abort(400)
    return _partner_page(code, None, fee_form, 422)


# ---------------------------------------------------------------- kept e-mail


@bp.route("/courriels")
@role_required("admin")
def mail_messages():
    with unit_of_work(read_only=True) as uow:
        kept = membership.messages(uow.conn)
    mailer = mail.from_config(current_app.config)
    return render_template(
        "admin/mail_messages.html", title=_("Courriels envoyés"), messages=kept,
        status_labels=MAIL_STATUS_LABELS, transport_labels=TRANSPORT_LABELS,
        transport=mailer.transport, mail_problem=mailer.problem())
