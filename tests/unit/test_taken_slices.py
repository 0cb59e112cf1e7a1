"""``TakenSlices.most_used`` looks at the taken slices inside a span only;
it must give what walking every slice of the span gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from libres.db.queries import TakenSlices
from libres.modules.rasterizer import MIN_RASTER, iterate_span

ORIGIN = datetime(2031, 3, 30, 0, 0, tzinfo=UTC)
SLICE = timedelta(minutes=MIN_RASTER)

slices = st.integers(min_value=0, max_value=60).map(lambda n: ORIGIN + n * SLICE)


def walked(reserved: dict[datetime, int], blocked: set[datetime], start: datetime, end: datetime,
           quota: int) -> int:
    """The plain way: every slice of the span, one after the other."""
    used = 0
    for slice_start, _ in iterate_span(start, end, MIN_RASTER):
        used = max(used, quota if slice_start in blocked else reserved.get(slice_start, 0))
    return used


@given(
    reserved=st.dictionaries(slices, st.integers(min_value=1, max_value=5), max_size=30),
    blocked=st.sets(slices, max_size=10),
    start_minutes=st.integers(min_value=-30, max_value=330),
    length_minutes=st.integers(min_value=0, max_value=200),
    quota=st.integers(min_value=1, max_value=5),
    end_microseconds=st.sampled_from([-1, 0, 1]),
)
def test_the_most_used_slice_is_the_one_walking_every_slice_finds(
    reserved: dict[datetime, int], blocked: set[datetime], start_minutes: int,
    length_minutes: int, quota: int, end_microseconds: int,
) -> None:
    # Spans on and off the grid; ends a microsecond before a boundary (as
    # allocations store them), on it and just after it; slices before,
    # inside and after them.
    start = ORIGIN + timedelta(minutes=start_minutes, seconds=start_minutes % 7 * (start_minutes % 2))
    end = (ORIGIN + timedelta(minutes=start_minutes + length_minutes)
           + timedelta(microseconds=end_microseconds))
    taken = TakenSlices(reserved, blocked)
    assert taken.most_used(start, end, quota) == walked(reserved, blocked, start, end, quota)


def test_a_blocked_slice_takes_the_whole_quota_and_outside_slices_count_nothing() -> None:
    hour = ORIGIN + timedelta(hours=1)
    taken = TakenSlices({hour: 1, hour + 12 * SLICE: 3}, {hour + 2 * SLICE})
    end = hour + timedelta(hours=1) - timedelta(microseconds=1)
    assert taken.most_used(hour, end, 4) == 4
    assert TakenSlices({hour: 1, hour + 12 * SLICE: 3}, set()).most_used(hour, end, 4) == 1
    assert taken.most_used(ORIGIN, hour - timedelta(microseconds=1), 4) == 0


def test_an_end_a_microsecond_past_a_boundary_reaches_the_slice_there() -> None:
    # rasterize_end keeps such an end on the boundary; the walk includes it.
    boundary = ORIGIN + timedelta(hours=1)
    end = boundary + timedelta(microseconds=1)
    taken = TakenSlices({boundary: 2}, set())
    assert taken.most_used(ORIGIN, end, 3) == walked({boundary: 2}, set(), ORIGIN, end, 3) == 2
