from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import MultipleResultsFound, NoResultFound
from tests.helpers import CountRows, at

from libres.db.models import Allocation
from libres.db.scheduler import Scheduler
from libres.modules import errors, events

UTC = UTC
US = timedelta(microseconds=1)




def test_blocker_takes_its_slots(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate((at(15), at(16)), partly_available=True, raster=15)
    [blocker] = scheduler.add_blocker((at(15), at(15, 30)), reason='cleaning')
    scheduler.commit()
    assert blocker.reason == 'cleaning' and blocker.title == 'cleaning'
    assert scheduler.reserved_slots_by_blocker(blocker.token).count() == 2
    allocation = scheduler.allocation_by_id(allocation.id)
    assert [s[0].minute for s in allocation.free_slots()] == [30, 45]
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.reserve('a@example.org', (at(15), at(15, 15)))


def test_blocker_takes_every_spot_of_a_quota(scheduler: Scheduler, count_rows: CountRows) -> None:
    [allocation] = scheduler.allocate((at(20), at(22)), quota=3)
    scheduler.add_blocker((at(20), at(22)))
    scheduler.commit()
    assert count_rows()['allocations'] == 3
    assert count_rows()['reserved_slots'] == 3
    assert scheduler.allocation_by_id(allocation.id).quota_left == 0


def test_blocker_needs_every_spot_free(scheduler: Scheduler) -> None:
    scheduler.allocate((at(20), at(22)), quota=3)
    scheduler.approve_reservations(scheduler.reserve('a@example.org', (at(20), at(22))))
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.add_blocker((at(20), at(22)))


def test_group_blocker(scheduler: Scheduler) -> None:
    members = scheduler.allocate([(at(10, day=d), at(11, day=d)) for d in (1, 2)], grouped=True, quota=3)
    [blocker] = scheduler.add_blocker(group=members[0].group)
    assert blocker.target_type == 'group'
    assert blocker.target_allocations().count() == 2
    assert blocker.target_allocations(masters_only=False).count() == 6
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.add_blocker(group=members[0].group)


def test_several_dates_share_a_token(scheduler: Scheduler) -> None:
    scheduler.allocate([(at(10, day=d), at(11, day=d)) for d in (1, 2)])
    blockers = scheduler.add_blocker([(at(10, day=1), at(11, day=1)), (at(10, day=2), at(11, day=2))],
                                     reason='holiday')
    assert len(blockers) == 2 and len({b.token for b in blockers}) == 1
    assert {b.reason for b in blockers} == {'holiday'}


def test_blocker_errors(scheduler: Scheduler) -> None:
    scheduler.allocate((at(15), at(16)), partly_available=True, raster=15)
    with pytest.raises(errors.InvalidReservationError):
        scheduler.add_blocker((at(18), at(19)))
    with pytest.raises(errors.ReservationTooShort):
        scheduler.add_blocker((at(15), at(15, 1)))
    with pytest.raises(errors.ReservationTooLong):
        scheduler.add_blocker((at(15), at(16, day=2)))
    with pytest.raises(errors.TimerangeTooLong):
        scheduler.add_blocker((at(14), at(15, 30)))
    with pytest.raises(AssertionError):
        scheduler.add_blocker()


def test_remove_and_change_blockers(scheduler: Scheduler) -> None:
    scheduler.allocate((at(15), at(17)), partly_available=True, raster=15)
    token = uuid.uuid4()
    first = scheduler.add_blocker((at(15), at(15, 30)), token=token)[0]
    second = scheduler.add_blocker((at(16), at(16, 30)), token=token)[0]
    scheduler.commit()
    scheduler.change_blocker_reason(token, 'renovation')
    assert {b.reason for b in scheduler.blockers_by_token(token)} == {'renovation'}
    assert scheduler.change_blocker(token, first.id, at(15), at(15, 30)) is None
    moved = scheduler.change_blocker(token, first.id, at(15, 30), at(15, 45))
    assert moved is not None
    assert (moved.id, moved.token, moved.reason) == (first.id, token, 'renovation')
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.change_blocker(token, first.id, at(16), at(16, 15))
    with pytest.raises(errors.TimerangeTooLong):
        scheduler.change_blocker(token, first.id, at(14), at(15, 15))
    scheduler.remove_blocker(token, second.id)
    scheduler.commit()
    assert scheduler.reserved_slots_by_blocker(token).count() == 1
    scheduler.remove_blocker(token)
    scheduler.commit()
    assert scheduler.managed_reserved_slots().count() == 0


def test_change_group_blocker_is_ambiguous(scheduler: Scheduler) -> None:
    members = scheduler.allocate([(at(10, day=d), at(11, day=d)) for d in (1, 2)], grouped=True)
    [blocker] = scheduler.add_blocker(group=members[0].group)
    with pytest.raises(MultipleResultsFound):
        scheduler.change_blocker(blocker.token, blocker.id, at(10), at(10, 30))


@pytest.fixture
def partly(scheduler: Scheduler) -> Allocation:
    [allocation] = scheduler.allocate((at(8), at(12)), partly_available=True, raster=15, quota=2)
    scheduler.commit()
    return allocation


def test_change_reservation_keeps_identity(scheduler: Scheduler, partly: Allocation) -> None:
    changes: list[tuple[Any, Any]] = []
    order: list[str] = []
    events.on_reservations_removed.append(lambda *a: order.append('removed'))
    events.on_reservations_made.append(lambda *a: order.append('made'))

    def note_change(ctx: Any, reservation: Any, old_time: Any, new_time: Any) -> None:
        changes.append((old_time, new_time))

    events.on_reservation_time_changed.append(note_change)
    cart = uuid.uuid4()
    token = scheduler.reserve('a@example.org', (at(8), at(9)), data={'x': 1}, session_id=cart)
    scheduler.approve_reservations(token)
    [old] = scheduler.reservations_by_token(token)
    old_id = old.id
    scheduler.commit()
    assert scheduler.change_reservation(token, old_id, at(8), at(9)) is None
    assert scheduler.change_reservation(token, old_id, at(8), at(9) - US) is None
    order.clear()
    new = scheduler.change_reservation(token, old_id, at(8), at(10), quota=2)
    scheduler.commit()
    assert new is not None
    assert (new.id, new.token, new.email, new.data, new.session_id) == (old_id, token, 'a@example.org',
                                                                        {'x': 1}, cart)
    assert new.quota == 2
    assert new.start == datetime(2030, 5, 1, 6, tzinfo=UTC)
    assert new.end == datetime(2030, 5, 1, 8, tzinfo=UTC) - US
    assert order == ['removed', 'made']
    [(old_time, new_time)] = changes
    assert (old_time[0].hour, old_time[1].hour, new_time[0].hour, new_time[1].hour) == (8, 9, 8, 10)
    assert scheduler.reserved_slots_by_reservation(token, old_id).count() == 16


def test_change_reservation_failure_keeps_the_old_one(scheduler: Scheduler, partly: Allocation) -> None:
    whole = scheduler.reserve('w@example.org', (at(8), at(12)))
    scheduler.approve_reservations(whole)
    first = scheduler.reserve('a@example.org', (at(8), at(10)))
    scheduler.approve_reservations(first)
    second = scheduler.reserve('b@example.org', (at(10), at(12)))
    scheduler.approve_reservations(second)
    scheduler.commit()
    [row] = scheduler.reservations_by_token(first)
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.change_reservation(first, row.id, at(8), at(11))
    scheduler.commit()
    assert scheduler.reserved_slots_by_reservation(first).count() == 8
    scheduler.remove_reservation(whole)
    scheduler.commit()
    [row] = scheduler.reservations_by_token(first)
    assert scheduler.change_reservation(first, row.id, at(8), at(12)) is not None
    [row2] = scheduler.reservations_by_token(second)
    assert scheduler.change_reservation(second, row2.id, at(8), at(12)) is not None


def test_change_reservation_errors(scheduler: Scheduler, partly: Allocation) -> None:
    token = scheduler.reserve('a@example.org', (at(8), at(9)))
    scheduler.approve_reservations(token)
    [row] = scheduler.reservations_by_token(token)
    with pytest.raises(NoResultFound):
        scheduler.change_reservation(token, row.id + 100, at(8), at(10))
    with pytest.raises(errors.TimerangeTooLong):
        scheduler.change_reservation(token, row.id, at(7), at(9))
    with pytest.raises(errors.TimerangeTooLong):
        scheduler.change_reservation(token, row.id, at(11), at(12, 1))
    with pytest.warns(DeprecationWarning):
        scheduler.change_reservation_time(token, row.id, at(9), at(10))


def test_change_group_reservation_is_ambiguous(scheduler: Scheduler) -> None:
    members = scheduler.allocate([(at(10, day=d), at(11, day=d)) for d in (1, 2)], grouped=True)
    token = scheduler.reserve('a@example.org', group=members[0].group)
    scheduler.approve_reservations(token)
    [row] = scheduler.reservations_by_token(token)
    with pytest.raises(MultipleResultsFound):
        scheduler.change_reservation(token, row.id, at(10), at(10, 30))


def test_change_email_and_data(scheduler: Scheduler, partly: Allocation) -> None:
    token = scheduler.reserve('a@example.org', (at(8), at(9)))
    scheduler.change_email(token, 'b@example.org')
    scheduler.change_reservation_data(token, {'seat': 4})
    scheduler.commit()
    [row] = scheduler.reservations_by_token(token)
    assert (row.email, row.data) == ('b@example.org', {'seat': 4})


def test_change_reservation_time_candidates(scheduler: Scheduler, partly: Allocation) -> None:
    whole = scheduler.allocate((at(8, day=2), at(9, day=2)))[0]
    assert whole.id
    tokens = [scheduler.reserve('a@example.org', (at(8 + i), at(9 + i))) for i in range(3)]
    assert scheduler.change_reservation_time_candidates().count() == 0
    for token in tokens:
        scheduler.approve_reservations(token)
    scheduler.approve_reservations(scheduler.reserve('b@example.org', (at(8, day=2), at(9, day=2))))
    assert scheduler.change_reservation_time_candidates().count() == 3
    assert scheduler.change_reservation_time_candidates(tokens[:1]).count() == 1


def test_reservations_by_group_and_allocation(scheduler: Scheduler, partly: Allocation) -> None:
    token = scheduler.reserve('a@example.org', (at(8), at(9)))
    assert scheduler.reservations_by_allocation(partly.id).one().token == token
    assert scheduler.reservations_by_group(partly.group).count() == 1


def test_allocations_by_reservation_counts_each_once(scheduler: Scheduler, partly: Allocation) -> None:
    token = scheduler.reserve('a@example.org', (at(8), at(11)))
    assert scheduler.allocations_by_reservation(token).count() == 0
    scheduler.approve_reservations(token)
    assert scheduler.allocations_by_reservation(token).count() == 1
    assert scheduler.allocations_by_reservation(token).all() == [partly]


