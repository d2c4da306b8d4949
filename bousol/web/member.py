"""The soliste's space: balance and latest lines, the history with its filters, the
receipt of each of its own operations. (Paying is bousol/web/pay.py.)"""

from flask import Blueprint
from flask_babel import gettext as _

from bousol.ledger.ccas import vouchers
from bousol.web import role_required, views

bp = Blueprint("member", __name__, url_prefix="/soliste")


@bp.route("/")
@role_required("soliste")
def home():
    return views.space_home("member", "member/home.html", _("Mon compte Bou'Sol"),
                            earmarked=vouchers.earmarked_vouchers)


@bp.route("/historique")
@role_required("soliste")
def history():
    return views.history("member", _("Historique de mes opérations"))


@bp.route("/recu/<int:entry_id>")
@role_required("soliste")
def receipt(entry_id: int):
    return views.receipt("member", entry_id)
