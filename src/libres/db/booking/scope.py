"""Whom a booking is for: the one thing every part of the engine is given.

The engine's parts (records, dates, spots, slots) are built from a scope,
not from the scheduler's private helpers. The public ``Scheduler`` is one;
``libres check --repair`` builds a small one of its own for a resource.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from libres.context.core import Context
    from libres.db.queries import Queries


class BookingScope(Protocol):
    """A resource, its zone and the session its bookings go through."""

    context: Context
    timezone: str
    queries: Queries

    @property
    def session(self) -> Session:
        """The session of this thread (looked up on every use: one per thread)."""
        ...

    @property
    def resource(self) -> uuid.UUID:
        """The resource whose allocations the bookings take."""
        ...

    @property
    def blocking_resources(self) -> frozenset[uuid.UUID]:
        """Resources whose bookings also block this one."""
        ...


def visible_resources(scope: BookingScope) -> list[uuid.UUID]:
    """The resource first, then the resources that block it."""
    return [scope.resource, *scope.blocking_resources]
