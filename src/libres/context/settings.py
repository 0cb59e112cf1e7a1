"""The settings libres reads from a context, with their defaults.

``settings.dsn``: the SQLAlchemy URL of the PostgreSQL database (default
``None``), e.g. ``postgresql+psycopg://user:password@localhost:5432/db``.

``settings.uuid_namespace``: the namespace of the resource UUIDs (default
``49326ef9-fbc0-4ac0-9508-b0bbd75d42f7``). Changing it once data exists
disconnects schedulers from their data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from libres.context.core import Context

DEFAULT_DSN = None
DEFAULT_UUID_NAMESPACE = UUID('49326ef9-fbc0-4ac0-9508-b0bbd75d42f7')


def set_default_settings(context: Context) -> None:
    context.set('settings.dsn', DEFAULT_DSN)
    context.set('settings.uuid_namespace', DEFAULT_UUID_NAMESPACE)
