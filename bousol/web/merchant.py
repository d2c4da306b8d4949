"""The prestataire's pages."""

from flask import Blueprint
from flask_babel import gettext as _

from bousol.web import role_required, views

bp = Blueprint("merchant", __name__, url_prefix="/prestataire")


@bp.route("/")
@role_required("prestataire")
def home():
    return views.party_home(_("Mon commerce"))
