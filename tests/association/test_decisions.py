"""Collegial decisions (issue 7): the motion's state machine as a table; the voting rules
(one vote per person, changed before the close, none after, members only); the counts
per college and overall, the quorum and the tie; the effect of an adopted decision (a
setting, an approval) applied at the close and only then, once, even under concurrency;
the pages (propose, vote, change the vote, results, seats, settings, 403s, 422s) and the
command line's ``close-motions``. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections import Counter

import pytest
import sqlalchemy as sa

from bousol.ledger.association import decisions
from bousol.ledger.books import phases
from bousol.ledger.kernel import clock, settings
from bousol.ledger.kernel.actors import SYSTEM, Actor
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import (
    AlreadyInCollective,
    DomainError,
    Forbidden,
    InvalidDate,
    InvalidInput,
    MotionClosed,
    MotionHasVotes,
    MotionNotDue,
    NotInCollective,
    UnknownMotion,
)
from bousol.ledger.merchants import approval
from tests.helpers import PASSWORD, THREADS, apply, csrf_token, hammer, login

STATUSES = ["open", "adopted", "rejected", "withdrawn"]
ACTIONS = ["adopt", "reject", "withdraw"]
# The issue's state machine, written out here so that the code's table is checked
# against it (not against itself).
EXPECTED = {
    ("open", "adopt"): "adopted",
    ("open", "reject"): "rejected",
    ("open", "withdraw"): "withdrawn",
}
T0 = clock.now().replace(microsecond=0)
CLOSES = T0 + dt.timedelta(days=7)
DURING = T0 + dt.timedelta(days=1)
AFTER = CLOSES + dt.timedelta(minutes=1)
_titles = itertools.count(1)


@pytest.fixture
def admin(ledger) -> Actor:
    return ledger.user("admin")


def seated(ledger, role: str = "soliste", college: str | None = None, **kw) -> Actor:
    """A new user of ``role``, seated in the collective."""
    if role == "prestataire":
        kw.setdefault("filiere", "alimentation")
    person = ledger.user(role, **kw)
    decisions.add_member(ledger.uow(), SYSTEM, person.username, college)
    return person


def propose(ledger, by: Actor, **kw) -> int:
    kw.setdefault("title", f"Décision {next(_titles)}")
    kw.setdefault("closes_at", CLOSES)
    kw.setdefault("now", T0)
    return decisions.propose(ledger.uow(), by, **kw)


def vote(ledger, who: Actor, motion_id: int, choice: str, now=DURING):
    return decisions.vote(ledger.uow(), who, motion_id, choice, now=now)


def close(ledger, motion_id: int, actor: Actor = SYSTEM, now=AFTER):
    return decisions.close(ledger.uow(), actor, motion_id, now=now)


def vote_rows(ledger, motion_id: int) -> list:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT user_id, college, choice, cast_at, changed_at FROM votes "
            "WHERE motion_id = :m ORDER BY id"), {"m": motion_id}).all()


def motion_row(ledger, motion_id: int):
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT status, closed_at, closed_by_user_id, result, effect_note FROM motions "
            "WHERE id = :m"), {"m": motion_id}).one()


def setting(ledger, key: str) -> str:
    with ledger.uow(read_only=True) as uow:
        return settings.current(uow.conn, [key])[key]


def setting_rows(ledger, key: str) -> list:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT value, changed_by_user_id, reason, motion_id FROM setting_changes "
            "WHERE key = :k ORDER BY id"), {"k": key}).all()


def fee_motion(ledger, by: Actor, value: str = "400") -> int:
    return propose(ledger, by, title="Commission de reconversion à 4 %", effect="setting",
                   setting_key="reconversion.fee_bp", setting_value=value)


# ---------------------------------------------------------------- the state machine


def test_the_code_table_is_the_issue_table():
    assert {(s.value, a.value): t.value
            for (s, a), t in decisions.TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize("status", [*STATUSES, "bogus"])
@pytest.mark.parametrize("action", [*ACTIONS, "delete"])
def test_check_transition_table(status, action):
    if (status, action) in EXPECTED:
        assert decisions.check_transition(status, action) == EXPECTED[(status, action)]
    else:
        with pytest.raises(MotionClosed) as refused:
            decisions.check_transition(status, action)
        assert refused.value.code == "motion_closed"
        assert refused.value.http_status == 409


def motion_in(ledger, status: str, admin: Actor, member: Actor) -> int:
    """A motion brought to ``status`` by the real steps."""
    motion_id = propose(ledger, admin)
    if status in ("adopted", "rejected"):
        vote(ledger, member, motion_id, "for" if status == "adopted" else "against")
        close(ledger, motion_id)
    elif status == "withdrawn":
        decisions.withdraw(ledger.uow(), admin, motion_id, now=DURING)
    return motion_id


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("step", ["vote", "close", "withdraw"])
def test_every_status_and_step(ledger, admin, status, step):
    member = seated(ledger)
    motion_id = motion_in(ledger, status, admin, member)
    assert motion_row(ledger, motion_id).status == status
    before_motion, before_votes = motion_row(ledger, motion_id), vote_rows(ledger, motion_id)
    run = {
        # An open motion: a vote before its date, a close after it, a withdrawal by an
        # admin before any vote.
        "vote": lambda: vote(ledger, member, motion_id, "abstain"),
        "close": lambda: close(ledger, motion_id),
        "withdraw": lambda: decisions.withdraw(ledger.uow(), admin, motion_id, now=DURING),
    }[step]
    if status != "open":
        with pytest.raises(MotionClosed):
            run()
        assert motion_row(ledger, motion_id) == before_motion  # nothing written
        assert vote_rows(ledger, motion_id) == before_votes
        return
    run()
    expected = {"vote": "open", "close": "rejected", "withdraw": "withdrawn"}[step]
    assert motion_row(ledger, motion_id).status == expected


# ---------------------------------------------------------------- seats


def test_seats_take_the_college_of_the_account(ledger, admin):
    people = {role: ledger.user(role, **({"filiere": "alimentation"}
                                          if role == "prestataire" else {}))
              for role in ("soliste", "prestataire", "ccas", "bank")}
    for person in people.values():
        decisions.add_member(ledger.uow(), admin, person.username)
    other_admin = ledger.user("admin")
    with pytest.raises(InvalidInput) as refused:
        decisions.add_member(ledger.uow(), admin, other_admin.username)
    assert refused.value.details["field"] == "college"
    decisions.add_member(ledger.uow(), admin, other_admin.username.upper(), "acteurs_locaux")
    with ledger.uow(read_only=True) as uow:
        seats = {s.username: s.college for s in decisions.collective(uow.conn)}
    assert seats == {
        people["soliste"].username: "solistes", people["prestataire"].username: "prestataires",
        people["ccas"].username: "acteurs_locaux", people["bank"].username: "acteurs_locaux",
        other_admin.username: "acteurs_locaux",
    }


def test_one_current_seat_per_person_and_seat_history(ledger, admin):
    marie = ledger.soliste()
    decisions.add_member(ledger.uow(), admin, marie.username)
    with pytest.raises(AlreadyInCollective) as again:
        decisions.add_member(ledger.uow(), admin, marie.username, "prestataires")
    assert again.value.code == "already_in_collective" and again.value.http_status == 409
    decisions.remove_member(ledger.uow(), admin, marie.username)
    with pytest.raises(NotInCollective):
        decisions.remove_member(ledger.uow(), admin, marie.username)
    # A soliste may sit for another college when the association says so.
    decisions.add_member(ledger.uow(), admin, marie.username, "acteurs_locaux")
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT college, until IS NULL AS current, added_by_user_id, removed_by_user_id "
            "FROM collective_members WHERE user_id = :u ORDER BY id"),
            {"u": marie.user_id}).all()
    assert [(r.college, bool(r.current)) for r in rows] == [
        ("solistes", False), ("acteurs_locaux", True)]
    assert rows[0].removed_by_user_id == admin.user_id


def test_only_admins_seat_people(ledger, admin):
    member = seated(ledger)
    other = ledger.soliste()
    with pytest.raises(Forbidden):
        decisions.add_member(ledger.uow(), member, other.username)
    with pytest.raises(Forbidden):
        decisions.remove_member(ledger.uow(), member, member.username)
    with pytest.raises(InvalidInput) as unknown:
        decisions.add_member(ledger.uow(), admin, "nobody-here")
    assert unknown.value.details["field"] == "username"
    with pytest.raises(InvalidInput):
        decisions.add_member(ledger.uow(), admin, other.username, "presidents")


def test_concurrent_seating_makes_one_seat(ledger, admin):
    marie = ledger.soliste()

    def worker(i: int) -> str:
        try:
            decisions.add_member(ledger.uow(), admin, marie.username)
            return "seated"
        except AlreadyInCollective:
            return "already"

    assert Counter(hammer(worker)) == {"seated": 1, "already": THREADS - 1}
    assert ledger.count("collective_members") == 1


# ---------------------------------------------------------------- proposing


def test_who_proposes(ledger, admin):
    member, outsider = seated(ledger), ledger.soliste()
    assert propose(ledger, admin) > 0
    assert propose(ledger, member) > 0
    with pytest.raises(NotInCollective) as refused:
        propose(ledger, outsider)
    assert refused.value.http_status == 403
    assert ledger.count("motions") == 2


@pytest.mark.parametrize(("closes_at", "field"), [
    (T0 + dt.timedelta(minutes=59), "closes_at"),  # less than an hour
    (T0 + dt.timedelta(days=366), "closes_at"),  # more than a year
    (T0.replace(tzinfo=None) + dt.timedelta(days=2), "closes_at"),  # no time zone
    (T0 - dt.timedelta(days=1), "closes_at"),  # in the past
])
def test_closing_date_bounds(ledger, admin, closes_at, field):
    with pytest.raises(InvalidDate) as refused:
        propose(ledger, admin, closes_at=closes_at)
    assert refused.value.details["field"] == field
    assert propose(ledger, admin, closes_at=T0 + dt.timedelta(hours=1))
    assert propose(ledger, admin, closes_at=T0 + dt.timedelta(days=365))


@pytest.mark.parametrize(("kw", "field"), [
    ({"title": "  "}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"title": "deux\nlignes"}, "title"),
    ({"body": "y" * 5001}, "body"),
    ({"effect": "dissolve"}, "effect"),
    ({"effect": "setting", "setting_key": "no.such.key", "setting_value": "1"}, "setting_key"),
    ({"effect": "setting", "setting_key": "reconversion.fee_bp", "setting_value": "4 %"},
     "setting_value"),
    ({"effect": "setting", "setting_key": "phase.b2b", "setting_value": "maybe"},
     "setting_value"),
    ({"effect": "setting", "setting_key": "decisions.quorum_pct", "setting_value": "101"},
     "setting_value"),
    ({"effect": "approval", "prestataire_code": "P-999999"}, "prestataire"),
    ({"effect": "approval", "prestataire_code": None}, "prestataire"),
])
def test_proposal_checks(ledger, admin, kw, field):
    with pytest.raises(DomainError) as refused:
        propose(ledger, admin, **kw)
    assert refused.value.details["field"] == field
    assert ledger.count("motions") == 0


def test_setting_value_is_checked_and_normalised_at_once(ledger, admin):
    motion_id = propose(ledger, admin, effect="setting", setting_key="reconversion.fee_bp",
                        setting_value=" 0400 ")
    with ledger.uow(read_only=True) as uow:
        found = decisions.motion(uow.conn, motion_id)
    assert (found.setting_key, found.setting_value) == ("reconversion.fee_bp", "400")


def test_approval_motion_needs_an_application_waiting(ledger, admin):
    approved = ledger.prestataire()  # made by the association: approved at once
    with pytest.raises(InvalidInput) as refused:
        propose(ledger, admin, effect="approval", prestataire_code=approved.party_code)
    assert refused.value.details["field"] == "prestataire"
    marie = ledger.soliste()
    with pytest.raises(InvalidInput):
        propose(ledger, admin, effect="approval", prestataire_code=marie.party_code)
    draft = apply(ledger, submit=False)
    with pytest.raises(InvalidInput):
        propose(ledger, admin, effect="approval", prestataire_code=draft.party_code)
    waiting = apply(ledger, submit=True)
    assert propose(ledger, admin, effect="approval", prestataire_code=waiting.party_code)


# ---------------------------------------------------------------- voting


def test_one_vote_per_person_changed_in_place(ledger, admin):
    marie = seated(ledger)
    motion_id = propose(ledger, admin)
    first = vote(ledger, marie, motion_id, "for", now=DURING)
    assert (first.first, first.changed) == (True, True)
    [row] = vote_rows(ledger, motion_id)
    assert (row.choice, row.college, row.changed_at) == ("for", "solistes", None)
    later = DURING + dt.timedelta(hours=5)
    second = vote(ledger, marie, motion_id, "against", now=later)
    assert (second.first, second.changed) == (False, True)
    [changed] = vote_rows(ledger, motion_id)  # still one row
    assert changed.choice == "against" and changed.cast_at == row.cast_at
    assert changed.changed_at is not None
    same = vote(ledger, marie, motion_id, "against", now=later + dt.timedelta(hours=1))
    assert (same.first, same.changed) == (False, False)
    assert vote_rows(ledger, motion_id) == [changed]  # nothing written
    with ledger.uow(read_only=True) as uow:
        mine = decisions.my_vote(uow.conn, motion_id, marie.user_id)
    assert mine.choice == "against"


def test_vote_can_change_until_the_close_and_not_after(ledger, admin):
    marie = seated(ledger)
    motion_id = propose(ledger, admin)
    vote(ledger, marie, motion_id, "for")
    vote(ledger, marie, motion_id, "abstain", now=CLOSES - dt.timedelta(seconds=1))
    before = vote_rows(ledger, motion_id)
    # The closing date has passed, the motion is not formally closed yet: refused.
    for when in (CLOSES, AFTER):
        with pytest.raises(MotionClosed) as refused:
            vote(ledger, marie, motion_id, "against", now=when)
        assert refused.value.code == "motion_closed"
    assert motion_row(ledger, motion_id).status == "open"
    close(ledger, motion_id)
    # And once closed, whatever the clock says.
    with pytest.raises(MotionClosed):
        vote(ledger, marie, motion_id, "against", now=DURING)
    assert vote_rows(ledger, motion_id) == before


def test_only_members_vote(ledger, admin):
    motion_id = propose(ledger, admin)
    outsider, shop = ledger.soliste(), ledger.prestataire()
    for who in (outsider, shop, admin, SYSTEM):
        with pytest.raises(NotInCollective) as refused:
            vote(ledger, who, motion_id, "for")
        assert refused.value.code == "not_in_collective"
        assert refused.value.http_status == 403
    member = seated(ledger)
    vote(ledger, member, motion_id, "for")
    decisions.remove_member(ledger.uow(), admin, member.username)
    with pytest.raises(NotInCollective):
        vote(ledger, member, motion_id, "against")
    assert [r.choice for r in vote_rows(ledger, motion_id)] == ["for"]


@pytest.mark.parametrize("choice", ["yes", "", None, "FOR", 1])
def test_vote_choice_is_one_of_three(ledger, admin, choice):
    member = seated(ledger)
    motion_id = propose(ledger, admin)
    with pytest.raises(InvalidInput) as refused:
        vote(ledger, member, motion_id, choice)
    assert refused.value.details["field"] == "choice"
    assert vote_rows(ledger, motion_id) == []


@pytest.mark.parametrize("motion_id", [0, -1, 2**31, 999, "1", True, None])
def test_unknown_motion(ledger, admin, motion_id):
    member = seated(ledger)
    propose(ledger, admin)
    with pytest.raises(UnknownMotion) as refused:
        vote(ledger, member, motion_id, "for")
    assert refused.value.http_status == 404
    with pytest.raises(UnknownMotion):
        close(ledger, motion_id)


# ---------------------------------------------------------------- counting


def test_totals_per_college_and_overall(ledger, admin):
    s1, s2 = seated(ledger), seated(ledger)
    p1, p2 = seated(ledger, "prestataire"), seated(ledger, "prestataire")
    seated(ledger, "ccas")  # does not vote
    motion_id = propose(ledger, admin)
    for who, choice in ((s1, "for"), (s2, "against"), (p1, "for"), (p2, "abstain")):
        vote(ledger, who, motion_id, choice)

    with ledger.uow(read_only=True) as uow:
        live = decisions.results(uow.conn, motion_id)
    # While open: participation only, never the totals.
    assert live.final is False and live.adopted is None
    assert (live.overall.seats, live.overall.voted, live.overall.for_) == (5, 4, None)
    assert {c: (n.seats, n.voted, n.for_) for c, n in live.colleges.items()} == {
        "solistes": (2, 2, None), "prestataires": (2, 2, None), "acteurs_locaux": (1, 0, None)}
    assert (live.quorum_pct, live.quorum_needed, live.quorum_reached) == (50, 3, True)

    done = close(ledger, motion_id)
    assert done.status == "adopted"
    r = done.results
    assert r.final and r.adopted and r.quorum_reached and r.discarded == 0
    table = {c: (n.seats, n.for_, n.against, n.abstain, n.not_voted)
             for c, n in r.colleges.items()}
    assert table == {"solistes": (2, 1, 1, 0, 0), "prestataires": (2, 1, 0, 1, 0),
                     "acteurs_locaux": (1, 0, 0, 0, 1)}
    o = r.overall
    assert (o.seats, o.voted, o.for_, o.against, o.abstain, o.not_voted) == (5, 4, 2, 1, 1, 1)
    assert r.participation_pct == 80
    # Stored at the close, read back the same.
    row = motion_row(ledger, motion_id)
    stored = json.loads(row.result)
    assert stored["for"] == 2 and stored["colleges"]["acteurs_locaux"]["not_voted"] == 1
    with ledger.uow(read_only=True) as uow:
        assert decisions.results(uow.conn, motion_id) == r
    assert row.closed_by_user_id is None  # the command line's system actor


@pytest.mark.parametrize(("seats", "votes", "quorum", "adopted"), [
    (5, ["for", "for"], "50", False),  # 2 of 5 took part: 3 needed
    (5, ["for", "for", "against"], "50", True),
    (5, ["for", "for"], "40", True),  # 40 % of 5 = 2
    (4, ["for", "against"], "50", False),  # a tie rejects
    (4, ["for", "for", "against", "against"], "50", False),  # a tie, quorum reached
    (3, ["for", "abstain", "abstain"], "50", True),  # abstaining counts for the quorum
    (3, ["abstain", "abstain", "abstain"], "50", False),  # nobody for
    (4, [], "0", False),  # no quorum needed, but 0 for is not more than 0 against
    (4, ["for"], "0", True),
    (4, ["for", "for", "for"], "100", False),
    (4, ["for", "for", "for", "against"], "100", True),
    (0, [], "50", False),  # nobody seated: nothing is adopted
])
def test_quorum_and_majority(ledger, admin, seats, votes, quorum, adopted):
    ledger.setting("decisions.quorum_pct", quorum)
    members = [seated(ledger) for _ in range(seats)]
    motion_id = propose(ledger, admin)
    for member, choice in zip(members, votes, strict=False):
        vote(ledger, member, motion_id, choice)
    done = close(ledger, motion_id)
    assert done.results.adopted is adopted
    assert done.status == ("adopted" if adopted else "rejected")


def test_former_members_votes_do_not_count(ledger, admin):
    stays, leaves = seated(ledger), seated(ledger, "prestataire")
    motion_id = propose(ledger, admin)
    vote(ledger, stays, motion_id, "against")
    vote(ledger, leaves, motion_id, "for")
    decisions.remove_member(ledger.uow(), admin, leaves.username)
    done = close(ledger, motion_id)
    assert (done.results.overall.seats, done.results.overall.voted) == (1, 1)
    assert done.results.overall.for_ == 0 and done.results.discarded == 1
    assert done.status == "rejected"


def test_seats_changed_after_the_closing_date_do_not_change_the_outcome(ledger, admin):
    """Between the closing date and the formal close, removing a member who voted for,
    or seating newcomers to miss the quorum, changes nothing: the count is the seats
    held at the closing date."""
    voters = [seated(ledger) for _ in range(3)]
    motion_id = fee_motion(ledger, admin)
    for person in voters:
        vote(ledger, person, motion_id, "for")
    decisions.remove_member(ledger.uow(), admin, voters[0].username, now=AFTER)
    for _ in range(4):  # newcomers seated after the closing date
        newcomer = ledger.user("soliste")
        decisions.add_member(ledger.uow(), admin, newcomer.username, now=AFTER)
    done = close(ledger, motion_id, now=AFTER + dt.timedelta(hours=1))
    assert (done.results.overall.seats, done.results.overall.for_) == (3, 3)
    assert done.status == "adopted" and setting(ledger, "reconversion.fee_bp") == "400"


# ---------------------------------------------------------------- effects


def test_adopted_setting_applies_at_the_close_and_only_then(ledger, admin):
    members = [seated(ledger), seated(ledger, "prestataire"), seated(ledger, "ccas")]
    motion_id = fee_motion(ledger, members[0])
    for member in members:
        vote(ledger, member, motion_id, "for")
    # Every member voted for: still nothing changes before the close.
    assert setting(ledger, "reconversion.fee_bp") == "500"
    assert setting_rows(ledger, "reconversion.fee_bp") == []
    with pytest.raises(MotionNotDue) as early:
        close(ledger, motion_id, admin, now=CLOSES - dt.timedelta(seconds=1))
    assert early.value.code == "motion_not_due"
    assert setting(ledger, "reconversion.fee_bp") == "500"

    done = close(ledger, motion_id, admin, now=CLOSES)
    assert done.status == "adopted"
    assert done.effect_note == "Réglage reconversion.fee_bp : 500 → 400."
    assert setting(ledger, "reconversion.fee_bp") == "400"
    [row] = setting_rows(ledger, "reconversion.fee_bp")
    assert row.value == "400" and row.motion_id == motion_id
    assert row.changed_by_user_id == admin.user_id
    assert row.reason == f"Décision n° {motion_id} : Commission de reconversion à 4 %"
    # The fee is used at once.
    ledger.subsidy()
    marie, baker = ledger.soliste(), ledger.prestataire()
    ledger.exchange(marie, "100.00")
    ledger.pay(marie, baker, "100.00")
    assert ledger.reconvert(baker, "100.00").fee_cents == 400
    with ledger.uow(read_only=True) as uow:
        [state] = [s for s in decisions.settings_overview(uow.conn)
                   if s.key == "reconversion.fee_bp"]
    assert state.value == "400" and state.default == "500"
    assert state.history[0].motion_id == motion_id
    assert state.history[0].motion_title == "Commission de reconversion à 4 %"
    assert state.history[0].by == admin.username


def test_rejected_motion_changes_nothing(ledger, admin):
    a, b = seated(ledger), seated(ledger)
    motion_id = fee_motion(ledger, admin)
    vote(ledger, a, motion_id, "for")
    vote(ledger, b, motion_id, "against")
    done = close(ledger, motion_id)
    assert done.status == "rejected"
    assert setting(ledger, "reconversion.fee_bp") == "500"
    assert setting_rows(ledger, "reconversion.fee_bp") == []
    assert "ne change pas" in done.effect_note


def test_phase_switched_by_a_decision_shows_it(ledger, admin):
    member = seated(ledger)
    motion_id = propose(ledger, admin, effect="setting", setting_key="phase.b2b",
                        setting_value="on", title="Ouvrir le circuit B2B")
    vote(ledger, member, motion_id, "for")
    close(ledger, motion_id)
    with ledger.uow(read_only=True) as uow:
        [b2b] = [s for s in phases.states(uow.conn) if s.phase.value == "b2b"]
    assert b2b.on and b2b.history[0].motion_id == motion_id
    assert b2b.history[0].reason == f"Décision n° {motion_id} : Ouvrir le circuit B2B"


def test_adopted_approval_approves_the_prestataire(ledger, admin):
    member = seated(ledger)
    waiting = apply(ledger, submit=True)
    motion_id = propose(ledger, member, effect="approval", prestataire_code=waiting.party_code,
                        title="Agréer la Fromagerie")
    vote(ledger, member, motion_id, "for")
    with ledger.uow(read_only=True) as uow:
        assert approval.application(uow.conn, waiting.party_code).status == "submitted"
    done = close(ledger, motion_id, admin)
    assert done.effect_note == f"Prestataire {waiting.party_code} agréé."
    with ledger.uow(read_only=True) as uow:
        assert approval.application(uow.conn, waiting.party_code).status == "approved"
        last = approval.decisions(uow.conn, waiting.party_id)[-1]
    assert (last.action, last.decided_by) == ("approve", admin.username)
    assert last.reason == (f"Décision n° {motion_id} du collectif de gestion : "
                           "Agréer la Fromagerie")


def test_approval_decided_meanwhile_is_noted_not_repeated(ledger, admin):
    member = seated(ledger)
    waiting = apply(ledger, submit=True)
    motion_id = propose(ledger, member, effect="approval", prestataire_code=waiting.party_code)
    vote(ledger, member, motion_id, "for")
    approval.refuse(ledger.uow(), admin, waiting.party_code, "Dossier incomplet.")
    done = close(ledger, motion_id)
    assert done.status == "adopted"
    assert "n'attend plus de décision d'agrément (statut : refused)" in done.effect_note
    with ledger.uow(read_only=True) as uow:
        steps = [d.action for d in approval.decisions(uow.conn, waiting.party_id)]
    assert steps == ["submit", "refuse"]


def test_rejected_approval_leaves_the_application_waiting(ledger, admin):
    member = seated(ledger)
    waiting = apply(ledger, submit=True)
    motion_id = propose(ledger, admin, effect="approval", prestataire_code=waiting.party_code)
    vote(ledger, member, motion_id, "against")
    assert close(ledger, motion_id).status == "rejected"
    with ledger.uow(read_only=True) as uow:
        assert approval.application(uow.conn, waiting.party_code).status == "submitted"


def test_closing_rules(ledger, admin):
    member = seated(ledger)
    motion_id = fee_motion(ledger, admin)
    vote(ledger, member, motion_id, "for")
    with pytest.raises(Forbidden):
        close(ledger, motion_id, member)  # a member who is not an admin
    first = close(ledger, motion_id, admin)
    with pytest.raises(MotionClosed):  # closing twice: refused, nothing changes
        close(ledger, motion_id, admin, now=AFTER + dt.timedelta(days=1))
    assert motion_row(ledger, motion_id).status == first.status == "adopted"
    assert len(setting_rows(ledger, "reconversion.fee_bp")) == 1


def test_close_due_is_idempotent(ledger, admin):
    member = seated(ledger)
    due = fee_motion(ledger, admin)
    later = propose(ledger, admin, closes_at=CLOSES + dt.timedelta(days=3))
    vote(ledger, member, due, "for")
    assert decisions.close_due(ledger.uow, SYSTEM, now=CLOSES - dt.timedelta(hours=1)) == []
    done = decisions.close_due(ledger.uow, SYSTEM, now=AFTER)
    assert [(d.motion_id, d.status) for d in done] == [(due, "adopted")]
    assert decisions.close_due(ledger.uow, SYSTEM, now=AFTER) == []
    assert motion_row(ledger, later).status == "open"
    assert len(setting_rows(ledger, "reconversion.fee_bp")) == 1
    with pytest.raises(Forbidden):
        decisions.close_due(ledger.uow, member, now=AFTER)


# ---------------------------------------------------------------- withdrawing


def test_withdraw_rules(ledger, admin):
    author, other = seated(ledger), seated(ledger)
    mine = propose(ledger, author)
    with pytest.raises(Forbidden):
        decisions.withdraw(ledger.uow(), other, mine, now=DURING)
    decisions.withdraw(ledger.uow(), author, mine, now=DURING)
    row = motion_row(ledger, mine)
    assert row.status == "withdrawn" and row.closed_by_user_id == author.user_id
    with ledger.uow(read_only=True) as uow:
        assert decisions.results(uow.conn, mine) is None

    voted = propose(ledger, author)
    vote(ledger, other, voted, "against")
    for who in (author, admin):
        with pytest.raises(MotionHasVotes) as refused:
            decisions.withdraw(ledger.uow(), who, voted, now=DURING)
        assert refused.value.code == "motion_has_votes"

    late = propose(ledger, author)
    with pytest.raises(MotionClosed):
        decisions.withdraw(ledger.uow(), admin, late, now=AFTER)
    decisions.withdraw(ledger.uow(), admin, late, now=DURING)  # an admin may, in time
    assert motion_row(ledger, late).status == "withdrawn"


# ---------------------------------------------------------------- concurrency


def test_concurrent_first_votes_of_one_person_make_one_row(ledger, admin):
    marie = seated(ledger)
    motion_id = propose(ledger, admin)
    choices = ["for", "against", "abstain"]

    def worker(i: int) -> bool:
        return vote(ledger, marie, motion_id, choices[i % 3]).first

    firsts = hammer(worker)
    assert firsts.count(True) == 1
    rows = vote_rows(ledger, motion_id)
    assert len(rows) == 1 and rows[0].choice in choices


def test_concurrent_closes_apply_the_effect_once(ledger, admin):
    members = [seated(ledger) for _ in range(3)]
    motion_id = fee_motion(ledger, admin)
    for member in members:
        vote(ledger, member, motion_id, "for")

    def worker(i: int) -> str:
        try:
            return close(ledger, motion_id, admin).status
        except MotionClosed:
            return "already"

    assert Counter(hammer(worker)) == {"adopted": 1, "already": THREADS - 1}
    assert [r.motion_id for r in setting_rows(ledger, "reconversion.fee_bp")] == [motion_id]


def test_votes_racing_the_close_are_counted_or_refused(ledger, admin):
    members = [seated(ledger) for _ in range(THREADS - 1)]
    motion_id = propose(ledger, admin)

    def worker(i: int) -> str:
        if i == 0:
            return close(ledger, motion_id, now=CLOSES).status
        try:  # votes just before the date, arriving while the close runs
            vote(ledger, members[i - 1], motion_id, "for",
                 now=CLOSES - dt.timedelta(seconds=1))
            return "voted"
        except MotionClosed:
            return "late"

    outcomes = hammer(worker)
    counted = motion_row(ledger, motion_id)
    result = json.loads(counted.result)
    # Every vote that went in before the close is counted; none after.
    assert result["voted"] == outcomes.count("voted") == len(vote_rows(ledger, motion_id))


# ---------------------------------------------------------------- reading


def test_motions_list_and_pending(ledger, admin):
    marie = seated(ledger)
    first = propose(ledger, admin, closes_at=CLOSES + dt.timedelta(days=2))
    soon = propose(ledger, admin, closes_at=CLOSES)
    done = propose(ledger, admin, closes_at=CLOSES)
    vote(ledger, marie, done, "for")
    close(ledger, done)
    vote(ledger, marie, soon, "abstain")
    with ledger.uow(read_only=True) as uow:
        lines = decisions.motions(uow.conn, marie.user_id)
        assert decisions.pending(uow.conn, marie.user_id, now=DURING) == 1
        assert decisions.pending(uow.conn, admin.user_id, now=DURING) is None
    assert [(m.id, m.status, m.my_choice) for m in lines] == [
        (soon, "open", "abstain"), (first, "open", None), (done, "adopted", "for")]


def test_parse_closing_is_paris_time():
    winter = decisions.parse_closing("15/01/2027", "18:00")
    assert winter == dt.datetime(2027, 1, 15, 17, 0, tzinfo=dt.UTC)
    summer = decisions.parse_closing("2027-07-01", "18h30")
    assert summer == dt.datetime(2027, 7, 1, 16, 30, tzinfo=dt.UTC)
    assert decisions.parse_closing("01/07/2027", "9h") == dt.datetime(
        2027, 7, 1, 7, 0, tzinfo=dt.UTC)
    for day, time, field in (("31/02/2027", "18:00", "closes_on"), ("", "18:00", "closes_on"),
                             ("01/07/2027", "25:00", "closes_time"),
                             ("01/07/2027", "midi", "closes_time"),
                             ("01/01/0001", "00:00", "closes_on"),  # overflows in UTC
                             ("31/12/9999", "23:59", "closes_on"),
                             (None, None, "closes_on")):
        with pytest.raises(InvalidDate) as refused:
            decisions.parse_closing(day, time)
        assert refused.value.details["field"] == field


# ---------------------------------------------------------------- the pages


def web_user(ledger, role: str, *, seat: bool = False, **kw) -> Actor:
    if role == "prestataire":
        kw.setdefault("filiere", "alimentation")
    person = ledger.user(role, **kw)
    if seat:
        decisions.add_member(ledger.uow(), SYSTEM, person.username,
                             "acteurs_locaux" if role == "admin" else None)
    return person


def post(client, path: str, data: dict, *, page: str | None = None, **kw):
    token = csrf_token(client.get(page or path).text)
    return client.post(path, data={"csrf_token": token, **data}, **kw)


def plain(response) -> str:
    """The page's text with apostrophes as typed (escaped in values, not in messages)."""
    return response.text.replace("&#39;", "'")


def checked(response) -> list[str]:
    return re.findall(r'<input checked id="choice-\d" name="choice" type="radio" value="(\w+)"',
                      response.text)


def make_due(ledger, motion_id: int) -> None:
    """Move a motion's dates into the past (the pages use the real clock)."""
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE motions SET opens_at = :o, closes_at = :c WHERE id = :m"),
                     {"o": T0 - dt.timedelta(days=8), "c": T0 - dt.timedelta(minutes=5),
                      "m": motion_id})
        # The seats held then: the count is of the seats held at the closing date.
        conn.execute(sa.text("UPDATE collective_members SET since = :o WHERE since > :o"),
                     {"o": T0 - dt.timedelta(days=8)})


def propose_data(**overrides) -> dict:
    day = (paris_today() + dt.timedelta(days=10)).strftime("%d/%m/%Y")
    return {"title": "Commission de reconversion à 4 %", "body": "Pour les commerçants.",
            "closes_on": day, "closes_time": "18:00", "effect": "setting",
            "setting_key": "reconversion.fee_bp", "setting_value": "400", "prestataire": "",
            **overrides}


def test_pages_are_for_members_and_admins_only(client, ledger, admin):
    outsider = web_user(ledger, "soliste")
    motion_id = propose(ledger, admin)
    assert client.get("/collectif/").status_code == 302  # log in first
    login(client, outsider.username, PASSWORD)
    for path in ("/collectif/", "/collectif/motions/nouvelle", f"/collectif/motions/{motion_id}",
                 "/admin/collectif", "/admin/reglages"):
        assert client.get(path).status_code == 403, path
    assert post(client, f"/collectif/motions/{motion_id}/vote", {"choice": "for"},
                page="/soliste/").status_code == 403
    assert post(client, "/collectif/motions/nouvelle", propose_data(),
                page="/soliste/").status_code == 403
    assert ledger.count("motions") == 1 and vote_rows(ledger, motion_id) == []
    home = client.get("/soliste/")
    assert "collective-link" not in home.text


def test_member_proposes_votes_and_changes_the_vote(client, ledger):
    marie = web_user(ledger, "soliste", seat=True)
    login(client, marie.username, PASSWORD)
    home = client.get("/soliste/")
    assert 'data-testid="collective-link"' in home.text

    sent = post(client, "/collectif/motions/nouvelle", propose_data())
    assert sent.status_code == 302
    motion_id = int(re.search(r"/motions/(\d+)$", sent.location)[1])
    page = client.get(sent.location)
    assert page.status_code == 200
    assert "Commission de reconversion à 4 %" in page.text
    assert "18:00 (heure de Paris)" in page.text
    assert "Vous n'avez pas voté." in plain(page)
    assert '<legend>Votre vote sur la décision n° ' in page.text
    assert "1 décision attend votre vote" in client.get("/soliste/").text

    voted = post(client, f"/collectif/motions/{motion_id}/vote", {"choice": "for"},
                 page=f"/collectif/motions/{motion_id}", follow_redirects=True)
    assert voted.status_code == 200
    assert "Votre vote est enregistré : Pour." in voted.text
    assert "Vous avez voté : Pour" in voted.text
    assert "1 membre sur 1 a voté" in voted.text
    assert checked(voted) == ["for"]  # the form shows the member's current vote
    changed = post(client, f"/collectif/motions/{motion_id}/vote", {"choice": "against"},
                   page=f"/collectif/motions/{motion_id}", follow_redirects=True)
    assert "Votre vote est changé : Contre." in changed.text
    assert "Vous avez voté : Contre" in changed.text and checked(changed) == ["against"]
    assert [r.choice for r in vote_rows(ledger, motion_id)] == ["against"]
    # While open: no totals on the page.
    assert 'data-testid="results-table"' not in changed.text
    assert "restent secrètes jusqu'à la clôture" in plain(changed)
    listing = client.get("/collectif/")
    assert "Commission de reconversion à 4 %" in listing.text and "Contre" in listing.text


def test_form_errors_are_422(client, ledger):
    marie = web_user(ledger, "soliste", seat=True)
    login(client, marie.username, PASSWORD)
    for overrides, message in (
        ({"title": ""}, "Titre : obligatoire."),
        ({"closes_on": "31/02/2027"}, "Date de clôture invalide"),
        ({"closes_time": "midi"}, "Heure de clôture invalide"),
        ({"closes_on": "01/01/2020"}, "au moins une heure plus tard"),
        ({"setting_value": "4 %"}, "points de base"),
        ({"effect": "approval"}, "Choisissez le prestataire"),
    ):
        page = post(client, "/collectif/motions/nouvelle", propose_data(**overrides))
        assert page.status_code == 422, overrides
        assert message in plain(page), overrides
        # The field marked invalid (no prestataire waiting: no list, the message only).
        assert 'aria-invalid="true"' in page.text or overrides == {"effect": "approval"}
        assert "error-summary" in page.text
    assert ledger.count("motions") == 0
    motion_id = propose(ledger, web_user(ledger, "admin"))
    none = post(client, f"/collectif/motions/{motion_id}/vote", {},
                page=f"/collectif/motions/{motion_id}")
    assert none.status_code == 422 and "Choisissez pour, contre ou abstention." in none.text
    bad = post(client, f"/collectif/motions/{motion_id}/vote", {"choice": "peut-être"},
               page=f"/collectif/motions/{motion_id}")
    assert bad.status_code == 422
    no_csrf = client.post(f"/collectif/motions/{motion_id}/vote", data={"choice": "for"})
    assert no_csrf.status_code == 400
    assert client.get("/collectif/motions/99999").status_code == 404
    assert vote_rows(ledger, motion_id) == []


def test_vote_after_the_date_is_refused_on_the_page(client, ledger, admin):
    marie = web_user(ledger, "soliste", seat=True)
    motion_id = propose(ledger, admin)
    login(client, marie.username, PASSWORD)
    token = csrf_token(client.get(f"/collectif/motions/{motion_id}").text)
    make_due(ledger, motion_id)
    page = client.get(f"/collectif/motions/{motion_id}")
    assert "le vote n'est plus possible" in plain(page)
    assert 'name="choice"' not in page.text
    late = client.post(f"/collectif/motions/{motion_id}/vote",
                       data={"csrf_token": token, "choice": "for"})
    assert late.status_code == 409
    assert "la date de clôture est passée" in late.text
    assert vote_rows(ledger, motion_id) == []


def test_admin_closes_and_everyone_sees_the_results(client, ledger):
    boss = web_user(ledger, "admin")
    marie = web_user(ledger, "soliste", seat=True)
    shop = web_user(ledger, "prestataire", seat=True)
    motion_id = fee_motion(ledger, marie)
    vote(ledger, marie, motion_id, "for", now=None)
    vote(ledger, shop, motion_id, "abstain", now=None)

    login(client, boss.username, PASSWORD)
    home = client.get("/admin/")
    assert "/collectif/" in home.text and "/admin/reglages" in home.text
    page = client.get(f"/collectif/motions/{motion_id}")
    assert page.status_code == 200 and ">Clore<" not in page.text  # not due yet
    early = post(client, f"/collectif/motions/{motion_id}/clore", {},
                 page=f"/collectif/motions/{motion_id}", follow_redirects=True)
    assert "encore ouvert" in early.text
    assert motion_row(ledger, motion_id).status == "open"
    make_due(ledger, motion_id)
    page = client.get(f"/collectif/motions/{motion_id}")
    assert ">Clore<" in page.text
    closed = post(client, f"/collectif/motions/{motion_id}/clore", {},
                  page=f"/collectif/motions/{motion_id}", follow_redirects=True)
    assert "Vote clos : la décision est adoptée." in closed.text
    assert 'data-testid="results-table"' in closed.text
    assert '<th scope="row">Solistes</th>' in closed.text
    assert re.search(r'data-testid="total-for">1<', closed.text)
    assert "Réglage reconversion.fee_bp : 500 → 400." in closed.text
    assert setting(ledger, "reconversion.fee_bp") == "400"

    settings_page = client.get("/admin/reglages")
    assert settings_page.status_code == 200
    assert f'href="/collectif/motions/{motion_id}">Décision n° {motion_id}</a>' in \
        settings_page.text
    client.post("/deconnexion", data={"csrf_token": csrf_token(settings_page.text)})

    login(client, marie.username, PASSWORD)
    seen = client.get(f"/collectif/motions/{motion_id}")
    assert 'data-testid="results-table"' in seen.text and ">Clore<" not in seen.text
    assert "Décision adoptée" in seen.text


def test_a_member_cannot_close(client, ledger, admin):
    marie = web_user(ledger, "soliste", seat=True)
    motion_id = propose(ledger, admin)
    make_due(ledger, motion_id)
    login(client, marie.username, PASSWORD)
    refused = post(client, f"/collectif/motions/{motion_id}/clore", {},
                   page=f"/collectif/motions/{motion_id}")
    assert refused.status_code == 403
    assert motion_row(ledger, motion_id).status == "open"


def test_author_withdraws_on_the_page(client, ledger):
    marie = web_user(ledger, "soliste", seat=True)
    login(client, marie.username, PASSWORD)
    sent = post(client, "/collectif/motions/nouvelle", propose_data(effect="none"))
    motion_id = int(re.search(r"/motions/(\d+)$", sent.location)[1])
    assert "Retirer la proposition" in client.get(sent.location).text
    gone = post(client, f"/collectif/motions/{motion_id}/retirer", {}, page=sent.location,
                follow_redirects=True)
    assert "La proposition est retirée." in gone.text and "Retirée" in gone.text
    assert motion_row(ledger, motion_id).status == "withdrawn"


def test_phases_page_links_the_decision(client, ledger):
    boss = web_user(ledger, "admin")
    member = web_user(ledger, "soliste", seat=True)
    motion_id = propose(ledger, boss, effect="setting", setting_key="phase.ccas",
                        setting_value="on", title="Ouvrir la phase CCAS")
    vote(ledger, member, motion_id, "for")
    close(ledger, motion_id, boss)
    login(client, boss.username, PASSWORD)
    page = client.get("/admin/phases")
    assert f'<a href="/collectif/motions/{motion_id}">Décision n° {motion_id}</a>' in page.text


def test_admin_seats_and_unseats(client, ledger):
    boss = web_user(ledger, "admin")
    marie, other_admin = web_user(ledger, "soliste"), web_user(ledger, "admin")
    login(client, boss.username, PASSWORD)
    added = post(client, "/admin/collectif", {"username": marie.username, "college": ""},
                 follow_redirects=True)
    assert added.status_code == 200 and "siège au collectif (collège « Solistes »)" in added.text
    again = post(client, "/admin/collectif", {"username": marie.username, "college": ""})
    assert again.status_code == 409 and "siège déjà" in again.text
    no_college = post(client, "/admin/collectif", {"username": other_admin.username,
                                                    "college": ""})
    assert no_college.status_code == 422 and "choisissez son collège" in no_college.text
    nobody = post(client, "/admin/collectif", {"username": "nobody", "college": ""})
    assert nobody.status_code == 422 and 'aria-invalid="true"' in nobody.text
    seated_admin = post(client, "/admin/collectif", {"username": other_admin.username,
                                                      "college": "acteurs_locaux"},
                        follow_redirects=True)
    assert "Acteurs locaux" in seated_admin.text
    removed = post(client, "/admin/collectif/retirer", {"seat_username": marie.username},
                   page="/admin/collectif", follow_redirects=True)
    assert "ne siège plus au collectif" in removed.text
    with ledger.uow(read_only=True) as uow:
        assert [s.username for s in decisions.collective(uow.conn)] == [other_admin.username]


def test_close_motions_command(app, ledger, admin):
    member = seated(ledger)
    motion_id = fee_motion(ledger, admin)
    vote(ledger, member, motion_id, "for")
    runner = app.test_cli_runner()
    nothing = runner.invoke(args=["bousol", "close-motions"])
    assert nothing.exit_code == 0 and "Aucun vote à clore." in nothing.output
    make_due(ledger, motion_id)
    done = runner.invoke(args=["bousol", "close-motions"])
    assert done.exit_code == 0, done.output
    assert f"Décision n° {motion_id}" in done.output and "adoptée" in done.output
    assert "1 pour, 0 contre" in done.output and "500 → 400" in done.output
    again = runner.invoke(args=["bousol", "close-motions"])
    assert "Aucun vote à clore." in again.output
    assert setting(ledger, "reconversion.fee_bp") == "400"
    assert len(setting_rows(ledger, "reconversion.fee_bp")) == 1
