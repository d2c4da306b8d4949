"""The admin's pages."""

from flask import Blueprint
from flask_babel import gettext as _

from bousol.web import role_required, views

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/")
@role_required("admin")
def home():
    return views.system_home(_("Administration de l'association"))


@bp.route("/reserve")
@role_required("admin")
def reserve():
    return views.reserve(_("Réserve et couverture"))
