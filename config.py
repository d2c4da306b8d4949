"""Configuration classes, driven by environment variables.

`create_app()` picks the class named by ``BOUSOL_ENV`` (``production`` unless told
otherwise, so that a server started without thought is a safe one).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
DEV_SECRET = "dev-only-secret-change-me"  # noqa: S105 - refused in production


def normalise_database_url(url: str) -> str:
    """Accept the URLs hosting providers hand out and use psycopg 3 for PostgreSQL."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def default_sqlite_url() -> str:
    return f"sqlite:///{BASE_DIR / 'instance' / 'bousol.sqlite3'}"


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET)
    SQLALCHEMY_DATABASE_URI = normalise_database_url(
        os.environ.get("DATABASE_URL", default_sqlite_url())
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    # Babel: French first, English too.
    BABEL_DEFAULT_LOCALE = "fr"
    BABEL_DEFAULT_TIMEZONE = "Europe/Paris"
    LANGUAGES = ("fr", "en")
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = 8 * 3600  # a working day at the desk
    # Number of reverse proxies in front of the app (their X-Forwarded-For is trusted).
    PROXIES = int(os.environ.get("BOUSOL_PROXIES", "0"))
    DEMO_ALLOWED = True  # `flask bousol demo`: never on a production database
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024


class DevelopmentConfig(Config):
    DEBUG = True


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-secret"  # noqa: S105
    WTF_CSRF_ENABLED = True


class ProductionConfig(Config):
    DEMO_ALLOWED = False
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True

    @classmethod
    def check(cls) -> None:
        if not os.environ.get("SECRET_KEY") or os.environ["SECRET_KEY"] == DEV_SECRET:
            raise RuntimeError(
                "SECRET_KEY must be set to a long random value in production "
                "(python -c 'import secrets; print(secrets.token_hex(32))')."
            )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}
