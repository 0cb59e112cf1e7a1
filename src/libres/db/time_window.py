"""The time of day ``search_allocations`` looks for, on each allocation's local days.

The window meets an allocation when, rastered to the allocation's raster,
the window's start on the allocation's first local day lies in the
allocation, or the allocation starts between that start and the window's
end on its last local day (``Allocation.overlaps``). ``TimeWindow.overlaps``
answers it from plain values; ``TimeWindow.sql_filter`` gives the same
answer in SQL, so a search can leave the other rows in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.expression import Grouping

from libres.db.models import Allocation
from libres.modules.dates import get_timezone, localize
from libres.modules.rasterizer import VALID_RASTER, rasterize_end, rasterize_span, rasterize_start

ONE_DAY = timedelta(days=1)


class TimeWindow:
    """The searched time of day on each allocation's own local days.

    Computed once per (first day, last day, raster) instead of per
    allocation: a year of hourly allocations has 365 such keys, not 8,760.
    """

    def __init__(self, timezone: str, start: datetime, end: datetime) -> None:
        self.zone = get_timezone(timezone)
        self.start_time = start.time()
        self.end_time = end.time()
        self._starts: dict[date, datetime] = {}
        self._ends: dict[date, datetime] = {}
        self._rastered: dict[tuple[date, date, int], tuple[datetime, datetime]] = {}

    def _days(self, a_start: datetime, a_end: datetime) -> tuple[date, date]:
        return a_start.astimezone(self.zone).date(), a_end.astimezone(self.zone).date()

    def start_on(self, day: date) -> datetime:
        """The window's start on ``day``, aware in the scheduler's zone."""
        found = self._starts.get(day)
        if found is None:
            found = self._starts[day] = localize(datetime.combine(day, self.start_time), self.zone)
        return found

    def end_on(self, day: date) -> datetime:
        """The window's end on ``day``, aware in the scheduler's zone."""
        found = self._ends.get(day)
        if found is None:
            found = self._ends[day] = localize(datetime.combine(day, self.end_time), self.zone)
        return found

    def bounds(self, a_start: datetime, a_end: datetime) -> tuple[datetime, datetime]:
        """The window on the allocation's days, aware in the scheduler's zone."""
        first, last = self._days(a_start, a_end)
        return self.start_on(first), self.end_on(last)

    def share_of_day(self) -> float:
        """How much of a day the window spans; 0 when it runs past midnight."""
        seconds = (
            datetime.combine(date.min, self.end_time) - datetime.combine(date.min, self.start_time)
        ).total_seconds()
        return max(seconds, 0.0) / 86400

    def rastered_bounds_on(self, first: date, last: date, raster: int) -> tuple[datetime, datetime]:
        """The window from its start on ``first`` to its end on ``last``,
        rastered, aware UTC."""
        key = (first, last, raster)
        rastered = self._rastered.get(key)
        if rastered is None:
            rastered = self._rastered[key] = rasterize_span(
                self.start_on(first).astimezone(UTC), self.end_on(last).astimezone(UTC), raster
            )
        return rastered

    def overlaps(self, a_start: datetime, a_end: datetime, raster: int) -> bool:
        """``Allocation.overlaps`` with the window, from plain values."""
        s, e = self.rastered_bounds_on(*self._days(a_start, a_end), raster)
        return bool(a_start <= s <= a_end or s <= a_start <= e)

    def sql_filter(self, first_day: date, last_day: date) -> WindowFilter | None:
        """``overlaps`` in SQL, exact for allocations whose local days lie in
        ``[first_day, last_day]`` (and whose raster is valid); true for every
        other allocation, so that it only ever keeps more rows than
        ``overlaps``: ``WindowFilter.exact_for`` tells which to check.

        An allocation's local day is found among the UTC instants where the
        days begin, and the window's rastered bounds on that day are looked
        up in arrays computed here, by the rasterizer ``overlaps`` uses.
        ``None`` when some day of the range does not begin at a plain
        midnight (a DST change at midnight, a skipped day), or for a zone
        other than ``zoneinfo``'s: there the days' beginnings are no simple
        list of instants.
        """
        days = [first_day + n * ONE_DAY for n in range((last_day - first_day).days + 1)]
        found = [_midnight(self.zone, day) for day in [*days, last_day + ONE_DAY]]
        beginnings = [instant for instant in found if instant is not None]
        if len(beginnings) < len(found):
            return None
        # A start depends on the first day only, an end on the last.
        day_starts = [_naive(self.start_on(day)) for day in days]
        day_ends = [_naive(self.end_on(day)) for day in days]
        # Per raster, the bounds on each day between NULLs for the buckets
        # before and after the days: one flat array, so that a day outside
        # lands on a NULL, never on another raster's day.
        starts: list[datetime | None] = []
        ends: list[datetime | None] = []
        for raster in VALID_RASTER:
            starts += [None, *(rasterize_start(start, raster) for start in day_starts), None]
            ends += [None, *(rasterize_end(end, raster) for end in day_ends), None]
        return WindowFilter(_condition(), {
            'window_day_beginnings': _text_array(beginnings), 'window_starts': _text_array(starts),
            'window_ends': _text_array(ends), 'window_row_length': len(days) + 2,
        }, beginnings[0].replace(tzinfo=UTC), beginnings[-1].replace(tzinfo=UTC))


class WindowFilter(NamedTuple):
    """``TimeWindow.overlaps`` as a condition on allocations, and its values."""

    condition: ColumnElement[bool]
    parameters: dict[str, Any]
    first: datetime  # where the days it is exact for begin
    end: datetime  # and where they end

    def exact_for(self, a_start: datetime, a_end: datetime, raster: int) -> bool:
        """Whether the condition answered ``overlaps`` for this allocation
        (rather than keeping it for the caller to check)."""
        return self.first <= a_start and a_end < self.end and raster in VALID_RASTER


@lru_cache(maxsize=1)
def _condition() -> ColumnElement[bool]:
    # Built once: the values come as parameters (WindowFilter.parameters).
    beginnings = _array('window_day_beginnings')
    raster = func.array_position(literal(list(VALID_RASTER), ARRAY(Integer)), Allocation._raster)
    row_offset = (raster - 1) * bindparam('window_row_length', type_=Integer) + 1

    def on_day_of(column: Any, name: str) -> Any:
        return Grouping(_array(name))[row_offset + func.width_bucket(column, beginnings)]

    s = on_day_of(Allocation._start, 'window_starts')
    e = on_day_of(Allocation._end, 'window_ends')
    # ``a_start <= s <= a_end or s <= a_start <= e``, with s once less (an
    # allocation's start is not after its end). NULL where a bound is
    # unknown; FALSE only where the bounds known already exclude the window.
    meets = and_(s <= Allocation._end, or_(Allocation._start <= s, Allocation._start <= e))
    return func.coalesce(meets, True)


def _midnight(zone: tzinfo, day: date) -> datetime | None:
    """Where ``day`` begins in ``zone``, as naive UTC, if it begins at a
    midnight that exists once (then the local date changes exactly there)."""
    if not (isinstance(zone, ZoneInfo) or zone is UTC):
        return None
    midnight = datetime.combine(day, time())
    earlier, later = midnight.replace(tzinfo=zone, fold=0), midnight.replace(tzinfo=zone, fold=1)
    if earlier.utcoffset() != later.utcoffset():
        return None  # skipped or repeated
    return _naive(earlier)


def _naive(value: datetime) -> datetime:
    """As the allocations' columns store it: naive UTC."""
    return value.astimezone(UTC).replace(tzinfo=None)


def _array(name: str) -> Any:
    # A subquery of its own: the cast from text runs once per statement, not
    # for every row (it is stable, so not folded into a constant beforehand).
    return select(cast(bindparam(name, type_=Text()), ARRAY(DateTime()))).scalar_subquery()


def _text_array(values: Sequence[datetime | None]) -> str:
    """PostgreSQL's text form of a ``timestamp[]`` of naive values. Sent as
    one string: both drivers adapt a list element by element, and a month's
    arrays (about 380 values) took psycopg 3 about a millisecond."""
    return '{' + ','.join('NULL' if value is None else value.isoformat() for value in values) + '}'
