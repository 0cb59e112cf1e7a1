"""``search_allocations(minspots=)`` reads every candidate's availability in
one query (``availability_rows.mean_by_span``) instead of one
``scheduler.availability`` call per candidate. That batch must answer, to
the float, what the plain call answers; and a host that replaces
``availability`` must still be asked for each candidate.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libres.context.core import Context
from libres.db import availability_rows
from libres.db.scheduler import Scheduler
from libres.modules import clock, errors

DAY = (2034, 5, 9)
NOW = datetime(2034, 5, 1, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(*DAY, hour, minute)


class AskedEachTime(Scheduler):
    """A host's scheduler that replaces ``availability`` (and counts the calls)."""

    calls = 0

    def availability(self, start: datetime | None = None, end: datetime | None = None) -> float:
        type(self).calls += 1
        return super().availability(start, end)


# An allocation: (first hour from 06:00, hours, quota, partly available, buffer quarters)
allocations = st.tuples(
    st.integers(0, 11), st.integers(1, 3), st.integers(1, 3), st.booleans(), st.integers(0, 1)
)
# A booking: (which allocation, first quarter, quarters, spots, held, approved)
bookings = st.tuples(
    st.integers(0, 5), st.integers(0, 11), st.integers(1, 6), st.integers(1, 2), st.booleans(), st.booleans()
)


def _fill(scheduler: Scheduler, wanted: list[Any], made: list[Any], blocked: int | None) -> list[Any]:
    masters = []
    for first, hours, quota, partly, buffer in wanted:
        start = at(6 + first)
        policies = {'buffer_after': timedelta(minutes=15)} if partly and buffer else {}
        try:
            masters.extend(scheduler.allocate(
                (start, start + timedelta(hours=hours)), quota=quota, partly_available=partly,
                raster=15, **policies))  # type: ignore[arg-type]
            scheduler.commit()
        except errors.OverlappingAllocationError:
            scheduler.rollback()
    if blocked is not None:
        try:
            scheduler.add_blocker((at(6 + blocked), at(6 + blocked, 30)))
            scheduler.commit()
        except errors.LibresError:
            scheduler.rollback()
    for which, first, quarters, spots, held, approved in made:
        if not masters:
            break
        master = masters[which % len(masters)]
        start = master.display_start().replace(tzinfo=None) + timedelta(minutes=15 * first)
        try:
            token = scheduler.reserve(
                'guest@example.org', (start, start + timedelta(minutes=15 * quarters)), quota=spots,
                hold=timedelta(minutes=10) if held else None)
            if approved:
                scheduler.approve_reservations(token)
            scheduler.commit()
        except errors.LibresError:
            scheduler.rollback()
    return masters


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    wanted=st.lists(allocations, min_size=1, max_size=6),
    made=st.lists(bookings, max_size=10),
    blocked=st.none() | st.integers(0, 11),
    expired=st.booleans(),
    minspots=st.integers(1, 3),
)
def test_the_batch_answers_what_each_call_answers(
    context: Context, wanted: list[Any], made: list[Any], blocked: int | None, expired: bool, minspots: int,
) -> None:
    moment = {'now': NOW}
    with clock.using(lambda: moment['now']):
        scheduler = Scheduler(context, f'search-{uuid.uuid4().hex[:6]}', 'Europe/Zurich')
        try:
            masters = _fill(scheduler, wanted, made, blocked)
            if expired:
                moment['now'] = NOW + timedelta(hours=1)  # every hold has expired
            if not masters:
                return
            first, last = min(a._start for a in masters), max(a._end for a in masters)
            batch = availability_rows.mean_by_span(scheduler.session, first, last, [scheduler.resource])
            for master in masters:
                assert batch[master._start] == scheduler.availability(master.start, master.end)

            fast = scheduler.search_allocations(at(0), at(23, 59), minspots=minspots)
            host = AskedEachTime(context, scheduler.name, 'Europe/Zurich')
            AskedEachTime.calls = 0
            plain = host.search_allocations(at(0), at(23, 59), minspots=minspots)
            assert AskedEachTime.calls == len(masters)
            assert [a.id for a in fast] == [a.id for a in plain]
        finally:
            scheduler.rollback()
            scheduler.extinguish_managed_records()
            scheduler.commit()


def test_minspots_keeps_the_allocations_with_that_many_free_spots(context: Context) -> None:
    scheduler = Scheduler(context, 'minspots', 'Europe/Zurich')
    _full, half, free = scheduler.allocate([(at(8), at(9)), (at(10), at(11)), (at(12), at(13))], quota=2)
    scheduler.commit()
    for start, spots in ((at(8), 2), (at(10), 1)):
        token = scheduler.reserve('guest@example.org', (start, start + timedelta(hours=1)), quota=spots)
        scheduler.approve_reservations(token)
    scheduler.commit()
    assert [a.id for a in scheduler.search_allocations(at(0), at(23), minspots=1)] == [half.id, free.id]
    assert [a.id for a in scheduler.search_allocations(at(0), at(23), minspots=2)] == [free.id]
