"""The soliste's pages."""

from flask import Blueprint
from flask_babel import gettext as _

from bousol.web import role_required, views

bp = Blueprint("member", __name__, url_prefix="/soliste")


@bp.route("/")
@role_required("soliste")
def home():
    return views.party_home(_("Mon compte Bou'Sol"))
