"""Error pages: a clear French message, never a stack trace."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from bousol.ledger.kernel.text import N_

MESSAGES = {
    400: N_("La demande est mal formée."),
    403: N_("Vous n'avez pas accès à cette page."),
    404: N_("Cette page n'existe pas."),
    405: N_("Cette action n'est pas possible ici."),
    413: N_("Les données envoyées sont trop volumineuses."),
}

FALLBACK = N_("Une erreur s'est produite.")


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        message = _("Le formulaire a expiré ou a été envoyé d'ailleurs : rechargez la page "
                    "et recommencez.")
        return render_template("errors/error.html", code=400, message=message), 400

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        # The body was refused unread. Every page carries the language form, whose
        # FlaskForm would read request.form again and raise inside this handler (a 500):
        # the request's form and files are set to empty, never parsed.
        request.__dict__["form"] = ImmutableMultiDict()
        request.__dict__["files"] = ImmutableMultiDict()
        message = _(MESSAGES[413])
        return render_template("errors/error.html", code=413, message=message), 413

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.code or 500
        message = _(MESSAGES.get(code, FALLBACK))
        return render_template("errors/error.html", code=code, message=message), code

    @app.errorhandler(500)
    def server_error(error):
        message = _("Une erreur inattendue s'est produite ; rien n'a été enregistré.")
        return render_template("errors/error.html", code=500, message=message), 500
