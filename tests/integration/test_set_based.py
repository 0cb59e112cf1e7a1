"""The set-based fast paths give exactly what the object-by-object paths give."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from tests import helpers

from libres.context.core import Context
from libres.db.models import Allocation
from libres.db.queries import Queries
from libres.db.scheduler import Scheduler


def at(h: int, m: int = 0, day: int = 1) -> datetime:
    return helpers.at(h, m, day, month=3)


def _varied_calendar(context: Context) -> tuple[Scheduler, Scheduler]:
    """Partly available rows with some slots, quotas with written mirrors,
    blockers, whole-only rows, a group, two resources and a DST change."""
    room = Scheduler(context, 'room', 'Europe/Zurich')
    hall = Scheduler(context, 'hall', 'Europe/Zurich')
    for day in (1, 2, 30, 31):
        room.allocate((at(8, day=day), at(12, day=day)), partly_available=True, raster=15)
        room.allocate((at(13, day=day), at(14, day=day)), quota=3)
        hall.allocate((at(9, day=day), at(17, day=day)), partly_available=True, raster=30)
    room.allocate((at(0, day=29), at(0, day=30) - timedelta(microseconds=1)), partly_available=True, raster=60)
    room.allocate([(at(18, day=d), at(19, day=d)) for d in (1, 2)], grouped=True)
    for start, end in [(at(9), at(10)), (at(10, 30), at(11)), (at(13), at(14)), (at(13), at(14)),
                       (at(13, day=2), at(14, day=2))]:
        room.approve_reservations(room.reserve('a@example.org', (start, end)))
    room.add_blocker((at(8, day=2), at(9, day=2)))
    room.add_blocker((at(8, day=30), at(12, day=30)))
    hall.approve_reservations(hall.reserve('b@example.org', (at(9), at(17))))
    hall.reserve('pending@example.org', (at(9, day=2), at(10, day=2)))
    room.commit()
    return room, hall


def _objects(queries: Queries, start: datetime, end: datetime, resources: list[Any]) -> list[Allocation]:
    return [a for a in queries.all_allocations_in_range(start, end)
            .filter(Allocation.mirror_of.in_(resources)).order_by(Allocation._start, Allocation.id)]


def test_availability_by_range_equals_the_object_path(context: Context) -> None:
    room, hall = _varied_calendar(context)
    queries = room.queries
    for start, end, resources in [
        (at(0), at(0, day=31) + timedelta(days=2), [room.resource]),
        (at(0), at(0, day=31) + timedelta(days=2), [room.resource, hall.resource]),
        (at(9, 30), at(13, 30), [room.resource]),
        (at(0, day=3), at(0, day=4), [room.resource]),
    ]:
        start, end = room._prepare_date(start), room._prepare_date(end)
        expected = Queries.availability_by_allocations(_objects(queries, start, end, resources))
        assert queries.availability_by_range(start, end, resources) == expected


def test_availability_by_day_equals_the_object_path(context: Context) -> None:
    room, hall = _varied_calendar(context)
    queries = room.queries
    resources = [room.resource, hall.resource]
    start, end = room._prepare_date(at(0)), room._prepare_date(at(0, day=31) + timedelta(days=2))
    expected = {
        day: (Queries.availability_by_allocations(members), {a.mirror_of for a in members})
        for day, group in groupby(_objects(queries, start, end, resources), key=lambda a: a._start.date())
        for members in [list(group)]
    }
    result = queries.availability_by_day(start, end, resources)
    assert result == expected
    # 1, 2, 30, 31 and the 28th: local midnight of the 29th is 23:00 UTC before.
    assert len(result) == 5
    assert any(value < 100.0 for value, _ in result.values())


def test_a_custom_exposure_still_hides_allocations_from_availability(context: Context) -> None:
    room, _ = _varied_calendar(context)

    class HideMornings:
        @staticmethod
        def is_allocation_exposed(allocation: Allocation) -> bool:
            return allocation.display_start().hour != 8

    start, end = room._prepare_date(at(0)), room._prepare_date(at(23))
    before = room.queries.availability_by_range(start, end, [room.resource])
    context.set_service('exposure', lambda ctx: HideMornings(), cache=True)
    room.queries.clear_cache()
    after = room.queries.availability_by_range(start, end, [room.resource])
    assert before != after
    # Only the 13:00 quota row (two of three spots taken) and the group are left.
    expected = Queries.availability_by_allocations(
        [a for a in _objects(room.queries, start, end, [room.resource]) if HideMornings.is_allocation_exposed(a)]
    )
    assert after == expected


def test_search_marks_groups_as_the_object_path_does(scheduler: Scheduler) -> None:
    members = scheduler.allocate([(at(18, day=d), at(19, day=d)) for d in (1, 2)], grouped=True)
    single = scheduler.allocate((at(10), at(11)))[0]
    scheduler.commit()
    found = scheduler.search_allocations(at(0), at(23, day=2), groups='yes')
    assert [a.id for a in found] == [m.id for m in members]
    alone = scheduler.search_allocations(at(0), at(23, day=2), groups='no')
    assert [a.id for a in alone] == [single.id]
    assert all(a.in_group for a in found) and not single.in_group


def test_batch_allocate_matches_the_object_path(scheduler: Scheduler) -> None:
    """Without data the batch goes in as arrays; with data through the ORM:
    the rows, the order returned and the objects must be the same."""
    days = [5, 3, 9, 1]  # not sorted: the result keeps the given order
    plain = scheduler.allocate([(at(8, day=d), at(9, day=d)) for d in days], quota=2, raster=15)
    with_data = scheduler.allocate([(at(10, day=d), at(11, day=d)) for d in days], quota=2, raster=15,
                                   data={'kind': 'lesson'})
    scheduler.commit()
    assert [a.display_start().day for a in plain] == days
    assert [a.display_start().day for a in with_data] == days
    columns = ['resource', 'mirror_of', 'type', 'quota', 'quota_limit', 'partly_available',
               'approve_manually', 'timezone', '_raster']
    for a, b in zip(plain, with_data, strict=True):
        assert [getattr(a, c) for c in columns] == [getattr(b, c) for c in columns]
        assert a._end - a._start == b._end - b._start == timedelta(hours=1) - timedelta(microseconds=1)
        assert a.id is not None and a.is_master and a.data == {} and b.data == {'kind': 'lesson'}
        assert a.created is not None
    assert len({a.group for a in plain}) == 4
    grouped = scheduler.allocate([(at(12, day=d), at(13, day=d)) for d in days], grouped=True)
    assert len({a.group for a in grouped}) == 1 and grouped[0].in_group


def test_batch_allocated_rows_load_their_slots_after_a_commit(scheduler: Scheduler) -> None:
    [master] = scheduler.allocate((at(8), at(9)), quota=2)
    assert master.reserved_slots == []
    scheduler.commit()
    for _ in range(2):
        scheduler.approve_reservations(scheduler.reserve('a@example.org', (at(8), at(9))))
        scheduler.commit()
    assert len(master.reserved_slots) == 1
    assert master.quota_left == 0
    assert scheduler.allocation_by_id(master.id).quota_left == 0
