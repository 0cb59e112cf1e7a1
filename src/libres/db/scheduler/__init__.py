"""The scheduler: the main API object, composed from one part per aggregate."""

from __future__ import annotations

from libres.context.core import missing
from libres.db.scheduler.allocations import DAYS_MAP, AllocationsMixin
from libres.db.scheduler.availability import AvailabilityMixin
from libres.db.scheduler.base import AllocationT, ReservationT
from libres.db.scheduler.blockers import BlockersMixin
from libres.db.scheduler.reservations import ReservationsMixin
from libres.db.scheduler.rules import RulesMixin

__all__ = ('DAYS_MAP', 'Scheduler', 'missing')


class Scheduler(
    RulesMixin,
    AvailabilityMixin[AllocationT, ReservationT],
    ReservationsMixin[AllocationT, ReservationT],
    BlockersMixin[AllocationT, ReservationT],
    AllocationsMixin[AllocationT, ReservationT],
):
    """Allocations, reservations and blockers of one resource in one context.

    The resource is derived from the context and scheduler names; naive
    datetimes passed to any method are read in the scheduler's timezone.
    """
