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

``settings.read_dsn``: the URL of a PostgreSQL streaming replica, or a list
of them (default ``None``: every read on the primary, nothing changes).
With it, the read-only calls (``availability``, ``search_allocations``,
``reserved_slots_by_range``, ``allocations_with_availability_by_range`` and
the ``Queries`` availability helpers) run on the first healthy replica in
``REPEATABLE READ READ ONLY`` transactions; writes, and reads in a
transaction that has written, stay on the primary, and so does every read
inside ``with scheduler.fresh_reads():``. See ``libres.context.replicas``.

``settings.read_fallback``: what a read does when no replica answers:
``'primary'`` (default) runs it on the primary with a
``ReplicaUnavailableWarning``; ``'raise'`` raises ``ReplicaUnavailable``.

``settings.read_retry_after``: seconds a failed replica is skipped before it
is tried again (default ``5.0``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from libres.context.core import Context

DEFAULT_DSN = None
DEFAULT_UUID_NAMESPACE = UUID('49326ef9-fbc0-4ac0-9508-b0bbd75d42f7')
DEFAULT_PAUSE_GC_DURING_LOADS = False
DEFAULT_READ_DSN = None
DEFAULT_READ_FALLBACK = 'primary'
DEFAULT_READ_RETRY_AFTER = 5.0


def set_default_settings(context: Context) -> None:
    context.set('settings.dsn', DEFAULT_DSN)
    context.set('settings.uuid_namespace', DEFAULT_UUID_NAMESPACE)
    context.set('settings.pause_gc_during_loads', DEFAULT_PAUSE_GC_DURING_LOADS)
    context.set('settings.read_dsn', DEFAULT_READ_DSN)
    context.set('settings.read_fallback', DEFAULT_READ_FALLBACK)
    context.set('settings.read_retry_after', DEFAULT_READ_RETRY_AFTER)
