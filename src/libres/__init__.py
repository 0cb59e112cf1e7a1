"""libres: reserve things in a calendar, on PostgreSQL."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from libres.context.registry import create_default_registry

try:
    __version__ = version('libres')
except PackageNotFoundError:  # running from a source tree
    __version__ = '0+unknown'

registry = create_default_registry()

from libres.db.scheduler import Scheduler as new_scheduler  # noqa: E402

__all__ = ('new_scheduler', 'registry')
