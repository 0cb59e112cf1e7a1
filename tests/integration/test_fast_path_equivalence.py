"""The fast path of a booking and the general path give the same answers.

``approve_reservations`` right after ``reserve`` (nothing in between) takes
the fast path: the token is known to be fresh and what ``reserve`` read is
reused. Anything that goes through the session in between (here a flush
and a query) forces the general path: the token is looked up and the
masters and spots are read again. Random bookings on a partly available
allocation and on a quota allocation run both ways, on two resources with
the same allocations; every return value, every refusal and the slots in
the database must match.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from tests.helpers import captured_statements

from libres.context.core import Context
from libres.db.models import ReservedSlot
from libres.db.scheduler import Scheduler
from libres.modules import errors

DAY = (2034, 3, 7)

# (allocation index, first hour, hours, quota)
Booking = tuple[int, int, int, int]
bookings = st.lists(
    st.tuples(st.integers(0, 1), st.integers(8, 11), st.integers(1, 2), st.integers(1, 2)),
    min_size=1, max_size=8,
)


def at(hour: int) -> datetime:
    return datetime(*DAY, hour)


def _calendar(scheduler: Scheduler) -> None:
    scheduler.allocate((at(8), at(12)), partly_available=True, raster=15)
    scheduler.allocate((at(13), at(14)), quota=3)
    scheduler.commit()


def _book(scheduler: Scheduler, booking: Booking, general: bool) -> tuple[str, object]:
    index, first, hours, quota = booking
    start, end = (at(first), at(first + hours)) if index == 0 else (at(13), at(14))
    try:
        token = scheduler.reserve('guest@example.org', (start, end), quota=quota if index else 1)
        if general:
            # Activity in between: the memo of reserve is dropped, the token is looked up.
            scheduler.session.flush()
            scheduler.session.execute(select(1))
        slots = scheduler.approve_reservations(token)
        scheduler.commit()
    except errors.LibresError as error:
        scheduler.rollback()
        return 'refused', type(error).__name__
    return 'booked', sorted((slot.start.isoformat(), slot.end.isoformat()) for slot in slots)


def _stored_slots(scheduler: Scheduler) -> list[tuple[int, str, str]]:
    """The slots by spot number (0 the master, then its mirrors) and time."""
    spots = {scheduler.resource: 0}
    rows = scheduler.managed_reserved_slots().order_by(ReservedSlot.start, ReservedSlot.resource).all()
    for slot in rows:
        spots.setdefault(slot.resource, len(spots))
    return sorted((spots[s.resource], s.start.isoformat(), s.end.isoformat()) for s in rows)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=bookings)
def test_fast_and_general_path_agree(context: Context, plan: list[Booking]) -> None:
    fast = Scheduler(context, 'fast', 'Europe/Zurich')
    general = Scheduler(context, 'general', 'Europe/Zurich')
    for scheduler in (fast, general):
        scheduler.extinguish_managed_records()
        scheduler.commit()
        _calendar(scheduler)
    answers_fast = [_book(fast, booking, general=False) for booking in plan]
    answers_general = [_book(general, booking, general=True) for booking in plan]
    assert answers_fast == answers_general
    assert _stored_slots(fast) == _stored_slots(general)


def test_the_two_ways_really_take_different_paths(context: Context) -> None:
    """The fast path reads nothing again; the general one does (so the test
    above compares two different code paths, not one path twice)."""
    scheduler = Scheduler(context, 'paths', 'Europe/Zurich')
    _calendar(scheduler)
    token = scheduler.reserve('a@example.org', (at(8), at(9)))
    with captured_statements(scheduler) as sent:
        scheduler.approve_reservations(token)
    fast = sent.kinds
    scheduler.rollback()
    token = scheduler.reserve('a@example.org', (at(8), at(9)))
    scheduler.session.flush()
    with captured_statements(scheduler) as sent:
        scheduler.approve_reservations(token)
    general = sent.kinds
    scheduler.rollback()
    assert fast.count('SELECT') == 0 and general.count('SELECT') >= 2
