"""The public directory shows its prestataires a page at a time, in its order, with the
total of every match and the filters kept from page to page."""

from __future__ import annotations

import re

import pytest


def names(html: str) -> list[str]:
    return re.findall(r'<h3><a href="/annuaire/[^"]+">([^<]+)</a></h3>', html)


@pytest.fixture
def shops(ledger, monkeypatch):
    monkeypatch.setattr("bousol.web.public.views.DIRECTORY_PAGE", 2)
    for name in ("Épicerie Bio", "Atelier Vélo", "Boulangerie du Port", "Café Central",
                 "Droguerie", "Fleurs"):
        ledger.prestataire(name=name)


def test_pages_follow_in_order_with_the_total(client, shops):
    first = client.get("/annuaire")
    assert first.status_code == 200
    assert "6 prestataires" in first.text and "Page 1 sur 3" in first.text
    pages = [names(first.text)]
    for number in (2, 3):
        pages.append(names(client.get(f"/annuaire?page={number}").text))
    assert [n for page in pages for n in page] == [
        "Atelier Vélo", "Boulangerie du Port", "Café Central", "Droguerie",
        "Épicerie Bio", "Fleurs"]
    assert 'rel="next"' not in client.get("/annuaire?page=3").text


def test_filters_are_kept_and_bad_pages_fall_back(client, shops):
    page = client.get("/annuaire?q=e&page=1")
    assert re.search(r'href="/annuaire\?[^"]*page=2[^"]*"', page.text)
    assert "q=e" in re.search(r'href="(/annuaire\?[^"]*page=2[^"]*)"', page.text).group(1)
    for bad in ("abc", "0", "-1", "999999"):
        response = client.get(f"/annuaire?page={bad}")
        assert response.status_code == 200 and names(response.text)


def test_the_admins_list_pages_each_status(app, client, ledger, shops, monkeypatch):
    from tests.helpers import PASSWORD, login

    monkeypatch.setattr("bousol.web.admin.approval.GROUP_PAGE", 4)
    admin = ledger.user("admin")
    login(client, admin.username, PASSWORD)
    first = client.get("/admin/prestataires")
    assert first.status_code == 200
    approved = re.search(r'id="statut-approved">[^<]*\((\d+)\)', first.text)
    assert approved and int(approved.group(1)) == 6
    codes = re.findall(r'href="/admin/prestataires/(P-\d+)"', first.text)
    second = client.get("/admin/prestataires?page_approved=2")
    more = re.findall(r'href="/admin/prestataires/(P-\d+)"', second.text)
    assert len(codes) == 4 and len(more) == 2 and not set(codes) & set(more)
    assert client.get("/admin/prestataires?page_approved=x").status_code == 200


def test_the_euros_owed_are_listed_a_page_at_a_time(client, ledger, monkeypatch):
    from tests.helpers import PASSWORD, login

    monkeypatch.setattr("bousol.web.admin.views.OWED_PAGE", 1)
    ledger.subsidy("100.00")
    marie = ledger.soliste()
    ledger.exchange(marie, "40.00")
    shops = [ledger.prestataire(name=name) for name in ("Atelier", "Boucherie")]
    for shop in shops:
        ledger.pay(marie, shop, "10.00")
        ledger.reconvert(shop, "10.00")
    admin = ledger.user("admin")
    login(client, admin.username, PASSWORD)
    pages = [client.get(f"/admin/virements?page={n}") for n in (1, 2)]
    assert all(p.status_code == 200 for p in pages)
    assert "2 prestataires" in pages[0].text
    listed = [re.findall(r'<td class="code">(P-\d+)</td>', p.text) for p in pages]
    assert sorted(code for codes in listed for code in codes) == sorted(
        s.party_code for s in shops)
    assert all(len(codes) == 1 for codes in listed)
    assert client.get("/admin/virements?page=zz").status_code == 200
