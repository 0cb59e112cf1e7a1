from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import NoResultFound, StatementError
from tests.helpers import at

from libres.context.core import Context
from libres.context.exposure import Exposure
from libres.db.queries import Queries
from libres.db.scheduler import Scheduler
from libres.modules import errors, events

UTC = UTC
US = timedelta(microseconds=1)




def test_empty_scheduler_availability_is_falsy(scheduler: Scheduler) -> None:
    assert not scheduler.availability()


def test_availability_fills_by_quarters(scheduler: Scheduler) -> None:
    scheduler.allocate((at(15), at(16)), partly_available=True, raster=15)
    seen = []
    for quarter in range(4):
        start = at(15) + timedelta(minutes=15 * quarter)
        token = scheduler.reserve('a@example.org', (start, start + timedelta(minutes=15)))
        scheduler.approve_reservations(token)
        seen.append(scheduler.availability())
    assert seen == [75.0, 50.0, 25.0, 0.0]


def test_availability_of_a_quota_counts_missing_mirrors_as_free(scheduler: Scheduler) -> None:
    scheduler.allocate((at(15), at(16)), quota=4)
    seen = []
    for _ in range(4):
        scheduler.approve_reservations(scheduler.reserve('a@example.org', (at(15), at(16))))
        seen.append(scheduler.availability())
    assert seen == [75.0, 50.0, 25.0, 0.0]


def test_availability_by_allocations_with_groups(scheduler: Scheduler) -> None:
    members = scheduler.allocate([(at(10, day=d), at(11, day=d)) for d in (1, 2)], grouped=True, quota=2)
    token = scheduler.reserve('a@example.org', group=members[0].group)
    scheduler.approve_reservations(token)
    scheduler.commit()
    siblings = [s for m in scheduler.allocations_by_group(members[0].group) for s in m.siblings()]
    assert Queries.availability_by_allocations(siblings) == 50.0
    assert Queries.availability_by_allocations([]) == 0


def test_availability_by_day_uses_the_utc_date(context: Context) -> None:
    first = Scheduler(context, 'a', 'Europe/Zurich')
    second = Scheduler(context, 'b', 'Europe/Zurich')
    [allocation] = first.allocate((at(0, 30), at(1, 30)))
    second.allocate((at(0, 30), at(1, 30)))
    first.approve_reservations(first.reserve('a@example.org', (at(0, 30), at(1, 30))))
    first.commit()
    queries = first.queries
    start, end = datetime(2030, 4, 30, tzinfo=UTC), datetime(2030, 5, 2, tzinfo=UTC)
    day = allocation.start.date()
    assert day.day == 30  # 00:30 in Zurich is the previous day in UTC
    assert queries.availability_by_day(start, end, [second.resource])[day][0] == 100.0
    assert queries.availability_by_day(start, end, [first.resource, second.resource])[day] == (
        50.0, {first.resource, second.resource}
    )
    assert queries.availability_by_day(start, end, [first.resource])[day][0] == 0.0


def test_queries_need_aware_datetimes(scheduler: Scheduler) -> None:
    scheduler.allocate((at(10), at(11)))
    with pytest.raises(StatementError, match='has no time zone'):
        scheduler.queries.availability_by_range(at(9), at(12), [scheduler.resource])


def test_search_by_time_window(scheduler: Scheduler) -> None:
    assert scheduler.search_allocations(at(0), at(23)) == []
    [allocation] = scheduler.allocate((at(13), at(15)))
    assert scheduler.search_allocations(at(13), at(15)) == [allocation]
    assert scheduler.search_allocations(at(12), at(14)) == [allocation]
    assert scheduler.search_allocations(at(11), at(14, 1)) == [allocation]
    assert scheduler.search_allocations(at(11), at(13)) == []
    # The time window applies on every day of the range.
    assert scheduler.search_allocations(datetime(2030, 4, 1, 13), datetime(2030, 6, 1, 14)) == [allocation]
    assert scheduler.search_allocations(datetime(2030, 4, 1, 8), datetime(2030, 6, 1, 9)) == []


def test_search_filters_wide_and_narrow_windows_alike(scheduler: Scheduler) -> None:
    # Narrow windows are filtered on plain columns before objects are built,
    # wide ones after: both must keep exactly the allocations in the window.
    hours = (2, 9, 13, 22)
    allocated = {
        (day, hour): allocation
        for day in (1, 2, 3)
        for hour in hours
        for allocation in scheduler.allocate((at(hour, day=day), at(hour + 1, day=day)))
    }
    for first, last in ((12, 14), (8, 10), (1, 23), (6, 20), (0, 12), (10, 23)):
        expected = [
            allocated[day, hour] for day in (1, 2, 3) for hour in hours
            if first <= hour < last  # the window ends 1 µs before its last hour
        ]
        found = scheduler.search_allocations(at(first, day=1), at(last, day=3))
        assert found == expected, (first, last)


def test_search_weekdays_exposure_and_availability(scheduler: Scheduler) -> None:
    sunday = datetime(2030, 5, 5)
    [allocation] = scheduler.allocate((sunday.replace(hour=13), sunday.replace(hour=15)), quota=4)
    window = (sunday.replace(hour=13), sunday.replace(hour=15))
    assert scheduler.search_allocations(*window, days=['su']) == [allocation]
    assert scheduler.search_allocations(*window, days=['mo']) == []
    for _ in range(4):
        scheduler.approve_reservations(scheduler.reserve('a@example.org', window))
    assert scheduler.search_allocations(*window) == [allocation]
    assert scheduler.search_allocations(*window, available_only=True) == []

    class Hidden(Exposure):
        @staticmethod
        def is_allocation_exposed(allocation: object) -> bool:
            return False

    scheduler.context.set_service('exposure', lambda ctx: Hidden())
    assert scheduler.search_allocations(*window) == [allocation]  # still cached
    scheduler.clear_cache()
    assert scheduler.search_allocations(*window) == []


def test_search_minspots_uses_the_instance_availability(scheduler: Scheduler) -> None:
    scheduler.allocate((at(13), at(15)), quota=4, quota_limit=2)
    window = (at(13), at(15))
    found = {}
    for availability in (100.0, 50.0, 25.0, 0.0):
        def fixed(start: Any = None, end: Any = None, a: float = availability) -> float:
            return a

        scheduler.availability = fixed  # type: ignore[method-assign]
        found[availability] = [
            spots for spots in (1, 2, 3) if scheduler.search_allocations(*window, minspots=spots)
        ]
    assert found == {100.0: [1, 2], 50.0: [1, 2], 25.0: [1], 0.0: []}


def test_search_groups(scheduler: Scheduler) -> None:
    members = scheduler.allocate([(at(13, day=1), at(15, day=1)), (at(13, day=2), at(15, day=2))],
                                 grouped=True, quota=2)
    scheduler.approve_reservations(scheduler.reserve('a@example.org', group=members[0].group))
    first_day = (at(13, day=1), at(15, day=1))
    assert len(scheduler.search_allocations(*first_day, strict=True)) == 1
    found = scheduler.search_allocations(*first_day)
    assert found == members
    assert getattr(found[1], 'is_extra_result', False)
    assert all(a.is_master for a in found)
    assert len(scheduler.search_allocations(at(13, day=1), at(15, day=2))) == 2
    assert len(scheduler.search_allocations(*first_day, groups='yes')) == 2
    assert scheduler.search_allocations(*first_day, groups='no') == []
    with pytest.raises(AssertionError):
        scheduler.search_allocations(*first_day, groups='maybe')


def test_search_finds_a_whole_day_partly_available_allocation(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate((at(0), at(0)), whole_day=True, partly_available=True, raster=60)
    scheduler.approve_reservations(scheduler.reserve('a@example.org', (at(10), at(11))))
    assert scheduler.search_allocations(at(8), at(9), available_only=True) == [allocation]
    assert scheduler.search_allocations(at(0), at(23), whole_day='yes') == [allocation]
    assert scheduler.search_allocations(at(0), at(23), whole_day='no') == []


def test_search_weekday_on_a_dst_day(context: Context) -> None:
    scheduler = Scheduler(context, 'dst', 'Europe/Zurich')
    scheduler.allocate((datetime(2023, 3, 26, 0), datetime(2023, 3, 26, 1)))
    window = (datetime(2023, 3, 26, 0), datetime(2023, 3, 26, 1))
    assert len(scheduler.search_allocations(*window, days=['su'])) == 1
    assert scheduler.search_allocations(*window, days=['mo']) == []


@pytest.fixture
def pitch(context: Context) -> tuple[Scheduler, Scheduler]:
    whole = Scheduler(context, 'pitch', 'UTC', blocking_names=('half',))
    half = Scheduler(context, 'half', 'UTC', blocking_names=('pitch',))
    return whole, half


def test_blocking_resources(pitch: tuple[Scheduler, Scheduler]) -> None:
    a, b = pitch
    assert b.availability() == 0.0
    a.allocate((at(15), at(16)), partly_available=True, raster=15)
    a.approve_reservations(a.reserve('a@example.org', (at(15), at(15, 30))))
    [allocation] = b.allocate((at(14, 30), at(16, 30)), partly_available=True, raster=15)
    [(_, availability, partitions)] = list(b.allocations_with_availability_by_range(at(14), at(17)))
    assert partitions == [(25.0, False), (25.0, True), (50.0, False)]
    assert availability == 75.0
    assert b.availability() == 75.0
    with pytest.raises(errors.AlreadyReservedError):
        b.reserve('b@example.org', (at(14, 30), at(15, 15)))
    token = b.reserve('b@example.org', (at(15, 30), at(16, 30)))
    assert len(b.approve_reservations(token)) == 4
    b.commit()
    assert [s[0] for s in b.allocation_by_id(allocation.id).free_slots()] == [
        datetime(2030, 5, 1, 14, 30, tzinfo=UTC) + timedelta(minutes=15 * i) for i in range(4)
    ]
    [(_, availability, partitions)] = list(b.allocations_with_availability_by_range(at(14), at(17)))
    assert partitions == [(25.0, False), (75.0, True)]
    assert availability == 25.0
    assert b.availability() == 25.0
    with pytest.raises(NotImplementedError):
        b.search_allocations(at(14), at(17), available_only=True)


def test_blocking_resources_with_a_blocker(pitch: tuple[Scheduler, Scheduler]) -> None:
    a, b = pitch
    a.allocate((at(15), at(16)), partly_available=True, raster=15)
    a.add_blocker((at(15), at(15, 15)))
    a.approve_reservations(a.reserve('a@example.org', (at(15, 15), at(15, 30))))
    b.allocate((at(14, 30), at(16, 30)), partly_available=True, raster=15)
    [(_, availability, partitions)] = list(b.allocations_with_availability_by_range(at(14), at(17)))
    assert partitions == [(25.0, False), (25.0, True), (50.0, False)]
    assert availability == pytest.approx(100 - 100 / 7)
    b.add_blocker((at(15, 30), at(16, 30)))
    [(_, availability, partitions)] = list(b.allocations_with_availability_by_range(at(14), at(17)))
    assert partitions == [(25.0, False), (75.0, True)]
    assert availability == pytest.approx(100 - 100 / 3)
    reserved, blocked = b.reserved_slots_by_range(at(14), at(17))
    assert len(blocked) == 15 and sum(reserved.values()) == 3


def test_blocking_availability_weights_by_quota(pitch: tuple[Scheduler, Scheduler]) -> None:
    _, b = pitch
    b.allocate((at(10), at(11)), quota=4)
    assert b.availability() == 100.0
    b.approve_reservations(b.reserve('b@example.org', (at(10), at(11))))
    b.approve_reservations(b.reserve('c@example.org', (at(10), at(11))))
    assert b.availability() == 50.0  # bookings on mirrors count too


def test_dst_partitions(context: Context) -> None:
    scheduler = Scheduler(context, 'dst', 'Europe/Zurich')
    [spring] = scheduler.allocate((datetime(2023, 3, 26, 0), datetime(2023, 3, 26, 5)),
                                  partly_available=True, raster=15)
    assert spring.count_slots() == 16
    assert spring.availability_partitions() == [(40.0, False), (20.0, True), (40.0, False)]
    assert spring.normalized_availability == 80.0
    assert spring.availability_partitions(normalize_dst=False) == [(100.0, False)]

    [autumn] = scheduler.allocate((datetime(2023, 10, 29, 0), datetime(2023, 10, 29, 4)),
                                  partly_available=True, raster=15)
    # 01:00-02:00 CEST; a naive 02:00 would be the second (CET) occurrence.
    scheduler.approve_reservations(scheduler.reserve(
        'a@example.org', (datetime(2023, 10, 28, 23, tzinfo=UTC), datetime(2023, 10, 29, 0, tzinfo=UTC))
    ))
    scheduler.commit()
    autumn = scheduler.allocation_by_id(autumn.id)
    assert autumn.availability_partitions() == [(25.0, False), (25.0, True), (50.0, False)]
    assert autumn.normalized_availability == 75.0
    assert autumn.availability_partitions(normalize_dst=False) == [(20.0, False), (20.0, True), (60.0, False)]
    assert autumn.availability == 80.0
    # The first 02:00-03:00 (CEST, 00:00-01:00 UTC) hour as well.
    scheduler.approve_reservations(scheduler.reserve(
        'b@example.org', (datetime(2023, 10, 29, 0, tzinfo=UTC), datetime(2023, 10, 29, 1, tzinfo=UTC))
    ))
    scheduler.commit()
    autumn = scheduler.allocation_by_id(autumn.id)
    assert autumn.availability_partitions() == [(25.0, False), (25.0, True), (50.0, False)]
    assert autumn.normalized_availability == 75.0
    assert autumn.availability_partitions(normalize_dst=False) == [(20.0, False), (40.0, True), (40.0, False)]
    assert autumn.availability == 60.0


def test_dst_partitions_starting_inside_the_repeated_hour(context: Context) -> None:
    scheduler = Scheduler(context, 'dst', 'Europe/Zurich')
    [allocation] = scheduler.allocate(
        (datetime(2022, 10, 30, 0, 40, tzinfo=UTC), datetime(2022, 10, 30, 23, tzinfo=UTC)),
        partly_available=True, raster=5,
    )
    scheduler.approve_reservations(scheduler.reserve(
        'a@example.org', (datetime(2022, 10, 30, 7, tzinfo=UTC), datetime(2022, 10, 30, 12, 20, tzinfo=UTC))
    ))
    scheduler.commit()
    allocation = scheduler.allocation_by_id(allocation.id)
    assert allocation.availability_partitions() == [(25.0, False), (25.0, True), (50.0, False)]
    assert allocation.normalized_availability == 75.0


def test_cart_sessions(scheduler: Scheduler) -> None:
    confirmed = []
    events.on_reservations_confirmed.append(lambda ctx, rows, session_id: confirmed.append(session_id))
    scheduler.allocate((at(10), at(12)), partly_available=True, raster=15)
    cart, other = uuid.uuid4(), uuid.uuid4()
    token = scheduler.reserve('a@example.org', (at(10), at(10, 30)), session_id=cart,
                              single_token_per_session=True)
    scheduler.reserve('a@example.org', (at(11), at(11, 30)), session_id=cart,
                      single_token_per_session=True)
    scheduler.reserve('b@example.org', (at(10), at(10, 30)), session_id=other)
    scheduler.commit()
    queries = scheduler.queries
    assert queries.reservations_by_session(cart).count() == 2
    assert queries.reservations_by_session(None).count() == 0
    # Both rows share the token: the fixed removal takes them all.
    queries.remove_reservation_from_session(cart, token)
    scheduler.commit()
    assert queries.reservations_by_session(cart).count() == 0
    assert queries.reservations_by_session(other).count() == 1
    with pytest.raises(NoResultFound):
        queries.remove_reservation_from_session(cart, token)
    with pytest.raises(errors.NoReservationsToConfirm):
        queries.confirm_reservations_for_session(cart)
    queries.confirm_reservations_for_session(other)
    assert confirmed == [other]
    assert queries.reservations_by_session(other).count() == 0


def test_expired_sessions(scheduler: Scheduler) -> None:
    scheduler.allocate((at(10), at(12)), partly_available=True, raster=15)
    cart = uuid.uuid4()
    scheduler.reserve('a@example.org', (at(10), at(10, 30)), session_id=cart)
    scheduler.commit()
    [row] = scheduler.queries.reservations_by_session(cart)
    created = row.created
    queries = scheduler.queries
    assert queries.find_expired_reservation_sessions(created) == []
    assert queries.find_expired_reservation_sessions(created + US) == [cart]
    row.modified = created + US
    scheduler.commit()
    assert queries.find_expired_reservation_sessions(created + US) == []
    assert queries.find_expired_reservation_sessions(created + 2 * US) == [cart]
    assert queries.find_expired_reservation_sessions(None) == []
    assert queries.remove_expired_reservation_sessions(created + timedelta(hours=1)) == [cart]
    scheduler.commit()
    assert scheduler.managed_reservations().count() == 0
    assert scheduler.managed_allocations().count() == 1
