"""``flask bousol …``: the association's and the bank's command-line tools."""

from __future__ import annotations

import getpass
import os
import socket
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from bousol.extensions import db
from bousol.ledger import demo
from bousol.ledger.access.parties import create_user
from bousol.ledger.books import operations, rules, seals
from bousol.ledger.books.verify import DEFAULT_SAMPLE, verify
from bousol.ledger.kernel import audit, money, settings
from bousol.ledger.kernel.actors import SYSTEM
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.models import Filiere, Role


def unit_of_work(*, read_only: bool = False) -> UnitOfWork:
    """A unit of work on the command's session (the app context closes it); its writes
    are recorded under the command's audit context (set in ``bousol_cli``)."""
    return UnitOfWork(db.session, owns_session=False, read_only=read_only)


@click.group("bousol")
@click.pass_context
def bousol_cli(ctx: click.Context) -> None:
    """Outils du registre Bou'Sol."""
    # The audit trail names the command and who ran it (the system account's user).
    token = audit.set_context(audit.Context(
        user_id=None, username=f"cli:{_os_user()}"[:80],
        address=f"cli@{socket.gethostname()}"[:64],
        action=f"flask bousol {ctx.invoked_subcommand or ''}".strip()[:120]))
    ctx.call_on_close(lambda: audit.reset_context(token))


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        return str(os.getuid())


def _fail(error: DomainError) -> None:
    click.echo(f"Erreur ({error.code}) : {error.message}", err=True)
    sys.exit(2)


@bousol_cli.command("verify")
@click.option("--full", is_flag=True, help="Tout revérifier : chaque écriture, chaque mois "
              "scellé, tout le journal d'audit.")
@click.option("--sample", type=click.IntRange(min=0), default=DEFAULT_SAMPLE, show_default=True,
              help="Mois scellés tirés au sort et recalculés depuis le journal.")
@click.option("--seal", is_flag=True, help="Si tout est cohérent, sceller les mois clos "
              "(à lancer chaque nuit, docs/ledger.md).")
@with_appcontext
def verify_command(full: bool, sample: int, seal: bool) -> None:
    """Recalcule chaque solde et prouve les invariants du registre (incrémental par mois
    scellé ; --full pour tout)."""
    with unit_of_work(read_only=True) as uow:  # one consistent snapshot of the books
        report = verify(uow.conn, full=full, sample=sample)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        click.echo("Le registre n'est PAS cohérent." + (" Rien n'a été scellé." if seal else ""),
                   err=True)
        sys.exit(1)
    click.echo("Registre cohérent.")
    if seal:
        with unit_of_work() as uow:
            sealed = seals.seal_closed_months(uow.conn)
            uow.commit()
        for s in sealed:
            click.echo(f"Mois {s.month:%Y-%m} scellé (sceau {s.seq}) : {s.entries} écritures, "
                       f"{s.postings} mouvements.")
        if not sealed:
            click.echo("Aucun mois clos à sceller.")


@bousol_cli.command("create-user")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--password", required=True)
@click.option("--name", default=None, help="Nom affiché de l'adhérent.")
@click.option("--filiere", default=None, type=click.Choice([f.value for f in Filiere]))
@click.option("--party", "party_code", default=None,
              help="Rattacher l'utilisateur à un adhérent existant (ex. C-000001).")
@with_appcontext
def create_user_command(username, role, password, name, filiere, party_code) -> None:
    """Crée un utilisateur (et son adhérent) ; affiche le code de l'adhérent."""
    try:
        created = create_user(unit_of_work(), SYSTEM, username=username, password=password,
                              role=role, name=name, filiere=filiere, party_code=party_code)
    except DomainError as error:
        _fail(error)
    click.echo(created.party_code or f"utilisateur {created.username} ({created.role})")


@bousol_cli.command("phase")
@click.argument("name", type=click.Choice([p.value for p in rules.SWITCHABLE]))
@click.option("--on/--off", "on", required=True)
@click.option("--reason", default=None, help="Décision ou motif de la bascule.")
@with_appcontext
def phase_command(name: str, on: bool, reason: str | None) -> None:
    """Ouvre (--on) ou ferme (--off) une phase : b2b, ccas."""
    with unit_of_work() as uow:
        try:
            settings.change(uow.conn, f"phase.{name}", "on" if on else "off", user_id=None,
                            reason=reason)
        except DomainError as error:
            _fail(error)
        uow.commit()
    click.echo(f"Phase {name} : {'ouverte' if on else 'fermée'}.")


@bousol_cli.command("setting")
@click.argument("key", type=click.Choice(sorted(settings.DEFAULTS)))
@click.argument("value", required=False)
@click.option("--reason", default=None, help="Décision ou motif du changement.")
@with_appcontext
def setting_command(key: str, value: str | None, reason: str | None) -> None:
    """Affiche un réglage et son historique, ou le change (ex. reconversion.fee_bp 400)."""
    with unit_of_work() as uow:
        if value is not None:
            try:
                settings.change(uow.conn, key, value, user_id=None, reason=reason)
            except DomainError as error:
                _fail(error)
            uow.commit()
    with unit_of_work() as uow:
        click.echo(f"{key} = {settings.current(uow.conn, [key])[key]}")
        for row in settings.history(uow.conn, key):
            click.echo(f"  {row.changed_at:%Y-%m-%d %H:%M} {row.value}  {row.reason or ''}")


@bousol_cli.command("reverse")
@click.argument("entry_id", type=int)
@click.option("--memo", default=None, help="Pourquoi cette contre-passation.")
@with_appcontext
def reverse_command(entry_id: int, memo: str | None) -> None:
    """Contre-passe une écriture (une seule fois)."""
    try:
        result = operations.reverse(unit_of_work(), SYSTEM, entry_id=entry_id, memo=memo)
    except DomainError as error:
        _fail(error)
    click.echo(f"Écriture {result.reversed_entry_id} contre-passée par l'écriture "
               f"{result.entry_id}.")


@bousol_cli.command("bank-cash")
@click.argument("euros")
@click.option("--memo", default=None)
@with_appcontext
def bank_cash_command(euros: str, memo: str | None) -> None:
    """Remet au fonds de garantie des espèces et chèques de la caisse du comptoir."""
    try:
        result = operations.bank_desk_cash(unit_of_work(), SYSTEM, euros=euros, memo=memo)
    except DomainError as error:
        _fail(error)
    click.echo(f"Caisse : {money.format_fr(result.source_cents, '€')} ; fonds de garantie : "
               f"{money.format_fr(result.target_cents, '€')}")


@bousol_cli.command("subsidy")
@click.argument("euros")
@click.option("--memo", default=None)
@with_appcontext
def subsidy_command(euros: str, memo: str | None) -> None:
    """Enregistre une subvention reçue au fonds de bonification."""
    try:
        result = operations.record_subsidy(unit_of_work(), SYSTEM, euros=euros, memo=memo)
    except DomainError as error:
        _fail(error)
    click.echo(f"Fonds de bonification : {money.format_fr(result.target_cents, '€')}")


@bousol_cli.command("demo")
@with_appcontext
def demo_command() -> None:
    """Charge un jeu de démonstration dans une base vide (ne change rien ensuite)."""
    if not current_app.config.get("DEMO_ALLOWED"):
        click.echo("Refusé : pas de jeu de démonstration (mots de passe publics) avec la "
                   "configuration de production.", err=True)
        sys.exit(2)
    loaded = demo.load(unit_of_work)
    if not loaded:
        click.echo("La base contient déjà des utilisateurs : rien n'a été changé.")
        return
    click.echo("Jeu de démonstration chargé. Comptes (mot de passe pour tous : "
               f"{demo.PASSWORD}) :")
    for username, role, code in loaded:
        click.echo(f"  {username:<12} {role:<12} {code or ''}")



@bousol_cli.command("expire-vouchers")
@click.option("--date", "on", default=None, help="Jour de référence (AAAA-MM-JJ), par défaut "
              "aujourd'hui à Paris : les bons valables jusqu'à la veille expirent.")
@with_appcontext
def expire_vouchers_command(on: str | None) -> None:
    """Expire les bons d'aide échus (à lancer chaque jour ; sans effet la 2e fois)."""
    from bousol.ledger.ccas import vouchers

    try:
        today = vouchers.parse_date(on, "Date") if on else None
        sweep = vouchers.expire_due(lambda **kw: unit_of_work(**kw), today=today)
    except DomainError as error:
        _fail(error)
    click.echo(f"{sweep.expired} bon(s) expiré(s), "
               f"{money.format_fr(sweep.returned_cents, 'B')} rendus aux programmes.")


@bousol_cli.command("send-reminders")
@click.option("--date", "on", default=None, help="Jour de référence (AAAA-MM-JJ), par défaut "
              "aujourd'hui à Paris : les adhésions qui prennent fin dans son mois.")
@with_appcontext
def send_reminders_command(on: str | None) -> None:
    """Envoie le rappel de cotisation aux adhérents dont l'adhésion prend fin ce mois-ci
    (à lancer chaque mois ; un second lancement dans le mois n'envoie rien)."""
    import datetime as dt

    from bousol.ledger.association import membership
    from bousol.ledger.kernel import mail
    from bousol.ledger.kernel.errors import InvalidDate

    try:
        try:
            today = dt.date.fromisoformat(on) if on else None
        except ValueError:
            raise InvalidDate("Date invalide (AAAA-MM-JJ).") from None
        run = membership.send_reminders(lambda **kw: unit_of_work(**kw), SYSTEM, today,
                                        mail.from_config(current_app.config))
    except DomainError as error:
        _fail(error)
    click.echo(f"Rappels {run.period} : {len(run.sent)} envoyé(s), {len(run.failed)} en "
               f"échec, {len(run.already)} déjà envoyé(s), {len(run.without_email)} "
               "adhérent(s) sans adresse e-mail.")
    for code, error in run.failed:
        click.echo(f"  échec {code} : {error}", err=True)
    if run.failed:
        sys.exit(1)


@bousol_cli.command("close-motions")
@with_appcontext
def close_motions_command() -> None:
    """Clôt les votes du collectif dont la date est passée et applique les décisions
    adoptées (à lancer régulièrement ; sans effet la 2e fois)."""
    from bousol.ledger.association import decisions

    try:
        closed = decisions.close_due(lambda **kw: unit_of_work(**kw), SYSTEM)
    except DomainError as error:
        _fail(error)
    if not closed:
        click.echo("Aucun vote à clore.")
    for done in closed:
        o = done.results.overall
        word = {"adopted": "adoptée", "rejected": "rejetée"}.get(done.status, done.status)
        click.echo(f"Décision n° {done.motion_id} « {done.title} » : {word} — {o.for_} pour, "
                   f"{o.against} contre, {o.abstain} abstention(s), {o.voted}/{o.seats} "
                   f"votant(s), quorum {done.results.quorum_needed}"
                   f"{' atteint' if done.results.quorum_reached else ' non atteint'}.")
        if done.effect_note:
            click.echo(f"  {done.effect_note}")


@bousol_cli.command("fec")
@click.option("--from", "date_from", required=True, help="Premier jour (AAAA-MM-JJ, Paris).")
@click.option("--to", "date_to", required=True, help="Dernier jour, inclus (AAAA-MM-JJ).")
@click.option("--output", "output", default=None, type=click.Path(dir_okay=True),
              help="Fichier à écrire, ou dossier (par défaut : <SIREN>FEC<AAAAMMJJ>.txt "
                   "dans le dossier courant).")
@with_appcontext
def fec_command(date_from: str, date_to: str, output: str | None) -> None:
    """Écrit le fichier des écritures comptables (FEC) d'une période (docs/fec.md)."""
    import tempfile
    from pathlib import Path

    from bousol.ledger.association import fec

    try:
        period = fec.parse_period(date_from, date_to)
        siren = fec.check_siren(current_app.config.get("ASSOCIATION_SIREN", ""))
    except DomainError as error:
        _fail(error)
    target = Path(output) if output else Path.cwd()
    if target.is_dir():
        target = target / fec.filename(siren, period)
    if not target.parent.is_dir():
        click.echo(f"Erreur : le dossier {target.parent} n'existe pas.", err=True)
        sys.exit(2)
    # Written beside the target, then renamed: a failure never leaves half a file.
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".fec-", suffix=".txt")
    try:
        with open(handle, "w", encoding="utf-8", newline="") as out, \
                unit_of_work(read_only=True) as uow:  # one snapshot of the books
            count = fec.write(uow.conn, period, out)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    click.echo(f"FEC du {period.start:%d/%m/%Y} au {period.end:%d/%m/%Y} : {count} ligne(s) "
               f"d'écriture dans {target}")


@bousol_cli.command("worker")
@click.option("--once", is_flag=True,
              help="Traiter les tâches en attente, puis s'arrêter (sinon : sans fin).")
@click.option("--poll", "poll_seconds", default=2.0, show_default=True, type=float,
              help="Secondes d'attente quand la file est vide.")
@click.option("--stale-after", "stale_seconds", default=None, type=int,
              help="Secondes sans signe de vie après lesquelles une tâche « en cours » "
                   "est remise en file (JOBS_STALE_SECONDS, 600 par défaut).")
@with_appcontext
def worker_command(once: bool, poll_seconds: float, stale_seconds: int | None) -> None:
    """Exécute les tâches de fond (le FEC d'une année…) ; docs/fec.md."""
    import datetime as dt
    import signal
    import time

    from bousol.ledger.kernel import jobs
    from bousol.ledger.kernel.db import make_session_factory

    stale = stale_seconds or int(os.environ.get("JOBS_STALE_SECONDS") or 0) or None
    stale_after = dt.timedelta(seconds=stale) if stale else jobs.STALE_AFTER
    # Sessions of its own: a job reads one snapshot while its heartbeat writes beside it.
    factory = make_session_factory(db.engine)

    def new_uow(**options) -> UnitOfWork:
        return UnitOfWork(factory, **options)

    folder = current_app.config["EXPORTS_DIR"]
    name = jobs.worker_name()
    stopping: list[int] = []
    # SIGTERM (systemctl stop): finish the job at hand, then stop.
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    click.echo(f"Travailleur {name} : fichiers dans {folder}.")
    while not stopping:
        job = jobs.run_one(new_uow, folder, current_app.config, worker=name,
                           stale_after=stale_after)
        if job is not None:
            click.echo(f"Tâche {job.id} ({job.kind}) : {job.status}"
                       + (f" — {job.error}" if job.error else ""))
            continue
        if once:
            break
        time.sleep(poll_seconds)
