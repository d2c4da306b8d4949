"""The web layer's one way to show the ledger's refusals (bousol/web/forms.py), and the
field an error names (DomainError.field)."""

from __future__ import annotations

import pytest
from flask import get_flashed_messages
from flask_wtf import FlaskForm
from werkzeug.exceptions import HTTPException
from wtforms import StringField

from bousol.app import create_app
from bousol.ledger.kernel.errors import (
    AlreadyPaid,
    DomainError,
    InvalidAmount,
    InvalidBic,
    InvalidDate,
    InvalidIban,
    InvalidInput,
    NotFound,
    UnknownParty,
)
from bousol.web import forms


class PayForm(FlaskForm):
    amount = StringField()
    payee = StringField()
    secret = StringField()
    iban = StringField()
    bic = StringField()
    closes_on = StringField()


@pytest.fixture(scope="module")
def app():
    # No database is touched: the helpers only read and write forms.
    return create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://", WTF_CSRF_ENABLED=False)


@pytest.fixture
def form(app):
    with app.test_request_context(method="POST", data={"amount": "1"}):
        yield PayForm()


# ---------------------------------------------------------------- DomainError.field


def test_an_error_names_its_field_when_raised_and_keeps_it_in_its_details():
    error = InvalidInput("Motif obligatoire.", field="reason", reason="empty")
    assert error.field == "reason"
    assert error.details == {"field": "reason", "reason": "empty"}
    assert (error.message, error.code) == ("Motif obligatoire.", "invalid_input")


def test_without_a_field_the_class_default_is_the_field():
    assert InvalidInput().field is None and InvalidInput().details == {}
    assert InvalidAmount().field == "amount" and "field" not in InvalidAmount().details
    assert InvalidIban().field == "iban" and InvalidBic().field == "bic"
    assert InvalidAmount(field="euros").field == "euros"  # the raise names another


def test_a_field_named_on_the_way_out_is_the_field():
    error = InvalidDate("Date obligatoire.")
    error.details["field"] = "date_from"  # what fec.parse_period and others do
    assert error.field == "date_from"
    error.field = "date_to"
    assert error.details["field"] == "date_to"
    error.field = None
    assert error.field is None and "field" not in error.details


def test_every_old_constructor_still_works():
    assert DomainError().message == "Opération refusée."
    assert DomainError("Non.", minutes=3).details == {"minutes": 3}
    assert str(NotFound("Introuvable ici.")) == "Introuvable ici."


# ---------------------------------------------------------------- field_for


@pytest.mark.parametrize(("error", "default", "fields", "expected"), [
    # the field named when raised, on the form under its name, or renamed
    (InvalidInput(field="payee"), "secret", None, "payee"),
    (InvalidInput(field="closes_at"), "secret", {"closes_at": "closes_on"}, "closes_on"),
    (InvalidInput(field="closes_at"), None, {"closes_at": None}, None),
    # the field named wins over the page's choice by code
    (InvalidInput(field="payee"), "secret", {"invalid_input": "amount"}, "payee"),
    # a field the form does not have: the page's choice by class, then code
    (InvalidInput(field="elsewhere"), "secret", {"invalid_input": "amount"}, "amount"),
    (InvalidIban(), "secret", {InvalidInput: "payee"}, "payee"),  # a subclass
    (InvalidIban(), "secret", {InvalidIban: "bic", InvalidInput: "payee"}, "bic"),
    (UnknownParty(), "secret", {"unknown_party": "payee"}, "payee"),
    (InvalidIban(), "secret", {"invalid_input": "payee"}, "iban"),  # a code is that code only
    # then the class's usual field, then the default, else the whole form
    (InvalidAmount(), "secret", None, "amount"),
    (InvalidAmount(), "secret", {"amount": "payee"}, "payee"),
    (AlreadyPaid(), "secret", None, "secret"),
    (AlreadyPaid(), None, None, None),
    (AlreadyPaid(), "not_on_this_form", None, None),
])
def test_field_for_picks_the_field_in_order(form, error, default, fields, expected):
    assert forms.field_for(form, error, default, fields) == expected


# ---------------------------------------------------------------- refuse


def test_refuse_shows_the_message_by_its_field_and_answers_its_status(form):
    assert forms.refuse(form, AlreadyPaid(), "secret") == 409
    assert form.secret.errors == [AlreadyPaid.default_message]
    # "not found" of what was typed: the page exists, 422
    assert forms.refuse(form, UnknownParty("Personne."), "payee") == 422
    assert form.payee.errors == ["Personne."]
    assert form.errors == {"secret": [AlreadyPaid.default_message], "payee": ["Personne."]}


def test_refuse_before_validation_adds_to_the_fields_empty_errors(form):
    assert form.amount.errors == ()  # WTForms' tuple until the form is validated
    forms.refuse(form, InvalidAmount(), "secret")
    forms.refuse(form, InvalidAmount("Trop."), "secret")
    assert form.amount.errors == [InvalidAmount.default_message, "Trop."]


def test_refuse_on_top_of_the_form_and_with_other_words(form):
    assert forms.refuse(form, AlreadyPaid(), message="Déjà envoyé.") == 409
    assert form.form_errors == ["Déjà envoyé."] and bool(form.errors)


def test_refuse_may_turn_not_found_into_a_404(form):
    with pytest.raises(HTTPException) as raised:
        forms.refuse(form, NotFound(), "secret", not_found_404=True)
    assert raised.value.code == 404 and not form.errors
    assert forms.refuse(form, AlreadyPaid(), "secret", not_found_404=True) == 409


def test_refuse_fields_shows_every_field_once(form):
    form.payee.errors = ["Déjà dit."]
    error = InvalidInput("Montant : obligatoire.", field="amount", fields={
        "amount": "Montant : obligatoire.", "payee": "Code inconnu.",
        "charter_accepted": "Acceptez la charte.", "nowhere": "Ailleurs."})
    forms.refuse_fields(form, error, {"charter_accepted": "secret"})
    assert form.amount.errors == ["Montant : obligatoire."]
    assert form.payee.errors == ["Déjà dit."]  # a field already in error keeps its own
    assert form.secret.errors == ["Acceptez la charte."]
    assert form.form_errors == ["Ailleurs."]
    forms.refuse_fields(form, AlreadyPaid())
    assert form.form_errors == ["Ailleurs.", AlreadyPaid.default_message]


def test_check_field_puts_a_parsers_refusal_by_the_field_checked(form):
    assert forms.check_field(form, "amount", lambda text: text)
    assert not forms.check_field(form, "payee", lambda text: (_ for _ in ()).throw(
        InvalidIban(field="iban")))  # about the text of "payee", whatever it names
    assert form.payee.errors == [InvalidIban.default_message] and not form.iban.errors
    with pytest.raises(ValueError, match="not a refusal"):
        forms.check_field(form, "amount", lambda text: (_ for _ in ()).throw(
            ValueError("not a refusal")))


@pytest.mark.parametrize(("status", "errors", "expected"), [
    (200, False, 200), (200, True, 422), (409, True, 409), (429, False, 429)])
def test_page_status(form, status, errors, expected):
    if errors:
        form.amount.errors = ["Non."]
    assert forms.page_status(form, status) == expected


# ---------------------------------------------------------------- flash_refusal, or_404


def test_flash_refusal_flashes_the_message_as_an_error(app):
    with app.test_request_context():
        forms.flash_refusal(AlreadyPaid())
        assert get_flashed_messages(with_categories=True) == [
            ("error", AlreadyPaid.default_message)]
        with pytest.raises(HTTPException) as raised:
            forms.flash_refusal(NotFound(), not_found_404=True)
        assert raised.value.code == 404


def test_or_404_turns_any_refusal_into_a_404_and_nothing_else(app):
    with app.test_request_context():
        with forms.or_404():
            found = "found"
        assert found == "found"
        for refusal in (NotFound(), AlreadyPaid(), InvalidInput()):
            with pytest.raises(HTTPException) as raised, forms.or_404():
                raise refusal
            assert raised.value.code == 404
        with pytest.raises(KeyError), forms.or_404():
            raise KeyError("a bug stays a bug")
