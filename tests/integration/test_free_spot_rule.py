"""The free-spot rule has one meaning in both its forms.

``libres.db.booking.spots`` defines when a spot is free, in Python over the
loaded slots (``is_free``, behind ``Allocation.is_available``, ``find_spot``
and ``quota_left``) and in SQL (``Spots.usage``, one query for all spots of
a master). Random bookings fill a quota allocation; for random ranges both
forms must name the same number of free spots and the same first one.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libres.context.core import Context
from libres.db.booking.spots import first_free_sibling, free_siblings
from libres.db.models import Allocation
from libres.db.scheduler import Scheduler
from libres.modules import errors

DAY = (2034, 5, 9)
QUOTA = 4

# (first quarter hour, quarters) from 08:00, inside 08:00-12:00
spans = st.tuples(st.integers(0, 15), st.integers(1, 8)).map(
    lambda span: (span[0], min(span[1], 16 - span[0]))
)


def at(quarter: int) -> datetime:
    return datetime(*DAY, 8 + quarter // 4, quarter % 4 * 15)


def _fill(scheduler: Scheduler, bookings: list[tuple[int, int]], blocked: tuple[int, int] | None) -> None:
    scheduler.extinguish_managed_records()
    scheduler.allocate((at(0), at(16)), partly_available=True, raster=15, quota=QUOTA)
    if blocked is not None:
        scheduler.add_blocker((at(blocked[0]), at(blocked[0] + blocked[1])))
    scheduler.commit()
    for first, length in bookings:
        try:
            token = scheduler.reserve('guest@example.org', (at(first), at(first + length)))
            scheduler.approve_reservations(token)
            scheduler.commit()
        except errors.AlreadyReservedError:
            scheduler.rollback()


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    bookings=st.lists(spans, max_size=12),
    blocked=st.none() | spans,
    asked=st.lists(spans, min_size=1, max_size=6),
)
def test_the_python_and_the_sql_form_agree(
    context: Context, bookings: list[tuple[int, int]], blocked: tuple[int, int] | None,
    asked: list[tuple[int, int]],
) -> None:
    scheduler = Scheduler(context, 'free-spot-rule', 'Europe/Zurich')
    _fill(scheduler, bookings, blocked)
    master = scheduler.managed_allocations().filter(Allocation.resource == scheduler.resource).one()
    spots = scheduler._engine.spots
    for first, length in asked:
        start, end = scheduler._prepare_range(at(first), at(first + length))
        free = [spot for spot in master.siblings() if spot.is_available(start, end)]
        usage = spots.usage(master, start, end)
        assert usage.free == len(free) == free_siblings(master, start, end)
        assert usage.resource == (free[0].resource if free else None)
        assert usage.row_id == (free[0].id if free else None)
        python_spot = first_free_sibling(master, start, end)
        sql_spot = spots.first_free(master, start, end)
        assert (python_spot is None) == (sql_spot is None)
        if python_spot is not None and sql_spot is not None:
            assert python_spot.resource == sql_spot.resource
    scheduler.extinguish_managed_records()
    scheduler.commit()
