"""Bou'Sol: the ledger of the local currency of the Boulonnais."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, session
from flask_babel import lazy_gettext

from bousol.extensions import babel, csrf, db, login_manager, migrate
from bousol.ledger.kernel.db import configure_engine
from bousol.ledger.kernel.replica import ReadRouter

ROOT = Path(__file__).resolve().parent.parent


def _select_locale() -> str:
    # French first: the interface speaks French unless the user chose English.
    return session.get("lang", "fr")


def create_app(config: object | str | None = None, **overrides: object) -> Flask:
    """Build the application.

    ``config`` is a config class or its name (``development``, ``testing``,
    ``production``); by default the name comes from ``BOUSOL_ENV`` and is
    ``production``, which refuses to start without a real ``SECRET_KEY``.
    """
    from config import CONFIGS, ProductionConfig, normalise_database_url

    if config is None or isinstance(config, str):
        name = config or os.environ.get("BOUSOL_ENV", "production")
        config = CONFIGS[name]
    if config is ProductionConfig:
        ProductionConfig.check()

    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_object(config)
    # Read the environment now, not when config.py was imported.
    if os.environ.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(os.environ["DATABASE_URL"])
    app.config.update(overrides)
    Path(app.instance_path).mkdir(exist_ok=True)

    from bousol.ledger import domains

    domains.load()  # the domains register what the books consult (books/hooks.py)
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine, pooler=app.config.get("DATABASE_POOLER"))
        # Reads that tolerate staleness: the replica while healthy (docs/scaling.md).
        app.extensions["bousol.reads"] = ReadRouter.from_config(
            app.config, db.engine, pooler=app.config.get("DATABASE_POOLER"))
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), compare_type=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Connectez-vous pour accéder à cette page.")
    login_manager.login_message_category = "info"
    from bousol.i18n import compile_catalogs

    compile_catalogs()
    babel.init_app(app, locale_selector=_select_locale)

    from bousol.web import audit_context, formatting, guards, headers

    formatting.register(app)
    headers.register(app)
    guards.register(app)
    audit_context.register(app)
    if app.config.get("PROXIES"):
        # Behind a reverse proxy, trust its X-Forwarded-For/-Proto (login throttling
        # keys on the client's address).
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=app.config["PROXIES"], x_proto=app.config["PROXIES"])

    from bousol.web import (
        account,
        admin,
        api,
        auth,
        ccas,
        collective,
        desk,
        errors,
        member,
        merchant,
        pay,
        public,
    )

    errors.register(app)

    for blueprint in (auth.bp, member.bp, merchant.bp, ccas.bp, desk.bp, admin.bp, pay.bp,
                      public.bp, account.bp, api.bp, collective.bp):
        app.register_blueprint(blueprint)

    from bousol.cli import bousol_cli

    app.cli.add_command(bousol_cli)
    return app
