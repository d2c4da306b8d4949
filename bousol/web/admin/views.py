"""The admin's pages; the treasurer's SEPA payout batches (roles admin and bank)."""

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired

from bousol.ledger.desk import iban_changes, payouts
from bousol.ledger.kernel import iban
from bousol.ledger.kernel.errors import DomainError
from bousol.web import current_actor, role_required, stale_reads_status, unit_of_work, views
from bousol.web.formatting import fr_money, ngettext
from bousol.web.forms import flash_refusal, or_404
from bousol.web.pages import numbered

bp = Blueprint("admin", __name__, url_prefix="/admin")
# IBANs in groups of four, in every template (the desk's too).
bp.add_app_template_filter(iban.display, "iban")
# Where the reports and exports read (replica or primary): the admin's home page.
bp.add_app_template_global(stale_reads_status, "stale_reads_status")

BATCH_STATUS_LABELS = {"prepared": _l("préparé, à libérer par une autre personne"),
                       "released": _l("libéré"), "paid": _l("payé"),
                       "cancelled": _l("annulé")}


@bp.route("/")
@role_required("admin")
def home():
    return views.system_home(_("Administration de l'association"))


@bp.route("/reserve")
@role_required("admin")
def reserve():
    return views.reserve(_("Réserve et couverture"))


# ---------------------------------------------------------------- SEPA payout batches


class PaidForm(FlaskForm):
    """Marking a batch paid: CSRF, and a box ticked to say the bank did pay."""

    confirm_paid = BooleanField(
        _l("Je confirme que la banque a exécuté les virements de ce lot"),
        validators=[DataRequired(_l("Cochez la case pour confirmer."))])


class ReleaseForm(FlaskForm):
    """Releasing a batch: a second person checked its lines against the euros owed."""

    confirm_release = BooleanField(
        _l("J'ai vérifié les bénéficiaires, les IBAN et les montants de ce lot"),
        validators=[DataRequired(_l("Cochez la case pour confirmer."))])


class CancelForm(FlaskForm):
    confirm_cancel = BooleanField(
        _l("Je confirme que la banque a rejeté ce fichier (ou qu'il n'a pas été envoyé)"),
        validators=[DataRequired(_l("Cochez la case pour confirmer."))])


def _debtor() -> payouts.Debtor:
    config = current_app.config
    return payouts.Debtor(config.get("PAYOUT_DEBTOR_NAME", ""),
                          config.get("PAYOUT_DEBTOR_IBAN", ""),
                          config.get("PAYOUT_DEBTOR_BIC") or None)


@bp.route("/virements")
@role_required("admin", "bank")
def payouts_home():
    with unit_of_work(read_only=True) as uow:
        owed = payouts.pending(uow.conn)
        past = payouts.batches(uow.conn)
        changes = iban_changes.waiting(uow.conn)
    open_batch = next((b for b in past if b.unsettled), None)
    # The owed are listed OWED_PAGE a page: a batch pays them all, the page renders some.
    shown = numbered(owed, OWED_PAGE)
    return render_template(
        "admin/payouts.html", title=_("Virements de reconversion"),
        owed=shown.items, owed_count=shown.total,
        owed_cents=sum(p.eur_cents for p in owed), page=shown.page, pages=shown.pages,
        batches=past,
        open_batch=open_batch, status_labels=BATCH_STATUS_LABELS, form=FlaskForm(),
        payable_cents=sum(p.eur_cents for p in owed if p.payable), iban_changes=changes,
    )


OWED_PAGE = 100


@bp.route("/virements/iban/<int:change_id>/<any(valider, rejeter):action>", methods=["POST"])
@role_required("admin")
def iban_change_decide(change_id: int, action: str):
    """An admin validates (or rejects) an IBAN the desk typed, never one it typed."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        if action == "valider":
            done = iban_changes.confirm(unit_of_work(), current_actor(), change_id)
            flash(_("IBAN de %(name)s validé : %(iban)s.", name=done.party_name,
                    iban=done.iban_display), "info")
        else:
            done = iban_changes.cancel(unit_of_work(), current_actor(), change_id)
            flash(_("Changement d'IBAN de %(name)s rejeté.", name=done.party_name), "info")
    except DomainError as error:
        flash_refusal(error, not_found_404=True)
    return redirect(url_for("admin.payouts_home"))


@bp.route("/virements/lots", methods=["POST"])
@role_required("admin", "bank")
def payouts_create():
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        made = payouts.create_batch(unit_of_work(), current_actor())
    except DomainError as error:
        flash_refusal(error)
        return redirect(url_for("admin.payouts_home"))
    flash(ngettext("Lot %(id)s préparé : %(num)d virement, %(total)s.",
                   "Lot %(id)s préparé : %(num)d virements, %(total)s.", made.count,
                   id=made.message_id, total=fr_money(made.total_cents, "EUR")), "info")
    return redirect(url_for("admin.payout_batch", batch_id=made.id))


def _batch_page(batch_id: int, paid_form: PaidForm, cancel_form: CancelForm,
                status: int = 200, release_form: ReleaseForm | None = None):
    with unit_of_work(read_only=True) as uow:
        with or_404():
            found = payouts.batch(uow.conn, batch_id)
    return render_template(
        "admin/payout_batch.html", title=_("Lot de virements %(id)s",
                                           id=found.summary.message_id),
        batch=found.summary, lines=found.lines, status_labels=BATCH_STATUS_LABELS,
        paid_form=paid_form, cancel_form=cancel_form,
        release_form=release_form or ReleaseForm(formdata=None),
        preparer=(found.summary.created_by_user_id is not None
                  and found.summary.created_by_user_id == current_actor().user_id),
    ), status


@bp.route("/virements/lots/<int:batch_id>")
@role_required("admin", "bank")
def payout_batch(batch_id: int):
    return _batch_page(batch_id, PaidForm(), CancelForm())


@bp.route("/virements/lots/<int:batch_id>/pain001.xml")
@role_required("admin", "bank")
def payout_file(batch_id: int):
    with unit_of_work(read_only=True) as uow:
        with or_404():
            found = payouts.batch(uow.conn, batch_id)
        try:
            payouts.check_download(found.summary, current_actor())
            document = payouts.pain001_xml(uow.conn, batch_id, _debtor())
        except DomainError as error:
            flash_refusal(error)
            return redirect(url_for("admin.payout_batch", batch_id=batch_id))
    filename = f"{found.summary.message_id}.xml"
    return Response(document, mimetype="application/xml", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/virements/lots/<int:batch_id>/liberer", methods=["POST"])
@role_required("admin", "bank")
def payout_release(batch_id: int):
    form = ReleaseForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _batch_page(batch_id, PaidForm(formdata=None), CancelForm(formdata=None), 422,
                           release_form=form)
    try:
        payouts.release(unit_of_work(), current_actor(), batch_id)
    except DomainError as error:
        flash_refusal(error, not_found_404=True)
    else:
        flash(_("Lot libéré : son fichier peut être remis à la banque."), "info")
    return redirect(url_for("admin.payout_batch", batch_id=batch_id))


@bp.route("/virements/lots/<int:batch_id>/<any(payer, annuler):action>", methods=["POST"])
@role_required("admin", "bank")
def payout_close(batch_id: int, action: str):
    paid_form = PaidForm() if action == "payer" else PaidForm(formdata=None)
    cancel_form = CancelForm() if action == "annuler" else CancelForm(formdata=None)
    form = paid_form if action == "payer" else cancel_form
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _batch_page(batch_id, paid_form, cancel_form, 422)  # the box was not ticked
    try:
        if action == "payer":
            done = payouts.mark_paid(unit_of_work(), current_actor(), batch_id)
            flash(_("Lot marqué comme payé : %(total)s versés (écriture n° %(entry)s).",
                    total=fr_money(done.total_cents, "EUR"), entry=done.entry_id), "info")
        else:
            payouts.cancel(unit_of_work(), current_actor(), batch_id)
            flash(_("Lot annulé : aucun euro n'a bougé ; les montants restent dus."), "info")
    except DomainError as error:
        flash_refusal(error, not_found_404=True)
    return redirect(url_for("admin.payout_batch", batch_id=batch_id))
