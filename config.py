"""Configuration classes, driven by environment variables.

`create_app()` picks the class named by ``BOUSOL_ENV`` (``production`` unless told
otherwise, so that a server started without thought is a safe one).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
DEV_SECRET = "dev-only-secret-change-me"  # noqa: S105 - refused in production
# Development and tests: the reserve's account for SEPA payout files (not a real one).
DEMO_DEBTOR_NAME = "Crédit Municipal de Boulogne-sur-Mer - fonds de garantie Bou'Sol"
DEMO_DEBTOR_IBAN = "FR7630006000011234567890189"
DEMO_DEBTOR_BIC = "DEMOFRPPXXX"
# Development and tests: a well-formed (Luhn key) but fake SIREN for FEC file names.
DEMO_ASSOCIATION_SIREN = "999999998"
DEMO_MAIL_SENDER = "Bou'Sol (APMC) <adhesions@bousol.invalid>"


def normalise_database_url(url: str) -> str:
    """Accept the URLs hosting providers hand out and use psycopg 3 for PostgreSQL."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def default_sqlite_url() -> str:
    return f"sqlite:///{BASE_DIR / 'instance' / 'bousol.sqlite3'}"


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET)
    SQLALCHEMY_DATABASE_URI = normalise_database_url(
        os.environ.get("DATABASE_URL", default_sqlite_url())
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    # Past one server (docs/scaling.md): a streaming replica for the reads that tolerate
    # a few seconds of staleness (reports, past statements, exports, the directory),
    # used while it lags by at most REPLICA_MAX_LAG_SECONDS (its health is checked every
    # REPLICA_HEALTH_SECONDS); ignored on SQLite. DATABASE_POOLER=pgbouncer (or none)
    # when the URLs go through PgBouncer in transaction mode (default: port 6432 does).
    DATABASE_REPLICA_URL = normalise_database_url(os.environ.get("DATABASE_REPLICA_URL", ""))
    REPLICA_MAX_LAG_SECONDS = os.environ.get("REPLICA_MAX_LAG_SECONDS") or "5"
    REPLICA_HEALTH_SECONDS = os.environ.get("REPLICA_HEALTH_SECONDS") or "3"
    DATABASE_POOLER = os.environ.get("DATABASE_POOLER", "")
    # Babel: French first, English too.
    BABEL_DEFAULT_LOCALE = "fr"
    BABEL_DEFAULT_TIMEZONE = "Europe/Paris"
    LANGUAGES = ("fr", "en")
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = 8 * 3600  # a working day at the desk
    # Number of reverse proxies in front of the app (their X-Forwarded-For is trusted).
    PROXIES = int(os.environ.get("BOUSOL_PROXIES", "0"))
    # A session ends after this many idle minutes (docs/security.md): solistes and
    # prestataires (a till open all day takes a payment now and then), and the staff
    # (bank, admin, CCAS), whose pages move money or show personal data.
    SESSION_IDLE_MINUTES = int(os.environ.get("BOUSOL_SESSION_IDLE_MINUTES") or "60")
    STAFF_SESSION_IDLE_MINUTES = int(
        os.environ.get("BOUSOL_STAFF_SESSION_IDLE_MINUTES") or "15")
    # The site's own address for links sent by e-mail (forgotten password), e.g.
    # https://bousol.example.org; without it, the request's host is used, which a
    # forged Host header could change: set it in production.
    PUBLIC_URL = os.environ.get("BOUSOL_PUBLIC_URL", "").rstrip("/")
    DEMO_ALLOWED = True  # `flask bousol demo`: never on a production database
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024
    # The account SEPA payout batches (pain.001) are paid from: the Crédit Municipal
    # account holding the reserve. Production must set them; no file without them.
    PAYOUT_DEBTOR_NAME = os.environ.get("PAYOUT_DEBTOR_NAME", "")
    PAYOUT_DEBTOR_IBAN = os.environ.get("PAYOUT_DEBTOR_IBAN", "")
    PAYOUT_DEBTOR_BIC = os.environ.get("PAYOUT_DEBTOR_BIC", "")
    # The association's SIREN (9 digits): it names the FEC accounting export
    # (bousol/ledger/association/fec.py, docs/fec.md). Production must set it; no FEC without it.
    ASSOCIATION_SIREN = os.environ.get("ASSOCIATION_SIREN", "")
    # Where background jobs leave their files (the FEC of a year, docs/fec.md): the web
    # app reads it, `flask bousol worker` writes it; the same folder for both.
    EXPORTS_DIR = os.environ.get("EXPORTS_DIR") or str(BASE_DIR / "instance" / "exports")
    # E-mail (membership reminders, bousol/ledger/kernel/mail.py, docs/members.md). "smtp"
    # sends through MAIL_SERVER; "outbox" sends nothing and only keeps the message in
    # the database (the mail page shows it). Production: smtp; without MAIL_SERVER
    # and MAIL_SENDER, sending is refused with a message, nothing is written.
    MAIL_TRANSPORT = os.environ.get("BOUSOL_MAIL_TRANSPORT", "smtp")
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
    MAIL_PORT = os.environ.get("MAIL_PORT") or "587"  # checked when sending
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME", "")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD", "")
    MAIL_USE_TLS = env_flag("MAIL_USE_TLS", True)  # STARTTLS (port 587)
    MAIL_USE_SSL = env_flag("MAIL_USE_SSL", False)  # TLS from the start (port 465)
    MAIL_SENDER = os.environ.get("MAIL_SENDER", "")
    MAIL_TIMEOUT = os.environ.get("MAIL_TIMEOUT") or "10"  # seconds


class DevelopmentConfig(Config):
    DEBUG = True
    # A demo account (valid checksum, not a real one) so that payout files can be made.
    PAYOUT_DEBTOR_NAME = os.environ.get("PAYOUT_DEBTOR_NAME", DEMO_DEBTOR_NAME)
    PAYOUT_DEBTOR_IBAN = os.environ.get("PAYOUT_DEBTOR_IBAN", DEMO_DEBTOR_IBAN)
    PAYOUT_DEBTOR_BIC = os.environ.get("PAYOUT_DEBTOR_BIC", DEMO_DEBTOR_BIC)
    ASSOCIATION_SIREN = os.environ.get("ASSOCIATION_SIREN", DEMO_ASSOCIATION_SIREN)
    # Nothing leaves a developer's machine unless asked: the mail page shows each one.
    MAIL_TRANSPORT = os.environ.get("BOUSOL_MAIL_TRANSPORT", "outbox")
    MAIL_SENDER = os.environ.get("MAIL_SENDER", DEMO_MAIL_SENDER)


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-secret"  # noqa: S105
    WTF_CSRF_ENABLED = True
    # A demo account (valid checksum, not a real one) so that payout files can be made.
    PAYOUT_DEBTOR_NAME = os.environ.get("PAYOUT_DEBTOR_NAME", DEMO_DEBTOR_NAME)
    PAYOUT_DEBTOR_IBAN = os.environ.get("PAYOUT_DEBTOR_IBAN", DEMO_DEBTOR_IBAN)
    PAYOUT_DEBTOR_BIC = os.environ.get("PAYOUT_DEBTOR_BIC", DEMO_DEBTOR_BIC)
    ASSOCIATION_SIREN = os.environ.get("ASSOCIATION_SIREN", DEMO_ASSOCIATION_SIREN)
    # Tests never send, whatever the environment says (a test that needs SMTP passes
    # MAIL_TRANSPORT and a local MAIL_SERVER to create_app itself).
    MAIL_TRANSPORT = "outbox"
    MAIL_SERVER = ""
    MAIL_SENDER = DEMO_MAIL_SENDER


class ProductionConfig(Config):
    DEMO_ALLOWED = False
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    # Served behind HTTPS only (bousol/web/headers.py): two years, every subdomain.
    STRICT_TRANSPORT_SECURITY = "max-age=63072000; includeSubDomains"

    @classmethod
    def check(cls) -> None:
        if not os.environ.get("SECRET_KEY") or os.environ["SECRET_KEY"] == DEV_SECRET:
            raise RuntimeError(
                "SECRET_KEY must be set to a long random value in production "
                "(python -c 'import secrets; print(secrets.token_hex(32))')."
            )
        public = os.environ.get("BOUSOL_PUBLIC_URL", "").strip()
        if not public.startswith("https://"):
            # Links sent by e-mail (forgotten passwords) and printed (the desk's sheet)
            # name the site from this, never from a request's Host header, which
            # anyone can forge to have a reset link point at their own server.
            raise RuntimeError(
                "BOUSOL_PUBLIC_URL must be set to the site's https:// address in production.")
        if os.environ.get("BOUSOL_CLOCK", "").strip():
            # The settable clock (bousol/ledger/kernel/clock.py) is for tests and demos: books
            # kept in production are dated by the real calendar, always.
            raise RuntimeError("BOUSOL_CLOCK must not be set in production.")


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}
