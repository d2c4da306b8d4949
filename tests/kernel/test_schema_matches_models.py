"""``alembic upgrade head`` gives exactly the models' schema, on SQLite and PostgreSQL.

Alembic's autogenerate compares the migrated database (the ``engine`` fixture: a copy
of the migrated template) with ``bousol.ledger.models.Base.metadata``: a table, a
column, a type, a nullability, a server default, an index, a unique constraint or a
foreign key that one side has and the other lacks is a difference. So a model column
that no migration creates fails here, and so does a migration that the models forgot.

Not compared, because Alembic does not read them: CHECK constraints, and SQLite's
triggers (the append-only and two-people rules); each rule's own tests check those by
what the database refuses (tests/kernel/test_database_rules.py, for instance).
"""

from __future__ import annotations

import pprint

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bousol.ledger.models import Base

# Differences the migrations make on purpose, each with its reason: (backend, the
# diff's kind, the object's name).
KNOWN = {
    # Migration 0012 adds payout_batches.released_by_user_id on SQLite with a native
    # ADD COLUMN and no REFERENCES clause: a batch rebuild would drop a table that
    # payouts reference, and SQLite could not drop the column on downgrade with a
    # foreign key on it. PostgreSQL has the key; SQLite's release rule is a trigger.
    ("sqlite", "add_fk", "fk_payout_batches_released_by_user_id_users"),
}


def _key(backend: str, diff) -> tuple[str, str, str | None] | None:
    # A change is a tuple (kind, ...); a column's changes come as a list of them.
    if isinstance(diff, tuple) and diff[0] in ("add_fk", "remove_fk"):
        return backend, diff[0], diff[1].name
    return None


def test_the_migrated_schema_is_the_models_schema(engine, backend):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "compare_server_default": True,
        })
        diffs = compare_metadata(context, Base.metadata)
    unexpected = [d for d in diffs if _key(backend, d) not in KNOWN]
    assert not unexpected, (
        f"alembic upgrade head and the models differ on {backend} (a migration to write, "
        f"or a model to correct):\n{pprint.pformat(unexpected, width=100)}")
    # An ignored difference that has gone away is taken off the list.
    seen = {_key(backend, d) for d in diffs}
    assert {k for k in KNOWN if k[0] == backend} <= seen, "KNOWN lists a fixed difference"
