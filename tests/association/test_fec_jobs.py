"""The FEC of a whole year as a background job (docs/fec.md): asked on the page (once,
however often the button is pressed), prepared by ``flask bousol worker`` — here a real
process against the test database, on both backends — and downloaded by the admin,
never by another role nor through a made-up name; bad input is a 4xx."""

from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bousol.app import create_app
from bousol.extensions import db
from bousol.ledger.association import export_jobs, fec
from bousol.ledger.kernel import clock, jobs
from bousol.ledger.kernel.errors import Forbidden, InvalidInput
from tests.association import test_fec
from tests.association.test_fec import YEAR_2026, _admin_client, export
from tests.helpers import PASSWORD, csrf_token, login

history = test_fec.history  # the fixture: a year of the Bou'Sol in 2026

ROOT = Path(__file__).resolve().parents[2]
FLASK = Path(sys.executable).with_name("flask")
WAIT_SECONDS = 120  # generous: the machine may be busy; never a timed assertion


@pytest.fixture
def exports(tmp_path) -> Path:
    return tmp_path / "exports"


@pytest.fixture
def app(database_url, exports):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=database_url, EXPORTS_DIR=str(exports))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def worker(database_url, exports, tmp_path):
    """``flask bousol worker`` as a real process on the test database and the same
    exports folder and clock; stopped (SIGTERM, then killed if need be) at the end."""
    env = {**os.environ, "BOUSOL_ENV": "testing", "DATABASE_URL": database_url,
           "EXPORTS_DIR": str(exports), "BOUSOL_CLOCK": clock.now().isoformat(),
           "FLASK_APP": "wsgi"}
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen([str(FLASK), "bousol", "worker", "--poll", "0.2"], cwd=ROOT,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    yield process
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover - a stuck worker
        process.kill()
        process.wait()
    log.close()


def _job_status(engine, job_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(jobs.jobs_t.c.status)
                            .where(jobs.jobs_t.c.id == job_id)).scalar_one()


def _wait_until_over(engine, job_id: int, process) -> str:
    """Poll the job until it is done or failed (or the worker died): its status."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        status = _job_status(engine, job_id)
        if status in ("done", "failed") or process.poll() is not None:
            return status
        time.sleep(0.1)
    return _job_status(engine, job_id)


def _prepare(client, year: str = "2026", token: str | None = None):
    token = token or csrf_token(client.get("/admin/comptabilite").text)
    return client.post("/admin/comptabilite/fichiers", data={"csrf_token": token,
                                                             "annee": year})


def _status(client, path: str) -> int:
    response = client.get(path)
    response.close()  # a file sent is closed
    return response.status_code


def _job_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="job-([0-9]+)"', page)]


# ---------------------------------------------------------------- the real worker


def test_the_worker_prepares_the_year(client, history, worker, exports, tmp_path):
    ledger = history.ledger
    _admin_client(client, ledger)
    page = client.get("/admin/comptabilite")
    assert "Préparer le fichier de l'année 2026" in page.text
    token = csrf_token(page.text)
    first = _prepare(client, token=token)
    assert first.status_code == 302 and first.location.endswith("/admin/comptabilite#fichiers")
    _prepare(client, token=token)  # pressed twice: one job
    listed = client.get("/admin/comptabilite").text
    ids = _job_ids(listed)
    assert len(ids) == 1, listed
    job_id = ids[0]
    status = _wait_until_over(ledger.engine, job_id, worker)
    assert status == "done", (tmp_path / "worker.log").read_text()
    shown = client.get("/admin/comptabilite").text
    assert f'data-testid="download-{job_id}"' in shown and "Prêt" in shown
    response = client.get(f"/admin/comptabilite/fichiers/{job_id}")
    assert response.status_code == 200
    assert "999999998FEC20261231.txt" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_data()
    response.close()
    text = body.decode("utf-8")
    assert fec.check(text) == [] and text == export(ledger)
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.select(jobs.jobs_t).where(jobs.jobs_t.c.id == job_id)).one()
    assert row.sha256 == hashlib.sha256(body).hexdigest() and row.size_bytes == len(body)
    assert row.sha256[:16] in shown
    assert [p.name for p in exports.iterdir()] == [f"job-{job_id}-999999998FEC20261231.txt"]
    # Done: asking again prepares a fresh file (the year may have gone on).
    assert _prepare(client).status_code == 302
    assert len(_job_ids(client.get("/admin/comptabilite").text)) == 2


# ---------------------------------------------------------------- the page, the worker in-process


def _run_worker(app):
    result = app.test_cli_runner().invoke(args=["bousol", "worker", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_worker_once_and_who_may_download(app, client, history, exports):
    ledger = history.ledger
    _admin_client(client, ledger)
    assert _prepare(client).status_code == 302
    job_id = _job_ids(client.get("/admin/comptabilite").text)[0]
    assert _status(client, f"/admin/comptabilite/fichiers/{job_id}") == 409  # not ready
    assert "En attente" in client.get("/admin/comptabilite").text
    output = _run_worker(app)
    assert f"Tâche {job_id} (fec) : done" in output
    assert _status(client, f"/admin/comptabilite/fichiers/{job_id}") == 200
    # Another admin (the same role) may; no other role reaches the page nor the file.
    colleague = app.test_client()
    _admin_client(colleague, ledger)
    assert _status(colleague, f"/admin/comptabilite/fichiers/{job_id}") == 200
    for role in ("bank", "soliste", "ccas", "prestataire"):
        other = app.test_client()
        user = ledger.prestataire() if role == "prestataire" else ledger.user(role)
        login(other, user.username, PASSWORD)
        assert _status(other, f"/admin/comptabilite/fichiers/{job_id}") == 403
        assert other.post("/admin/comptabilite/fichiers", data={
            "csrf_token": csrf_token(other.get("/compte/jetons").text),
            "annee": "2026"}).status_code == 403
    # A job asked by another role (made by hand: no other role can ask today) is
    # unknown to the admin.
    with ledger.engine.begin() as conn:
        conn.execute(sa.update(jobs.jobs_t).where(jobs.jobs_t.c.id == job_id)
                     .values(role="bank"))
    assert _status(client, f"/admin/comptabilite/fichiers/{job_id}") == 404
    assert f'data-testid="job-{job_id}"' not in client.get("/admin/comptabilite").text
    # The file gone from the folder: 410, not a 500.
    with ledger.engine.begin() as conn:
        conn.execute(sa.update(jobs.jobs_t).where(jobs.jobs_t.c.id == job_id)
                     .values(role="admin"))
    for path in exports.iterdir():
        path.unlink()
    assert _status(client, f"/admin/comptabilite/fichiers/{job_id}") == 410


def test_a_stored_name_cannot_lead_out_of_the_folder(app, client, history, exports, tmp_path):
    ledger = history.ledger
    _admin_client(client, ledger)
    _prepare(client)
    _run_worker(app)
    job_id = _job_ids(client.get("/admin/comptabilite").text)[0]
    (tmp_path / "secret.txt").write_text("secret")
    for name in ("../secret.txt", f"job-{job_id}-../../secret.txt", str(tmp_path / "secret.txt")):
        with ledger.engine.begin() as conn:
            conn.execute(sa.update(jobs.jobs_t).where(jobs.jobs_t.c.id == job_id)
                         .values(output_name=name))
        response = client.get(f"/admin/comptabilite/fichiers/{job_id}")
        body = response.get_data()
        response.close()
        assert response.status_code == 410 and b"secret" not in body


@pytest.mark.parametrize("path", [
    "/admin/comptabilite/fichiers/999999",
    "/admin/comptabilite/fichiers/0",
    "/admin/comptabilite/fichiers/99999999999999999999999",
    "/admin/comptabilite/fichiers/abc",
    "/admin/comptabilite/fichiers/-1",
    "/admin/comptabilite/fichiers/..%2F..%2Fetc%2Fpasswd",
    "/admin/comptabilite/fichiers/1.5",
])
def test_a_bad_job_id_is_404(client, ledger, path):
    _admin_client(client, ledger)
    assert _status(client, path) == 404


@pytest.mark.parametrize(("year", "words"), [
    ("1999", "de 2000 à"),
    ("2027", "de 2000 à"),  # the clock says 2026: a year still to come
    ("20266", "Année invalide"),
    ("", "Année invalide"),
    ("deux mille", "Année invalide"),
    ("２０２６", "Année invalide"),  # full-width digits
    ("2026.0", "Année invalide"),
])
def test_a_bad_year_is_a_form_error(client, ledger, year, words):
    _admin_client(client, ledger)
    response = _prepare(client, year)
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert words in text and 'aria-invalid="true"' in response.text
    assert ledger.count("jobs") == 0


def test_no_csrf_no_job(client, ledger):
    _admin_client(client, ledger)
    response = client.post("/admin/comptabilite/fichiers", data={"annee": "2026"})
    assert response.status_code == 400 and ledger.count("jobs") == 0


def test_no_job_without_a_siren(database_url, ledger, exports):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=database_url, ASSOCIATION_SIREN="",
                     EXPORTS_DIR=str(exports))
    try:
        client = app.test_client()
        _admin_client(client, ledger)
        response = _prepare(client)
        assert response.status_code == 409 and "ASSOCIATION_SIREN" in response.text
        assert ledger.count("jobs") == 0
    finally:
        with app.app_context():
            db.engine.dispose()


def test_the_worker_fails_a_job_without_a_siren(database_url, history, exports):
    """Asked while the SIREN was set, run by a worker without it: the job fails with the
    message, the worker goes on."""
    job, _ = export_jobs.request_year(history.ledger.uow(), history.ledger.user("admin"), 2026,
                                      "999999998")
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=database_url, ASSOCIATION_SIREN="",
                     EXPORTS_DIR=str(exports))
    try:
        assert "ASSOCIATION_SIREN" in _run_worker(app)
    finally:
        with app.app_context():
            db.engine.dispose()
    with history.ledger.uow(read_only=True) as uow:
        failed = jobs.get(uow.conn, job.job.id)
    assert failed.status == "failed" and "ASSOCIATION_SIREN" in failed.error


def test_the_ledger_rules(ledger):
    admin = ledger.user("admin")
    job, created = export_jobs.request_year(ledger.uow(), admin, " 2026 ", "999999998")
    assert created and job.year == 2026 and job.period == fec.Period(
        YEAR_2026.start, YEAR_2026.end)
    again, created = export_jobs.request_year(ledger.uow(), admin, 2026, "999999998")
    assert not created and again.job.id == job.job.id
    with pytest.raises(Forbidden):
        export_jobs.request_year(ledger.uow(), ledger.user("bank"), 2026, "999999998")
    for bad in (True, 2026.0, None, [2026]):
        with pytest.raises(InvalidInput):
            export_jobs.parse_year(bad)
    with ledger.uow(read_only=True) as uow:
        listed = export_jobs.recent(uow.conn, admin)
        assert [j.job.id for j in listed] == [job.job.id]
        assert listed[0].requested_by == admin.username
        with pytest.raises(jobs.JobNotReady):
            export_jobs.downloadable(uow.conn, admin, job.job.id)
        with pytest.raises(jobs.UnknownJob):
            export_jobs.downloadable(uow.conn, admin, job.job.id + 1)
