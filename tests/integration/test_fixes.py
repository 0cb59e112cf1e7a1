"""One test per deliberate fix of a 1.4.0 defect (the specification's known defects, group B) not covered elsewhere."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from tests.helpers import at

from libres.context.core import Context
from libres.context.exposure import Exposure
from libres.db.scheduler import Scheduler

UTC = UTC




def test_reservation_targets_accepts_naive_datetimes(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate((at(10), at(11)), quota=2)
    assert scheduler.reservation_targets(at(10), at(11)) == [allocation]


def test_search_extra_group_results_are_masters_only(scheduler: Scheduler) -> None:
    members = scheduler.allocate([(at(13, day=1), at(15, day=1)), (at(13, day=2), at(15, day=2))],
                                 grouped=True, quota=2)
    for email in ('a@example.org', 'b@example.org'):
        scheduler.approve_reservations(scheduler.reserve(email, group=members[0].group))
    scheduler.commit()
    assert scheduler.managed_allocations().count() == 4  # mirrors were written
    found = scheduler.search_allocations(at(13, day=1), at(15, day=1))
    assert found == members and all(a.is_master for a in found)


def test_clear_cache_reaches_the_queries_helper(scheduler: Scheduler) -> None:
    scheduler.allocate((at(10), at(11)))
    start, end = datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)
    assert scheduler.queries.availability_by_range(start, end, [scheduler.resource]) == 100.0

    class Hidden(Exposure):
        @staticmethod
        def is_allocation_exposed(allocation: object) -> bool:
            return False

    scheduler.context.set_service('exposure', lambda ctx: Hidden())
    scheduler.clear_cache()
    assert scheduler.queries.availability_by_range(start, end, [scheduler.resource]) == 0


def test_clear_cache_forgets_blocking_resources(context: Context) -> None:
    scheduler = Scheduler(context, 'a', 'UTC', blocking_names=('b',))
    before = scheduler.blocking_resources
    scheduler.blocking_names = ('c',)
    scheduler.clear_cache()
    assert scheduler.blocking_resources != before


def test_empty_session_id_warns_with_logging_warning(scheduler: Scheduler, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger='libres'):
        assert scheduler.queries.reservations_by_session(None).count() == 0
    assert [r.levelname for r in caplog.records] == ['WARNING']
    assert 'empty session id' in caplog.text


def test_blocking_check_at_approval_counts_each_spot_once(context: Context) -> None:
    whole = Scheduler(context, 'pitch', 'UTC', blocking_names=('half',))
    half = Scheduler(context, 'half', 'UTC', blocking_names=('pitch',))
    half.allocate((at(10), at(11)), quota=2)
    whole.allocate((at(10), at(11)), quota=2)
    # One booking on the blocking side leaves exactly one spot there.
    half.approve_reservations(half.reserve('h@example.org', (at(10), at(11))))
    token = whole.reserve('w@example.org', (at(10), at(11)))
    assert len(whole.approve_reservations(token)) == 1
    from libres.modules import errors

    with pytest.raises(errors.AlreadyReservedError):
        whole.reserve('x@example.org', (at(10), at(11)), quota=2)


@pytest.mark.parametrize('zone', ['Europe/Zurich', 'Australia/Lord_Howe'])
def test_whole_days_on_both_transition_days(context: Context, zone: str) -> None:
    scheduler = Scheduler(context, f'dst-{zone}', zone)
    days = {
        'Europe/Zurich': [datetime(2023, 3, 26), datetime(2023, 10, 29)],
        'Australia/Lord_Howe': [datetime(2023, 4, 2), datetime(2023, 10, 1)],
    }[zone]
    expected: list[float] = {'Europe/Zurich': [23.0, 25.0], 'Australia/Lord_Howe': [24.5, 23.5]}[zone]
    for day, hours in zip(days, expected):
        [allocation] = scheduler.allocate((day, day), whole_day=True, partly_available=True, raster=30)
        length = allocation.end + timedelta(microseconds=1) - allocation.start
        assert length == timedelta(hours=hours)
        assert allocation.whole_day
        token = scheduler.reserve('a@example.org', (day, day + timedelta(days=1)))
        slots = scheduler.approve_reservations(token)
        assert len(slots) == hours * 2
        # Partitions are drawn as a 24-hour day.
        assert sum(share for share, _ in allocation.availability_partitions()) == 100.0
