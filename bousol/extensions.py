"""Flask extensions, created unbound and bound in :func:`bousol.create_app`."""

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from bousol.ledger.kernel.db import READ_ONLY
from bousol.ledger.models import Base

# The models are plain SQLAlchemy (the ledger never imports Flask); Flask-SQLAlchemy
# manages the engine and the request-scoped session on their metadata.
# The request's session reads only (pages, the logged-in user): on SQLite it never
# holds the write lock; operations write through a UnitOfWork that overrides it.
db = SQLAlchemy(
    model_class=Base,
    session_options={"expire_on_commit": False, "execution_options": {READ_ONLY: True}},
)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
