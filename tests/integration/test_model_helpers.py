from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from libres.db.models import Allocation
from libres.db.models.reservation import Timespan
from libres.db.scheduler import Scheduler

UTC = UTC
ZURICH = ZoneInfo('Europe/Zurich')


def test_slot_display_uses_the_allocation_raster_and_zone(scheduler: Scheduler) -> None:
    scheduler.allocate((datetime(2030, 5, 1, 12), datetime(2030, 5, 1, 14)), raster=5)
    token = scheduler.reserve('a@example.org', (datetime(2030, 5, 1, 12), datetime(2030, 5, 1, 14)))
    [slot] = scheduler.approve_reservations(token)
    scheduler.commit()
    assert slot.display_start() == datetime(2030, 5, 1, 12, tzinfo=ZURICH)
    assert slot.display_end() == datetime(2030, 5, 1, 14, tzinfo=ZURICH)
    assert slot.display_end('UTC') == datetime(2030, 5, 1, 12, tzinfo=UTC)


def test_reservation_targets_and_timespans(scheduler: Scheduler) -> None:
    members = scheduler.allocate(
        [(datetime(2030, 5, d, 10), datetime(2030, 5, d, 11)) for d in (1, 2)], grouped=True
    )
    manual = scheduler.allocate((datetime(2030, 6, 1, 10), datetime(2030, 6, 1, 11)), approve_manually=True)
    group_token = scheduler.reserve('a@example.org', group=members[0].group)
    single_token = scheduler.reserve('b@example.org', (datetime(2030, 6, 1, 10), datetime(2030, 6, 1, 11)))
    scheduler.commit()
    [group_row] = scheduler.reservations_by_token(group_token)
    [single_row] = scheduler.reservations_by_token(single_token)
    assert group_row._target_allocations().all() == members
    assert group_row.autoapprovable and not single_row.autoapprovable
    # Group timespans keep the stored end (minus 1 µs); single ones add it back.
    assert group_row.timespans() == [Timespan(a.start, a.end) for a in members]
    assert single_row.timespans() == [Timespan(manual[0].start, manual[0].end + timedelta(microseconds=1))]
    assert single_row.display_start() == datetime(2030, 6, 1, 10, tzinfo=ZURICH)
    assert single_row.display_end() == datetime(2030, 6, 1, 11, tzinfo=ZURICH)
    scheduler.approve_reservations(group_token)
    assert group_row._target_allocations().all() == members


def test_master_and_mirror_helpers(scheduler: Scheduler) -> None:
    [master] = scheduler.allocate((datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 11)), quota=2)
    assert len(master.siblings()) == 2 and len(master.siblings(imaginary=False)) == 1
    for email in ('a@example.org', 'b@example.org'):
        scheduler.approve_reservations(scheduler.reserve(email, (datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 11))))
    scheduler.commit()
    mirror = scheduler.managed_allocations().filter(Allocation.resource != scheduler.resource).one()
    assert mirror.get_master() == master
    assert mirror.siblings() == master.siblings()
    assert master.find_spot(master.start, master.end) is None
    assert master.quota_left == 0
    assert scheduler.allocation_by_id(mirror.id) is mirror  # mirrors are managed allocations too
    with pytest.raises(AssertionError):
        Allocation(raster=15).pending_reservations  # noqa: B018


def test_clone_and_renaming(scheduler: Scheduler) -> None:
    clone = scheduler.clone()
    assert (clone.name, clone.timezone, clone.resource) == (scheduler.name, scheduler.timezone, scheduler.resource)
    clone.name = 'another'
    assert clone.resource != scheduler.resource
    clone.allocate((datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 11)))
    assert scheduler.managed_allocations().count() == 0


def test_timezone_must_be_a_name(context) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AssertionError):
        Scheduler(context, 'x', ZURICH)  # type: ignore[arg-type]
