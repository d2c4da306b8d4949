"""The soliste's and the prestataire's spaces, and the desk's reconversion requests,
through the Flask test client."""

from __future__ import annotations

import csv
import io
import re

import pytest

from bousol.ledger.kernel.clock import paris_today
from tests.helpers import PASSWORD, csrf_token, login

NBSP, NNBSP = "\u00a0", "\u202f"


@pytest.fixture
def people(ledger):
    ledger.subsidy("100.00")
    marie = ledger.soliste(name="Marie Lefebvre")
    karim = ledger.soliste(name="Karim Benali")
    baker = ledger.prestataire(name="Boulangerie du Port")
    florist = ledger.prestataire(name="Fleurs du Portel")
    ledger.exchange(marie, "100.00")  # 105,00 B
    ledger.exchange(karim, "20.00")
    bread = ledger.pay(marie, baker, "12.50", memo="Pain").entry_id
    flowers = ledger.pay(marie, florist, "7.25", memo="=HYPERLINK(\"x\")").entry_id
    karims = ledger.pay(karim, baker, "3.00", memo="Croissants").entry_id
    return {"marie": marie, "karim": karim, "baker": baker, "florist": florist,
            "bread": bread, "flowers": flowers, "karims": karims,
            "clerk": ledger.user("bank"), "admin": ledger.user("admin")}


def entry_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r"/recu/(\d+)", html)]


# ---------------------------------------------------------------- the soliste


def test_soliste_home_shows_balance_latest_lines_and_links(client, people):
    page = login(client, people["marie"].username, PASSWORD)
    assert page.request.path == "/soliste/"
    assert f"85,25{NBSP}B" in page.text
    assert "Boulangerie du Port" in page.text and "-12,50" in page.text
    assert 'href="/soliste/historique"' in page.text
    assert f'href="/soliste/recu/{people["bread"]}"' in page.text
    assert 'aria-current="page"' in page.text


def test_soliste_history_filters(client, people):
    login(client, people["marie"].username, PASSWORD)
    everything = client.get("/soliste/historique")
    assert everything.status_code == 200
    assert entry_ids(everything.text)[:2] == [people["flowers"], people["bread"]]
    by_text = client.get("/soliste/historique", query_string={"q": "boulangerie"})
    assert entry_ids(by_text.text) == [people["bread"]]
    incoming = client.get("/soliste/historique", query_string={"sens": "in"})
    assert people["bread"] not in entry_ids(incoming.text)
    assert "Banque SOL" in incoming.text
    payments = client.get("/soliste/historique", query_string={"type": "payment",
                                                               "sens": "out"})
    assert entry_ids(payments.text) == [people["flowers"], people["bread"]]
    today = paris_today().strftime("%d/%m/%Y")
    dated = client.get("/soliste/historique", query_string={"du": today, "au": today})
    assert len(entry_ids(dated.text)) == 3
    nothing = client.get("/soliste/historique", query_string={"au": "01/01/2020"})
    assert nothing.status_code == 200 and 'data-testid="no-lines"' in nothing.text
    # No CSV for solistes (the export is the prestataire's, for its accountant).
    assert "historique.csv" not in everything.text


@pytest.mark.parametrize(("args", "field", "message"), [
    ({"du": "32/01/2026"}, "du", "existe pas"),
    ({"au": "hier"}, "au", "Date invalide"),
    ({"du": "10/11/2026", "au": "01/11/2026"}, "au", "précède"),
    ({"type": "magie"}, "type", "inconnu"),
    ({"sens": "haut"}, "sens", "inconnu"),
    ({"q": "x" * 150}, "q", "trop longue"),
])
def test_bad_filters_are_form_errors_not_500(client, people, args, field, message):
    login(client, people["marie"].username, PASSWORD)
    page = client.get("/soliste/historique", query_string=args)
    assert page.status_code == 422
    assert f'aria-describedby="{field}-error"' in page.text
    assert 'aria-invalid="true"' in page.text
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page.text)
    assert error and message in error.group(1)


def test_history_pages_with_plus_anciennes(client, people, ledger, monkeypatch):
    from bousol.web import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    login(client, people["marie"].username, PASSWORD)
    first = client.get("/soliste/historique", query_string={"sens": "out"})
    assert entry_ids(first.text) == [people["flowers"], people["bread"]]
    assert "Plus anciennes" not in first.text  # two payments out: one page
    first = client.get("/soliste/historique")
    older = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert older, "a link to older lines"
    url = older.group(1).replace("&amp;", "&")
    assert f"avant={people['bread']}" in url
    second = client.get(url)
    assert second.status_code == 200 and "Change euros" in second.text
    assert "Plus anciennes" not in second.text
    assert client.get("/soliste/historique?avant=abc").status_code == 400


def test_soliste_receipt_and_404_for_others(client, people):
    login(client, people["marie"].username, PASSWORD)
    mine = client.get(f"/soliste/recu/{people['bread']}")
    assert mine.status_code == 200
    assert "Boulangerie du Port" in mine.text and people["baker"].party_code in mine.text
    assert f"-12,50{NBSP}B" in mine.text and "Pain" in mine.text
    assert 'class="receipt"' in mine.text
    # Karim's payment to the baker is none of Marie's business: as if it did not exist.
    assert client.get(f"/soliste/recu/{people['karims']}").status_code == 404
    assert client.get("/soliste/recu/999999").status_code == 404
    # And the prestataire's receipt route is not hers.
    assert client.get(f"/prestataire/recu/{people['bread']}").status_code == 403


def test_receipt_of_a_reversed_payment_links_both_ways(client, people, ledger):
    reversal = ledger.reverse(people["bread"]).entry_id
    login(client, people["marie"].username, PASSWORD)
    original = client.get(f"/soliste/recu/{people['bread']}")
    assert f'href="/soliste/recu/{reversal}"' in original.text
    cancelling = client.get(f"/soliste/recu/{reversal}")
    assert f'href="/soliste/recu/{people["bread"]}"' in cancelling.text


# ---------------------------------------------------------------- the prestataire


def test_merchant_home_takings_today_and_balances(client, people, ledger):
    ledger.reconvert(people["baker"], "5.00")
    login(client, people["baker"].username, PASSWORD)
    home = client.get("/prestataire/")
    assert home.status_code == 200
    takings = re.search(r'data-testid="takings-count">(\d+)<', home.text)
    assert takings and takings.group(1) == "2"  # Marie's bread, Karim's croissants
    assert f"15,50{NBSP}B" in home.text  # 12,50 + 3,00 received today
    assert f"10,50{NBSP}B" in home.text  # balance after the 5,00 B reconversion
    assert f"4,75{NBSP}€" in home.text  # euros owed (5,00 − 5 %)
    assert 'href="/prestataire/reconversions"' in home.text
    assert 'href="/prestataire/historique"' in home.text


def test_merchant_history_and_csv_download(client, people):
    login(client, people["baker"].username, PASSWORD)
    history = client.get("/prestataire/historique", query_string={"q": "pain"})
    assert entry_ids(history.text) == [people["bread"]]
    link = re.search(r'href="([^"]+)" data-testid="csv-link"', history.text)
    assert link and "/prestataire/historique.csv?" in link.group(1) and "q=pain" in link.group(1)

    today = paris_today()
    response = client.get("/prestataire/historique.csv",
                          query_string={"du": today.strftime("%d/%m/%Y")})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"releve-{people['baker'].party_code}-{today.isoformat()}-au-" in disposition
    body = response.data
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for the spreadsheet
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Date" and rows[0][9] == "Montant (machine)" and len(rows[0]) == 11
    lines = {row[3]: row for row in rows[1:]}
    assert set(lines) == {str(people["bread"]), str(people["karims"])}
    bread = lines[str(people["bread"])]
    assert bread[4] == "Paiement" and bread[5] == people["marie"].party_code
    assert bread[6] == "Marie Lefebvre" and bread[7] == "Pain"
    assert bread[8:] == ["12,50", "12.50", "BSOL"]


def test_csv_formula_injection_guarded_in_the_download(client, people):
    login(client, people["florist"].username, PASSWORD)
    rows = list(csv.reader(io.StringIO(
        client.get("/prestataire/historique.csv").data.decode("utf-8-sig")), delimiter=";"))
    assert rows[1][7] == "'=HYPERLINK(\"x\")" and rows[1][8] == "7,25"


def test_csv_with_bad_filters_is_the_form_again(client, people):
    login(client, people["baker"].username, PASSWORD)
    response = client.get("/prestataire/historique.csv", query_string={"du": "2026-13-01"})
    assert response.status_code == 422
    assert response.mimetype == "text/html" and 'id="du-error"' in response.text


def test_merchant_receipt_only_its_own(client, people):
    login(client, people["baker"].username, PASSWORD)
    assert client.get(f"/prestataire/recu/{people['bread']}").status_code == 200
    assert client.get(f"/prestataire/recu/{people['flowers']}").status_code == 404
    assert client.get(f"/soliste/recu/{people['bread']}").status_code == 403


# ---------------------------------------------------------------- reconversion requests


def _post(client, path: str, data: dict, page_path: str):
    token = csrf_token(client.get(page_path).text)
    return client.post(path, data={"csrf_token": token, **data})


def test_request_executed_at_the_desk_seen_by_the_merchant(app, people, ledger):
    shop, desk = app.test_client(), app.test_client()
    login(shop, people["baker"].username, PASSWORD)
    page = shop.get("/prestataire/reconversions")
    assert page.status_code == 200 and "Envoyer la demande" in page.text
    sent = _post(shop, "/prestataire/reconversions", {"bousols": "10,00", "memo": "Fin de mois"},
                 "/prestataire/reconversions")
    assert sent.status_code == 302
    listed = shop.get("/prestataire/reconversions")
    request_id = int(re.search(r'data-testid="request-(\d+)"', listed.text).group(1))
    assert "En attente" in listed.text and "Fin de mois" in listed.text
    assert ledger.balance(people["baker"]) == 1550  # nothing moved yet

    login(desk, people["clerk"].username, PASSWORD)
    assert 'href="/comptoir/reconversions"' in desk.get("/comptoir/").text
    waiting = desk.get("/comptoir/reconversions")
    assert waiting.status_code == 200 and f'data-testid="pending-{request_id}"' in waiting.text
    done = _post(desk, f"/comptoir/reconversions/{request_id}/executer", {},
                 "/comptoir/reconversions")
    assert done.status_code == 302
    assert done.location.endswith(f"/comptoir/reconversions/{request_id}/bordereau")
    slip = desk.get(done.location)
    assert slip.status_code == 200 and "Bordereau de reconversion" in slip.text
    assert f"9,50{NBSP}€" in slip.text and people["clerk"].username in slip.text
    # A second click: refused, nothing moves twice.
    again = _post(desk, f"/comptoir/reconversions/{request_id}/executer", {},
                  "/comptoir/reconversions")
    assert again.status_code == 409 and "exécutée" in again.text
    assert ledger.balance(people["baker"]) == 550
    assert ledger.balance(people["baker"], "EUR") == 950

    seen = shop.get("/prestataire/reconversions")
    assert "Exécutée" in seen.text and "/prestataire/recu/" in seen.text
    assert f"9,50{NBSP}€" in shop.get("/prestataire/").text
    ledger.assert_consistent()


def test_merchant_request_errors_and_cancel(client, people, ledger):
    login(client, people["baker"].username, PASSWORD)
    too_much = _post(client, "/prestataire/reconversions", {"bousols": "1000"},
                     "/prestataire/reconversions")
    assert too_much.status_code == 422 and 'id="bousols-error"' in too_much.text
    assert "ne couvre pas" in too_much.text
    bad = _post(client, "/prestataire/reconversions", {"bousols": "douze"},
                "/prestataire/reconversions")
    assert bad.status_code == 422 and "Montant invalide" in bad.text
    empty = _post(client, "/prestataire/reconversions", {"bousols": ""},
                  "/prestataire/reconversions")
    assert empty.status_code == 422
    long_memo = _post(client, "/prestataire/reconversions", {"bousols": "1", "memo": "x" * 201},
                      "/prestataire/reconversions")
    assert long_memo.status_code == 422 and 'id="memo-error"' in long_memo.text
    no_csrf = client.post("/prestataire/reconversions", data={"bousols": "1"})
    assert no_csrf.status_code == 400
    assert ledger.count("reconversion_requests") == 0

    _post(client, "/prestataire/reconversions", {"bousols": "2"}, "/prestataire/reconversions")
    listed = client.get("/prestataire/reconversions").text
    request_id = int(re.search(r'data-testid="request-(\d+)"', listed).group(1))
    cancelled = _post(client, f"/prestataire/reconversions/{request_id}/annuler", {},
                      "/prestataire/reconversions")
    assert cancelled.status_code == 302
    assert "Annulée" in client.get("/prestataire/reconversions").text
    twice = _post(client, f"/prestataire/reconversions/{request_id}/annuler", {},
                  "/prestataire/reconversions")
    assert twice.status_code == 409 and 'data-testid="refusal"' in twice.text


def test_someone_elses_request_is_404(app, people):
    shop, other = app.test_client(), app.test_client()
    login(shop, people["baker"].username, PASSWORD)
    _post(shop, "/prestataire/reconversions", {"bousols": "2"}, "/prestataire/reconversions")
    request_id = int(re.search(r'data-testid="request-(\d+)"',
                               shop.get("/prestataire/reconversions").text).group(1))
    login(other, people["florist"].username, PASSWORD)
    assert f'data-testid="request-{request_id}"' not in other.get(
        "/prestataire/reconversions").text
    refused = _post(other, f"/prestataire/reconversions/{request_id}/annuler", {},
                    "/prestataire/reconversions")
    assert refused.status_code == 404


def test_desk_refuses_with_a_reason(app, people, ledger):
    shop, desk = app.test_client(), app.test_client()
    login(shop, people["baker"].username, PASSWORD)
    _post(shop, "/prestataire/reconversions", {"bousols": "2"}, "/prestataire/reconversions")
    request_id = int(re.search(r'data-testid="request-(\d+)"',
                               shop.get("/prestataire/reconversions").text).group(1))
    login(desk, people["admin"].username, PASSWORD)
    blank = _post(desk, f"/comptoir/reconversions/{request_id}/refuser", {"motif": " "},
                  "/comptoir/reconversions")
    assert blank.status_code == 422
    assert f'aria-describedby="motif-{request_id}-error"' in blank.text
    refused = _post(desk, f"/comptoir/reconversions/{request_id}/refuser",
                    {"motif": "IBAN manquant"}, "/comptoir/reconversions")
    assert refused.status_code == 302
    seen = shop.get("/prestataire/reconversions").text
    assert "Refusée" in seen and "IBAN manquant" in seen
    assert ledger.balance(people["baker"]) == 1550


def test_desk_shows_a_ledger_refusal_and_keeps_it_waiting(app, people, ledger):
    shop, desk = app.test_client(), app.test_client()
    login(shop, people["baker"].username, PASSWORD)
    _post(shop, "/prestataire/reconversions", {"bousols": "15.50"},
          "/prestataire/reconversions")
    request_id = int(re.search(r'data-testid="request-(\d+)"',
                               shop.get("/prestataire/reconversions").text).group(1))
    ledger.reconvert(people["baker"], "10.00")  # at the desk meanwhile: 5,50 B left
    login(desk, people["clerk"].username, PASSWORD)
    failed = _post(desk, f"/comptoir/reconversions/{request_id}/executer", {},
                   "/comptoir/reconversions")
    assert failed.status_code == 422 and "Solde insuffisant" in failed.text
    assert 'role="alert"' in failed.text
    assert f'data-testid="pending-{request_id}"' in failed.text  # still waiting
    assert ledger.balance(people["baker"]) == 550


@pytest.mark.parametrize(("role", "path"), [
    ("marie", "/prestataire/reconversions"), ("baker", "/soliste/historique"),
    ("baker", "/comptoir/reconversions"), ("marie", "/prestataire/historique.csv"),
])
def test_spaces_are_for_their_role(client, people, role, path):
    login(client, people[role].username, PASSWORD)
    assert client.get(path).status_code == 403


def test_pages_in_english_on_request(client, people):
    login(client, people["baker"].username, PASSWORD)
    page = client.get("/prestataire/historique")
    language = csrf_token(page.text)
    client.post("/langue", data={"csrf_token": language, "lang": "en",
                                 "next": "/prestataire/historique"})
    assert client.get("/prestataire/historique").status_code == 200
