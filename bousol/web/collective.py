"""The management collective's decisions (issue 7): the motions, proposing one, voting,
the results, closing. Open to the members of the collective and to admins only (others:
403). The rules are the ledger's (bousol/ledger/association/decisions.py, docs/decisions.md)."""

from __future__ import annotations

import datetime as dt
from functools import wraps

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from bousol.ledger.association import decisions
from bousol.ledger.kernel import clock, settings
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.merchants import approval
from bousol.ledger.models import COLLEGE_LABELS, College, Role
from bousol.web import current_actor, unit_of_work
from bousol.web.forms import FieldMap, field_for, flash_refusal, or_404, refuse

bp = Blueprint("collective", __name__, url_prefix="/collectif")


def collective_required(view):
    """Log in first; then members of the collective and admins only (others: 403)."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if current_user.role != Role.ADMIN.value:
            with unit_of_work(read_only=True) as uow:
                if decisions.seat(uow.conn, current_user.id) is None:
                    abort(403)
        return view(*args, **kwargs)

    return wrapped


@bp.app_template_global("collective_pending")
def collective_pending() -> int | None:
    """For the home pages' link: how many open motions await the logged-in member's
    vote; None when not a member of the collective (no link)."""
    if not current_user.is_authenticated:
        return None
    with unit_of_work(read_only=True) as uow:
        return decisions.pending(uow.conn, current_user.id)


def _labels() -> dict:
    return {"status_labels": decisions.STATUS_LABELS, "choice_labels": decisions.CHOICE_LABELS,
            "effect_labels": decisions.EFFECT_LABELS, "college_labels": COLLEGE_LABELS,
            "setting_label": setting_label, "colleges": list(College)}


def setting_label(key: str) -> str:
    """A setting's label, translated (in Python: a template's ``_()`` would read the
    label's ``%`` as a placeholder)."""
    return _(decisions.setting_label(key))


# ---------------------------------------------------------------- the list


@bp.route("/")
@collective_required
def index():
    with unit_of_work(read_only=True) as uow:
        lines = decisions.motions(uow.conn, current_user.id)
        member = decisions.seat(uow.conn, current_user.id)
    open_lines = [m for m in lines if m.status == decisions.Status.OPEN]
    closed_lines = [m for m in lines if m.status != decisions.Status.OPEN]
    return render_template("collective/index.html", title=_("Décisions du collectif de gestion"),
                           open_lines=open_lines, closed_lines=closed_lines, member=member,
                           **_labels())


# ---------------------------------------------------------------- proposing

# The ledger's field names → the form's, where they differ (the others are the same).
PROPOSE_FIELDS: FieldMap = {"closes_at": "closes_on"}


class ProposeForm(FlaskForm):
    # No WTForms validators beyond lengths: the ledger checks, with a French message.
    title = StringField(_l("Titre de la décision"), validators=[Length(max=decisions.TITLE_MAX)])
    body = TextAreaField(_l("Exposé des motifs (facultatif)"),
                         validators=[Length(max=decisions.BODY_MAX)])
    closes_on = StringField(_l("Date de clôture du vote (jj/mm/aaaa)"),
                            validators=[Length(max=20)])
    closes_time = StringField(_l("Heure de clôture (hh:mm, heure de Paris)"),
                              validators=[Length(max=10)])
    effect = RadioField(_l("Effet de la décision si elle est adoptée"), default="none",
                        validate_choice=False,
                        choices=[SelectChoice(e.value, _l(label))
                                 for e, label in decisions.EFFECT_LABELS.items()])
    setting_key = SelectField(_l("Réglage à changer"), validate_choice=False)
    setting_value = StringField(_l("Nouvelle valeur du réglage"), validators=[Length(max=200)])
    prestataire = SelectField(_l("Prestataire à agréer"), validate_choice=False)


def _propose_choices(form: ProposeForm) -> dict:
    with unit_of_work(read_only=True) as uow:
        current = settings.current(uow.conn, list(settings.DEFAULTS))
        waiting = approval.list_by_status(uow.conn, approval.Status.SUBMITTED.value)
    form.setting_key.choices = [
        SelectChoice(key, f"{setting_label(key)} — {_('actuellement')} {current[key]}")
        for key in settings.DEFAULTS]
    form.prestataire.choices = [SelectChoice("", _("— choisir —"))] + [
        SelectChoice(p.code, f"{p.name} ({p.code})") for p in waiting]
    return {"waiting": waiting}


@bp.route("/motions/nouvelle", methods=["GET", "POST"])
@collective_required
def propose():
    form = ProposeForm()
    extra = _propose_choices(form)
    if not form.is_submitted():
        default = clock.paris_today() + dt.timedelta(days=14)
        form.closes_on.data = default.strftime("%d/%m/%Y")
        form.closes_time.data = "18:00"
        form.setting_key.data = "reconversion.fee_bp"
    status = 200
    if form.validate_on_submit():
        try:
            closes_at = decisions.parse_closing(form.closes_on.data, form.closes_time.data)
            motion_id = decisions.propose(
                unit_of_work(), current_actor(), title=form.title.data, body=form.body.data,
                closes_at=closes_at, effect=form.effect.data,
                setting_key=form.setting_key.data, setting_value=form.setting_value.data,
                prestataire_code=form.prestataire.data)
        except DomainError as error:
            if error.http_status == 403 and field_for(form, error, fields=PROPOSE_FIELDS) is None:
                abort(403)  # not about what was typed: not for this user
            status = refuse(form, error, fields=PROPOSE_FIELDS)
        else:
            flash(_("Décision n° %(id)s soumise au vote du collectif.", id=motion_id), "info")
            return redirect(url_for("collective.motion_page", motion_id=motion_id))
    elif form.is_submitted():
        if "csrf_token" in form.errors:
            abort(400)
        status = 422
    return render_template("collective/propose.html", title=_("Proposer une décision"),
                           form=form, **extra, **_labels()), status


# ---------------------------------------------------------------- one motion


class VoteForm(FlaskForm):
    # The ledger checks the choice (a French message when none is ticked).
    choice = RadioField(_l("Votre vote"), validate_choice=False,
                        choices=[SelectChoice(c.value, _l(label))
                                 for c, label in decisions.CHOICE_LABELS.items()])


def _motion(motion_id: int, vote_form: VoteForm | None = None, status: int = 200):
    with unit_of_work(read_only=True) as uow:
        with or_404():
            found = decisions.motion(uow.conn, motion_id)
        counted = decisions.results(uow.conn, motion_id)
        mine = decisions.my_vote(uow.conn, motion_id, current_user.id)
        member = decisions.seat(uow.conn, current_user.id)
    if vote_form is None:
        vote_form = VoteForm(formdata=None, choice=mine.choice if mine else None)
    past = found.past_closing()
    return render_template(
        "collective/motion.html", title=_("Décision n° %(id)s", id=found.id), motion=found,
        results=counted, mine=mine, member=member, vote_form=vote_form, past=past,
        can_vote=found.is_open and not past and member is not None,
        can_close=found.is_open and past and current_user.role == Role.ADMIN.value,
        can_withdraw=(found.is_open and not past and found.votes == 0
                      and (current_user.role == Role.ADMIN.value
                           or found.created_by_user_id == current_user.id)),
        form=FlaskForm(), **_labels(),
    ), status


@bp.route("/motions/<int:motion_id>")
@collective_required
def motion_page(motion_id: int):
    return _motion(motion_id)


@bp.route("/motions/<int:motion_id>/vote", methods=["POST"])
@collective_required
def vote(motion_id: int):
    form = VoteForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _motion(motion_id, form, 422)
    try:
        cast = decisions.vote(unit_of_work(), current_actor(), motion_id, form.choice.data)
    except DomainError as error:
        return _motion(motion_id, form, refuse(form, error, "choice", not_found_404=True))
    label = _(decisions.CHOICE_LABELS[decisions.Choice(cast.choice)])
    if cast.first:
        flash(_("Votre vote est enregistré : %(choice)s.", choice=label), "info")
    elif cast.changed:
        flash(_("Votre vote est changé : %(choice)s.", choice=label), "info")
    else:
        flash(_("Votre vote reste : %(choice)s.", choice=label), "info")
    return redirect(url_for("collective.motion_page", motion_id=motion_id))


@bp.route("/motions/<int:motion_id>/<any(clore, retirer):action>", methods=["POST"])
@collective_required
def close_or_withdraw(motion_id: int, action: str):
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        if action == "clore":
            if current_user.role != Role.ADMIN.value:
                abort(403)
            closed = decisions.close(unit_of_work(), current_actor(), motion_id)
            flash(_("Vote clos : la décision est %(status)s.",
                    status=_(decisions.STATUS_LABELS[decisions.Status(closed.status)]).lower()),
                  "info")
        else:
            decisions.withdraw(unit_of_work(), current_actor(), motion_id)
            flash(_("La proposition est retirée."), "info")
    except DomainError as error:
        if error.http_status == 404:
            abort(404)
        if error.http_status == 403:
            abort(403)
        flash_refusal(error)
    return redirect(url_for("collective.motion_page", motion_id=motion_id))
