"""The bank's pages."""

from flask import Blueprint
from flask_babel import gettext as _

from bousol.web import role_required, views

bp = Blueprint("desk", __name__, url_prefix="/comptoir")


@bp.route("/")
@role_required("bank")
def home():
    return views.system_home(_("Comptoir de change"))
