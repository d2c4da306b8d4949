"""The admin sees a user's active API tokens and revokes them (a lost phone, a till
stolen, a script's token leaked)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from bousol.ledger.access import api_tokens
from bousol.ledger.kernel.errors import DomainError, NotFound
from bousol.web import current_actor, role_required, unit_of_work
from bousol.web.account import RevokeForm
from bousol.web.admin.views import bp
from bousol.web.forms import page_status, refuse


@bp.route("/utilisateurs/<username>/jetons", methods=["GET", "POST"])
@role_required("admin")
def user_tokens(username: str):
    with unit_of_work(read_only=True) as uow:
        user_id = api_tokens.user_id_by_username(uow.conn, username)
    if user_id is None:
        abort(404)
    form = RevokeForm()
    status = 200
    if form.validate_on_submit():
        with unit_of_work(read_only=True) as uow:
            own = {t.id for t in api_tokens.active_tokens(uow.conn, user_id)}
        try:
            if form.token_id.data not in own:  # only this user's tokens from this page
                raise NotFound("Jeton introuvable.")
            api_tokens.revoke(unit_of_work(), current_actor(), form.token_id.data)
            flash(_("Jeton révoqué : il ne donne plus accès à l'API."), "info")
            return redirect(url_for("admin.user_tokens", username=username))
        except DomainError as error:
            status = refuse(form, error, "token_id")
    with unit_of_work(read_only=True) as uow:
        active = api_tokens.active_tokens(uow.conn, user_id)
    return render_template(
        "admin/user_tokens.html", tokens=active, form=form, owner=username,
        title=_("Jetons d'accès à l'API de %(username)s", username=username),
        revoke_url=url_for("admin.user_tokens", username=username),
        scope_labels=api_tokens.SCOPES), page_status(form, status)
