"""The CCAS's pages through Flask: programmes, granting (one, earmarked, a CSV batch),
cancelling, beneficiaries (export, erasure), and who may see what."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re

import pytest
import sqlalchemy as sa

from bousol.ledger.ccas import vouchers
from bousol.ledger.desk import exchange as desk_exchange
from bousol.ledger.kernel.clock import paris_today
from tests.helpers import BANK, PASSWORD, csrf_token, hammer, login

TODAY = paris_today()


def _fr(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def _plain(text: str) -> str:
    return html.unescape(text).replace("\u202f", " ").replace("\u00a0", " ")


@pytest.fixture
def ccas(app, ledger):
    """The CCAS logged in, the public-policy phase open, the bonus fund fed."""
    ledger.subsidy("100.00")
    ledger.phase("ccas", True)
    agent = ledger.user("ccas", name="CCAS de Boulogne-sur-Mer")
    web = app.test_client()
    login(web, agent.username, PASSWORD)
    return ledger, agent, web


def create_programme(web, **overrides) -> int:
    page = web.get("/ccas/programmes/nouveau")
    assert page.status_code == 200
    data = {"csrf_token": csrf_token(page.text), "name": "Aide alimentaire hiver 2026",
            "budget": "1 000,00", "starts_on": _fr(TODAY),
            "ends_on": _fr(TODAY + dt.timedelta(days=120)), "filieres": ["alimentation"],
            "default_validity_days": "60", "multi_use": "y"}
    data.update(overrides)
    created = web.post("/ccas/programmes/nouveau", data=data)
    assert created.status_code == 302, created.text
    return int(created.headers["Location"].rstrip("/").rsplit("/", 1)[-1])


@pytest.fixture
def funded(ccas):
    """…with a food programme funded with 200 € (210 B)."""
    ledger, agent, web = ccas
    programme_id = create_programme(web)
    ledger.exchange(agent, "200.00", programme_id=programme_id)
    return ledger, agent, web, programme_id


def grant(web, programme_id, *, expect=302, **fields):
    page = web.get("/ccas/bons/nouveau")
    data = {"csrf_token": csrf_token(page.text), "programme": str(programme_id or ""),
            "beneficiary_ref": "D-2026-0001", "beneficiary_name": "Jeanne Martin",
            "amount": "30,00", "valid_until": "", "soliste_code": ""}
    data.update(fields)
    answer = web.post("/ccas/bons/nouveau", data=data)
    assert answer.status_code == expect, answer.text
    return answer


def granted_code(answer) -> str:
    return answer.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def upload(web, content: bytes | str, programme_id=None, valid_until="", encoding="auto"):
    page = web.get("/ccas/bons/lot")
    if isinstance(content, str):
        content = content.encode("utf-8")
    return web.post("/ccas/bons/lot", content_type="multipart/form-data", data={
        "csrf_token": csrf_token(page.text), "programme": str(programme_id or ""),
        "valid_until": valid_until, "encoding": encoding,
        "csv_file": (io.BytesIO(content), "lot.csv")})


# ---------------------------------------------------------------- programmes


def test_create_programme_then_its_page_shows_the_funding(ccas):
    ledger, agent, web = ccas
    programme_id = create_programme(web)
    page = web.get(f"/ccas/programmes/{programme_id}")
    assert page.status_code == 200
    assert "Aide alimentaire hiver 2026" in page.text
    assert "Financement : au comptoir de la banque SOL" in page.text
    assert "Alimentation" in page.text and "60 jours" in page.text
    assert f"/ccas/programmes/{programme_id}/rapport" in page.text
    ledger.exchange(agent, "200.00", programme_id=programme_id)
    page = web.get(f"/ccas/programmes/{programme_id}")
    text = _plain(page.text)
    assert 'data-testid="funded-eur">200,00 €' in text
    assert 'data-testid="funded-bsol">210,00 B' in text
    assert 'data-testid="available">210,00 B' in text
    assert 'data-testid="budget">1 000,00 €' in text
    # The home page lists it; the CCAS's own balance leaves the programme's account out.
    ledger.exchange(agent, "10.00")
    home = _plain(web.get("/ccas/").text)
    assert "Aide alimentaire hiver 2026" in home
    assert 'data-testid="balance-bsol">10,50 B' in home
    assert ledger.count("aid_programmes") == 1


def test_no_filiere_checked_means_every_filiere(ccas):
    ledger, _agent, web = ccas
    programme_id = create_programme(web, filieres=[], multi_use="")
    with ledger.engine.connect() as conn:
        prog = vouchers.programme(conn, programme_id)
    assert prog.filieres is None and prog.multi_use is False
    assert "toutes" in web.get(f"/ccas/programmes/{programme_id}").text


@pytest.mark.parametrize(("field", "value", "message"), [
    ("starts_on", "31/02/2026", "Début invalide"),
    ("ends_on", "demain", "Fin invalide"),
    ("ends_on", _fr(TODAY - dt.timedelta(days=1)), "précède son début"),
    ("budget", "mille", "Montant invalide"),
    ("default_validity_days", "0", "Validité des bons"),
    ("default_validity_days", "400", "Validité des bons"),
    ("filieres", ["boulangerie"], "Filière inconnue"),
    ("name", "", "Obligatoire"),
])
def test_bad_programme_is_a_form_error_and_nothing_is_written(ccas, field, value, message):
    ledger, _agent, web = ccas
    page = web.get("/ccas/programmes/nouveau")
    data = {"csrf_token": csrf_token(page.text), "name": "Aide", "budget": "100",
            "starts_on": _fr(TODAY), "ends_on": _fr(TODAY + dt.timedelta(days=30)),
            "default_validity_days": "30", field: value}
    answer = web.post("/ccas/programmes/nouveau", data=data)
    assert answer.status_code == 422
    assert message in answer.text
    error_id = {"filieres": "filieres-error"}.get(field, f"{field}-error")
    assert f'id="{error_id}"' in answer.text  # by its field
    assert ledger.count("aid_programmes") == 0


# ---------------------------------------------------------------- granting


def test_grant_a_paper_voucher(funded):
    ledger, _agent, web, programme_id = funded
    answer = grant(web, programme_id)
    code = granted_code(answer)
    page = web.get(f"/ccas/bons/{code}")
    assert page.status_code == 200
    text = _plain(page.text)
    assert code in text and "Jeanne Martin" in text and "D-2026-0001" in text
    assert 'data-testid="voucher-remaining">30,00 B' in text
    assert "/ccas/bons/impression?bons=" in text  # the print link
    assert "Ouvert" in text
    with ledger.engine.connect() as conn:
        assert vouchers.figures(conn, programme_id).available_cents == 18000
    # The code typed in a forgiving spelling leads to the same page.
    loose = web.get(f"/ccas/bons/{code.replace('-', '').lower()}")
    assert loose.status_code == 302 and loose.headers["Location"].endswith(f"/ccas/bons/{code}")
    # Validity chosen: within the programme's default.
    until = TODAY + dt.timedelta(days=10)
    second = grant(web, programme_id, beneficiary_ref="D-2026-0002", valid_until=_fr(until))
    assert _fr(until) in web.get(second.headers["Location"]).text
    ledger.assert_consistent()


def test_grant_earmarked_on_a_soliste_account(funded):
    ledger, _agent, web, programme_id = funded
    marie = ledger.soliste(name="Marie Lefebvre")
    answer = grant(web, programme_id, soliste_code=marie.party_code.lower(), amount="25")
    page = _plain(web.get(answer.headers["Location"]).text)
    assert marie.party_code in page and "sur le compte d'un soliste" in page
    assert "/ccas/bons/impression" not in page  # nothing to print
    with ledger.engine.connect() as conn:
        party_id = conn.execute(sa.text("SELECT id FROM parties WHERE code = :code"),
                                {"code": marie.party_code}).scalar_one()
        assert vouchers.earmarked_balance(conn, party_id) == 2500
    ledger.assert_consistent()


def test_grant_from_the_ccas_own_account(ccas):
    ledger, agent, web = ccas
    ledger.exchange(agent, "20.00")  # 21 B on its main account
    answer = grant(web, None, amount="15")
    assert "Compte du CCAS" in web.get(answer.headers["Location"]).text
    assert ledger.balance(agent) == 600


@pytest.mark.parametrize(("fields", "status", "message", "error_id"), [
    ({"amount": "12,345"}, 422, "Montant invalide", "amount-error"),
    ({"amount": ""}, 422, "Obligatoire", "amount-error"),
    ({"beneficiary_ref": "D;1"}, 422, "lettres, chiffres", "beneficiary_ref-error"),
    ({"valid_until": "32/13/2026"}, 422, "Validité invalide", "valid_until-error"),
    ({"valid_until": _fr(TODAY - dt.timedelta(days=1))}, 422, "déjà passée",
     "valid_until-error"),
    ({"valid_until": _fr(TODAY + dt.timedelta(days=400))}, 422, "366 jours",
     "valid_until-error"),
    ({"amount": "500"}, 422, "n'a que 210,00", "amount-error"),
    ({"soliste_code": "S-999999"}, 422, "Aucun soliste", "soliste_code-error"),
    ({"programme": "999"}, 422, "Programme d'aide introuvable", "programme-error"),
    ({"programme": "99999999999999999999"}, 422, "Programme d'aide introuvable",
     "programme-error"),
    ({"filieres": ["loisirs-culture"]}, 422, "pas celles du programme", "filieres-error"),
])
def test_bad_grant_is_a_form_error_and_nothing_is_written(funded, fields, status, message,
                                                          error_id):
    ledger, _agent, web, programme_id = funded
    answer = grant(web, programme_id, expect=status, **fields)
    assert message in _plain(answer.text)
    assert f'id="{error_id}"' in answer.text
    assert ledger.count("vouchers") == 0 and ledger.count("beneficiaries") == 0


def test_grant_does_not_wait_for_the_phase(funded):
    """Vouchers are the CCAS's own instrument (docs/vouchers.md, Phases)."""
    ledger, _agent, web, programme_id = funded
    ledger.phase("ccas", False)
    assert "n'est pas ouverte" not in _plain(web.get("/ccas/bons/nouveau").text)
    grant(web, programme_id)
    assert ledger.count("vouchers") == 1


# ---------------------------------------------------------------- CSV batches

BAD_CSV = ("reference;montant;nom\n"
           "D-1;20,00;Jeanne Martin\n"
           "D-2;abc\n"
           "D<3;10\n"
           "D-1;5\n"
           "D-4;10;Paul;extra\n"
           ";10\n")
GOOD_CSV = "reference;montant;nom\nD-1;20,00;Jeanne Martin\nD-2;15\nD-3;5,50\n"


def test_batch_preview_lists_every_bad_line_and_writes_nothing(funded):
    ledger, _agent, web, programme_id = funded
    answer = upload(web, BAD_CSV, programme_id)
    assert answer.status_code == 422
    text = _plain(answer.text)
    assert text.count('data-testid="bad-line"') == 5
    assert "Montant invalide" in text  # line 3
    assert "lettres, chiffres" in text  # line 4
    assert "Référence déjà à la ligne 2" in text  # line 5
    assert "Trop de colonnes" in text  # line 6
    assert "obligatoire" in text  # line 7
    assert "Confirmer l'attribution" not in text
    assert "<caption>" in answer.text
    assert ledger.count("vouchers") == 0 and ledger.count("voucher_batches") == 0


def test_batch_good_file_then_confirm_grants_all(funded):
    ledger, _agent, web, programme_id = funded
    preview = upload(web, GOOD_CSV, programme_id)
    assert preview.status_code == 200
    text = _plain(preview.text)
    assert "Confirmer l'attribution de 3 bons (total 40,50 B)" in text
    assert ledger.count("vouchers") == 0  # nothing yet
    assert 'name="csv_text"' in preview.text  # the file goes back with the confirmation
    confirmed = web.post("/ccas/bons/lot/confirmer", data={
        "csrf_token": csrf_token(preview.text), "csv_text": GOOD_CSV,
        "programme": str(programme_id), "valid_until": ""})
    assert confirmed.status_code == 302, confirmed.text
    assert "/ccas/lots/" in confirmed.headers["Location"]
    batch_id = int(confirmed.headers["Location"].rsplit("/", 1)[-1])
    page = _plain(web.get(confirmed.headers["Location"]).text)
    assert f"/ccas/bons/impression?lot={batch_id}" in page
    assert 'data-testid="batch-count">3' in page and "Jeanne Martin" in page
    assert ledger.count("vouchers") == 3
    with ledger.engine.connect() as conn:
        assert vouchers.figures(conn, programme_id).available_cents == 21000 - 4050
    ledger.assert_consistent()


def test_batch_refused_at_confirmation_writes_nothing(funded):
    ledger, _agent, web, programme_id = funded
    big = "D-1;200\nD-2;20\n"
    preview = upload(web, big, programme_id)
    assert preview.status_code == 200 and "dépasse ce qui est disponible" in preview.text
    refused = web.post("/ccas/bons/lot/confirmer", data={
        "csrf_token": csrf_token(preview.text), "csv_text": big,
        "programme": str(programme_id), "valid_until": ""})
    assert refused.status_code == 422 and "n'a que" in _plain(refused.text)
    assert ledger.count("vouchers") == 0 and ledger.count("voucher_batches") == 0
    # A tampered file sent back with a bad line: all or nothing still.
    tampered = web.post("/ccas/bons/lot/confirmer", data={
        "csrf_token": csrf_token(preview.text), "csv_text": "D-1;5\nD-2;x\n",
        "programme": str(programme_id), "valid_until": ""})
    assert tampered.status_code == 422 and "rien n'a été attribué" in _plain(tampered.text)
    assert ledger.count("vouchers") == 0


@pytest.mark.parametrize(("content", "message"), [
    # 0x81 is no character of Windows-1252 and no UTF-8: neither (issue 13).
    (b"D-1;10;H\x81l\xe8ne\n", "ni en UTF-8 ni en Windows-1252"),
    ("D-1;10\n".encode("utf-16"), "pas un fichier texte CSV"),
    ("D-1;10\n".encode("utf-16-le"), "pas un fichier texte CSV"),  # NULs, no BOM
    (b"", "Choisissez un fichier"),
    (b"\n\n", "vide"),
])
def test_batch_bad_files_are_form_errors(funded, content, message):
    ledger, _agent, web, programme_id = funded
    if content == b"":
        page = web.get("/ccas/bons/lot")
        answer = web.post("/ccas/bons/lot", content_type="multipart/form-data", data={
            "csrf_token": csrf_token(page.text), "programme": str(programme_id)})
    else:
        answer = upload(web, content, programme_id)
    assert answer.status_code == 422
    assert message in _plain(answer.text) and 'id="csv_file-error"' in answer.text
    assert ledger.count("vouchers") == 0


def test_batch_bad_validity_and_unknown_programme(funded):
    _ledger, _agent, web, _programme_id = funded
    answer = upload(web, GOOD_CSV, 999, valid_until="hier")
    assert answer.status_code == 422
    text = _plain(answer.text)
    assert "Programme d'aide introuvable" in text and "Validité invalide" in text


# ---------------------------------------------------------------- cancelling


def test_cancel_asks_first_then_returns_the_value(funded):
    ledger, _agent, web, programme_id = funded
    code = granted_code(grant(web, programme_id))
    page = web.get(f"/ccas/bons/{code}")
    question = web.post(f"/ccas/bons/{code}/annuler",
                        data={"csrf_token": csrf_token(page.text)})
    assert question.status_code == 200
    assert "définitive" in _plain(question.text) and "30,00" in _plain(question.text)
    with ledger.engine.connect() as conn:
        assert vouchers.figures(conn, programme_id).available_cents == 18000
    done = web.post(f"/ccas/bons/{code}/annuler",
                    data={"csrf_token": csrf_token(question.text), "confirmed": "1"})
    assert done.status_code == 302
    page = web.get(f"/ccas/bons/{code}")
    assert "Annulé" in page.text and "Annuler le bon" not in page.text
    with ledger.engine.connect() as conn:
        figures = vouchers.figures(conn, programme_id)
    assert figures.available_cents == 21000 and figures.cancelled_cents == 3000
    # Again: refused, said in a message, nothing moves.
    again = web.post(f"/ccas/bons/{code}/annuler",
                     data={"csrf_token": csrf_token(page.text), "confirmed": "1"},
                     follow_redirects=True)
    assert "annulé" in _plain(again.text)
    # Without a CSRF token: refused.
    assert web.post(f"/ccas/bons/{code}/annuler", data={"confirmed": "1"}).status_code == 400
    ledger.assert_consistent()


def test_voucher_page_lists_its_redemptions(funded):
    ledger, _agent, web, programme_id = funded
    code = granted_code(grant(web, programme_id))
    grocer = ledger.prestataire("alimentation", name="Épicerie solidaire")
    vouchers.redeem(ledger.uow(), grocer, code=code, amount="12.50")
    page = _plain(web.get(f"/ccas/bons/{code}").text)
    assert "Épicerie solidaire" in page and grocer.party_code in page
    assert "12,50 B" in page and 'data-testid="voucher-remaining">17,50 B' in page


# ---------------------------------------------------------------- beneficiaries


def test_beneficiary_search_export_and_erase(funded):
    ledger, agent, web, programme_id = funded
    code = granted_code(grant(web, programme_id, beneficiary_ref="D-2026/07"))
    grant(web, programme_id, beneficiary_ref="X-1", beneficiary_name="Autre Personne")
    found = web.get("/ccas/beneficiaires?ref=2026")
    assert found.status_code == 200
    assert "D-2026/07" in found.text and "X-1" not in found.text

    page = web.get("/ccas/beneficiaires/D-2026/07")
    assert page.status_code == 200 and "Jeanne Martin" in page.text and code in page.text
    export = web.get("/ccas/beneficiaires/D-2026/07?format=json")
    assert export.status_code == 200 and export.mimetype == "application/json"
    assert export.headers["Content-Disposition"].startswith("attachment;")
    data = json.loads(export.data)
    assert data["reference"] == "D-2026/07" and data["name"] == "Jeanne Martin"
    assert data["ccas"]["code"] == agent.party_code
    assert [v["code"] for v in data["vouchers"]] == [code]
    assert data["vouchers"][0]["amount"] == "30.00"

    # Erasing needs the box ticked.
    refused = web.post("/ccas/beneficiaires/D-2026/07",
                       data={"csrf_token": csrf_token(page.text)})
    assert refused.status_code == 422 and "Cochez la case" in _plain(refused.text)
    assert 'id="confirm-error"' in refused.text
    erased = web.post("/ccas/beneficiaires/D-2026/07",
                      data={"csrf_token": csrf_token(page.text), "confirm": "y"})
    assert erased.status_code == 302
    for path in ("/ccas/", f"/ccas/programmes/{programme_id}", f"/ccas/bons/{code}",
                 "/ccas/beneficiaires", "/ccas/beneficiaires?ref=D"):
        shown = web.get(path)
        assert shown.status_code == 200, path
        assert "Jeanne Martin" not in shown.text and "D-2026/07" not in shown.text, path
    assert "Autre Personne" in web.get(f"/ccas/programmes/{programme_id}").text
    assert web.get("/ccas/beneficiaires/D-2026/07").status_code == 404
    assert web.get("/ccas/beneficiaires/D-2026/07?format=json").status_code == 404
    assert ledger.count("vouchers") == 2  # the vouchers stay, anonymous
    ledger.assert_consistent()


# ---------------------------------------------------------------- who sees what


def test_other_roles_are_refused(app, funded):
    ledger, _agent, _web, programme_id = funded
    paths = ["/ccas/", "/ccas/programmes", "/ccas/programmes/nouveau",
             f"/ccas/programmes/{programme_id}", "/ccas/bons/nouveau", "/ccas/bons/lot",
             "/ccas/beneficiaires"]
    for role in ("soliste", "prestataire", "bank", "admin"):
        user = ledger.user(role, filiere="alimentation" if role == "prestataire" else None)
        other = app.test_client()
        login(other, user.username, PASSWORD)
        for path in paths:
            assert other.get(path).status_code == 403, (role, path)
    anonymous = app.test_client()
    assert anonymous.get("/ccas/").status_code == 302


def test_another_ccas_sees_nothing_of_the_first(app, funded):
    ledger, _agent, web, programme_id = funded
    code = granted_code(grant(web, programme_id))
    preview = upload(web, GOOD_CSV, programme_id)
    confirmed = web.post("/ccas/bons/lot/confirmer", data={
        "csrf_token": csrf_token(preview.text), "csv_text": GOOD_CSV,
        "programme": str(programme_id), "valid_until": ""})
    batch_path = confirmed.headers["Location"]
    rival = ledger.user("ccas", name="CCAS de Calais")
    other = app.test_client()
    login(other, rival.username, PASSWORD)
    for path in (f"/ccas/programmes/{programme_id}", f"/ccas/bons/{code}", batch_path,
                 "/ccas/beneficiaires/D-2026-0001",
                 "/ccas/beneficiaires/D-2026-0001?format=json"):
        assert other.get(path).status_code == 404, path
    home = other.get("/ccas/")
    assert "Aide alimentaire" not in home.text and code not in home.text
    assert "D-2026-0001" not in other.get("/ccas/beneficiaires").text
    page = other.get("/ccas/")
    assert other.post(f"/ccas/bons/{code}/annuler", data={
        "csrf_token": csrf_token(page.text), "confirmed": "1"}).status_code == 404
    # Granting on the first CCAS's programme: it names no programme of this CCAS.
    answer = grant(other, programme_id, expect=422)
    assert "Programme d'aide introuvable" in _plain(answer.text)
    assert ledger.count("vouchers") == 4


def test_odd_addresses_are_404_never_500(funded):
    _ledger, _agent, web, _programme_id = funded
    for path in ("/ccas/programmes/99999999999999999999", "/ccas/programmes/0",
                 "/ccas/lots/99999999999999999999", "/ccas/lots/5", "/ccas/bons/garbage",
                 "/ccas/bons/7K3M-Q9XD-2HPT-W4RB-C", "/ccas/beneficiaires/a;b",
                 "/ccas/beneficiaires/" + "x" * 300, "/ccas/beneficiaires/inconnu"):
        assert web.get(path).status_code == 404, path


def test_bank_funds_a_programme_the_desk_way(funded):
    """The programme's funding is the desk's exchange (BANK actor): its page follows."""
    ledger, agent, web, programme_id = funded

    desk_exchange.exchange(ledger.uow(), BANK, party_code=agent.party_code, euros="20.00",
                        programme_id=programme_id)
    assert 'data-testid="funded-eur">220,00 €' in _plain(
        web.get(f"/ccas/programmes/{programme_id}").text)


# ---------------------------------------------------------------- issue 13: posted twice

KEY_RE = re.compile(r'name="request_key" type="hidden" value="([0-9a-f]{32})"')


def request_key(text: str) -> str:
    found = KEY_RE.search(text)
    assert found, "the form carries no request key"
    return found.group(1)


def grant_data(web, programme_id, **fields) -> dict:
    page = web.get("/ccas/bons/nouveau")
    data = {"csrf_token": csrf_token(page.text), "request_key": request_key(page.text),
            "programme": str(programme_id), "beneficiary_ref": "D-2026-0001",
            "beneficiary_name": "Jeanne Martin", "amount": "30,00", "valid_until": "",
            "soliste_code": ""}
    data.update(fields)
    return data


def test_grant_posted_twice_makes_one_voucher(funded):
    ledger, _agent, web, programme_id = funded
    data = grant_data(web, programme_id)
    first = web.post("/ccas/bons/nouveau", data=data)
    again = web.post("/ccas/bons/nouveau", data=data)  # double click, or back and resend
    assert first.status_code == again.status_code == 302
    assert first.headers["Location"] == again.headers["Location"]  # the same voucher
    assert ledger.count("vouchers") == 1
    with ledger.engine.connect() as conn:
        assert vouchers.figures(conn, programme_id).available_cents == 21000 - 3000
    # A new page is a new key: a second voucher is a second intent.
    assert grant(web, programme_id).status_code == 302 and ledger.count("vouchers") == 2
    ledger.assert_consistent()


def test_grant_resent_with_other_values_is_a_clear_refusal(funded):
    ledger, _agent, web, programme_id = funded
    data = grant_data(web, programme_id)
    assert web.post("/ccas/bons/nouveau", data=data).status_code == 302
    changed = web.post("/ccas/bons/nouveau", data={**data, "amount": "40,00"})
    assert changed.status_code == 409
    assert "déjà été envoyé avec d'autres valeurs" in _plain(changed.text)
    assert request_key(changed.text) != data["request_key"]  # a fresh key to go on with
    assert ledger.count("vouchers") == 1
    forged = web.post("/ccas/bons/nouveau", data={**data, "request_key": "<x>"})
    assert forged.status_code == 400 and ledger.count("vouchers") == 1


def test_a_refused_grant_does_not_stick_to_its_key(ccas):
    """A refusal is remembered under its key: the page answers with a new one, so the
    same form works once the programme is funded."""
    ledger, agent, web = ccas
    programme_id = create_programme(web)
    refused = web.post("/ccas/bons/nouveau", data=grant_data(web, programme_id))
    assert refused.status_code == 422 and "n'a que" in _plain(refused.text)
    ledger.exchange(agent, "200.00", programme_id=programme_id)
    data = grant_data(web, programme_id, request_key=request_key(refused.text),
                      csrf_token=csrf_token(refused.text))
    assert web.post("/ccas/bons/nouveau", data=data).status_code == 302
    assert ledger.count("vouchers") == 1


def test_programme_posted_twice_makes_one_programme(ccas):
    ledger, _agent, web = ccas
    page = web.get("/ccas/programmes/nouveau")
    data = {"csrf_token": csrf_token(page.text), "request_key": request_key(page.text),
            "name": "Aide", "budget": "100", "starts_on": _fr(TODAY),
            "ends_on": _fr(TODAY + dt.timedelta(days=30)), "default_validity_days": "30"}
    first = web.post("/ccas/programmes/nouveau", data=data)
    again = web.post("/ccas/programmes/nouveau", data=data)
    assert first.status_code == again.status_code == 302
    assert first.headers["Location"] == again.headers["Location"]
    assert ledger.count("aid_programmes") == 1
    changed = web.post("/ccas/programmes/nouveau", data={**data, "budget": "200"})
    assert changed.status_code == 409 and ledger.count("aid_programmes") == 1
    assert "déjà été envoyé avec d'autres valeurs" in _plain(changed.text)


def confirm_data(preview_text: str, csv: str, programme_id) -> dict:
    return {"csrf_token": csrf_token(preview_text), "request_key": request_key(preview_text),
            "csv_text": csv, "programme": str(programme_id), "valid_until": ""}


def test_batch_confirm_posted_twice_makes_one_lot(funded):
    ledger, _agent, web, programme_id = funded
    preview = upload(web, GOOD_CSV, programme_id)
    data = confirm_data(preview.text, GOOD_CSV, programme_id)
    first = web.post("/ccas/bons/lot/confirmer", data=data)
    again = web.post("/ccas/bons/lot/confirmer", data=data)
    assert first.status_code == again.status_code == 302
    assert first.headers["Location"] == again.headers["Location"]  # the same lot
    assert ledger.count("voucher_batches") == 1 and ledger.count("vouchers") == 3
    with ledger.engine.connect() as conn:
        assert vouchers.figures(conn, programme_id).available_cents == 21000 - 4050
    ledger.assert_consistent()


def test_a_refused_batch_confirm_gets_a_new_key(funded):
    ledger, agent, web, programme_id = funded
    big = "D-1;200\nD-2;20\n"
    preview = upload(web, big, programme_id)
    refused = web.post("/ccas/bons/lot/confirmer",
                       data=confirm_data(preview.text, big, programme_id))
    assert refused.status_code == 422 and "n'a que" in _plain(refused.text)
    assert request_key(refused.text) != request_key(preview.text)
    ledger.exchange(agent, "100.00", programme_id=programme_id)
    done = web.post("/ccas/bons/lot/confirmer",
                    data=confirm_data(refused.text, big, programme_id))
    assert done.status_code == 302 and ledger.count("vouchers") == 2


def _logged_in_clients(app, agent, count: int) -> list:
    clients = []
    for _ in range(count):
        web = app.test_client()
        login(web, agent.username, PASSWORD)
        clients.append(web)
    return clients


def test_concurrent_grant_posts_with_one_key_make_one_voucher(app, funded):
    ledger, agent, web, programme_id = funded
    data = grant_data(web, programme_id)
    clients = _logged_in_clients(app, agent, 4)
    tokens = [csrf_token(c.get("/ccas/bons/nouveau").text) for c in clients]

    def worker(i: int) -> tuple[int, str]:
        answer = clients[i].post("/ccas/bons/nouveau",
                                 data={**data, "csrf_token": tokens[i]})
        return answer.status_code, answer.headers.get("Location", "")

    outcomes = hammer(worker, threads=4)
    assert {status for status, _where in outcomes} == {302}
    assert len({where for _status, where in outcomes}) == 1
    assert ledger.count("vouchers") == 1
    ledger.assert_consistent()


def test_concurrent_batch_confirms_with_one_key_make_one_lot(app, funded):
    ledger, agent, web, programme_id = funded
    data = confirm_data(upload(web, GOOD_CSV, programme_id).text, GOOD_CSV, programme_id)
    clients = _logged_in_clients(app, agent, 4)
    tokens = [csrf_token(c.get("/ccas/bons/lot").text) for c in clients]

    def worker(i: int) -> tuple[int, str]:
        answer = clients[i].post("/ccas/bons/lot/confirmer",
                                 data={**data, "csrf_token": tokens[i]})
        return answer.status_code, answer.headers.get("Location", "")

    outcomes = hammer(worker, threads=4)
    assert {status for status, _where in outcomes} == {302}
    assert len({where for _status, where in outcomes}) == 1
    assert ledger.count("voucher_batches") == 1 and ledger.count("vouchers") == 3
    ledger.assert_consistent()


# ---------------------------------------------------------------- issue 13: Windows-1252

EXCEL_CSV = "référence;montant;nom\nD-1;20,00;Hélène Cœur\nD-2;15;Zoé Lefèvre (€)\n"
HIDDEN_TEXT_RE = re.compile(r'name="csv_text" type="hidden" value="([^"]*)"')


@pytest.mark.parametrize(("content", "encoding"), [
    (EXCEL_CSV.encode("cp1252"), "auto"),  # Excel's « CSV (séparateur : point-virgule) »
    (EXCEL_CSV.encode("cp1252"), "cp1252"),
    (EXCEL_CSV.encode("utf-8-sig"), "auto"),  # « CSV UTF-8 »: with a BOM
    (EXCEL_CSV.encode("utf-8-sig"), "cp1252"),  # the BOM wins over the choice
    (EXCEL_CSV.replace("\n", "\r\n").encode("utf-8"), "utf-8"),
])
def test_batch_accepts_windows_1252_and_utf8(funded, content, encoding):
    ledger, _agent, web, programme_id = funded
    preview = upload(web, content, programme_id, encoding=encoding)
    assert preview.status_code == 200, preview.text
    text = _plain(preview.text)
    assert "Hélène Cœur" in text and "Zoé Lefèvre (€)" in text
    assert "Confirmer l'attribution de 2 bons (total 35,00 B)" in text
    sent_back = html.unescape(HIDDEN_TEXT_RE.search(preview.text).group(1))
    done = web.post("/ccas/bons/lot/confirmer",
                    data=confirm_data(preview.text, sent_back, programme_id))
    assert done.status_code == 302
    with ledger.engine.connect() as conn:
        names = conn.execute(sa.text("SELECT name FROM beneficiaries ORDER BY ref")).scalars()
        assert list(names) == ["Hélène Cœur", "Zoé Lefèvre (€)"]


def test_batch_encoding_chosen_that_does_not_fit_is_a_form_error(funded):
    ledger, _agent, web, programme_id = funded
    answer = upload(web, EXCEL_CSV.encode("cp1252"), programme_id, encoding="utf-8")
    assert answer.status_code == 422 and 'id="csv_file-error"' in answer.text
    assert "n'est pas en UTF-8" in _plain(answer.text)
    page = web.get("/ccas/bons/lot")
    assert 'name="encoding"' in page.text and "Windows-1252" in page.text
    assert ledger.count("vouchers") == 0
