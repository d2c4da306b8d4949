"""Configuration: environment-driven, and production refuses a default secret."""

import pytest

from bousol.app import create_app
from config import DEV_SECRET, ProductionConfig, normalise_database_url


@pytest.mark.parametrize(("given", "used"), [
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ("sqlite:////tmp/x.sqlite3", "sqlite:////tmp/x.sqlite3"),
])
def test_database_url_normalised(given, used):
    assert normalise_database_url(given) == used


@pytest.mark.parametrize("secret", [None, DEV_SECRET])
def test_production_refuses_default_secret(monkeypatch, secret):
    if secret is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("SECRET_KEY", secret)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("production")


def test_production_starts_with_a_real_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "x" * 64)
    monkeypatch.setenv("BOUSOL_PUBLIC_URL", "https://bousol.example.org")
    monkeypatch.delenv("BOUSOL_CLOCK", raising=False)
    app = create_app(ProductionConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/p.db")
    assert app.config["SESSION_COOKIE_SECURE"] is True and not app.debug
    assert app.config["SECRET_KEY"] == "x" * 64


def test_database_url_read_when_the_app_is_made(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://someone@db.example/bousol")
    app = create_app("testing")
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://someone@db.example/bousol"


def test_default_environment_is_production(monkeypatch):
    monkeypatch.delenv("BOUSOL_ENV", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError):
        create_app()


def test_production_refuses_a_set_clock(monkeypatch, tmp_path):
    """The settable clock is for tests and demos; production books follow the calendar."""
    monkeypatch.setenv("SECRET_KEY", "x" * 64)
    monkeypatch.setenv("BOUSOL_PUBLIC_URL", "https://bousol.example.org")
    monkeypatch.setenv("BOUSOL_CLOCK", "2027-12-31")
    with pytest.raises(RuntimeError, match="BOUSOL_CLOCK"):
        create_app(ProductionConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/p.db")


@pytest.mark.parametrize("public", [None, "", "http://bousol.example.org"])
def test_production_needs_the_sites_https_address(monkeypatch, tmp_path, public):
    """E-mailed reset links are built from it, never from a forgeable Host header."""
    monkeypatch.setenv("SECRET_KEY", "x" * 64)
    monkeypatch.delenv("BOUSOL_CLOCK", raising=False)
    if public is None:
        monkeypatch.delenv("BOUSOL_PUBLIC_URL", raising=False)
    else:
        monkeypatch.setenv("BOUSOL_PUBLIC_URL", public)
    with pytest.raises(RuntimeError, match="BOUSOL_PUBLIC_URL"):
        create_app(ProductionConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/p.db")
