"""The FEC of a whole year, prepared in the background (docs/fec.md, "Background
jobs"): the treasurer asks for it on /admin/comptabilite, ``flask bousol worker`` writes
the file under the exports folder, the page offers it for download. No Flask here.

Who may: the roles that see the FEC (:data:`FEC_ROLES`, the admin today) ask for a year
and download the files asked by their own role only; a job asked by another role is
"unknown" to them (404), as is an id that names no job.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import Connection, select

from bousol.ledger.association import fec
from bousol.ledger.books.models import User
from bousol.ledger.kernel import jobs
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import InvalidInput
from bousol.ledger.kernel.uow import UnitOfWork

KIND = "fec"
FEC_ROLES = (Role.ADMIN,)
FIRST_YEAR = 2000  # no ledger before; a later year than this one has no entries yet
users_t = User.__table__


@dataclass(frozen=True)
class FecJob:
    """A job as the page shows it: the job, its period, who asked."""

    job: jobs.JobView
    period: fec.Period
    requested_by: str | None

    @property
    def year(self) -> int | None:
        start, end = self.period.start, self.period.end
        whole = (start.month, start.day, end.month, end.day) == (1, 1, 12, 31)
        return start.year if whole and start.year == end.year else None


def parse_year(value: object) -> int:
    """A calendar year from :data:`FIRST_YEAR` to this one (Paris), or
    :class:`InvalidInput` on ``year``."""
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        text = ""
    last = paris_today().year
    if not (text.isascii() and text.isdigit() and len(text) == 4) or not (
            FIRST_YEAR <= int(text) <= last):
        raise InvalidInput(f"Année invalide : de {FIRST_YEAR} à {last}.", field="year")
    return int(text)


def year_period(year: int) -> fec.Period:
    return fec.Period(dt.date(year, 1, 1), dt.date(year, 12, 31))


def request_year(uow: UnitOfWork, actor: Actor, year: object,
                 siren: object) -> tuple[FecJob, bool]:
    """Queue the FEC of a calendar year; ``(job, True)``, or the same year's job already
    waiting or running, ``(job, False)``. Needs a valid SIREN (the file is named by it)."""
    actor.require(*FEC_ROLES)
    number = parse_year(year)
    fec.check_siren(siren)
    period = year_period(number)
    job, created = jobs.enqueue(uow, actor, KIND, {
        "from": period.start.isoformat(), "to": period.end.isoformat()})
    return FecJob(job, period, actor.username), created


def _period(job: jobs.JobView) -> fec.Period:
    return fec.parse_period(job.params.get("from"), job.params.get("to"))


def _names(conn: Connection, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = conn.execute(select(users_t.c.id, users_t.c.username)
                        .where(users_t.c.id.in_(sorted(ids)))).all()
    return {row.id: row.username for row in rows}


def recent(conn: Connection, actor: Actor, *, limit: int = 20) -> list[FecJob]:
    """The latest FEC jobs asked by the actor's role, newest first."""
    actor.require(*FEC_ROLES)
    found = jobs.recent(conn, KIND, role=str(actor.role), limit=limit)
    names = _names(conn, {j.requested_by_user_id for j in found
                          if j.requested_by_user_id is not None})
    return [FecJob(j, _period(j), names.get(j.requested_by_user_id or 0)) for j in found]


def downloadable(conn: Connection, actor: Actor, job_id: object) -> FecJob:
    """A finished FEC job the actor may download; :class:`jobs.UnknownJob` (404) for an
    id of no job, of another kind, or asked by another role; :class:`jobs.JobNotReady`
    (409) while it waits, runs, or after it failed."""
    actor.require(*FEC_ROLES)
    job = jobs.get(conn, job_id)
    if job.kind != KIND or job.role != str(actor.role):
        raise jobs.UnknownJob()
    if job.status != jobs.Status.DONE or not job.output_name:
        raise jobs.JobNotReady()
    return FecJob(job, _period(job), None)


def run(context: jobs.JobContext, params: dict, out: BinaryIO) -> str:
    """The worker's handler: the FEC of the job's period, streamed from one read-only
    snapshot into ``out``; returns the file's legal name."""
    period = fec.parse_period(params.get("from"), params.get("to"))
    siren = fec.check_siren(context.config.get("ASSOCIATION_SIREN", ""))
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    with context.new_uow(read_only=True) as uow:
        fec.write(uow.conn, period, text, progress=lambda _lines: context.heartbeat())
    text.flush()
    text.detach()
    return fec.filename(siren, period)


jobs.register(KIND, run)
