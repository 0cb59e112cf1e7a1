from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from tests.helpers import CountRows

from libres.db.models import Allocation, Reservation, ReservedSlot
from libres.db.scheduler import Scheduler
from libres.modules import errors, events

UTC = UTC
US = timedelta(microseconds=1)


def hour(h: int, m: int = 0, day: int = 1) -> datetime:
    return datetime(2030, 5, day, h, m)


@pytest.fixture
def room(scheduler: Scheduler) -> Allocation:
    [allocation] = scheduler.allocate((hour(15), hour(16)), partly_available=True, raster=15)
    scheduler.commit()
    return allocation


def test_reserve_creates_a_pending_row_and_no_slots(scheduler: Scheduler, room: Allocation, count_rows: CountRows) -> None:
    token = scheduler.reserve(' alice@example.org ', (hour(15), hour(15, 30)))
    scheduler.commit()
    [row] = scheduler.reservations_by_token(token)
    assert row.status == 'pending'
    assert row.email == 'alice@example.org'
    assert row.target == room.group and row.target_type == 'allocation'
    assert row.start == datetime(2030, 5, 1, 13, tzinfo=UTC)
    assert row.end == datetime(2030, 5, 1, 13, 30, tzinfo=UTC) - US
    assert row.timezone == 'Europe/Zurich'
    assert row.quota == 1
    assert count_rows()['reserved_slots'] == 0


def test_approve_writes_raster_slots(scheduler: Scheduler, room: Allocation) -> None:
    token = scheduler.reserve('alice@example.org', (hour(15), hour(15, 30)))
    slots = scheduler.approve_reservations(token)
    scheduler.commit()
    assert len(slots) == 2
    assert [s.start for s in slots] == [
        datetime(2030, 5, 1, 13, 0, tzinfo=UTC), datetime(2030, 5, 1, 13, 15, tzinfo=UTC)
    ]
    assert all(s.source_type == 'reservation' and s.reservation_token == token for s in slots)
    allocation = scheduler.allocation_by_id(room.id)
    assert [s[0] for s in allocation.free_slots()] == [
        datetime(2030, 5, 1, 13, 30, tzinfo=UTC), datetime(2030, 5, 1, 13, 45, tzinfo=UTC)
    ]
    assert {(s.resource, s.start) for s in scheduler.reserved_slots_by_reservation(token)} == \
        {(s.resource, s.start) for s in slots}
    [row] = scheduler.reservations_by_token(token)
    assert row.status == 'approved'
    assert {s.source_id for s in slots} == {row.id}


def test_thirteen_minutes_become_two_slots(scheduler: Scheduler, room: Allocation) -> None:
    token = scheduler.reserve('a@example.org', (hour(15, 7), hour(15, 20)))
    [row] = scheduler.reservations_by_token(token)
    assert row.end == datetime(2030, 5, 1, 13, 30, tzinfo=UTC) - US
    assert len(scheduler.approve_reservations(token)) == 2


def test_approval_events(scheduler: Scheduler, room: Allocation) -> None:
    made, approved = [], []
    events.on_reservations_made.append(lambda ctx, rows: made.append(rows))
    events.on_reservations_approved.append(lambda ctx, rows: approved.append((ctx, rows)))
    token = scheduler.reserve('a@example.org', (hour(15), hour(16)))
    assert made[0][0].token == token and approved == []
    scheduler.approve_reservations(token)
    assert approved[0][0] is scheduler.context
    assert approved[0][1][0].token == token


def test_reapproving_writes_nothing_more(scheduler: Scheduler) -> None:
    [master] = scheduler.allocate((hour(8), hour(9)), quota=3)
    token = scheduler.reserve('a@example.org', (hour(8), hour(9)))
    assert len(scheduler.approve_reservations(token)) == 1
    assert scheduler.approve_reservations(token) == []
    scheduler.commit()
    assert scheduler.managed_reserved_slots().count() == 1
    assert master.quota_left == 2


def test_unknown_token_approves_nothing(scheduler: Scheduler) -> None:
    seen = []
    events.on_reservations_approved.append(lambda ctx, rows: seen.append(rows))
    assert scheduler.approve_reservations(uuid.uuid4()) == []
    assert seen == [[]]


def test_whole_only_allocation_gets_one_wide_slot(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate((hour(8), hour(12)))
    token = scheduler.reserve('a@example.org', (hour(9), hour(10)))
    [row] = scheduler.reservations_by_token(token)
    assert row.start == datetime(2030, 5, 1, 7, tzinfo=UTC)
    [slot] = scheduler.approve_reservations(token)
    assert (slot.start, slot.end) == (allocation.start, allocation.end)


def test_double_booking_refused_at_reserve(scheduler: Scheduler, room: Allocation) -> None:
    token = scheduler.reserve('a@example.org', (hour(15), hour(15, 30)))
    scheduler.approve_reservations(token)
    scheduler.commit()
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.reserve('b@example.org', (hour(15, 15), hour(15, 45)))
    # The other half is still free.
    other = scheduler.reserve('b@example.org', (hour(15, 30), hour(16)))
    assert len(scheduler.approve_reservations(other)) == 2


def test_same_slot_twice_is_refused_by_the_primary_key(scheduler: Scheduler, room: Allocation) -> None:
    token = uuid.uuid4()
    for _ in range(2):
        scheduler.session.add(ReservedSlot(
            resource=scheduler.resource, start=room.start, end=room.start + timedelta(minutes=15) - US,
            allocation_id=room.id, source_type='reservation', reservation_token=token, source_id=1,
        ))
    with pytest.raises(IntegrityError, match='reserved_slots_pkey'):
        scheduler.session.flush()
    scheduler.rollback()


def test_quota_books_the_master_then_mirrors(scheduler: Scheduler, count_rows: CountRows) -> None:
    scheduler.allocate((hour(20), hour(22)), quota=3)
    scheduler.commit()
    resources = []
    for n in range(3):
        token = scheduler.reserve(f'guest{n}@example.org', (hour(20), hour(22)))
        [slot] = scheduler.approve_reservations(token)
        resources.append(slot.resource)
        scheduler.commit()
    assert resources[0] == scheduler.resource
    assert len(set(resources)) == 3
    assert count_rows()['allocations'] == 3
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.reserve('late@example.org', (hour(20), hour(22)))


def test_quota_per_reservation_books_several_spots(scheduler: Scheduler) -> None:
    scheduler.allocate((hour(20), hour(22)), quota=4, quota_limit=2)
    with pytest.raises(errors.QuotaOverLimit):
        scheduler.reserve('group@example.org', (hour(20), hour(22)), quota=3)
    token = scheduler.reserve('family@example.org', (hour(20), hour(22)), quota=2)
    slots = scheduler.approve_reservations(token)
    assert len({s.resource for s in slots}) == 2
    # Availability is checked before the limit: only two spots are left.
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.reserve('group@example.org', (hour(20), hour(22)), quota=3)


def test_quota_checks_in_order(scheduler: Scheduler) -> None:
    scheduler.allocate((hour(8), hour(9)), quota=2, quota_limit=1)
    span = (hour(8), hour(9))
    with pytest.raises(errors.InvalidQuota):
        scheduler.reserve('a@example.org', span, quota=0)
    with pytest.raises(errors.QuotaOverLimit):
        scheduler.reserve('a@example.org', span, quota=2)
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.reserve('a@example.org', span, quota=3)


def test_manual_approval_skips_availability_but_not_quota(scheduler: Scheduler) -> None:
    scheduler.allocate((hour(8), hour(9)), quota=2, approve_manually=True)
    with pytest.raises(errors.QuotaImpossible):
        scheduler.reserve('a@example.org', (hour(8), hour(9)), quota=3)


def test_waiting_list(scheduler: Scheduler) -> None:
    [nursery] = scheduler.allocate((hour(8), hour(12)), quota=2, approve_manually=True)
    scheduler.commit()
    tokens = [scheduler.reserve(f'parent{n}@example.org', (hour(8), hour(12))) for n in range(4)]
    scheduler.commit()
    assert nursery.waitinglist_length == 4
    scheduler.approve_reservations(tokens[0])
    scheduler.approve_reservations(tokens[1])
    assert nursery.waitinglist_length == 2
    with pytest.raises(errors.AlreadyReservedError) as info:
        scheduler.approve_reservations(tokens[2])
    assert info.value.reservation is not None
    assert info.value.reservation.token == tokens[2]
    scheduler.rollback()


def test_failed_approval_leaves_no_slots_in_the_session(scheduler: Scheduler) -> None:
    scheduler.allocate((hour(8), hour(9)), approve_manually=True)
    scheduler.allocate((hour(10), hour(11)), approve_manually=True)
    taken = scheduler.reserve('a@example.org', (hour(10), hour(11)))
    scheduler.approve_reservations(taken)
    both = scheduler.reserve('b@example.org', [(hour(8), hour(9)), (hour(10), hour(11))])
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.approve_reservations(both)
    # Without a rollback by the caller, the first date's slot is gone too.
    scheduler.commit()
    assert scheduler.managed_reserved_slots().count() == 1
    assert {r.status for r in scheduler.reservations_by_token(both)} == {'pending'}


def test_outside_any_allocation_is_invalid(scheduler: Scheduler, room: Allocation, count_rows: CountRows) -> None:
    with pytest.raises(errors.InvalidReservationError):
        scheduler.reserve('a@example.org', (hour(18), hour(19)))
    scheduler.commit()
    assert count_rows()['reservations'] == 0


def test_too_long_and_too_short(scheduler: Scheduler, room: Allocation) -> None:
    with pytest.raises(errors.ReservationTooLong):
        scheduler.reserve('a@example.org', (hour(15), hour(15, day=2)))
    with pytest.raises(errors.ReservationTooShort):
        scheduler.reserve('a@example.org', (hour(15), hour(15, 1)))
    with pytest.raises(errors.ReservationTooShort):
        scheduler.reserve('a@example.org', (hour(15, 30), hour(15)))


def test_range_wider_than_the_allocation_is_too_long(scheduler: Scheduler, room: Allocation) -> None:
    with pytest.raises(errors.TimerangeTooLong):
        scheduler.reserve('a@example.org', (hour(14), hour(15, 30)))


def test_midnight_to_midnight_on_a_whole_day_allocation(scheduler: Scheduler) -> None:
    for day in (datetime(2023, 3, 26), datetime(2023, 5, 10), datetime(2023, 10, 29)):
        scheduler.allocate((day, day), whole_day=True)
        token = scheduler.reserve('a@example.org', (day, day + timedelta(days=1)))
        assert len(scheduler.approve_reservations(token)) == 1


@pytest.mark.parametrize('email', ['nope', 'a@b', '', '@example.org', 'a@b.'])
def test_invalid_email_is_refused_before_anything_else(
    scheduler: Scheduler, room: Allocation, email: str, count_rows: CountRows
) -> None:
    with pytest.raises(errors.InvalidEmailAddress):
        scheduler.reserve(email, (hour(18), hour(19)))
    scheduler.commit()
    assert count_rows()['reservations'] == 0


def test_dates_and_group_are_exclusive(scheduler: Scheduler, room: Allocation) -> None:
    with pytest.raises(AssertionError):
        scheduler.reserve('a@example.org')
    with pytest.raises(AssertionError):
        scheduler.reserve('a@example.org', [])
    with pytest.raises(AssertionError):
        scheduler.reserve('a@example.org', (hour(15), hour(16)), group=room.group)


def test_group_reservation_books_every_member(scheduler: Scheduler) -> None:
    course = scheduler.allocate([(hour(18, day=d), hour(20, day=d)) for d in (1, 8, 15)], grouped=True)
    token = scheduler.reserve('student@example.org', group=course[0].group)
    [row] = scheduler.reservations_by_token(token)
    assert row.target_type == 'group' and row.start is None
    slots = scheduler.approve_reservations(token)
    assert len(slots) == 3
    assert {s.allocation_id for s in slots} == {a.id for a in course}


def test_a_date_of_one_member_reserves_the_whole_group_once(scheduler: Scheduler) -> None:
    course = scheduler.allocate([(hour(18, day=d), hour(20, day=d)) for d in (1, 8)], grouped=True)
    token = scheduler.reserve(
        'student@example.org', [(hour(18, day=1), hour(20, day=1)), (hour(18, day=8), hour(20, day=8))]
    )
    [row] = scheduler.reservations_by_token(token)
    assert row.target == course[0].group and row.target_type == 'group'


def test_unknown_group_is_invalid(scheduler: Scheduler) -> None:
    with pytest.raises(errors.InvalidReservationError):
        scheduler.reserve('a@example.org', group=uuid.uuid4())


def test_session_duplicates_and_shared_tokens(scheduler: Scheduler, room: Allocation) -> None:
    cart = uuid.uuid4()
    first = scheduler.reserve('a@example.org', (hour(15), hour(15, 15)), session_id=cart,
                              single_token_per_session=True)
    with pytest.raises(errors.OverlappingReservationError):
        scheduler.reserve('a@example.org', (hour(15), hour(15, 15)), session_id=cart)
    second = scheduler.reserve('a@example.org', (hour(15, 30), hour(15, 45)), session_id=cart,
                               single_token_per_session=True)
    assert first == second
    # Another session or none may overlap freely.
    scheduler.reserve('b@example.org', (hour(15), hour(15, 15)), session_id=uuid.uuid4())
    scheduler.reserve('b@example.org', (hour(15), hour(15, 15)))
    scheduler.remove_reservation(first)
    third = scheduler.reserve('a@example.org', (hour(15), hour(15, 15)), session_id=cart,
                              single_token_per_session=True)
    fourth = scheduler.reserve('a@example.org', (hour(15, 30), hour(15, 45)), session_id=cart,
                               single_token_per_session=True)
    assert third != first and third == fourth


def test_deny_removes_pending_rows_only(scheduler: Scheduler, room: Allocation) -> None:
    denied = []
    events.on_reservations_denied.append(lambda ctx, rows: denied.append(rows))
    token = scheduler.reserve('a@example.org', (hour(15), hour(15, 30)))
    scheduler.deny_reservation(token)
    assert scheduler.reservations_by_token(token).count() == 0
    assert denied[0][0].token == token
    approved = scheduler.reserve('b@example.org', (hour(15), hour(15, 30)))
    scheduler.approve_reservations(approved)
    scheduler.deny_reservation(approved)
    assert denied[1] == []
    assert scheduler.reservations_by_token(approved).count() == 1


def test_remove_reservation_frees_its_slots(scheduler: Scheduler, room: Allocation) -> None:
    removed = []
    events.on_reservations_removed.append(lambda ctx, rows: removed.append((ctx.name, rows)))
    token = scheduler.reserve('a@example.org', (hour(15), hour(16)))
    scheduler.approve_reservations(token)
    scheduler.commit()
    scheduler.remove_reservation(token)
    scheduler.commit()
    allocation = scheduler.allocation_by_id(room.id)
    assert allocation.is_available()
    assert len(allocation.free_slots()) == 4
    assert removed[0][0] == scheduler.context.name and removed[0][1][0].token == token


def test_remove_one_of_two_siblings_keeps_the_other_slots(scheduler: Scheduler, room: Allocation) -> None:
    cart = uuid.uuid4()
    token = scheduler.reserve('a@example.org', (hour(15), hour(15, 15)), session_id=cart,
                              single_token_per_session=True)
    scheduler.reserve('a@example.org', (hour(15, 30), hour(15, 45)), session_id=cart,
                      single_token_per_session=True)
    scheduler.approve_reservations(token)
    first, second = scheduler.reservations_by_token(token).order_by(Reservation.id)
    scheduler.remove_reservation(token, first.id)
    scheduler.commit()
    [left] = scheduler.reserved_slots_by_reservation(token)
    assert left.source_id == second.id


def test_removing_a_narrow_reservation_removes_its_wide_slot(scheduler: Scheduler) -> None:
    scheduler.allocate((hour(8), hour(12)))
    token = scheduler.reserve('a@example.org', (hour(9), hour(10)))
    scheduler.approve_reservations(token)
    scheduler.remove_reservation(token)
    scheduler.commit()
    assert scheduler.managed_reserved_slots().count() == 0


def test_extinguish_leaves_nothing(scheduler: Scheduler, room: Allocation, count_rows: CountRows) -> None:
    token = scheduler.reserve('a@example.org', (hour(15), hour(15, 30)))
    scheduler.reserve('b@example.org', (hour(15, 30), hour(16)))
    scheduler.approve_reservations(token)
    scheduler.add_blocker((hour(15, 45), hour(16)))
    other = Scheduler(scheduler.context, 'other', 'Europe/Zurich')
    other.allocate((hour(15), hour(16)))
    scheduler.commit()
    scheduler.extinguish_managed_records()
    scheduler.commit()
    assert count_rows() == {
        'reservations': 0, 'reservation_blockers': 0, 'reserved_slots': 0, 'allocations': 1
    }
