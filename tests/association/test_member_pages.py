"""The members' list at the scale of the territory (issue 18): pages by keyset (no
OFFSET) in the list's order (college, the accent-folded name, code), the filters, the
counts by one GROUP BY, the lapsing list by a date range, and the maintained
``sort_name`` that every writer of a name keeps (docs/members.md)."""

from __future__ import annotations

import datetime as dt
import html
import itertools
import re

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bousol.ledger import demo
from bousol.ledger.access import parties
from bousol.ledger.association import membership
from bousol.ledger.desk import members as desk_members
from bousol.ledger.kernel import clock
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.text import sort_name
from bousol.ledger.merchants import approval
from bousol.ledger.models import College, Partner, Party, PartyKind
from tests.helpers import BANK, PASSWORD, application, apply, csrf_token, login

DECEMBER = dt.date(2026, 12, 15)
_numbers = itertools.count(500_000)


# ------------------------------------------------------------------ helpers


def read(ledger, function, *args, **kwargs):
    with ledger.uow(read_only=True) as uow:
        return function(uow.conn, *args, **kwargs)


def add_party(conn, kind: str, name: str, *, until: dt.date | None = None,
              status: str = "active") -> str:
    """A bare party row, by Core (no sort_name given: the model's default fills it)."""
    number = next(_numbers)
    code = f"{parties.PARTY_PREFIX[PartyKind(kind)]}-{number:06d}"
    conn.execute(sa.insert(Party.__table__).values(
        kind=kind, number=number, code=code, name=name, membership_until=until,
        status=status, filiere="alimentation" if kind == "prestataire" else None))
    return code


def add_partner(conn, name: str, until: dt.date | None = None) -> str:
    code = f"L-{next(_numbers):06d}"
    conn.execute(sa.insert(Partner.__table__).values(
        code=code, name=name, category="autre", membership_until=until,
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    return code


def old_members(conn, today: dt.date) -> list[tuple[College, str, str, membership.MemberStatus]]:
    """The list as issue 7 computed it, in Python over every row: (college, name, code,
    status), sorted by college, then the folded name, then code."""
    found = []
    for row in conn.execute(sa.select(Party.__table__)):
        college = membership.college_of(row.kind)
        if college is None:
            continue
        if row.kind == "prestataire" and not (
                row.status in membership.MEMBER_PRESTATAIRE_STATUSES
                or row.membership_until is not None):
            continue
        if row.kind in ("ccas", "bank") and row.membership_until is None:
            continue
        found.append((college, row.name, row.code,
                      membership.status_of(row.membership_until, today)))
    for row in conn.execute(sa.select(Partner.__table__)):
        found.append((College.ACTEURS_LOCAUX, row.name, row.code,
                      membership.status_of(row.membership_until, today)))
    order = list(College)
    return sorted(found, key=lambda m: (order.index(m[0]), sort_name(m[1]), m[2]))


def walk_forward(conn, limit: int, **filters) -> list[list[str]]:
    pages, after = [], None
    while True:
        page = membership.members_page(conn, after=after, limit=limit, **filters)
        pages.append([m.code for m in page.members])
        assert (page.previous_before is None) == (after is None)
        if page.next_after is None:
            return pages
        assert page.next_after == page.members[-1].code
        after = page.next_after


def walk_backward(conn, last_code: str, limit: int, **filters) -> list[list[str]]:
    """From the page before the one that starts after ``last_code``… to the first."""
    pages, before = [], last_code
    while before is not None:
        page = membership.members_page(conn, before=before, limit=limit, **filters)
        pages.append([m.code for m in page.members])
        before = page.previous_before
    return pages


NAMES = ["Éco-Habitat", "Eau Vive", "ecole du Portel", "Fromagerie", "Zoé Martin",
         "zoe martin", "Ève Durand", "Œuvre sociale", "Ça Roule", "Äbc", "abc", "a b",
         "ab", "L'Atelier", "l atelier", "Straße", "Strasse", "Émile", "Émilie", "Emile"]


def populate(conn) -> None:
    for index, name in enumerate(NAMES):
        add_party(conn, "soliste", name, until=[None, dt.date(2025, 12, 31),
                                               dt.date(2026, 12, 31),
                                               dt.date(2027, 12, 31)][index % 4])
    for index, name in enumerate(NAMES[:9]):
        add_party(conn, "prestataire", name, status=["approved", "suspended", "draft"][index % 3],
                  until=dt.date(2026, 12, 20) if index % 4 == 0 else None)
    add_party(conn, "ccas", "CCAS du Portel", until=dt.date(2026, 12, 31))
    add_party(conn, "ccas", "CCAS sans adhésion")
    for name in ("Communauté d'agglomération", "Éco-réseau", "ccas bis"):
        add_partner(conn, name, dt.date(2027, 12, 31))


# ------------------------------------------------------------------ the pages


def test_pages_follow_each_other_without_gap_or_repeat(ledger):
    with ledger.engine.begin() as conn:
        populate(conn)
    with ledger.engine.connect() as conn:
        everyone = [m.code for m in membership.members(conn, today=DECEMBER)]
        assert everyone == [m[2] for m in old_members(conn, DECEMBER)]
        for limit in (1, 3, 7, 100):
            pages = walk_forward(conn, limit, today=DECEMBER)
            assert all(len(p) == limit for p in pages[:-1]) and 0 < len(pages[-1]) <= limit
            assert [code for page in pages for code in page] == everyone
            if len(pages) > 1:  # back from the last page: the same pages, reversed
                back = walk_backward(conn, pages[-1][0], limit, today=DECEMBER)
                assert back == pages[-2::-1]


def test_accents_and_case_do_not_move_a_name(ledger):
    with ledger.engine.begin() as conn:
        for name in ("Fromagerie", "Éco-Habitat", "Eau Vive", "Domaine", "Ecole"):
            add_party(conn, "prestataire", name, status="approved")
    names = [m.name for m in read(ledger, membership.members, "prestataires")]
    assert names == ["Domaine", "Eau Vive", "Éco-Habitat", "Ecole", "Fromagerie"]
    page = read(ledger, membership.members_page, "prestataires", limit=2)
    assert [m.name for m in page.members] == ["Domaine", "Eau Vive"]
    second = read(ledger, membership.members_page, "prestataires", limit=2,
                  after=page.next_after)
    assert [m.name for m in second.members] == ["Éco-Habitat", "Ecole"]
    # A search ignores accents and case both ways.
    for text in ("eco-h", "ÉCO-H", "Éco"):
        assert "Éco-Habitat" in [m.name for m in read(ledger, membership.members,
                                                       "prestataires", text)]


def test_filters_page_like_the_whole_list(ledger):
    with ledger.engine.begin() as conn:
        populate(conn)
    with ledger.engine.connect() as conn:
        old = old_members(conn, DECEMBER)
        for college, status, text in itertools.product(
                [None, *College], [None, *membership.MemberStatus],
                [None, "e", "ÉMIL", "l-", "zzz"]):
            expected = [code for c, name, code, s in old
                        if college in (None, c) and status in (None, s)
                        and (text is None or sort_name(text) in sort_name(name)
                             or text.lower() in code.lower())]
            filters = {"college": college and college.value,
                       "status": status and status.value, "text": text, "today": DECEMBER}
            assert [m.code for m in membership.members(conn, **filters)] == expected
            pages = walk_forward(conn, 2, **filters)
            assert [code for page in pages for code in page] == expected


def test_a_bad_cursor_gives_the_first_page(ledger):
    with ledger.engine.begin() as conn:
        populate(conn)
    with ledger.engine.connect() as conn:
        first = membership.members_page(conn, limit=3, today=DECEMBER)
        for cursor in ("nimporte", "S-999999", "A-000001", "L-999999", "", " ", "x" * 500,
                       123, None, "S-000001'; --", "\x00"):
            for key in ("after", "before"):
                page = membership.members_page(conn, limit=3, today=DECEMBER,
                                               **{key: cursor})
                assert page == first
        # Before the second page: the first page, whole, with nothing before it.
        second = membership.members_page(conn, limit=3, after=first.next_after,
                                         today=DECEMBER)
        back = membership.members_page(conn, limit=3, before=second.members[0].code,
                                       today=DECEMBER)
        assert back == first


# ------------------------------------------------------------------ counts


@st.composite
def random_members(draw):
    name = st.text(st.sampled_from("aAeEéÉèçÇœŒßz -'0"), min_size=1, max_size=6)
    until = st.one_of(st.none(), st.dates(dt.date(2025, 1, 1), dt.date(2028, 12, 31)))
    party = st.tuples(st.sampled_from(["soliste", "prestataire", "ccas", "bank",
                                       "association"]),
                      name, until, st.sampled_from(["approved", "suspended", "draft",
                                                    "submitted", "refused", "active"]))
    return (draw(st.lists(party, max_size=12)),
            draw(st.lists(st.tuples(name, until), max_size=4)),
            draw(st.dates(dt.date(2026, 1, 1), dt.date(2028, 3, 1))))


def test_counts_equal_the_old_tally_and_the_order_the_old_sort(ledger):
    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(random_members())
    def check(drawn):
        party_rows, partner_rows, today = drawn
        with ledger.engine.connect() as conn:
            outer = conn.begin()
            try:
                for kind, name, until, status in party_rows:
                    if kind == "prestataire" and status == "active":
                        status = "approved"
                    if kind != "prestataire" and status != "active":
                        status = "active"
                    add_party(conn, kind, name, until=until, status=status)
                for name, until in partner_rows:
                    add_partner(conn, name, until)
                old = old_members(conn, today)
                tally = {c: membership.CollegeCount(c) for c in College}
                for college, _name, _code, status in old:
                    tally[college].total += 1
                    tally[college].by_status[status] += 1
                assert membership.counts(conn, today=today) == list(tally.values())
                assert [m.code for m in membership.members(conn, today=today)] == [
                    m[2] for m in old]
                assert [m.code for m in membership.lapsing(conn, today)] == [
                    m[2] for m in old if m[3] == membership.MemberStatus.LAPSING
                    or (m[3] == membership.MemberStatus.EXPIRED
                        and _until(conn, m[2]) >= today.replace(day=1))]
            finally:
                outer.rollback()
    check()


def _until(conn, code: str) -> dt.date:
    table = Partner.__table__ if code.startswith("L-") else Party.__table__
    return conn.execute(sa.select(table.c.membership_until)
                        .where(table.c.code == code)).scalar_one()


# ------------------------------------------------------------------ the writers


def test_every_writer_of_a_name_keeps_its_sort_name(ledger):
    """Every service that creates a party or a partner, or renames one: afterwards
    every row's sort_name is the fold of its name."""
    assert demo.load(ledger.uow) is not None  # the demo (an empty database): Éco-Habitat…
    admin = ledger.user("admin", name="Trésorière")
    for kind in ("soliste", "bank", "ccas"):
        ledger.user(kind, name=f"Élan {kind}")
    ledger.prestataire(name="Ébénisterie")
    desk_members.register_soliste(ledger.uow(), BANK, name="Éloïse Caron",
                                  charter_accepted=True, tender="cash",
                                  today=dt.date(2026, 11, 18))
    applied = apply(ledger, name="Épicerie d'Été")
    shop = Actor(applied.user_id, Role.PRESTATAIRE, applied.party_id, applied.party_code,
                 applied.username)
    approval.update_application(ledger.uow(), shop, **application(name="Œil de Lynx"))
    code = membership.create_partner(ledger.uow(), admin, "École Vivante", "autre")
    membership.update_partner(ledger.uow(), admin, code, "Réseau Été", "reseau_ess")
    with ledger.engine.connect() as conn:
        for table in (Party.__table__, Partner.__table__):
            rows = conn.execute(sa.select(table.c.code, table.c.name,
                                          table.c.sort_name)).all()
            wrong = [r.code for r in rows if r.sort_name != sort_name(r.name)]
            assert rows and not wrong, f"{table.name}: sort_name not kept for {wrong}"
        names = {r.name for r in conn.execute(sa.select(Party.__table__.c.name))}
    assert {"Œil de Lynx", "Éloïse Caron", "Éco-Habitat Boulonnais"} <= names


def test_a_row_without_sort_name_is_refused(ledger):
    with ledger.engine.connect() as conn, conn.begin():
        code = add_party(conn, "soliste", "Marie")
    for statement in (
            sa.text("UPDATE parties SET sort_name = NULL WHERE code = :c"),
            sa.text("INSERT INTO parties (kind, number, code, name, status, created_at) "
                    "VALUES ('soliste', 999999, 'S-999999', 'X', 'active', '2026-01-01')")):
        with pytest.raises(sa.exc.DBAPIError), ledger.engine.begin() as conn:
            conn.execute(statement, {"c": code})


# ------------------------------------------------------------------ the page


def test_the_page_goes_on_with_suivants_and_back_with_precedents(client, ledger):
    admin = ledger.user("admin")
    login(client, admin.username, PASSWORD)
    with ledger.engine.begin() as conn:
        codes = [add_party(conn, "soliste", f"Soliste {n:03d}") for n in range(130)]
    first = client.get("/admin/adherents?college=solistes")
    assert first.status_code == 200
    assert codes[0] in first.text and codes[99] in first.text and codes[100] not in first.text
    assert "Précédents" not in first.text
    assert re.search(r'data-testid="members-count">13\d adhérents<', first.text)  # the total
    after = re.search(r'href="([^"]*apres=[^"]*)" rel="next">Suivants<', first.text)
    assert after and "college=solistes" in after.group(1)
    second = client.get(html.unescape(after.group(1)))
    assert codes[100] in second.text and codes[129] in second.text and codes[99] not in second.text
    assert "Suivants" not in second.text
    before = re.search(r'href="([^"]*avant=[^"]*)" rel="prev">Précédents<', second.text)
    assert before
    back = client.get(html.unescape(before.group(1)))
    assert codes[0] in back.text and codes[99] in back.text and codes[100] not in back.text
    # A text filter: the count of the page, the totals stay in the colleges' table.
    found = client.get("/admin/adherents?q=soliste")
    assert re.search(r'data-testid="members-count">\d+ adhérents sur cette page<', found.text)
    for bad in ("apres=zzz", "avant=S-999999", "apres=%C3%A9", "avant=" + "x" * 5000,
                "apres=A-000001&avant=L-1", "apres[]=1"):
        page = client.get(f"/admin/adherents?college=solistes&{bad}")
        assert page.status_code == 200 and codes[0] in page.text  # the first page
    client.post("/langue", data={"csrf_token": csrf_token(first.text), "lang": "en",
                                 "next": "/admin/adherents"})
    english = client.get(html.unescape(after.group(1))).text
    assert 'rel="prev">Previous<' in english


def test_the_lapsing_page_reads_a_date_range(client, ledger):
    admin = ledger.user("admin")
    login(client, admin.username, PASSWORD)
    today = clock.paris_today()
    month_end = membership.month_bounds(today)[1]
    with ledger.engine.begin() as conn:
        due = add_party(conn, "soliste", "Élise Échéance", until=month_end)
        later = add_party(conn, "soliste", "Louis Plus Tard",
                          until=month_end + dt.timedelta(days=1))
    page = client.get("/admin/adherents/echeances")
    assert page.status_code == 200 and due in page.text and later not in page.text


def test_the_database_orders_sort_names_by_code_point(ledger, backend):
    """PostgreSQL's collation of the database (en_US.UTF-8, say) would order "a b"
    after "ab" and ignore hyphens: the column is compared in collation "C", as Python's
    sorted() compares (SQLite's BINARY already is)."""
    with ledger.engine.begin() as conn:
        for name in ("ab", "a b", "a-c", "aB", "äa", "a b", "a_b"):
            add_party(conn, "soliste", name)
        stored = conn.execute(sa.text(
            "SELECT sort_name FROM parties WHERE kind = 'soliste' ORDER BY sort_name")
        ).scalars().all()
        assert stored == sorted(stored)
        if backend == "postgresql":  # the test database may already be C.UTF-8
            collations = set(conn.execute(sa.text(
                "SELECT collation_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND column_name = 'sort_name'")
            ).scalars())
            assert collations == {"C"}
