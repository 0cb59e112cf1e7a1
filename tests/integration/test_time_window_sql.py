"""``TimeWindow.sql_filter`` keeps what ``TimeWindow.overlaps`` keeps.

``search_allocations`` with a narrow window leaves the allocations outside it
in the database by this SQL condition, and checks the window again on the
objects it builds. So the condition may keep more (allocations on days
outside the range it was built for), but it must never drop one that
``overlaps`` keeps. On random allocations (any second, any length, every
raster) in zones with DST changes, half-hour and 45-minute offsets and
skipped days, it must be exactly ``overlaps`` on the range's days and true
elsewhere; where a day of the range does not begin at a plain midnight there
is no condition and the search falls back to picking rows in Python.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libres.context.core import Context
from libres.db.models import Allocation
from libres.db.scheduler import Scheduler, availability
from libres.db.time_window import TimeWindow
from libres.modules.rasterizer import VALID_RASTER

ZONES = ['Europe/Zurich', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu',
         'America/St_Johns', 'Europe/Dublin', 'UTC', 'America/Sao_Paulo', 'Pacific/Apia',
         'America/Havana']
# Days around changes: DST in Zurich, New York and Lord Howe (30 minutes),
# DST beginning at midnight (Sao Paulo 2018, Havana 2020), Apia skipping
# 30 December 2011.
NEAR_CHANGES = [date(2030, 3, 30), date(2030, 10, 26), date(2030, 3, 9), date(2030, 11, 2),
                date(2030, 4, 6), date(2030, 10, 5), date(2018, 11, 3), date(2020, 3, 7),
                date(2011, 12, 29)]
ONE_MICROSECOND = timedelta(microseconds=1)

first_days = st.sampled_from(NEAR_CHANGES) | st.dates(date(2010, 1, 1), date(2035, 12, 31))
# (seconds from two days before the first day, length in seconds, raster)
allocations = st.lists(
    st.tuples(st.integers(0, 14 * 86400), st.integers(1, 3 * 86400), st.sampled_from(VALID_RASTER)),
    min_size=1, max_size=25,
)


def _insert(session: Any, zone: str, rows: list[tuple[datetime, datetime, int]]) -> None:
    # Each on a resource of its own: the rows may overlap.
    session.execute(sa.text("""
        INSERT INTO allocations (resource, type, mirror_of, "group", quota, quota_limit,
            partly_available, approve_manually, timezone, _start, _end, _raster, created)
        SELECT r, 'generic', r, gen_random_uuid(), 1, 0, false, false, :zone,
               a._start, a._end, a._raster, now()
        FROM (SELECT gen_random_uuid() AS r, * FROM unnest(
            CAST(:starts AS timestamp[]), CAST(:ends AS timestamp[]), CAST(:rasters AS int[])
        ) AS a(_start, _end, _raster)) AS a
    """), {
        'zone': zone,
        'starts': [start for start, _, _ in rows],
        'ends': [end for _, end, _ in rows],
        'rasters': [raster for _, _, raster in rows],
    })


def _on_the_bounds(window: TimeWindow, day: date, raster: int) -> list[tuple[datetime, datetime, int]]:
    """Allocations that end or begin exactly at, or a microsecond beside, the
    window's rastered bounds on ``day``: where < and <= part."""
    s, e = (_naive(value) for value in window.rastered_bounds_on(day, day, raster))
    hour = timedelta(hours=1)
    return [(start, end, raster) for start, end in [
        (s - hour, s), (s - hour, s - ONE_MICROSECOND), (s, s + hour),
        (e, e + hour), (e + ONE_MICROSECOND, e + hour), (e - hour, e),
    ] if start <= end]


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(zone=st.sampled_from(ZONES), first_day=first_days, days=st.integers(1, 10),
       window_start=st.times(), window_end=st.times(), rows=allocations,
       day_of_edges=st.integers(0, 9), raster_of_edges=st.sampled_from(VALID_RASTER))
def test_the_condition_keeps_what_overlaps_keeps(
    scheduler: Scheduler, zone: str, first_day: date, days: int,
    window_start: time, window_end: time, rows: list[tuple[int, int, int]],
    day_of_edges: int, raster_of_edges: int,
) -> None:
    session = scheduler.session
    last_day = first_day + timedelta(days=days - 1)
    window = TimeWindow(zone, datetime.combine(first_day, window_start),
                        datetime.combine(last_day, window_end))
    in_sql = window.sql_filter(first_day, last_day)
    edges_day = first_day + timedelta(days=min(day_of_edges, days - 1))
    if in_sql is None:
        assert zone in ('America/Sao_Paulo', 'Pacific/Apia', 'America/Havana'), (zone, first_day)
        return
    # Naive UTC, as stored: from two days before the first day.
    origin = datetime.combine(first_day - timedelta(days=2), time())
    spans = [(origin + timedelta(seconds=start), origin + timedelta(seconds=start + length) - ONE_MICROSECOND,
              raster) for start, length, raster in rows]
    try:
        _insert(session, zone, spans + _on_the_bounds(window, edges_day, raster_of_edges))
        kept = set(session.scalars(sa.select(Allocation.id).where(in_sql.condition), in_sql.parameters))
        local = ZoneInfo(zone)
        for id, a_start, a_end, raster in session.execute(
            sa.select(Allocation.id, Allocation._start, Allocation._end, Allocation._raster)
        ):
            in_days = all(first_day <= value.astimezone(local).date() <= last_day for value in (a_start, a_end))
            assert in_sql.exact_for(a_start, a_end, raster) == in_days
            if in_days:
                assert (id in kept) == window.overlaps(a_start, a_end, raster), (a_start, a_end, raster)
            else:
                assert id in kept, (a_start, a_end, raster)
    finally:
        session.rollback()


@pytest.mark.parametrize(('zone', 'day', 'plain'), [
    ('America/Sao_Paulo', date(2018, 11, 4), False),  # 00:00 became 01:00
    ('America/Havana', date(2020, 3, 8), False),  # likewise
    ('Pacific/Apia', date(2011, 12, 30), False),  # a day skipped
    ('America/Sao_Paulo', date(2018, 11, 5), True),
    ('Europe/Zurich', date(2030, 3, 31), True),  # the change is at 02:00
    ('Europe/Zurich', date(2030, 10, 27), True),
])
def test_a_day_not_beginning_at_a_plain_midnight_has_no_condition(zone: str, day: date, plain: bool) -> None:
    window = TimeWindow(zone, datetime(2000, 1, 1, 8), datetime(2000, 1, 1, 10))
    assert (window.sql_filter(day, day) is not None) == plain


FIRST_DAYS = {'Europe/Zurich': date(2030, 3, 29), 'America/New_York': date(2030, 11, 1),
              'America/Sao_Paulo': date(2018, 11, 2)}


@pytest.mark.parametrize('zone', sorted(FIRST_DAYS))
@pytest.mark.parametrize('times', [(time(8), time(10)), (time(1, 30), time(3, 15)), (time(23), time(1))])
def test_a_search_finds_the_same_by_each_way_of_checking_the_window(
    context: Context, monkeypatch: pytest.MonkeyPatch, zone: str, times: tuple[time, time],
) -> None:
    """Hourly and odd allocations over days of DST changes: the search with
    the condition, picking the rows in Python first, and checking only the
    objects (as for a wide window) find the same objects in the same order.
    In Sao Paulo a day of the range begins at 01:00: there is no condition."""
    scheduler = Scheduler(context, f'window-{zone}', zone)
    first = FIRST_DAYS[zone]
    # Aware UTC: hours over the changes, none of them unclear.
    origin = datetime.combine(first, time(), ZoneInfo(zone)).astimezone(UTC)
    hours = [(origin + timedelta(hours=h), origin + timedelta(hours=h + 1)) for h in range(24 * 4)]
    scheduler.allocate(hours, raster=15)
    later = origin + timedelta(days=8)
    scheduler.allocate([(later + timedelta(minutes=25), later + timedelta(hours=27, minutes=50))], raster=5)
    scheduler.commit()
    start, end = datetime.combine(first, times[0]), datetime.combine(first + timedelta(days=9), times[1])

    def found() -> list[int]:
        ids = [a.id for a in scheduler.search_allocations(start, end)]
        scheduler.commit()
        return ids

    with_condition = found()
    assert with_condition
    monkeypatch.setattr(TimeWindow, 'sql_filter', lambda *args: None)
    assert found() == with_condition
    monkeypatch.setattr(availability, 'NARROW_WINDOW', 0.0)
    assert found() == with_condition
