"""Background jobs (bousol/ledger/kernel/jobs.py, docs/fec.md): the state machine walked
as a table, a job's life through the worker's moves (claim, finish, fail), asking twice,
the stale-job rule, a worker that lost its claim, two workers at once, and the file
written beside its final name then renamed."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import threading

import pytest
import sqlalchemy as sa

from bousol.ledger.kernel import jobs
from bousol.ledger.kernel.actors import Actor, Role

ADMIN = Actor(user_id=None, role=Role.ADMIN, username="admin-test")

TABLE = {
    ("queued", "claim"): "running",
    ("running", "finish"): "done",
    ("running", "fail"): "failed",
    ("running", "requeue"): "queued",
}
STATES = ("queued", "running", "done", "failed", "bogus")
ACTIONS = ("claim", "finish", "fail", "requeue", "delete")


def test_the_code_table_is_the_docs_table():
    assert {(str(s), str(a)): str(t) for (s, a), t in jobs.MACHINE.table.items()} == TABLE
    assert sorted(map(str, jobs.MACHINE.states())) == sorted(STATES[:-1])
    assert jobs.MACHINE.describe().splitlines()[0] == "queued --claim--> running"


@pytest.mark.parametrize(("state", "action"), list(itertools.product(STATES, ACTIONS)))
def test_every_pair(state, action):
    expected = TABLE.get((state, action))
    if expected is None:
        with pytest.raises(jobs.JobTransition) as refused:
            jobs.next_status(state, action)
        assert type(refused.value) is jobs.JobTransition
        assert refused.value.http_status == 409
    else:
        assert jobs.next_status(state, action) == expected


# ---------------------------------------------------------------- a job's life

@pytest.fixture
def kind():
    """A job kind of the tests: writes its parameters' text, or raises when told."""
    def handler(context, params, out):
        if params.get("boom"):
            raise RuntimeError("boom")
        for _ in range(params.get("repeat", 1)):
            out.write(params["text"].encode())
            context.heartbeat()
        return "sortie.txt"

    jobs.register("test", handler)
    yield "test"
    jobs.HANDLERS.pop("test", None)


@pytest.fixture
def exports(tmp_path):
    return tmp_path / "exports"


def _row(engine, job_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(jobs.jobs_t).where(jobs.jobs_t.c.id == job_id)).one()


def _age(engine, job_id, minutes):
    """The job's heartbeat, ``minutes`` ago (as if its worker had gone silent)."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(jobs.jobs_t.c.heartbeat_at)
                           .where(jobs.jobs_t.c.id == job_id)).scalar_one()
        conn.execute(sa.update(jobs.jobs_t).where(jobs.jobs_t.c.id == job_id)
                     .values(heartbeat_at=row - dt.timedelta(minutes=minutes)))


def test_a_job_runs_and_leaves_its_file(new_uow, engine, kind, exports):
    job, created = jobs.enqueue(new_uow(), ADMIN, kind, {"text": "bonjour\r\n", "repeat": 3})
    assert created and job.status == "queued" and job.attempts == 0 and job.role == "admin"
    again, created = jobs.enqueue(new_uow(), ADMIN, kind, {"repeat": 3, "text": "bonjour\r\n"})
    assert not created and again.id == job.id  # the same parameters, in any order
    other, created = jobs.enqueue(new_uow(), ADMIN, kind, {"text": "autre"})
    assert created and other.id != job.id
    done = jobs.run_one(new_uow, exports, {}, worker="w1")
    assert done.id == job.id and done.status == "done"  # the oldest first
    assert done.attempts == 1 and done.worker == "w1" and done.error is None
    body = b"bonjour\r\n" * 3
    assert done.size_bytes == len(body) and done.sha256 == hashlib.sha256(body).hexdigest()
    assert done.output_name == f"job-{job.id}-sortie.txt" and done.download_name == "sortie.txt"
    assert (exports / done.output_name).read_bytes() == body
    assert (exports / done.output_name).stat().st_mode & 0o777 == 0o640  # the web app reads
    assert jobs.output_path(exports, done.output_name) == (exports / done.output_name)
    assert done.finished_at is not None and done.started_at is not None
    assert _row(engine, job.id).active_key is None
    # Over: the same request queues a new job.
    fresh, created = jobs.enqueue(new_uow(), ADMIN, kind, {"text": "bonjour\r\n", "repeat": 3})
    assert created and fresh.id not in (job.id, other.id)
    assert jobs.run_one(new_uow, exports, {}, worker="w1").id == other.id
    assert jobs.run_one(new_uow, exports, {}, worker="w1").id == fresh.id
    assert jobs.run_one(new_uow, exports, {}, worker="w1") is None  # the queue is empty
    assert sorted(p.name for p in exports.iterdir()) == sorted(
        f"job-{i}-sortie.txt" for i in (job.id, other.id, fresh.id))  # no partial file


def test_a_failing_job_fails_alone(new_uow, kind, exports):
    bad, _ = jobs.enqueue(new_uow(), ADMIN, kind, {"boom": True})
    jobs.enqueue(new_uow(), ADMIN, "no-such-kind", {})
    good, _ = jobs.enqueue(new_uow(), ADMIN, kind, {"text": "ok"})
    failed = jobs.run_one(new_uow, exports, {}, worker="w1")
    assert failed.id == bad.id and failed.status == "failed"
    assert "RuntimeError" in failed.error and "boom" in failed.error
    assert failed.output_name is None and failed.sha256 is None
    assert jobs.run_one(new_uow, exports, {}, worker="w1").error == (
        "Type de tâche inconnu : no-such-kind.")
    assert jobs.run_one(new_uow, exports, {}, worker="w1").status == "done"
    assert [p.name for p in exports.iterdir()] == [f"job-{good.id}-sortie.txt"]
    # A failed one may be asked for again.
    assert jobs.enqueue(new_uow(), ADMIN, kind, {"boom": True})[1]


def test_a_stale_job_is_requeued_then_abandoned(new_uow, engine, kind, exports):
    job, _ = jobs.enqueue(new_uow(), ADMIN, kind, {"text": "x"})
    claimed = jobs.claim(new_uow(), "dead-worker")  # a worker that dies right after
    assert claimed.status == "running" and claimed.attempts == 1
    assert jobs.requeue_stale(new_uow()) == []  # still beating (just now)
    _age(engine, job.id, 9)
    assert jobs.requeue_stale(new_uow()) == []  # under the 10 minutes
    running, created = jobs.enqueue(new_uow(), ADMIN, kind, {"text": "x"})
    assert not created and running.id == job.id and running.status == "running"
    _age(engine, job.id, 2)
    assert jobs.requeue_stale(new_uow()) == [job.id]
    row = _row(engine, job.id)
    assert row.status == "queued" and row.worker is None and row.active_key is not None
    # Asked again meanwhile: still the one job.
    assert jobs.enqueue(new_uow(), ADMIN, kind, {"text": "x"})[0].id == job.id
    # The dead worker comes back: its claim is gone, its outcome refused.
    assert not jobs.heartbeat(new_uow(), job.id, "dead-worker")
    assert not jobs.finish(new_uow(), job.id, "dead-worker", output_name="job-1-x",
                           download_name="x", size_bytes=1, sha256="0" * 64)
    assert not jobs.fail(new_uow(), job.id, "dead-worker", "late")
    # Two more claims that die: abandoned (failed) at the third.
    for attempt in (2, 3):
        assert jobs.claim(new_uow(), f"dying-{attempt}").attempts == attempt
        _age(engine, job.id, 11)
        assert jobs.requeue_stale(new_uow()) == [job.id]
    row = _row(engine, job.id)
    assert row.status == "failed" and row.active_key is None and "3 fois" in row.error
    assert jobs.run_one(new_uow, exports, {}, worker="w1") is None


def test_a_worker_that_lost_its_claim_keeps_no_file(new_uow, engine, kind, exports,
                                                    monkeypatch):
    """Taken for dead while it wrote (a long pause): its heartbeat finds the job gone,
    it stops, and the file it was writing is removed; the new claim runs it."""
    jobs.enqueue(new_uow(), ADMIN, kind, {"text": "x", "repeat": 2})
    monkeypatch.setattr(jobs, "HEARTBEAT_EVERY", dt.timedelta(0))
    real = jobs.heartbeat

    def stolen(uow, job_id, worker):
        with engine.begin() as conn:  # another worker requeued and claimed it meanwhile
            conn.execute(sa.update(jobs.jobs_t).where(jobs.jobs_t.c.id == job_id)
                         .values(worker="thief"))
        return real(uow, job_id, worker)

    monkeypatch.setattr(jobs, "heartbeat", stolen)
    lost = jobs.run_one(new_uow, exports, {}, worker="slow")
    assert lost.status == "running" and lost.worker == "thief"
    assert list(exports.iterdir()) == []


def test_bad_ids_are_unknown(new_uow):
    for bad in (0, -1, 2**31, 10**20, "1", None, True, 1.0, 999):
        with new_uow(read_only=True) as uow, pytest.raises(jobs.UnknownJob):
            jobs.get(uow.conn, bad)


def test_output_path_never_leaves_the_folder(tmp_path):
    (tmp_path / "job-1-ok.txt").write_text("x")
    (tmp_path.parent / "job-2-secret.txt").write_text("x")
    assert jobs.output_path(tmp_path, "job-1-ok.txt") == tmp_path / "job-1-ok.txt"
    for name in ("../job-2-secret.txt", "job-2-../../etc/passwd", "/etc/passwd",
                 "job-1-ok.txt/..", ".job-1-x.part", "job-3-absent.txt", "", None,
                 "job-1-ok.txt\x00"):
        assert jobs.output_path(tmp_path, name) is None


def test_the_database_keeps_the_rules(engine):
    """The CHECKs: a known status; the active key exactly while queued or running; a
    done job has its file; a failed one its error."""
    base = {"kind": "test", "params": "{}", "role": "admin", "attempts": 0,
            "requested_at": dt.datetime(2026, 11, 18, tzinfo=dt.UTC)}
    bad = [
        {"status": "bogus", "active_key": "k1"},
        {"status": "queued"},
        {"status": "done", "active_key": "k2", "output_name": "f", "sha256": "0",
         "size_bytes": 1},
        {"status": "done"},
        {"status": "failed"},
    ]
    for values in bad:
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.insert(jobs.jobs_t).values(**base, **values))
    with engine.begin() as conn:
        conn.execute(sa.insert(jobs.jobs_t).values(**base, status="queued", active_key="k"))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(jobs.jobs_t).values(**base, status="running", active_key="k"))


def test_two_workers_never_take_the_same_job(new_uow, kind, exports, backend):
    """Four workers at once on eight jobs: each job runs once (PostgreSQL: SKIP LOCKED;
    SQLite: one writer at a time)."""
    ids = {jobs.enqueue(new_uow(), ADMIN, kind, {"text": str(i)})[0].id for i in range(8)}
    done: list[int] = []
    errors: list[BaseException] = []

    def work(name):
        try:
            while (job := jobs.run_one(new_uow, exports, {}, worker=name)) is not None:
                done.append(job.id)
        except BaseException as error:  # pragma: no cover - shown below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(done) == sorted(ids)
    assert len(list(exports.iterdir())) == 8
