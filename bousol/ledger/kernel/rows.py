"""What ``conn.execute(…).all()`` gives, in the rules' annotations: rows of any columns.

A module of its own so that any rule can name it without importing the engine's
settings (``db``), which install the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

from sqlalchemy import Row

Rows: TypeAlias = Sequence[Row[*tuple[Any, ...]]]
