"""Model behaviour that needs no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from libres.db.models import Allocation, Reservation, ReservationBlocker, ReservedSlot
from libres.db.models.reservation import Timespan
from libres.db.models.types.uuid_type import SoftUUID

UTC = UTC
US = timedelta(microseconds=1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


def test_soft_uuid_equals_its_string_forms() -> None:
    plain = uuid.uuid4()
    soft = SoftUUID(str(plain))
    assert soft == plain and plain == soft
    assert soft == plain.hex
    assert soft == str(plain)
    assert soft == f'  {plain}  '
    assert soft != uuid.uuid4()
    assert soft != 42
    assert hash(soft) == hash(plain.int)
    assert {soft: 1}[soft] == 1


def test_start_and_end_are_rastered_by_the_raster() -> None:
    allocation = Allocation(raster=60, timezone='UTC')
    allocation.start = utc(2030, 1, 1, 12, 30)
    allocation.end = utc(2030, 1, 1, 14)
    assert allocation.start == utc(2030, 1, 1, 12)
    assert allocation.end == utc(2030, 1, 1, 13, 59, 59, 999999)


def test_raster_can_be_set_once_and_rerasters() -> None:
    allocation = Allocation(timezone='UTC', start=utc(2030, 1, 1, 12, 20), end=utc(2030, 1, 1, 13, 10))
    assert allocation.start == utc(2030, 1, 1, 12, 20)
    allocation.raster = 60
    assert allocation.start == utc(2030, 1, 1, 12)
    assert allocation.end == utc(2030, 1, 1, 13, 59, 59, 999999)
    with pytest.raises(AssertionError):
        allocation.raster = 15


def test_naive_start_needs_a_timezone_and_is_read_in_it() -> None:
    with pytest.raises(AssertionError):
        Allocation(start=datetime(2030, 1, 1, 12))
    allocation = Allocation(start=datetime(2030, 1, 1, 12), timezone='Europe/Zurich', raster=15)
    assert allocation.start == utc(2030, 1, 1, 11)


def test_constructor_refuses_unknown_keywords_and_accepts_mapped_ones() -> None:
    group = uuid.uuid4()
    allocation = Allocation(group=group, data={'a': 1}, quota=3)
    assert allocation.group == group and allocation.quota == 3 and allocation.data == {'a': 1}
    assert Allocation().quota == 1 and Allocation().quota_limit == 0
    with pytest.raises(TypeError, match='colour'):
        Allocation(colour='red')
    assert Reservation(email='a@example.org').email == 'a@example.org'
    assert ReservationBlocker(reason='closed').reason == 'closed'
    assert ReservedSlot(source_id=3).source_id == 3
    with pytest.raises(TypeError):
        ReservedSlot(colour='red')


def make(start: datetime, end: datetime, raster: int = 15, partly: bool = True,
         zone: str = 'UTC') -> Allocation:
    return Allocation(start=start, end=end, raster=raster, timezone=zone,
                      partly_available=partly, resource=uuid.uuid4())


def test_overlaps_and_contains() -> None:
    allocation = make(utc(2030, 1, 1, 12), utc(2030, 1, 1, 14), raster=60)
    assert allocation.overlaps(utc(2030, 1, 1, 11), utc(2030, 1, 1, 12, 5))
    assert not allocation.contains(utc(2030, 1, 1, 11), utc(2030, 1, 1, 12, 5))
    assert allocation.contains(utc(2030, 1, 1, 12), utc(2030, 1, 1, 13))
    adjacent = make(utc(2030, 1, 1, 15), utc(2030, 1, 1, 16))
    assert not adjacent.overlaps(utc(2030, 1, 1, 16), utc(2030, 1, 1, 17))


def test_slots_of_partly_and_whole_allocations() -> None:
    partly = make(utc(2030, 1, 1, 8), utc(2030, 1, 1, 9))
    assert len(list(partly.all_slots())) == 4
    assert partly.count_slots() == 4
    assert partly.count_slots(utc(2030, 1, 1, 8, 15), utc(2030, 1, 1, 8, 45)) == 2
    whole = make(utc(2030, 1, 1, 8), utc(2030, 1, 1, 9), partly=False)
    assert list(whole.all_slots(utc(2030, 1, 1, 8, 15), utc(2030, 1, 1, 8, 30))) == [
        (whole.start, whole.end)
    ]
    assert whole.count_slots() == 1


def book(allocation: Allocation, start: datetime, source: str = 'reservation') -> None:
    allocation.reserved_slots.append(ReservedSlot(
        start=start, end=start + timedelta(minutes=allocation.raster) - US,
        resource=allocation.resource, source_type=source,
        reservation_token=uuid.uuid4(), source_id=1,
    ))


def test_availability_in_quarters_and_blockers_leave_the_denominator() -> None:
    allocation = make(utc(2030, 1, 1, 8), utc(2030, 1, 1, 9))
    seen = []
    for quarter in range(4):
        book(allocation, utc(2030, 1, 1, 8, 15 * quarter))
        seen.append(allocation.availability)
    assert seen == [75.0, 50.0, 25.0, 0.0]
    long = make(utc(2030, 1, 1, 8), utc(2030, 1, 1, 12))
    for quarter in range(4):
        book(long, utc(2030, 1, 1, 8, 15 * quarter), source='blocker')
    assert long.availability == 100.0


def test_availability_partitions() -> None:
    allocation = make(utc(2030, 1, 1, 8), utc(2030, 1, 1, 10), raster=5)
    assert allocation.availability_partitions() == [(100.0, False)]
    for minute in range(30, 60, 5):
        book(allocation, utc(2030, 1, 1, 8, minute))
    assert allocation.availability_partitions() == [(25.0, False), (25.0, True), (50.0, False)]


def test_limit_timespan() -> None:
    partly = make(utc(2030, 1, 1, 8), utc(2030, 1, 1, 9))
    whole = make(utc(2030, 1, 1, 8), utc(2030, 1, 1, 9), partly=False)
    own = (utc(2030, 1, 1, 8), utc(2030, 1, 1, 9))
    assert whole.limit_timespan(time(8, 30), time(8, 40)) == own
    assert partly.limit_timespan(time(8), time(9)) == own
    assert partly.limit_timespan(time(7), time(10)) == own
    assert partly.limit_timespan(time(8, 30), time(10)) == (utc(2030, 1, 1, 8, 30), utc(2030, 1, 1, 9))
    assert partly.limit_timespan(time(8, 30), time(8, 40)) == (utc(2030, 1, 1, 8, 30), utc(2030, 1, 1, 8, 45))
    assert partly.limit_timespan(time(8, 30), time(0)) == (utc(2030, 1, 1, 8, 30), utc(2030, 1, 1, 9))
    day = make(utc(2014, 1, 1), utc(2014, 1, 2) - US)
    assert day.limit_timespan(time(0), time(23, 59)) == (utc(2014, 1, 1), utc(2014, 1, 2))
    assert day.limit_timespan(time(0), time(0)) == (utc(2014, 1, 1), utc(2014, 1, 1))
    assert day.limit_timespan(time(8, 30), time(0)) == (utc(2014, 1, 1, 8, 30), utc(2014, 1, 2))


def test_whole_day_property() -> None:
    zurich = 'Europe/Zurich'
    assert make(utc(2013, 1, 1, 23), utc(2013, 1, 2, 23), zone=zurich, partly=False).whole_day
    assert make(utc(2013, 1, 1, 23), utc(2013, 1, 2, 22, 59, 59, 999999), zone=zurich).whole_day
    assert not make(utc(2013, 1, 1, 8), utc(2013, 1, 1, 9), zone=zurich).whole_day


def test_display_in_the_allocation_zone() -> None:
    allocation = make(utc(2030, 1, 1, 8), utc(2030, 1, 1, 9), zone='Europe/Zurich')
    assert allocation.display_start() == datetime(2030, 1, 1, 9, tzinfo=ZoneInfo('Europe/Zurich'))
    assert allocation.display_end() == datetime(2030, 1, 1, 10, tzinfo=ZoneInfo('Europe/Zurich'))
    assert allocation.display_end('UTC') == utc(2030, 1, 1, 9)


def test_reservation_timespans_keep_the_quirk_of_groups() -> None:
    reservation = Reservation(target_type='allocation', start=utc(2030, 1, 1, 8),
                              end=utc(2030, 1, 1, 9) - US)
    assert reservation.timespans() == [Timespan(utc(2030, 1, 1, 8), utc(2030, 1, 1, 9))]
    odd = Reservation(target_type='something')
    with pytest.raises(NotImplementedError):
        odd.timespans()
    assert Reservation(email='a@example.org').title == 'a@example.org'


def test_equality_and_identity_hash() -> None:
    resource = uuid.uuid4()
    a = Allocation(resource=resource, start=utc(2030, 1, 1, 8), timezone='UTC')
    b = Allocation(resource=resource, start=utc(2030, 1, 1, 8), timezone='UTC')
    assert a == b and hash(a) != hash(b)
    assert len({a, b}) == 2


def test_transient_allocation_has_no_persistent_siblings() -> None:
    allocation = make(utc(2030, 1, 1, 8), utc(2030, 1, 1, 9))
    allocation.mirror_of = allocation.resource
    assert allocation.is_transient and allocation.is_master
    assert allocation.siblings() == [allocation]
    with pytest.raises(AssertionError):
        allocation.siblings(imaginary=False)
