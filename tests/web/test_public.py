"""The pages of approval and of the public directory: the application round trip
(draft, sent, approved, seen by the applicant), refusal and correction, the
directory (approved only, filters, nothing personal), 404s, roles and CSRF."""

from __future__ import annotations

import re

import pytest

from bousol.ledger.kernel import iban, siret
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.merchants import approval
from bousol.ledger.models import Role
from tests.helpers import APPLICATION_FORM as FORM
from tests.helpers import (
    PASSWORD,
    application,
    csrf_token,
    login,
    post_form,
    valid_siret,
)


def _field_has_error(html: str, field_id: str) -> bool:
    tag = re.search(rf'<(?:input|select|textarea)[^>]*id="{field_id}"[^>]*>', html)
    return bool(tag and 'aria-invalid="true"' in tag.group(0)
                and f'aria-describedby="{field_id}-error"' in tag.group(0)
                and f'id="{field_id}-error"' in html)


@pytest.fixture
def admin_client(app, ledger):
    admin = ledger.user("admin")
    other = app.test_client()
    login(other, admin.username, PASSWORD)
    other.admin = admin
    return other


# ---------------------------------------------------------------- the application


def test_the_application_form_is_public(client):
    page = client.get("/agrement")
    assert page.status_code == 200
    html = page.text
    assert "Devenir prestataire" in html and 'name="csrf_token"' in html
    for name in ("name", "legal_form", "siret", "address", "commune", "filiere",
                 "contact_name", "phone", "email", "iban", "bic", "charter", "username",
                 "password", "password_confirm"):
        assert f'name="{name}"' in html, name
        assert re.search(rf'<label for="{name}"', html), name
    assert 'autocomplete="organization"' in html and 'autocomplete="new-password"' in html
    assert 'value="submit"' in html and 'value="draft"' in html


def test_draft_then_sent_then_approved_and_seen_by_the_applicant(client, ledger,
                                                                 admin_client):
    # A draft: the name and the filière are enough; the applicant is logged in.
    saved = post_form(client, "/agrement", name="Le Fournil", filiere="alimentation",
                      username="fournil", password=PASSWORD,
                      password_confirm=PASSWORD, action="draft")
    assert saved.status_code == 302 and saved.location.endswith("/prestataire/agrement")
    page = client.get(saved.location).text
    assert "Brouillon enregistré" in page and "Brouillon" in page
    assert 'data-testid="missing"' in page and "SIRET" in page

    # Sending it incomplete: refused, each error beside its field, nothing sent.
    refused = post_form(client, "/prestataire/agrement", name="Le Fournil",
                        filiere="alimentation", siret="732 829 320 00075", action="submit")
    assert refused.status_code == 422
    assert _field_has_error(refused.text, "siret") and "clé de contrôle" in refused.text
    assert _field_has_error(refused.text, "contact_name")
    assert 'role="alert"' in refused.text and 'href="#siret"' in refused.text
    assert ledger.count("approval_decisions") == 0

    # Complete, charter ticked, sent.
    form = {k: v for k, v in FORM.items() if not k.startswith(("username", "password"))}
    sent = post_form(client, "/prestataire/agrement", **form, charter="y", action="submit")
    assert sent.status_code == 302
    page = client.get("/prestataire/agrement").text
    assert "Demande envoyée, en cours d'examen" in page
    assert "<form" not in page.split("Où en est")[1].split("Historique")[0]  # no more edits
    code = re.search(r"P-\d{6}", page).group(0)

    # The association sees it first, with everything, and approves it.
    listing = admin_client.get("/admin/prestataires").text
    assert "1 demande à examiner" in listing
    assert f'href="/admin/prestataires/{code}"' in listing
    detail = admin_client.get(f"/admin/prestataires/{code}").text
    assert "732 829 320 00074" in detail and "Hélène Caron" in detail
    assert "FR76 3000 6000 0112 3456 7890 189" in detail
    assert "Agréer ce prestataire" in detail and "Refuser la demande" in detail
    assert "Suspendre" not in detail and "Rétablir" not in detail
    done = post_form(admin_client, f"/admin/prestataires/{code}/approuver",
                     f"/admin/prestataires/{code}")
    assert done.status_code == 302
    detail = admin_client.get(done.location).text
    assert "maintenant « Agréé »" in detail and "Suspendre l'agrément" in detail
    assert "Agréer ce prestataire" not in detail

    # The applicant sees the decision: who (the association), when.
    page = client.get("/prestataire/agrement").text
    assert 'data-testid="approval-status">Agréé<' in page
    assert "Agrément accordé" in page
    assert f"l'association ({admin_client.admin.username})" in page
    assert f'href="/annuaire/{code}"' in page
    assert "Le Fournil de l&#39;Estran" in client.get("/annuaire").text


def test_bad_input_on_the_public_form_writes_nothing(client, ledger):
    parties = ledger.count("parties")
    bad = post_form(client, "/agrement", **{**FORM, "siret": "123", "iban": "FR00 1234",
                                            "password_confirm": "autre-chose"},
                    charter="y", action="submit")
    assert bad.status_code == 422
    for field_id in ("siret", "iban", "password_confirm"):
        assert _field_has_error(bad.text, field_id), field_id
    assert ledger.count("parties") == parties and ledger.count("users") == 0

    no_charter = post_form(client, "/agrement", **FORM, action="submit")
    assert no_charter.status_code == 422
    assert 'aria-describedby="charter-error"' in no_charter.text
    assert "accepter la charte" in no_charter.text
    assert ledger.count("parties") == parties

    weird = post_form(client, "/agrement", **{**FORM, "legal_form": "gmbh", "filiere": "x"},
                      charter="y", action="submit")
    assert weird.status_code == 422 and _field_has_error(weird.text, "legal_form")
    assert _field_has_error(weird.text, "filiere")


def test_a_taken_username_is_said_on_its_field(client, ledger):
    ledger.user("soliste")  # soliste1…: not the one below
    first = post_form(client, "/agrement", **FORM, charter="y", action="submit")
    assert first.status_code == 302
    other = type(client)(client.application)
    again = post_form(other, "/agrement", **{**FORM, "siret": valid_siret(3)}, charter="y",
                      action="submit")
    assert again.status_code == 422 and _field_has_error(again.text, "username")
    assert "n&#39;est pas disponible" in again.text and "déjà pris" not in again.text


def test_refused_then_corrected_and_sent_again(client, ledger, admin_client):
    assert post_form(client, "/agrement", **FORM, charter="y", action="submit").status_code == 302
    code = re.search(r"P-\d{6}", client.get("/prestataire/agrement").text).group(0)
    path = f"/admin/prestataires/{code}"
    no_reason = post_form(admin_client, f"{path}/refuser", path, refuse_reason="  ")
    assert no_reason.status_code == 422 and _field_has_error(no_reason.text, "refuse_reason")
    assert "Motif obligatoire" in no_reason.text
    refused = post_form(admin_client, f"{path}/refuser", path,
                        refuse_reason="Le SIRET est celui du siège, pas de la boutique.")
    assert refused.status_code == 302

    page = client.get("/prestataire/agrement").text
    assert "Demande refusée" in page
    assert "Le SIRET est celui du siège, pas de la boutique." in page
    assert "Corriger ma demande" in page
    assert post_form(client, "/prestataire/agrement/corriger",
                     "/prestataire/agrement").status_code == 302
    page = client.get("/prestataire/agrement").text
    assert "Demande rouverte pour correction" in page and 'value="732 829 320 00074"' in page
    corrected = {k: v for k, v in FORM.items() if not k.startswith(("username", "pass"))}
    sent = post_form(client, "/prestataire/agrement",
                     **{**corrected, "siret": siret.display(valid_siret(9))}, charter="y",
                     action="submit")
    assert sent.status_code == 302
    assert "Agréer ce prestataire" in admin_client.get(path).text


def test_suspend_and_reinstate_on_the_pages(client, ledger, admin_client):
    shop = ledger.prestataire(name="Cycles du Port")
    path = f"/admin/prestataires/{shop.party_code}"
    assert "Suspendre l'agrément" in admin_client.get(path).text
    assert post_form(admin_client, f"{path}/suspendre", path, suspend_reason="").status_code == 422
    assert post_form(admin_client, f"{path}/suspendre", path,
                     suspend_reason="Impayés de cotisation.").status_code == 302
    detail = admin_client.get(path).text
    assert "Impayés de cotisation." in detail and "Rétablir l'agrément" in detail
    assert admin_client.get(f"/annuaire/{shop.party_code}").status_code == 404
    # The transition refused (already suspended): said, nothing done.
    again = post_form(admin_client, f"{path}/suspendre", path, suspend_reason="Encore.")
    assert again.status_code == 302
    assert "l&#39;agrément est suspendu" in admin_client.get(path).text
    assert post_form(admin_client, f"{path}/retablir", path).status_code == 302
    assert admin_client.get(f"/annuaire/{shop.party_code}").status_code == 200


def test_the_applicant_edits_its_public_page(client, ledger):
    assert post_form(client, "/agrement", **FORM, charter="y", action="submit").status_code == 302
    page = client.get("/prestataire/fiche")
    assert page.status_code == 200 and "sera publiée" in page.text
    saved = post_form(client, "/prestataire/fiche", opening_hours="Mardi–samedi : 7 h – 19 h",
                      description="Pain au levain.")
    assert saved.status_code == 302
    too_long = post_form(client, "/prestataire/fiche", opening_hours="x" * 501, description="")
    assert too_long.status_code == 422 and _field_has_error(too_long.text, "opening_hours")
    page = client.get("/prestataire/fiche").text
    assert "Mardi–samedi : 7 h – 19 h" in page


# ---------------------------------------------------------------- the directory


@pytest.fixture
def town(ledger):
    admin = ledger.user("admin")
    made = {}
    for key, status, name, commune, filiere in (
        ("epicerie", "approved", "Épicerie de l’Estran", "Le Portel", "alimentation"),
        ("velo", "approved", "Vélo Côte d'Opale", "Boulogne-sur-Mer", "mobilite-douce"),
        ("draft", "draft", "Brouillon SARL", "Wimereux", "alimentation"),
        ("submitted", "submitted", "En attente SAS", "Wimereux", "alimentation"),
        ("suspended", "suspended", "Suspendue EURL", "Outreau", "habitat-durable"),
    ):
        applied = approval.apply(
            ledger.uow(), username=f"shop-{key}", password=PASSWORD,
            submit=status != "draft",
            **application(name=name, commune=commune, filiere=filiere,
                          contact_name=f"Contact {key.title()}",
                          email=f"{key}@personne.example", phone=f"06 00 00 00 {len(key):02d}"))
        if status in ("approved", "suspended"):
            approval.approve(ledger.uow(), admin, applied.party_code)
        if status == "suspended":
            approval.suspend(ledger.uow(), admin, applied.party_code, "Motif.")
        made[key] = applied
    shop = Actor(made["velo"].user_id, Role.PRESTATAIRE, made["velo"].party_id,
                 made["velo"].party_code, made["velo"].username)
    approval.update_public_profile(ledger.uow(), shop, opening_hours="Lundi : 9 h – 18 h",
                                   description="Réparation et location.")
    marie = ledger.soliste(name="Marie Lefebvre")
    ledger.subsidy("10.00")
    ledger.exchange(marie, "20.00")
    ledger.pay(marie, made["velo"].party_code, "5.00", memo="Réparation pour Marie Lefebvre")
    return made


def _private_values(ledger, made) -> list[str]:
    """Everything personal about these prestataires, in every way a page could write it."""
    values = ["Marie Lefebvre"]
    with ledger.uow(read_only=True) as uow:
        for applied in made.values():
            found = approval.application(uow.conn, applied.party_code)
            values += [found.contact_name, found.email, found.phone, found.siret,
                       siret.display(found.siret), found.iban, iban.display(found.iban),
                       applied.username]
    return values


def test_the_directory_shows_approved_prestataires_and_nothing_personal(client, ledger,
                                                                        town):
    page = client.get("/annuaire")
    assert page.status_code == 200
    html = page.text
    assert "Où payer en Bou&#39;Sol ?" in html
    assert "Épicerie de l’Estran" in html and "Vélo Côte d&#39;Opale" in html
    for hidden in ("Brouillon SARL", "En attente SAS", "Suspendue EURL"):
        assert hidden not in html
    assert html.index("Épicerie") < html.index("Vélo")  # by name, É with the E
    pages = [html, client.get(f"/annuaire/{town['velo'].party_code}").text,
             client.get(f"/annuaire/{town['epicerie'].party_code}").text,
             client.get("/annuaire?q=velo").text]
    for value in _private_values(ledger, town):
        for one in pages:
            assert value not in one, value
    entry = pages[1]
    assert "Lundi : 9 h – 18 h" in entry and "Réparation et location." in entry
    assert "Boulogne-sur-Mer" in entry and "Mobilité douce" in entry


@pytest.mark.parametrize(("query", "shown", "hidden"), [
    ("q=epicerie", ["Épicerie"], ["Vélo"]),
    ("q=V%C3%89LO", ["Vélo"], ["Épicerie"]),
    ("filiere=mobilite-douce", ["Vélo"], ["Épicerie"]),
    ("commune=Le+Portel", ["Épicerie"], ["Vélo"]),
    ("commune=Le+Portel&filiere=mobilite-douce", [], ["Épicerie", "Vélo"]),
    ("q=" + "x" * 500, [], ["Épicerie", "Vélo"]),
    ("filiere=nonsense", [], ["Épicerie", "Vélo"]),
])
def test_directory_filters(client, town, query, shown, hidden):
    page = client.get(f"/annuaire?{query}")
    assert page.status_code == 200
    results = page.text.split('id="resultats"')[1]
    for name in shown:
        assert name in results
    for name in hidden:
        assert name not in results
    if not shown:
        assert "Aucun prestataire agréé ne correspond" in results


def test_the_search_form_offers_approved_communes_only(client, town):
    html = client.get("/annuaire?commune=Le+Portel").text
    communes = re.findall(r'<option value="([^"]*)"', html.split('id="commune"')[1]
                          .split("</select>")[0])
    assert communes == ["", "Boulogne-sur-Mer", "Le Portel"]
    assert '<option value="Le Portel" selected>' in html
    assert 'role="search"' in html and '<label for="q">' in html


def test_unknown_or_unapproved_entries_are_not_found(client, ledger, town):
    marie = ledger.soliste(name="Marie Curie")
    for code in (town["draft"].party_code, town["submitted"].party_code,
                 town["suspended"].party_code, marie.party_code, "P-999999", "nimporte"):
        page = client.get(f"/annuaire/{code}")
        assert page.status_code == 404, code
        assert "Marie Curie" not in page.text


def test_footer_links_to_the_directory_and_to_applying(client):
    html = client.get("/connexion").text
    assert 'href="/annuaire"' in html and 'href="/agrement"' in html


# ---------------------------------------------------------------- roles and CSRF


def test_csrf_is_required(client, ledger, admin_client):
    shop = ledger.prestataire()
    assert client.post("/agrement", data={**FORM, "action": "submit"}).status_code == 400
    assert ledger.count("users") == 2
    assert admin_client.post(f"/admin/prestataires/{shop.party_code}/suspendre",
                             data={"suspend_reason": "x"}).status_code == 400
    login(client, shop.username, PASSWORD)
    assert client.post("/prestataire/agrement/corriger").status_code == 400
    assert client.post("/prestataire/fiche", data={"description": "x"}).status_code == 400


@pytest.mark.parametrize("role", ["soliste", "prestataire", "bank", "ccas"])
def test_only_admins_see_the_applications(app, ledger, role):
    shop = ledger.prestataire()
    user = shop if role == "prestataire" else ledger.user(role)
    other = app.test_client()
    login(other, user.username, PASSWORD)
    for path in ("/admin/prestataires", f"/admin/prestataires/{shop.party_code}"):
        assert other.get(path).status_code == 403, path
    own = other.get("/connexion", follow_redirects=True)
    assert other.post(f"/admin/prestataires/{shop.party_code}/suspendre", data={
        "csrf_token": csrf_token(own.text), "suspend_reason": "x"}).status_code == 403
    if role == "bank":
        assert "/admin/prestataires" not in other.get("/comptoir/").text


def test_admin_home_links_to_the_applications(admin_client):
    assert 'href="/admin/prestataires"' in admin_client.get("/admin/").text


def test_applicant_pages_need_a_prestataire(app, client, ledger):
    assert client.get("/prestataire/agrement").status_code == 302  # to log in
    marie = ledger.soliste()
    login(client, marie.username, PASSWORD)
    assert client.get("/prestataire/agrement").status_code == 403
    assert client.get("/prestataire/fiche").status_code == 403


def test_logged_in_users_are_not_offered_a_second_account(client, ledger, admin_client):
    page = admin_client.get("/agrement")
    assert page.status_code == 200 and 'name="username"' not in page.text
    shop = ledger.prestataire()
    login(client, shop.username, PASSWORD)
    assert client.get("/agrement").location.endswith("/prestataire/agrement")


def test_unknown_application_pages(admin_client, ledger):
    marie = ledger.soliste()
    for code in ("P-999999", marie.party_code):
        path = f"/admin/prestataires/{code}"
        assert admin_client.get(path).status_code == 404
        page = admin_client.get("/admin/prestataires")
        assert admin_client.post(f"{path}/approuver", data={
            "csrf_token": csrf_token(page.text)}).status_code == 404


@pytest.mark.parametrize(("status", "says"), [
    ("draft", "pas encore envoyée"),
    ("submitted", "en cours d'examen : vous ne pouvez pas encore être payé en Bou'Sol."),
    ("refused", "a été refusée"),
    ("suspended", "vous gardez votre solde et pouvez demander la reconversion"),
    ("approved", None),
    ("active", None),
])
def test_the_status_banner_for_the_merchant_home(app, status, says):
    from types import SimpleNamespace

    from flask import render_template_string

    with app.test_request_context("/prestataire/"):
        html = render_template_string('{% include "merchant/_status.html" %}',
                                      party=SimpleNamespace(status=status))
    if says is None:
        assert html.strip() == ""
    else:
        assert says in html and 'href="/prestataire/agrement"' in html
