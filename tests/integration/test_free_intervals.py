"""``Scheduler.free_intervals`` against a brute-force model, and its contract.

The model asks every allocation object, slot by slot, which spots are free
(``Allocation.is_available`` on the master and its mirrors, and on each
overlapping allocation of a blocking resource), then merges adjacent slots
by the documented rule. Random calendars span the DST changes of
Europe/Zurich.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tests.helpers import captured_statements

from libres.context.core import Context
from libres.db.models import Allocation
from libres.db.scheduler import Scheduler
from libres.modules.errors import LibresError, ReservationParametersInvalid
from libres.modules.rasterizer import iterate_span

ZURICH = ZoneInfo('Europe/Zurich')
# The spring change, a plain day, the autumn change (2030).
DAYS = [datetime(2030, 3, 31), datetime(2030, 6, 12), datetime(2030, 10, 27)]
US = timedelta(microseconds=1)


def _schedulers(context: Context) -> tuple[Scheduler, Scheduler]:
    room = Scheduler(context, 'room', 'Europe/Zurich', blocking_names=('hall',))
    hall = Scheduler(context, 'hall', 'Europe/Zurich')
    return room, hall


# --- the model ----------------------------------------------------------------


def _free_spots(master: Allocation, start: datetime, end: datetime) -> frozenset[Any]:
    return frozenset(s.resource for s in master.siblings() if s.is_available(start, end))


def model_slots(room: Scheduler, hall: Scheduler, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Every raster slot of the room overlapping [start, end) with a free spot,
    from the allocation objects alone."""
    blocking = hall.managed_allocations().filter(Allocation.resource == Allocation.mirror_of).all()
    slots = []
    masters = room.managed_allocations().filter(Allocation.resource == Allocation.mirror_of)
    for master in masters.order_by(Allocation.id):
        pairs = (
            iterate_span(master.start, master.end, master.raster)
            if master.partly_available else [(master.start, master.end)]
        )
        for slot_start, slot_end in pairs:
            if not (slot_start < end and slot_end + US > start):
                continue
            own_free = _free_spots(master, slot_start, slot_end)
            spots = len(own_free)
            taken_by = {}
            for other in blocking:
                if other.overlaps(slot_start, slot_end):
                    other_free = _free_spots(other, slot_start, slot_end)
                    taken_by[other.id] = (other.quota, frozenset(
                        s.resource for s in other.siblings()) - other_free)
                    spots = min(spots, len(other_free))
            if spots > 0:
                slots.append({
                    'id': master.id, 'start': slot_start, 'end': slot_end + US, 'quota': master.quota,
                    'taken': frozenset(s.resource for s in master.siblings()) - own_free,
                    'blocking': taken_by, 'spots': spots,
                })
    return slots


def _left(quota: int, taken: frozenset[Any], blocking: dict[int, tuple[int, frozenset[Any]]]) -> int:
    return min([quota - len(taken), *(q - len(t) for q, t in blocking.values())])


def model_intervals(slots: list[dict[str, Any]]) -> list[tuple[datetime, datetime, int, int]]:
    """Merge adjacent slots of one allocation while the spots free throughout
    stay those of each slot."""
    runs: list[dict[str, Any]] = []
    for slot in slots:
        run = runs[-1] if runs else None
        if run and run['id'] == slot['id'] and run['end'] == slot['start'] and slot['spots'] == run['spots']:
            taken = run['taken'] | slot['taken']
            blocking = dict(run['blocking'])
            for key, (quota, t) in slot['blocking'].items():
                blocking[key] = (quota, blocking.get(key, (quota, frozenset()))[1] | t)
            if _left(slot['quota'], taken, blocking) == run['spots']:
                run.update(end=slot['end'], taken=taken, blocking=blocking)
                continue
        runs.append(dict(slot))
    found = [(r['start'], r['end'], r['id'], r['spots']) for r in runs]
    return sorted(found, key=lambda r: (r[0], r[2]))


# --- random calendars ----------------------------------------------------------

allocation_specs = st.tuples(
    st.sampled_from([-1, 0, 0, 1]),     # days after the example's day (-1: the one before)
    st.integers(0, 20),                 # start hour
    st.integers(1, 5),                  # hours
    st.sampled_from([15, 30, 60]),      # raster
    st.integers(1, 3),                  # quota
    st.booleans(),                      # partly available
)
# The blocking hall: long allocations in the middle of the example's day.
hall_allocation_specs = st.tuples(
    st.just(0), st.integers(6, 14), st.integers(2, 6), st.sampled_from([15, 30, 60]), st.integers(1, 2),
    st.booleans(),
)
booking_specs = st.tuples(
    st.sampled_from(['room', 'room', 'hall', 'hall', 'blocker']),
    st.integers(0, 30),   # which allocation (modulo)
    st.integers(0, 12),   # offset in raster slots
    st.integers(1, 4),    # length in raster slots
    st.sampled_from([1, 1, 2]),  # quota
)


def _book(target: Scheduler, allocation: Allocation, spec: tuple[Any, ...], blocker: bool) -> None:
    _, _, offset, length, quota = spec
    step = timedelta(minutes=allocation.raster)
    count = allocation.count_slots() if allocation.partly_available else 1
    # Mostly inside the allocation; now and then past its end (refused).
    start = allocation.start + (offset % count) * step
    end = start + length * step if allocation.partly_available else allocation.end + US
    savepoint = target.session.begin_nested()
    try:
        if blocker:
            target.add_blocker((start, end))
        else:
            token = target.reserve('someone@example.org', (start, end), quota=quota)
            target.approve_reservations(token)
        savepoint.commit()
    except LibresError:
        savepoint.rollback()


def _build(room: Scheduler, hall: Scheduler, day: datetime, specs: list[Any], hall_specs: list[Any],
           bookings: list[Any]) -> None:
    for scheduler in (room, hall):
        scheduler.extinguish_managed_records()
    for target, chosen in ((room, specs), (hall, hall_specs)):
        for shift, hour, hours, raster, quota, partly in chosen:
            start = day + timedelta(days=shift, hours=hour)
            savepoint = target.session.begin_nested()
            try:
                target.allocate((start, start + timedelta(hours=hours)), partly_available=partly,
                                raster=raster, quota=quota)
                savepoint.commit()
            except LibresError:
                savepoint.rollback()
    room_masters = room.managed_allocations().filter(Allocation.resource == Allocation.mirror_of).all()
    hall_masters = hall.managed_allocations().filter(Allocation.resource == Allocation.mirror_of).all()
    for spec in bookings:
        kind, which = spec[0], spec[1]
        masters = hall_masters if kind == 'hall' else room_masters
        if masters:
            scheduler = hall if kind == 'hall' else room
            _book(scheduler, masters[which % len(masters)], spec, blocker=kind == 'blocker')
    room.session.flush()
    room.session.expire_all()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    specs=st.lists(allocation_specs, min_size=1, max_size=5),
    hall_specs=st.lists(hall_allocation_specs, max_size=3),
    bookings=st.lists(booking_specs, max_size=10),
    day=st.sampled_from(DAYS),
    window=st.one_of(st.just((-24, 72)), st.just((0, 24)), st.tuples(st.integers(-30, 40), st.integers(1, 30))),
)
def test_free_intervals_equal_the_merged_free_slots_of_the_model(
    context: Context, specs: list[Any], hall_specs: list[Any], bookings: list[Any], day: datetime,
    window: tuple[int, int],
) -> None:
    room, hall = _schedulers(context)
    try:
        _build(room, hall, day, specs, hall_specs, bookings)
        hour, hours = window
        start = (day + timedelta(hours=hour)).replace(tzinfo=ZURICH).astimezone(UTC)
        end = start + timedelta(hours=hours)
        found = room.free_intervals(start, end)
        slots = model_slots(room, hall, start, end)
        expected = model_intervals(slots)
        event(f'a blocking allocation takes spots: {any(taken for s in slots for _, taken in s["blocking"].values())}')
        # Compared in UTC: Python never finds an aware time in the autumn fold
        # equal to one of another zone (PEP 495), even at the same instant.
        assert [(i.start.astimezone(UTC), i.end.astimezone(UTC), i.allocation_id, i.spots)
                for i in found] == expected
        event(f'intervals: {min(len(found), 3)}')
        event(f'some spots taken: {any(i.spots < room.allocation_by_id(i.allocation_id).quota for i in found)}')
        for interval in found:
            assert interval.start.tzinfo == ZURICH and interval.end.tzinfo == ZURICH
            assert interval.start < interval.end and interval.spots >= 1
    finally:
        room.rollback()


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    specs=st.lists(allocation_specs, min_size=1, max_size=4),
    hall_specs=st.lists(hall_allocation_specs, max_size=2),
    bookings=st.lists(booking_specs, max_size=6),
    day=st.sampled_from(DAYS),
)
def test_every_interval_takes_a_reservation_of_its_spots_and_no_more(
    context: Context, specs: list[Any], hall_specs: list[Any], bookings: list[Any], day: datetime,
) -> None:
    room, hall = _schedulers(context)
    try:
        _build(room, hall, day, specs, hall_specs, bookings)
        start = (day - timedelta(days=1)).replace(tzinfo=ZURICH)
        for interval in room.free_intervals(start, day + timedelta(days=2)):
            allocation = room.allocation_by_id(interval.allocation_id)
            savepoint = room.session.begin_nested()
            token = room.reserve('fits@example.org', (interval.start, interval.end), quota=interval.spots)
            assert room.approve_reservations(token)
            savepoint.rollback()
            if interval.spots < allocation.quota:
                savepoint = room.session.begin_nested()
                with pytest.raises(LibresError):
                    token = room.reserve('too-many@example.org', (interval.start, interval.end),
                                         quota=interval.spots + 1)
                    room.approve_reservations(token)
                savepoint.rollback()
    finally:
        room.rollback()


def test_intervals_are_local_merged_and_filtered_by_duration(scheduler: Scheduler) -> None:
    # The spring change: 02:00 to 03:00 does not exist, the day has 23 hours.
    scheduler.allocate((datetime(2030, 3, 31, 0), datetime(2030, 3, 31, 6)),
                       partly_available=True, raster=30)
    token = scheduler.reserve('a@example.org', (datetime(2030, 3, 31, 4), datetime(2030, 3, 31, 5)))
    scheduler.approve_reservations(token)
    found = scheduler.free_intervals(datetime(2030, 3, 31), datetime(2030, 4, 1))
    assert [(i.start.isoformat(), i.end.isoformat()) for i in found] == [
        ('2030-03-31T00:00:00+01:00', '2030-03-31T04:00:00+02:00'),
        ('2030-03-31T05:00:00+02:00', '2030-03-31T06:00:00+02:00'),
    ]
    assert found[0].duration == timedelta(hours=3)  # four hours on the wall clock
    long_ones = scheduler.free_intervals(datetime(2030, 3, 31), datetime(2030, 4, 1),
                                         duration=timedelta(hours=2))
    assert long_ones == found[:1]
    assert json.loads(json.dumps(found[1].as_dict())) == {
        'start': '2030-03-31T05:00:00+02:00', 'end': '2030-03-31T06:00:00+02:00',
        'allocation_id': found[1].allocation_id, 'spots': 1,
    }


def test_quota_blockers_and_blocking_resources_take_spots(context: Context) -> None:
    room, hall = _schedulers(context)
    day = datetime(2030, 6, 12)
    room.allocate((day.replace(hour=8), day.replace(hour=12)), partly_available=True, raster=60, quota=3)
    hall.allocate((day.replace(hour=10), day.replace(hour=11)), partly_available=False, raster=60)
    token = room.reserve('two@example.org', (day.replace(hour=8), day.replace(hour=9)), quota=2)
    room.approve_reservations(token)
    room.add_blocker((day.replace(hour=9), day.replace(hour=10)))
    token = hall.reserve('hall@example.org', (day.replace(hour=10), day.replace(hour=11)))
    hall.approve_reservations(token)
    found = [(i.start.hour, i.end.hour, i.spots) for i in room.free_intervals(day, day + timedelta(days=1))]
    assert found == [(8, 9, 1), (11, 12, 3)]
    # Nothing of another resource shows, and a window cuts on the raster.
    assert [(i.start.hour, i.end.hour) for i in hall.free_intervals(day, day + timedelta(days=1))] == []
    assert [(i.start.hour, i.end.hour) for i in room.free_intervals(
        day.replace(hour=11, minute=20), day.replace(hour=11, minute=40))] == [(11, 12)]
    room.rollback()


def test_a_whole_only_allocation_is_one_interval_until_booked(scheduler: Scheduler) -> None:
    day = datetime(2030, 10, 27)  # the autumn change: 25 hours
    scheduler.allocate((day, day), whole_day=True, quota=2)
    [interval] = scheduler.free_intervals(day.replace(hour=12), day.replace(hour=13))
    assert (interval.start.isoformat(), interval.end.isoformat(), interval.spots) == (
        '2030-10-27T00:00:00+02:00', '2030-10-28T00:00:00+01:00', 2)
    assert interval.duration == timedelta(hours=25)
    for email in ('a@example.org', 'b@example.org'):
        scheduler.approve_reservations(scheduler.reserve(email, (day, day + timedelta(days=1))))
    assert scheduler.free_intervals(day, day + timedelta(days=1)) == []


def test_free_intervals_is_one_statement(scheduler: Scheduler) -> None:

    day = datetime(2030, 6, 12)
    for hour in range(8, 18, 2):
        scheduler.allocate((day.replace(hour=hour), day.replace(hour=hour + 1)), partly_available=True,
                           raster=15, quota=4)
    scheduler.session.flush()
    with captured_statements(scheduler) as statements:
        found = scheduler.free_intervals(day, day + timedelta(days=1))
    assert len(found) == 5 and len(statements) == 1


def test_bad_windows_are_refused(scheduler: Scheduler) -> None:
    day = datetime(2030, 6, 12)
    with pytest.raises(ReservationParametersInvalid):
        scheduler.free_intervals(day, day)
    with pytest.raises(ReservationParametersInvalid):
        scheduler.free_intervals(day, day + timedelta(days=1), duration=timedelta(0))
    with pytest.raises(TypeError):
        scheduler.free_intervals('2030-06-12', day)  # type: ignore[arg-type]


def test_allocations_the_exposure_hides_have_no_free_time(context: Context) -> None:
    room, _ = _schedulers(context)
    day = datetime(2030, 6, 12)
    room.allocate([(day.replace(hour=8), day.replace(hour=9)), (day.replace(hour=14), day.replace(hour=15))])

    class HideMornings:
        @staticmethod
        def is_allocation_exposed(allocation: Allocation) -> bool:
            return allocation.display_start().hour >= 12

    assert len(room.free_intervals(day, day + timedelta(days=1))) == 2
    context.set_service('exposure', lambda ctx: HideMornings(), cache=True)
    room.clear_cache()
    [left] = room.free_intervals(day, day + timedelta(days=1))
    assert left.start.hour == 14
    room.rollback()
