"""The ledger's refusals on the pages: one way to show a :class:`DomainError`.

A blueprint calls the ledger in a ``try`` and, on a refusal, hands it to one of these:

- :func:`refuse`: a form sent back, the message beside the field it is about (or on top
  of the form), answered with :func:`form_status`;
- :func:`refuse_fields`: the same for a refusal naming several fields at once (the
  prestataire's application: every problem shows at once);
- :func:`check_field`: one field checked with one of the ledger's parsers, before the
  ledger is called (so that every field's error shows at once);
- :func:`flash_refusal`: an action button, the message flashed before the redirect;
- :func:`or_404`: a lookup, where any refusal means "not here" (or not for you).

:func:`page_status` then gives the status of a page that shows a form (refused, wrong,
or fine), so that every form page ends the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from flask import abort, flash
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from bousol.ledger.kernel.errors import DomainError
from bousol.web import form_status

#: Where a page shows an error: a key is an error class (its subclasses too), an error
#: code (that code only) or the ledger's name of a field (``DomainError.field``); the
#: value is the form's field, or None for the top of the form.
FieldMap = Mapping[str | type[DomainError], str | None]

__all__ = ["FieldMap", "check_field", "field_for", "flash_refusal", "form_status", "or_404",
           "page_status", "refuse", "refuse_fields"]


def field_for(form: FlaskForm, error: DomainError, default: str | None = None,
              fields: FieldMap | None = None) -> str | None:
    """The name of the form's field the refusal belongs to (None: the whole form).

    The first that applies: the field the error was raised about (``field="…"``),
    through ``fields`` or by its own name on the form; ``fields`` for the error's class
    (the most specific first), then for its code; the class's usual field
    (``default_field``), like the first; ``default``.
    """
    fields = fields or {}
    named = error.details.get("field")
    classes = [cls for cls in type(error).__mro__ if issubclass(cls, DomainError)]
    # (key, whether it is a field's name, which the form may have under that name)
    keys = [(str(named) if named else None, True), *((cls, False) for cls in classes),
            (error.code, False), (type(error).default_field, True)]
    for key, is_name in keys:
        if key is None:
            continue
        if key in fields:
            return fields[key]
        if is_name and key in form:
            return key
    return default if default is not None and default in form else None


def refuse(form: FlaskForm, error: DomainError, default: str | None = None, *,
           fields: FieldMap | None = None, message: str | None = None,
           not_found_404: bool = False) -> int:
    """Show the ledger's refusal on ``form`` and return the status to answer with.

    The message (``error.message``, or ``message`` instead) goes beside the field of
    :func:`field_for`, else on top of the form (``form.form_errors``); the status is
    :func:`form_status`. With ``not_found_404``, a refusal answered 404 by the ledger
    (what the page is about does not exist) aborts with 404 instead.
    """
    if not_found_404 and error.http_status == 404:
        abort(404)
    _show(form, field_for(form, error, default, fields),
          error.message if message is None else message)
    return form_status(error)


def _show(form: FlaskForm, name: str | None, text: str) -> None:
    if name is None:
        form.form_errors.append(text)
    else:
        field = form[name]
        # Not ``append``: before validation a field's errors are an empty tuple.
        field.errors = [*field.errors, text]


def check_field(form: FlaskForm, name: str, parse: Callable[[object], object]) -> bool:
    """Run one of the ledger's parsers on the text of the field ``name``: True if it
    passes; else False, its refusal beside that field (whichever field the error would
    name elsewhere: here it is about this text)."""
    try:
        parse(form[name].data)
    except DomainError as error:
        _show(form, name, error.message)
        return False
    return True


def refuse_fields(form: FlaskForm, error: DomainError, fields: FieldMap | None = None
                  ) -> None:
    """Show a refusal beside every field it names (``details["fields"]``: the ledger's
    field → message; else its one field), each through ``fields`` like :func:`refuse`,
    else on top of the form; a field already showing an error keeps that one. The
    messages are the ledger's fixed ones (catalogued, ``N_``): shown translated. The
    page answers :func:`page_status` (422)."""
    fields = fields or {}
    problems = error.details.get("fields") or {error.field: error.message}
    for name, french in problems.items():
        message = _(french)
        target = fields.get(name, name) if name else None
        if target is None or target not in form:
            form.form_errors.append(message)
        elif not form[target].errors:
            form[target].errors = [message]


def flash_refusal(error: DomainError, *, not_found_404: bool = False) -> None:
    """Flash the ledger's refusal (the page redirects next). With ``not_found_404``, a
    refusal answered 404 by the ledger aborts with 404 instead."""
    if not_found_404 and error.http_status == 404:
        abort(404)
    flash(error.message, "error")


@contextmanager
def or_404() -> Iterator[None]:
    """Any refusal of the ledger inside answers 404: a lookup of what does not exist,
    or not for this user (which the page does not tell apart)."""
    try:
        yield
    except DomainError:
        abort(404)


def page_status(form: FlaskForm, status: int = 200) -> int:
    """The status of a page showing ``form``: ``status`` when something set one (a
    refusal, :func:`refuse`), else 422 if the form shows errors, else 200."""
    if status != 200:
        return status
    return 422 if form.errors else 200
