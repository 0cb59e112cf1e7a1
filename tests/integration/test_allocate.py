from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import IntegrityError
from tests.helpers import CountRows

from libres.context.core import Context
from libres.db.models import Allocation
from libres.db.scheduler import Scheduler
from libres.modules import errors, events

UTC = UTC
ZURICH = ZoneInfo('Europe/Zurich')
US = timedelta(microseconds=1)


def test_allocate_returns_flushed_masters_with_rastered_utc_span(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate(
        (datetime(2030, 5, 1, 8, 7), datetime(2030, 5, 1, 10, 2)),
        partly_available=True, raster=15,
    )
    assert allocation.id is not None
    assert allocation.is_master
    assert allocation.resource == allocation.mirror_of == scheduler.resource
    scheduler.commit()
    stored = scheduler.allocation_by_id(allocation.id)
    # 08:07 CEST rounds down to 08:00, 10:02 up to 10:15 (stored minus 1 µs).
    assert stored.start == datetime(2030, 5, 1, 6, 0, tzinfo=UTC)
    assert stored.end == datetime(2030, 5, 1, 8, 15, tzinfo=UTC) - US
    assert stored.display_start() == datetime(2030, 5, 1, 8, 0, tzinfo=ZURICH)
    assert stored.display_end() == datetime(2030, 5, 1, 10, 15, tzinfo=ZURICH)
    assert stored.timezone == 'Europe/Zurich'
    assert stored.data == {}
    assert stored.start.tzinfo is not None


def test_allocate_accepts_generators_and_nested_pairs(scheduler: Scheduler) -> None:
    days = (
        (datetime(2030, 5, d, 8), datetime(2030, 5, d, 9)) for d in range(1, 4)
    )
    assert len(scheduler.allocate(days)) == 3
    assert len(scheduler.allocate([[datetime(2030, 6, 1, 8), datetime(2030, 6, 1, 9)]])) == 1


def test_allocate_fires_event_with_context(scheduler: Scheduler) -> None:
    seen = []
    events.on_allocations_added.append(lambda ctx, allocations: seen.append((ctx, allocations)))
    allocations = scheduler.allocate((datetime(2030, 5, 1, 8), datetime(2030, 5, 1, 9)))
    assert seen == [(scheduler.context, allocations)]
    assert seen[0][0].name == scheduler.context.name


def test_allocate_nothing_fires_nothing(scheduler: Scheduler) -> None:
    seen = []
    events.on_allocations_added.append(lambda *args: seen.append(args))
    assert scheduler.allocate([]) == []
    assert seen == []


def test_whole_day_spans_local_days_on_both_dst_days(scheduler: Scheduler) -> None:
    spring, autumn = scheduler.allocate(
        [
            (datetime(2023, 3, 26, 10), datetime(2023, 3, 26, 11)),
            (datetime(2023, 10, 29, 10), datetime(2023, 10, 29, 11)),
        ],
        whole_day=True,
    )
    assert spring.display_start() == datetime(2023, 3, 26, 0, 0, tzinfo=ZURICH)
    assert spring.end - spring.start == timedelta(hours=23) - US
    assert autumn.end - autumn.start == timedelta(hours=25) - US
    assert spring.whole_day and autumn.whole_day


def test_whole_day_end_date_counts(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate(
        (datetime(2014, 8, 18), datetime(2014, 8, 20)), whole_day=True
    )
    assert allocation.display_end() == datetime(2014, 8, 21, 0, 0, tzinfo=ZURICH)


@pytest.mark.parametrize('raster', [7, 0, 90, -5])
def test_invalid_raster_is_refused(scheduler: Scheduler, raster: int, count_rows: CountRows) -> None:
    with pytest.raises(AssertionError):
        scheduler.allocate((datetime(2030, 5, 1, 8), datetime(2030, 5, 1, 9)), raster=raster)
    assert count_rows()['allocations'] == 0


def test_grouped_partly_available_is_invalid(scheduler: Scheduler) -> None:
    with pytest.raises(errors.InvalidAllocationError):
        scheduler.allocate(
            (datetime(2030, 5, 1, 8), datetime(2030, 5, 1, 9)),
            partly_available=True, grouped=True,
        )
    with pytest.raises(errors.InvalidAllocationError):
        scheduler.allocate(
            (datetime(2030, 5, 1, 8), datetime(2030, 5, 1, 9)),
            skip_overlapping=True, grouped=True,
        )


def test_given_dates_may_touch_but_not_overlap(scheduler: Scheduler) -> None:
    day = datetime(2030, 5, 1)
    with pytest.raises(errors.InvalidAllocationError):
        scheduler.allocate([(day.replace(hour=12), day.replace(hour=13))] * 2)
    with pytest.raises(errors.InvalidAllocationError):
        scheduler.allocate([
            (day.replace(hour=12), day.replace(hour=13, minute=1)),
            (day.replace(hour=13), day.replace(hour=14)),
        ])
    first, second = scheduler.allocate([
        (day.replace(hour=12), day.replace(hour=13)),
        (day.replace(hour=13), day.replace(hour=14)),
    ])
    assert first.end < second.start


def test_end_before_or_equal_start_is_invalid(scheduler: Scheduler) -> None:
    with pytest.raises(errors.InvalidAllocationError):
        scheduler.allocate((datetime(2030, 5, 1, 9), datetime(2030, 5, 1, 8)))
    with pytest.raises(errors.InvalidAllocationError):
        scheduler.allocate((datetime(2030, 5, 1, 9), datetime(2030, 5, 1, 9)))


def test_overlap_with_existing_master_raises_with_details(scheduler: Scheduler) -> None:
    [existing] = scheduler.allocate((datetime(2030, 5, 1, 8), datetime(2030, 5, 1, 10)))
    scheduler.commit()
    dates = [(datetime(2030, 5, d, 9), datetime(2030, 5, d, 11)) for d in range(1, 11)]
    with pytest.raises(errors.OverlappingAllocationError) as info:
        scheduler.allocate(dates)
    assert info.value.existing == existing
    assert info.value.start == datetime(2030, 5, 1, 7, tzinfo=UTC)
    assert info.value.end == datetime(2030, 5, 1, 9, tzinfo=UTC) - US


def test_skip_overlapping_keeps_the_rest(scheduler: Scheduler) -> None:
    scheduler.allocate((datetime(2030, 5, 2, 8), datetime(2030, 5, 2, 10)))
    seen = []
    events.on_allocations_added.append(lambda ctx, allocations: seen.append(len(allocations)))
    created = scheduler.allocate(
        [(datetime(2030, 5, d, 9), datetime(2030, 5, d, 11)) for d in range(1, 4)],
        skip_overlapping=True,
    )
    assert [a.display_start().day for a in created] == [1, 3]
    assert seen == [2]
    everything_skipped = scheduler.allocate(
        (datetime(2030, 5, 2, 9), datetime(2030, 5, 2, 11)), skip_overlapping=True
    )
    assert everything_skipped == []
    assert seen == [2, 0]


def test_another_scheduler_may_allocate_the_same_time(scheduler: Scheduler) -> None:
    other = Scheduler(scheduler.context, 'other room', 'Europe/Zurich')
    span = (datetime(2030, 5, 1, 8), datetime(2030, 5, 1, 10))
    scheduler.allocate(span)
    assert len(other.allocate(span)) == 1


def test_quota_none_and_zero_mean_one(scheduler: Scheduler) -> None:
    a, = scheduler.allocate((datetime(2030, 5, 1, 8), datetime(2030, 5, 1, 9)), quota=None)
    b, = scheduler.allocate((datetime(2030, 5, 2, 8), datetime(2030, 5, 2, 9)), quota=0)
    assert a.quota == b.quota == 1


def test_quota_mirrors_are_imaginary_until_needed(scheduler: Scheduler, count_rows: CountRows) -> None:
    [master] = scheduler.allocate(
        (datetime(2030, 5, 1, 8), datetime(2030, 5, 1, 9)), quota=3, quota_limit=2
    )
    scheduler.commit()
    assert count_rows()['allocations'] == 1
    mirrors = scheduler.allocation_mirrors_by_master(master)
    assert len(mirrors) == 2
    assert all(m.is_transient and not m.is_master for m in mirrors)
    assert master.quota_limit == 2


def test_grouped_allocations_share_a_group(scheduler: Scheduler) -> None:
    allocations = scheduler.allocate(
        [(datetime(2030, 5, d, 8), datetime(2030, 5, d, 9)) for d in (1, 8)], grouped=True
    )
    assert len({a.group for a in allocations}) == 1
    assert all(a.in_group and not a.is_separate for a in allocations)
    singles = scheduler.allocate(
        [(datetime(2030, 6, d, 8), datetime(2030, 6, d, 9)) for d in (1, 8)]
    )
    assert len({a.group for a in singles}) == 2
    assert not any(a.in_group for a in singles)


def test_data_and_flags_are_stored(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate(
        (datetime(2030, 5, 1, 8), datetime(2030, 5, 1, 9)),
        data={'name': 'Zürich «hall»'}, approve_manually=True,
    )
    scheduler.commit()
    scheduler.session.expire_all()
    stored = scheduler.allocation_by_id(allocation.id)
    assert stored.data == {'name': 'Zürich «hall»'}
    assert stored.approve_manually is True


def test_unserialisable_data_fails_at_flush(scheduler: Scheduler, count_rows: CountRows) -> None:
    with pytest.raises(TypeError, match='not JSON serializable'):
        scheduler.allocate(
            (datetime(2030, 5, 1, 8), datetime(2030, 5, 1, 9)), data={'when': datetime.now()}
        )
    scheduler.rollback()
    assert count_rows()['allocations'] == 0


def test_allocation_without_required_columns_fails_at_commit(scheduler: Scheduler) -> None:
    scheduler.session.add(Allocation(raster=15))
    with pytest.raises(IntegrityError):
        scheduler.commit()
    scheduler.rollback()


def test_aware_input_in_another_zone_is_converted(scheduler: Scheduler) -> None:
    tokyo = ZoneInfo('Asia/Tokyo')
    [allocation] = scheduler.allocate(
        (datetime(2030, 5, 1, 15, tzinfo=tokyo), datetime(2030, 5, 1, 16, tzinfo=tokyo))
    )
    assert allocation.start == datetime(2030, 5, 1, 6, tzinfo=UTC)


def test_nonexistent_local_time_is_refused(scheduler: Scheduler) -> None:
    # 02:30 does not exist in Zurich that day (issue 13: refused; 1.4.0 read
    # it like pytz is_dst=False as 01:30 UTC). Reading keeps that rule.
    with pytest.raises(errors.NonExistentTimeError, match='2023-03-26 02:30 does not exist'):
        scheduler.allocate((datetime(2023, 3, 26, 2, 30), datetime(2023, 3, 26, 4)))
    assert scheduler.allocations_in_range(
        datetime(2023, 3, 26, 2, 30), datetime(2023, 3, 26, 2, 30)
    ).count() == 0
    [allocation] = scheduler.allocate(
        (datetime(2023, 3, 26, 1, 30, tzinfo=UTC), datetime(2023, 3, 26, 4))
    )
    assert allocation.start == datetime(2023, 3, 26, 1, 30, tzinfo=UTC)


def test_ambiguous_local_time_is_refused_for_allocations(scheduler: Scheduler) -> None:
    with pytest.raises(errors.AmbiguousTimeError, match='occurs twice'):
        scheduler.allocate((datetime(2023, 10, 29, 2, 30), datetime(2023, 10, 29, 4)))
    # Aware input says which of the two 02:30 it means.
    [allocation] = scheduler.allocate(
        (datetime(2023, 10, 29, 2, 30, tzinfo=ZoneInfo('Europe/Zurich'), fold=1), datetime(2023, 10, 29, 4))
    )
    assert allocation.start == datetime(2023, 10, 29, 1, 30, tzinfo=UTC)
    # whole_day only names the day: nothing to refuse.
    hall = Scheduler(scheduler.context, 'hall', 'Europe/Zurich')
    [day] = hall.allocate((datetime(2023, 10, 29, 2, 30), datetime(2023, 10, 29, 3)), whole_day=True)
    assert day.whole_day and day.start == datetime(2023, 10, 28, 22, tzinfo=UTC)


def test_half_hour_zone_rasters_on_the_utc_grid(context: Context) -> None:
    kolkata = Scheduler(context, 'hall', 'Asia/Kolkata')
    [allocation] = kolkata.allocate(
        (datetime(2030, 5, 1, 9, 0), datetime(2030, 5, 1, 11, 0)), raster=60
    )
    # 09:00 IST is 03:30 UTC; a 60-minute raster rounds on the UTC clock.
    assert allocation.start == datetime(2030, 5, 1, 3, 0, tzinfo=UTC)
    assert allocation.end == datetime(2030, 5, 1, 6, 0, tzinfo=UTC) - US


def test_allocation_dates_by_ids(scheduler: Scheduler) -> None:
    from datetime import time

    [allocation] = scheduler.allocate(
        (datetime(2030, 5, 1, 15), datetime(2030, 5, 1, 16)), partly_available=True, raster=15
    )
    [(start, end)] = scheduler.allocation_dates_by_ids([allocation.id])
    assert (start, end) == (datetime(2030, 5, 1, 15, tzinfo=ZURICH),
                            datetime(2030, 5, 1, 15, 59, 59, 999999, tzinfo=ZURICH))
    [(start, end)] = scheduler.allocation_dates_by_ids([allocation.id], time(15), time(15, 30))
    assert end == datetime(2030, 5, 1, 15, 29, 59, 999999, tzinfo=ZURICH)
    assert scheduler.manual_approval_required([allocation.id]) is False
