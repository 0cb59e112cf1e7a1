from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libres.context.core import Context
from libres.db.models import Reservation
from libres.db.scheduler import Scheduler
from libres.modules import errors

UTC = UTC
SPAN = (datetime(2030, 5, 1, 20), datetime(2030, 5, 1, 22))


def book(scheduler: Scheduler, n: int) -> list:  # type: ignore[type-arg]
    tokens = []
    for i in range(n):
        token = scheduler.reserve(f'guest{i}@example.org', SPAN)
        scheduler.approve_reservations(token)
        tokens.append(token)
    scheduler.commit()
    return tokens


def holder(scheduler: Scheduler, token) -> object:  # type: ignore[no-untyped-def]
    return scheduler.allocations_by_reservation(token).one().resource


def test_mirrors_by_master_counts_imaginary_ones(scheduler: Scheduler) -> None:
    [master] = scheduler.allocate(SPAN, quota=3)
    scheduler.commit()
    seen = []
    for _ in range(4):
        mirrors = scheduler.allocation_mirrors_by_master(master)
        seen.append((len(mirrors), sum(1 for m in mirrors if m.is_transient)))
        if len(seen) < 4:
            book(scheduler, 1)
    assert seen == [(2, 2), (2, 2), (2, 1), (2, 0)]


def test_quota_shrink_moves_bookings_to_the_front(scheduler: Scheduler) -> None:
    [master] = scheduler.allocate(SPAN, quota=7)
    scheduler.commit()
    tokens = book(scheduler, 7)
    holders = [holder(scheduler, t) for t in tokens]
    for index in (2, 3, 5):
        scheduler.remove_reservation(tokens[index])
    scheduler.commit()
    scheduler.change_quota(scheduler.allocation_by_id(master.id), 4)
    scheduler.commit()
    assert holder(scheduler, tokens[0]) == holders[0]
    assert holder(scheduler, tokens[1]) == holders[1]
    assert holder(scheduler, tokens[4]) == holders[2]
    assert holder(scheduler, tokens[6]) == holders[3]
    master = scheduler.allocation_by_id(master.id)
    assert master.quota == 4 and master.quota_left == 0
    assert scheduler.managed_allocations().count() == 4


def test_quota_shrink_refills_a_freed_master(scheduler: Scheduler) -> None:
    [master] = scheduler.allocate(SPAN, quota=5)
    scheduler.commit()
    tokens = book(scheduler, 5)
    scheduler.remove_reservation(tokens[0])
    scheduler.commit()
    scheduler.change_quota(scheduler.allocation_by_id(master.id), 4)
    scheduler.commit()
    master = scheduler.allocation_by_id(master.id)
    assert not master.is_available()
    assert sum(1 for m in scheduler.allocation_mirrors_by_master(master) if not m.is_available()) == 3


def test_quota_shrink_below_bookings_is_refused(scheduler: Scheduler) -> None:
    [master] = scheduler.allocate(SPAN, quota=3)
    scheduler.commit()
    book(scheduler, 2)
    with pytest.raises(errors.AffectedReservationError) as info:
        scheduler.change_quota(scheduler.allocation_by_id(master.id), 1)
    assert info.value.existing is None
    with pytest.raises(AssertionError):
        scheduler.change_quota(master, 0)


def test_quota_growth_adds_spots(scheduler: Scheduler) -> None:
    [master] = scheduler.allocate(SPAN, quota=1)
    scheduler.commit()
    book(scheduler, 1)
    scheduler.change_quota(scheduler.allocation_by_id(master.id), 3)
    scheduler.commit()
    book(scheduler, 2)
    assert scheduler.allocation_by_id(master.id).quota_left == 0


def test_reordered_keylist_maps_free_keys_to_none(scheduler: Scheduler) -> None:
    [master] = scheduler.allocate(SPAN, quota=3)
    scheduler.commit()
    tokens = book(scheduler, 3)
    scheduler.remove_reservation(tokens[1])
    scheduler.commit()
    master = scheduler.allocation_by_id(master.id)
    siblings = master.siblings()
    keys = [s.resource for s in siblings]
    assert scheduler.reordered_keylist(siblings, 2) == {keys[0]: keys[0], keys[1]: None, keys[2]: keys[1]}


def test_move_allocation(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate((datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 11)))
    scheduler.commit()
    scheduler.move_allocation(allocation.id, datetime(2030, 5, 1, 12), datetime(2030, 5, 1, 13),
                              data={'moved': True})
    scheduler.commit()
    moved = scheduler.allocation_by_id(allocation.id)
    assert moved.start == datetime(2030, 5, 1, 10, tzinfo=UTC)
    assert moved.data == {'moved': True}
    scheduler.move_allocation(allocation.id, datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 11),
                              whole_day=True)
    assert scheduler.allocation_by_id(allocation.id).whole_day
    with pytest.raises(errors.InvalidAllocationError):
        scheduler.move_allocation(allocation.id, datetime(2030, 5, 1, 13), datetime(2030, 5, 1, 12))


def test_move_into_another_allocation_overlaps(scheduler: Scheduler) -> None:
    first, _ = scheduler.allocate([
        (datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 11)),
        (datetime(2030, 5, 1, 12), datetime(2030, 5, 1, 13)),
    ])
    with pytest.raises(errors.OverlappingAllocationError):
        scheduler.move_allocation(first.id, datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 12, 30))


def test_move_partly_respects_slots_and_pending(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate(
        (datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 14)), partly_available=True, raster=15
    )
    scheduler.reserve('a@example.org', (datetime(2030, 5, 1, 12), datetime(2030, 5, 1, 13)))
    scheduler.commit()
    with pytest.raises(errors.AffectedPendingReservationError):
        scheduler.move_allocation(allocation.id, datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 12, 30))
    scheduler.move_allocation(allocation.id, datetime(2030, 5, 1, 9), datetime(2030, 5, 1, 15))
    blocker_token = scheduler.add_blocker((datetime(2030, 5, 1, 9), datetime(2030, 5, 1, 10)))[0].token
    with pytest.raises(errors.AffectedReservationError):
        scheduler.move_allocation(allocation.id, datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 15))
    scheduler.remove_blocker(blocker_token)
    scheduler.commit()


def test_move_whole_only_with_bookings_fails(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate((datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 11)))
    token = scheduler.reserve('a@example.org', (datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 11)))
    with pytest.raises(errors.AffectedPendingReservationError):
        scheduler.move_allocation(allocation.id, datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 12))
    scheduler.approve_reservations(token)
    with pytest.raises(errors.AffectedReservationError):
        scheduler.move_allocation(allocation.id, datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 12))


def test_move_one_group_member_changes_quota_of_all(scheduler: Scheduler) -> None:
    members = scheduler.allocate(
        [(datetime(2030, 5, d, 10), datetime(2030, 5, d, 11)) for d in (1, 2)], grouped=True
    )
    scheduler.commit()
    scheduler.move_allocation(members[0].id, None, None, None, 2, quota_limit=2)
    scheduler.commit()
    for member in scheduler.allocations_by_group(members[0].group):
        assert (member.quota, member.quota_limit) == (2, 2)


def test_remove_allocation(scheduler: Scheduler) -> None:
    [big] = scheduler.allocate(SPAN, quota=10)
    scheduler.commit()
    scheduler.remove_allocation(big.id)
    scheduler.commit()
    assert scheduler.managed_allocations().count() == 0
    group = scheduler.allocate(
        [(datetime(2030, 5, d, 10), datetime(2030, 5, d, 11)) for d in (1, 2)], grouped=True
    )
    scheduler.remove_allocation(groups=[group[0].group])
    assert scheduler.managed_allocations().count() == 0
    with pytest.raises(NotImplementedError):
        scheduler.remove_allocation()


def test_remove_allocation_with_bookings_fails(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate(SPAN, quota=2)
    first = scheduler.reserve('a@example.org', SPAN)
    scheduler.approve_reservations(first)
    second = scheduler.reserve('b@example.org', SPAN)
    scheduler.approve_reservations(second)
    scheduler.remove_reservation(first)
    scheduler.commit()
    # The remaining booking sits on the mirror.
    with pytest.raises(errors.AffectedReservationError):
        scheduler.remove_allocation(allocation.id)
    scheduler.remove_reservation(second)
    scheduler.reserve('c@example.org', SPAN)
    with pytest.raises(errors.AffectedPendingReservationError):
        scheduler.remove_allocation(allocation.id)


def test_remove_unused_allocations(scheduler: Scheduler) -> None:
    day = datetime(2014, 1, 1)

    def at(n: int) -> tuple[datetime, datetime]:
        return day + timedelta(days=n), day + timedelta(days=n, hours=1)

    scheduler.allocate(at(0))  # pending single
    scheduler.allocate(at(1))  # approved single
    group_pending = scheduler.allocate([at(2), at(3)], grouped=True)
    scheduler.allocate(at(4))  # unused single
    scheduler.allocate([at(5), at(6)], grouped=True)  # unused group
    scheduler.allocate(at(7))  # single with a blocker
    group_blocked = scheduler.allocate([at(8), at(9)], grouped=True)
    scheduler.reserve('a@example.org', at(0))
    scheduler.approve_reservations(scheduler.reserve('b@example.org', at(1)))
    scheduler.reserve('c@example.org', group=group_pending[0].group)
    scheduler.add_blocker(at(7))
    scheduler.add_blocker(group=group_blocked[0].group)
    scheduler.commit()

    assert scheduler.remove_unused_allocations(datetime(2014, 1, 6), datetime(2014, 1, 7)) == 0
    assert scheduler.remove_unused_allocations(
        datetime(2000, 1, 1), datetime(2020, 1, 1), exclude_groups=True) == 1
    assert scheduler.remove_unused_allocations(datetime(2000, 1, 1), datetime(2020, 1, 1)) == 2
    assert scheduler.managed_allocations().filter_by(resource=scheduler.resource).count() == 7


def test_remove_unused_on_weekdays(context: Context) -> None:
    scheduler = Scheduler(context, 'weekly', 'Europe/Zurich')
    for day in range(19, 26):
        scheduler.allocate((datetime(2023, 3, day), datetime(2023, 3, day, 2)))
    # 01:00, not 02:00: 02:00 does not exist in Zurich on 26 March 2023 (refused).
    scheduler.allocate([(datetime(2023, 3, 26), datetime(2023, 3, 26, 1)),
                        (datetime(2023, 3, 27), datetime(2023, 3, 27, 2))], grouped=True)
    scheduler.commit()
    removed = scheduler.remove_unused_allocations(date_(2023, 3, 19), date_(2023, 3, 28), days=['su'])
    assert removed == 1
    scheduler.commit()
    assert scheduler.managed_allocations().count() == 8


def date_(y: int, m: int, d: int):  # type: ignore[no-untyped-def]
    from datetime import date

    return date(y, m, d)


def test_approving_twice_on_quota_does_not_book_two_mirrors(scheduler: Scheduler) -> None:
    scheduler.allocate(SPAN, quota=3)
    token = book(scheduler, 1)[0]
    assert scheduler.approve_reservations(token) == []
    assert scheduler.reserved_slots_by_reservation(token).count() == 1
    assert scheduler.managed_reservations().filter(Reservation.status == 'approved').count() == 1


@pytest.mark.parametrize('removed', [(0,), (0, 1), (1, 3, 5), (0, 2, 4, 6), (6,), (0, 6), (3, 4)])
def test_quota_shrink_never_collides(scheduler: Scheduler, removed: tuple[int, ...]) -> None:
    [master] = scheduler.allocate(SPAN, quota=7)
    scheduler.commit()
    tokens = book(scheduler, 7)
    for index in removed:
        scheduler.remove_reservation(tokens[index])
    scheduler.commit()
    kept = 7 - len(removed)
    scheduler.change_quota(scheduler.allocation_by_id(master.id), kept)
    scheduler.commit()
    master = scheduler.allocation_by_id(master.id)
    holders = {holder(scheduler, t) for i, t in enumerate(tokens) if i not in removed}
    assert holders == {a.resource for a in master.siblings()}
    assert master.quota_left == 0
