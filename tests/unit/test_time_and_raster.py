from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libres.modules import dates, errors, events
from libres.modules.rasterizer import (
    VALID_RASTER,
    is_valid_raster,
    iterate_span,
    rasterize_end,
    rasterize_span,
    rasterize_start,
)
from libres.modules.utils import flatten, generate_uuids, is_valid_reservation_length, pairs

UTC = UTC
ZURICH = 'Europe/Zurich'


def dt(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond)


def test_iterate_span() -> None:
    slots = list(iterate_span(dt(2030, 1, 1, 10, 7), dt(2030, 1, 1, 10, 31), 15))
    assert [s[0].minute for s in slots] == [0, 15, 30]
    assert slots[0][1] == dt(2030, 1, 1, 10, 14, 59, 999999)


def test_rasterize_end_quirks() -> None:
    assert rasterize_end(dt(2030, 1, 1, 15, 0, 30), 15) == dt(2030, 1, 1, 15, 0, 29, 999999)
    assert rasterize_end(dt(2030, 1, 1, 10, 59, 59, 999999), 60) == dt(2030, 1, 1, 10, 59, 59, 999999)
    assert rasterize_end(dt(2030, 1, 1, 11), 60) == dt(2030, 1, 1, 10, 59, 59, 999999)
    assert rasterize_end(dt(2030, 1, 1, 11, 1), 60) == dt(2030, 1, 1, 11, 59, 59, 999999)
    assert rasterize_start(dt(2030, 1, 1, 11, 29, 59, 5), 15) == dt(2030, 1, 1, 11, 15)
    assert rasterize_span(dt(2030, 1, 1, 11, 5), dt(2030, 1, 1, 11, 20), 10) == (
        dt(2030, 1, 1, 11), dt(2030, 1, 1, 11, 19, 59, 999999))


@pytest.mark.parametrize('raster', [0, 7, 20, 45, 120, None])
def test_invalid_rasters(raster: int) -> None:
    assert not is_valid_raster(raster)
    with pytest.raises(AssertionError):
        rasterize_start(dt(2030, 1, 1), raster)


def test_valid_rasters() -> None:
    assert all(is_valid_raster(r) for r in VALID_RASTER)


def test_generate_uuids_vectors() -> None:
    resource = uuid.UUID('3b941dbc-f646-5f3f-8a55-ab94de05a49c')
    assert [str(u) for u in generate_uuids(resource, 4)] == [
        'd0ce2b48-8db9-5bcb-92a3-295936f5d03f',
        'f6bac660-be4d-5643-9dde-00318b14b497',
        'd5901b91-f121-5912-90c2-e5cd12c2026f',
    ]
    assert generate_uuids(resource, 1) == [] and generate_uuids(resource, 0) == []


def test_flatten_and_pairs() -> None:
    a, b, c, d = (dt(2030, 1, n) for n in range(1, 5))
    assert list(pairs(((a, b), (c, d)))) == [(a, b), (c, d)]
    assert list(pairs((a, b, c, d))) == [(a, b), (c, d)]
    assert list(pairs(x for x in [[a, [b]], (c, d)])) == [(a, b), (c, d)]
    assert list(flatten(['ab', ['cd']])) == ['ab', 'cd']


@pytest.mark.parametrize(('start', 'end', 'valid'), [
    (dt(2017, 1, 1), dt(2017, 1, 2) - timedelta(microseconds=1), True),
    (dt(2017, 1, 1), dt(2017, 1, 2), True),
    (dt(2017, 1, 1, 1), dt(2017, 1, 2, 1), False),
    (dt(2016, 10, 29), dt(2016, 10, 30), True),
    (dt(2016, 10, 29, 1), dt(2016, 10, 30, 1), False),
    (dt(2023, 3, 26), dt(2023, 3, 27), True),
    (dt(2023, 10, 29), dt(2023, 10, 30), True),
    (dt(2017, 1, 1, 10), dt(2017, 1, 2, 9, 59), True),
])
def test_reservation_length(start: datetime, end: datetime, valid: bool) -> None:
    assert is_valid_reservation_length(start, end, ZURICH) is valid


@pytest.mark.parametrize(('zone', 'naive', 'is_dst', 'expected_utc'), [
    # Spring gap and autumn overlap in Zurich.
    (ZURICH, dt(2023, 3, 26, 2, 30), False, dt(2023, 3, 26, 1, 30)),
    (ZURICH, dt(2023, 3, 26, 2, 30), True, dt(2023, 3, 26, 0, 30)),
    (ZURICH, dt(2023, 10, 29, 2, 30), False, dt(2023, 10, 29, 1, 30)),
    (ZURICH, dt(2023, 10, 29, 2, 30), True, dt(2023, 10, 29, 0, 30)),
    # Lord Howe Island shifts by 30 minutes: +10:30 standard, +11 summer.
    ('Australia/Lord_Howe', dt(2023, 10, 1, 2, 15), False, dt(2023, 9, 30, 15, 45)),
    ('Australia/Lord_Howe', dt(2023, 10, 1, 2, 15), True, dt(2023, 9, 30, 15, 15)),
    ('Australia/Lord_Howe', dt(2023, 4, 2, 1, 45), False, dt(2023, 4, 1, 15, 15)),
    ('Australia/Lord_Howe', dt(2023, 4, 2, 1, 45), True, dt(2023, 4, 1, 14, 45)),
    ('Asia/Kolkata', dt(2023, 3, 26, 2, 30), False, dt(2023, 3, 25, 21, 0)),
])
def test_localize_like_pytz(zone: str, naive: datetime, is_dst: bool, expected_utc: datetime) -> None:
    localized = dates.localize(naive, zone, is_dst=is_dst)
    assert localized.astimezone(UTC) == expected_utc.replace(tzinfo=UTC)


def test_localize_can_refuse_gaps_and_overlaps() -> None:
    with pytest.raises(dates.NonExistentTimeError):
        dates.localize(dt(2023, 3, 26, 2, 30), ZURICH, raise_non_existent=True)
    with pytest.raises(dates.AmbiguousTimeError):
        dates.localize(dt(2023, 10, 29, 2, 30), ZURICH, raise_ambiguous=True)
    assert dates.localize(dt(2023, 6, 1, 12), ZURICH, raise_ambiguous=True, raise_non_existent=True)


@pytest.mark.parametrize('zone', [ZURICH, 'Australia/Lord_Howe'])
def test_align_to_day_on_transition_days(zone: str) -> None:
    for day in (dt(2023, 3, 26, 12), dt(2023, 10, 29, 12), dt(2023, 4, 2, 12), dt(2023, 10, 1, 12)):
        start = dates.align_date_to_day(day, zone, 'down')
        end = dates.align_date_to_day(day, zone, 'up')
        local_start, local_end = dates.to_timezone(start, zone), dates.to_timezone(end, zone)
        assert (local_start.hour, local_start.minute) == (0, 0)
        assert (local_end.hour, local_end.minute, local_end.second) == (23, 59, 59)
        assert dates.is_whole_day(start, end + timedelta(microseconds=1), zone)


def test_is_whole_day() -> None:
    zone = ZoneInfo(ZURICH)
    start = datetime(2013, 1, 1, 23, tzinfo=UTC)
    assert dates.is_whole_day(start, datetime(2013, 1, 2, 23, tzinfo=UTC), zone)
    assert dates.is_whole_day(start, datetime(2013, 1, 2, 22, 59, 59, 999999, tzinfo=UTC), zone)
    assert dates.is_whole_day(start, datetime(2013, 1, 4, 23, tzinfo=UTC), zone)
    assert not dates.is_whole_day(start, datetime(2013, 1, 2, 12, tzinfo=UTC), zone)
    with pytest.raises(ValueError, match='equal or greater than the start'):
        dates.is_whole_day(start, datetime(2013, 1, 1, 12, tzinfo=UTC), zone)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=dt(1990, 1, 1), max_value=dt(2040, 1, 1)),
    st.sampled_from([ZURICH, 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'UTC']),
)
def test_localize_round_trips_for_real_times(naive: datetime, zone: str) -> None:
    localized = dates.standardize_date(naive, zone)
    back = dates.to_timezone(localized, zone).replace(tzinfo=None)
    first = naive.replace(tzinfo=ZoneInfo(zone) if zone != 'UTC' else UTC, fold=0)
    second = first.replace(fold=1)
    unambiguous = first.utcoffset() == second.utcoffset()
    if unambiguous:
        assert back == naive
    else:
        # In a gap the wall time moves by the shift; in an overlap it stays.
        assert abs(back - naive) <= timedelta(hours=1)


def test_events_call_in_order_and_can_be_emptied() -> None:
    calls: list[tuple[str, Any, Any]] = []
    event: events.Event[...] = events.Event()
    event.append(lambda *a, **k: calls.append(('first', a, k)))
    event.append(lambda *a, **k: calls.append(('second', a, k)))
    event(1, x=2)
    assert [c[0] for c in calls] == ['first', 'second']
    assert calls[0][1:] == ((1,), {'x': 2})
    del event[:]
    event()
    assert len(calls) == 2
    assert isinstance(events.Event(object), list)
    names = [n for n in dir(events) if n.startswith('on_')]
    assert len(names) == 7 and all(isinstance(getattr(events, n), events.Event) for n in names)


def test_error_hierarchy_and_arguments() -> None:
    assert issubclass(errors.AffectedPendingReservationError, errors.AffectedReservationError)
    assert issubclass(errors.NotTimezoneAware, errors.LibresError)
    error = errors.OverlappingAllocationError(dt(2030, 1, 1), dt(2030, 1, 2), 'existing')
    assert error.args == (dt(2030, 1, 1), dt(2030, 1, 2), 'existing')
    assert (error.start, error.end, error.existing) == (dt(2030, 1, 1), dt(2030, 1, 2), 'existing')
    assert errors.AffectedReservationError(None).existing is None
    assert errors.LibresError().reservation is None
    assert str(errors.AlreadyReservedError()) == 'No free spot is left for the requested time.'
