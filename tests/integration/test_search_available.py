"""``search_allocations(available_only=True)`` keeps what ``find_spot`` keeps.

The search reads the starts of each candidate's own blocking slots with it
and, for a quota, counts all its spots in SQL (``Spots.usage``), instead of
loading slot objects for ``Allocation.find_spot``. On random days of
allocations of quota 1 to 3 (partly available or not) with bookings, live
and expired holds and blockers, and for random windows, it must keep
exactly the candidates for which ``find_spot`` over the window finds a spot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import Clock

from libres.context.core import Context
from libres.db.models import Allocation
from libres.db.scheduler import Scheduler
from libres.db.time_window import TimeWindow
from libres.modules import clock, errors

DAY = datetime(2035, 3, 5)
NOW = datetime(2035, 3, 1, 12, tzinfo=UTC)


def at(quarter: int) -> datetime:
    """A quarter hour from 08:00 on DAY."""
    return DAY + timedelta(hours=8, minutes=15 * quarter)


# (first quarter, quarters): a span within 08:00-20:00
spans = st.tuples(st.integers(0, 47), st.integers(1, 8)).map(lambda s: (s[0], min(s[1], 48 - s[0])))
allocations = st.lists(st.tuples(st.integers(1, 3), st.booleans()), min_size=1, max_size=4)
bookings = st.lists(st.tuples(spans, st.sampled_from(['booking', 'hold', 'expiring hold'])), max_size=12)


def _fill(scheduler: Scheduler, kinds: list[tuple[int, bool]], booked: list[Any],
          blocked: tuple[int, int] | None, moved: Clock) -> None:
    # Allocations of three hours each, back to back from 08:00.
    for index, (quota, partly) in enumerate(kinds):
        scheduler.allocate((at(12 * index), at(12 * index + 12)), quota=quota,
                           partly_available=partly, raster=15)
    scheduler.commit()
    if blocked is not None:
        try:
            scheduler.add_blocker((at(blocked[0]), at(blocked[0] + blocked[1])))
            scheduler.commit()
        except errors.LibresError:
            scheduler.rollback()  # across two allocations, or off them
    for (first, length), kind in booked:
        try:
            hold = None if kind == 'booking' else timedelta(minutes=30 if kind == 'hold' else 5)
            token = scheduler.reserve('guest@example.org', (at(first), at(first + length)), hold=hold)
            if hold is None:
                scheduler.approve_reservations(token)
            scheduler.commit()
        except errors.LibresError:
            scheduler.rollback()
    # Ten minutes on: the expiring holds have expired, the others are live.
    moved.advance(timedelta(minutes=10))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(kinds=allocations, booked=bookings, blocked=st.none() | spans, windows=st.lists(spans, min_size=1, max_size=4))
def test_available_only_keeps_what_find_spot_keeps(
    context: Context, kinds: list[tuple[int, bool]], booked: list[Any],
    blocked: tuple[int, int] | None, windows: list[tuple[int, int]],
) -> None:
    scheduler = Scheduler(context, 'available-only', 'Europe/Zurich')
    moved = Clock(NOW)
    with clock.using(moved):
        scheduler.extinguish_managed_records()
        scheduler.commit()
        _fill(scheduler, kinds, booked, blocked, moved)
        for first, length in windows:
            start, end = at(first), at(first + length)
            kept = scheduler.search_allocations(start, end, available_only=True, strict=True)
            window = TimeWindow(scheduler.timezone, start, end)
            expected = [
                allocation for allocation in scheduler.search_allocations(start, end, strict=True)
                if allocation.find_spot(*window.bounds(allocation._start, allocation._end)) is not None
            ]
            assert [a.id for a in kept] == [a.id for a in expected]
            scheduler.commit()
        scheduler.extinguish_managed_records()
        scheduler.commit()


def test_a_host_find_spot_is_asked(scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that replaces ``find_spot`` on its allocations decides itself."""
    scheduler.allocate((at(0), at(4)), partly_available=True, raster=15)
    scheduler.commit()
    asked: list[int] = []

    def find_nothing(self: Allocation, start: datetime, end: datetime) -> None:
        asked.append(self.id)
        return None

    assert len(scheduler.search_allocations(at(0), at(4), available_only=True)) == 1
    monkeypatch.setattr(Allocation, 'find_spot', find_nothing)
    assert scheduler.search_allocations(at(0), at(4), available_only=True) == []
    assert len(asked) == 1
