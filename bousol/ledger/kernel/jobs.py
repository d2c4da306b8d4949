"""Background jobs: a request queued by a page, done by a worker, leaving a file to
download (the FEC of a whole year: bousol/ledger/association/export_jobs.py). No Flask.

docs/fec.md ("Background jobs") explains the rules; in short:

- a job is a row of ``jobs``: its kind and parameters, who asked with which role, its
  state, and its output (a file name under the exports folder, size, SHA-256) or error;
- the state moves only along :data:`TRANSITIONS` (queued → running → done | failed, and
  a stale running job back to queued), through :data:`MACHINE`;
- asking twice for the same thing while it waits or runs queues one job (the unique
  ``active_key``, NULL once the job is over);
- a worker claims the oldest queued job (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so two
  workers never take the same; SQLite: the single writer), writes the file beside its
  final name and renames it (a crash never leaves half a file under the final name);
- a running job whose heartbeat is older than ``stale_after`` (the worker died) is put
  back in the queue, and failed after :data:`MAX_ATTEMPTS` claims.

Each kind of job registers a handler (:func:`register`); the worker runs it with a
:class:`JobContext` (a unit-of-work factory of its own, the configuration, a
heartbeat) and a binary stream to write to.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import io
import json
import os
import re
import socket
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.clock import as_utc
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.kernel.models import Job, utcnow
from bousol.ledger.kernel.states import StateMachine
from bousol.ledger.kernel.uow import UnitOfWork

jobs_t = Job.__table__


class Status(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Action(enum.StrEnum):
    CLAIM = "claim"  # a worker takes it
    FINISH = "finish"  # its file is in place
    FAIL = "fail"  # its handler raised, or it was abandoned too often
    REQUEUE = "requeue"  # its worker stopped beating: back in the queue


TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.QUEUED, Action.CLAIM): Status.RUNNING,
    (Status.RUNNING, Action.FINISH): Status.DONE,
    (Status.RUNNING, Action.FAIL): Status.FAILED,
    (Status.RUNNING, Action.REQUEUE): Status.QUEUED,
}
ACTIVE = (Status.QUEUED, Status.RUNNING)


class JobTransition(DomainError):
    code = "job_transition"
    http_status = 409
    default_message = "Cette tâche ne peut pas changer ainsi d'état."


class UnknownJob(DomainError):
    code = "unknown_job"
    http_status = 404
    default_message = "Tâche inconnue."


class JobNotReady(DomainError):
    code = "job_not_ready"
    http_status = 409
    default_message = "Le fichier de cette tâche n'est pas (ou plus) disponible."


MACHINE = StateMachine(TRANSITIONS, lambda state, action: JobTransition(
    status=str(state), action=str(action)))


def next_status(state: object, action: object) -> Status:
    """The status ``action`` leads to, or :class:`JobTransition`."""
    return MACHINE.next(state, action)


# A running job's worker updates its heartbeat at least this often; one silent for
# STALE_AFTER is taken for dead (docs/fec.md, the stale-job rule).
HEARTBEAT_EVERY = dt.timedelta(seconds=30)
STALE_AFTER = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 3
ERROR_MAX = 500
FILE_MODE = 0o640  # the worker writes, the web app (same user or group) reads
OUTPUT_RE = re.compile(r"job-[0-9]+-[0-9A-Za-z][0-9A-Za-z._-]{0,150}")


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class JobView:
    id: int
    kind: str
    params: dict
    status: str
    role: str
    requested_by_user_id: int | None
    requested_at: dt.datetime
    attempts: int
    worker: str | None
    started_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    finished_at: dt.datetime | None
    output_name: str | None
    download_name: str | None
    size_bytes: int | None
    sha256: str | None
    error: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def _select():
    return select(jobs_t)


def _view(row) -> JobView:
    def when(value: dt.datetime | None) -> dt.datetime | None:
        return as_utc(value) if value is not None else None

    return JobView(
        row.id, row.kind, json.loads(row.params), row.status, row.role,
        row.requested_by_user_id, as_utc(row.requested_at), row.attempts,
        row.worker, when(row.started_at), when(row.heartbeat_at), when(row.finished_at),
        row.output_name, row.download_name, row.size_bytes, row.sha256, row.error)


def get(conn: Connection, job_id: object) -> JobView:
    """The job of this id, or :class:`UnknownJob` (an id that is no integer of the
    table's range included)."""
    if not isinstance(job_id, int) or isinstance(job_id, bool) or not 0 < job_id < 2**31:
        raise UnknownJob()
    row = conn.execute(_select().where(jobs_t.c.id == job_id)).first()
    if row is None:
        raise UnknownJob()
    return _view(row)


def recent(conn: Connection, kind: str, *, role: str | None = None,
           limit: int = 20) -> list[JobView]:
    """The latest jobs of a kind, newest first (of one role's askers, if given)."""
    query = _select().where(jobs_t.c.kind == kind)
    if role is not None:
        query = query.where(jobs_t.c.role == role)
    rows = conn.execute(query.order_by(jobs_t.c.id.desc()).limit(limit)).all()
    return [_view(row) for row in rows]


# ---------------------------------------------------------------- asking


def canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def enqueue(uow: UnitOfWork, actor: Actor, kind: str,
            params: Mapping[str, Any]) -> tuple[JobView, bool]:
    """Queue a job; ``(job, True)``. The same kind and parameters already queued or
    running: that job, ``(job, False)``, and nothing written (two requests at once
    included: the unique ``active_key``)."""
    text = canonical(params)
    key = f"{kind}:{text}"
    if len(key) > 200:
        raise ValueError("job parameters too long for the active key")
    with uow:
        conn = uow.conn
        found = conn.execute(_select().where(jobs_t.c.active_key == key)).first()
        if found is not None:
            return _view(found), False
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        inserted = conn.execute(
            dialect.insert(jobs_t).values(
                kind=kind, params=text, active_key=key, status=Status.QUEUED.value,
                role=str(actor.role), requested_by_user_id=actor.user_id,
                requested_at=utcnow(), attempts=0)
            .on_conflict_do_nothing(index_elements=[jobs_t.c.active_key])
            .returning(jobs_t.c.id)).scalar()
        row = conn.execute(_select().where(jobs_t.c.active_key == key)).first()
        uow.commit()
    assert row is not None  # ours, or the one that won the race
    return _view(row), inserted is not None


# ---------------------------------------------------------------- the worker's moves


def _move(conn: Connection, job_id: int, status: str, action: Action, **values) -> None:
    target = next_status(status, action)
    if target not in ACTIVE:
        values["active_key"] = None  # over: the same request may be made again
    conn.execute(update(jobs_t).where(jobs_t.c.id == job_id, jobs_t.c.status == status)
                 .values(status=target.value, **values))


def requeue_stale(uow: UnitOfWork, *, stale_after: dt.timedelta = STALE_AFTER,
                  max_attempts: int = MAX_ATTEMPTS) -> list[int]:
    """Running jobs whose heartbeat is older than ``stale_after``: back to the queue, or
    failed once claimed ``max_attempts`` times. Returns their ids."""
    now = utcnow()
    with uow:
        conn = uow.conn
        rows = conn.execute(
            select(jobs_t.c.id, jobs_t.c.status, jobs_t.c.attempts)
            .where(jobs_t.c.status == Status.RUNNING.value,
                   jobs_t.c.heartbeat_at < now - stale_after)
            .order_by(jobs_t.c.id).with_for_update(skip_locked=True)).all()
        for row in rows:
            if row.attempts >= max_attempts:
                _move(conn, row.id, row.status, Action.FAIL, finished_at=now,
                      error=f"Abandonnée : le traitement s'est interrompu {row.attempts} fois "
                            "(travailleur arrêté ?).")
            else:
                _move(conn, row.id, row.status, Action.REQUEUE, worker=None,
                      heartbeat_at=None)
        uow.commit()
    return [row.id for row in rows]


def claim(uow: UnitOfWork, worker: str) -> JobView | None:
    """The oldest queued job, now running for ``worker``; None when the queue is empty.
    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` (another worker's claim is skipped, never
    waited for); SQLite: the writing transaction holds the database's single write lock."""
    now = utcnow()
    with uow:
        conn = uow.conn
        row = conn.execute(
            select(jobs_t.c.id, jobs_t.c.status).where(jobs_t.c.status == Status.QUEUED.value)
            .order_by(jobs_t.c.id).limit(1).with_for_update(skip_locked=True)).first()
        if row is None:
            return None
        _move(conn, row.id, row.status, Action.CLAIM, worker=worker[:100], started_at=now,
              heartbeat_at=now, attempts=jobs_t.c.attempts + 1)
        job = _view(conn.execute(_select().where(jobs_t.c.id == row.id)).one())
        uow.commit()
    return job


def heartbeat(uow: UnitOfWork, job_id: int, worker: str) -> bool:
    """The worker is alive and still holds the job: False if it was taken from it."""
    with uow:
        done = uow.conn.execute(
            update(jobs_t).where(jobs_t.c.id == job_id,
                                 jobs_t.c.status == Status.RUNNING.value,
                                 jobs_t.c.worker == worker[:100])
            .values(heartbeat_at=utcnow())).rowcount
        uow.commit()
    return bool(done)


def _finish_or_fail(uow: UnitOfWork, job_id: int, worker: str, action: Action,
                    **values) -> bool:
    with uow:
        conn = uow.conn
        row = conn.execute(
            select(jobs_t.c.status, jobs_t.c.worker).where(jobs_t.c.id == job_id)
            .with_for_update()).first()
        if row is None or row.status != Status.RUNNING or row.worker != worker[:100]:
            return False  # requeued meanwhile (this worker was taken for dead)
        _move(conn, job_id, row.status, action, finished_at=utcnow(), **values)
        uow.commit()
    return True


def finish(uow: UnitOfWork, job_id: int, worker: str, *, output_name: str,
           download_name: str, size_bytes: int, sha256: str) -> bool:
    return _finish_or_fail(uow, job_id, worker, Action.FINISH, output_name=output_name,
                           download_name=download_name, size_bytes=size_bytes, sha256=sha256)


def fail(uow: UnitOfWork, job_id: int, worker: str, error: str) -> bool:
    return _finish_or_fail(uow, job_id, worker, Action.FAIL,
                           error=(error or "Erreur inconnue.")[:ERROR_MAX])


# ---------------------------------------------------------------- handlers and the worker


class JobLost(Exception):
    """The worker's claim was taken from it (requeued as stale): stop writing."""


@dataclass
class JobContext:
    job: JobView
    new_uow: Callable[..., UnitOfWork]
    config: Mapping[str, Any]
    worker: str
    _last_beat: dt.datetime = field(default_factory=utcnow)

    def heartbeat(self) -> None:
        """Called by a handler as it goes (cheap: writes at most every HEARTBEAT_EVERY);
        raises :class:`JobLost` if the job is no longer this worker's."""
        now = utcnow()
        if now - self._last_beat < HEARTBEAT_EVERY:
            return
        self._last_beat = now
        if not heartbeat(self.new_uow(), self.job.id, self.worker):
            raise JobLost(self.job.id)


# (context, the job's parameters, a binary stream) → the file's download name.
Handler = Callable[[JobContext, dict, BinaryIO], str]
HANDLERS: dict[str, Handler] = {}


def register(kind: str, handler: Handler) -> None:
    HANDLERS[kind] = handler


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


class _Hashing(io.RawIOBase):
    """Writes through to a file, counting the bytes and hashing them on the way."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data)
        self.target.write(view)
        self.digest.update(view)
        self.size += len(view)
        return len(view)


def output_path(exports_dir: str | os.PathLike[str], output_name: str | None) -> Path | None:
    """The file of a finished job, inside the exports folder, or None: a stored name that
    is not one this module writes (``job-<id>-<name>``), or that resolves elsewhere, is
    refused (no path traversal, whatever the table holds)."""
    if not output_name or not OUTPUT_RE.fullmatch(output_name):
        return None
    folder = Path(exports_dir).resolve()
    path = (folder / output_name).resolve()
    if path.parent != folder or not path.is_file():
        return None
    return path


def run_one(new_uow: Callable[..., UnitOfWork], exports_dir: str | os.PathLike[str],
            config: Mapping[str, Any], *, worker: str | None = None,
            stale_after: dt.timedelta = STALE_AFTER) -> JobView | None:
    """Requeue the stale jobs, claim one, run it, record the outcome; the job as it ended
    (None: nothing queued). A handler's failure fails the job, never the worker."""
    worker = worker or worker_name()
    requeue_stale(new_uow(), stale_after=stale_after)
    job = claim(new_uow(), worker)
    if job is None:
        return None
    folder = Path(exports_dir)
    folder.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=folder, prefix=f".job-{job.id}-", suffix=".part")
    try:
        handler = HANDLERS.get(job.kind)
        if handler is None:
            raise DomainError(f"Type de tâche inconnu : {job.kind}.")
        with open(handle, "wb") as file:
            counted = _Hashing(file)
            out = io.BufferedWriter(counted, buffer_size=1 << 20)
            download_name = handler(JobContext(job, new_uow, config, worker), job.params, out)
            out.flush()
            out.detach()
            file.flush()
            os.fsync(file.fileno())
        output_name = f"job-{job.id}-{download_name}"
        if not OUTPUT_RE.fullmatch(output_name):
            raise DomainError("Nom de fichier invalide.")
        os.chmod(partial, FILE_MODE)  # mkstemp's 0600: the web app's group reads it too
        os.replace(partial, folder / output_name)
    except JobLost:
        Path(partial).unlink(missing_ok=True)
        return get_fresh(new_uow, job.id)
    except Exception as error:  # the job fails; the worker goes on with the next one
        Path(partial).unlink(missing_ok=True)
        message = error.message if isinstance(error, DomainError) else (
            f"Erreur interne ({type(error).__name__}) : {error}")
        fail(new_uow(), job.id, worker, message)
        return get_fresh(new_uow, job.id)
    if not finish(new_uow(), job.id, worker, output_name=output_name,
                  download_name=download_name, size_bytes=counted.size,
                  sha256=counted.digest.hexdigest()):
        (folder / output_name).unlink(missing_ok=True)  # another worker has it now
    return get_fresh(new_uow, job.id)


def get_fresh(new_uow: Callable[..., UnitOfWork], job_id: int) -> JobView:
    with new_uow(read_only=True) as uow:
        return get(uow.conn, job_id)

