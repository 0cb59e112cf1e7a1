"""The settings libres reads from a context, with their defaults.

``settings.dsn``: the SQLAlchemy URL of the PostgreSQL database (default
``None``), e.g. ``postgresql+psycopg://user:password@localhost:5432/db``.

``settings.uuid_namespace``: the namespace of the resource UUIDs (default
``49326ef9-fbc0-4ac0-9508-b0bbd75d42f7``). Changing it once data exists
disconnects schedulers from their data.

``settings.pause_gc_during_loads``: pause Python's cyclic garbage collector
while ``search_allocations`` and a batch ``allocate`` build many objects
(default ``False``). It makes a search over a year of hourly allocations
markedly faster in a large process, but it pauses collection for every
thread of the process while the objects load (``libres.db.gc_pause``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from libres.context.core import Context

DEFAULT_DSN = None
DEFAULT_UUID_NAMESPACE = UUID('49326ef9-fbc0-4ac0-9508-b0bbd75d42f7')
DEFAULT_PAUSE_GC_DURING_LOADS = False


def set_default_settings(context: Context) -> None:
    context.set('settings.dsn', DEFAULT_DSN)
    context.set('settings.uuid_namespace', DEFAULT_UUID_NAMESPACE)
    context.set('settings.pause_gc_during_loads', DEFAULT_PAUSE_GC_DURING_LOADS)
