"""The ccas's pages."""

from flask import Blueprint
from flask_babel import gettext as _

from bousol.web import role_required, views

bp = Blueprint("ccas", __name__, url_prefix="/ccas")


@bp.route("/")
@role_required("ccas")
def home():
    return views.party_home(_("Espace CCAS"))
