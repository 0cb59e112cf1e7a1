"""Recurring availability rules on a real database: what they make, what
they keep, and what they refuse."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from tests.helpers import CountRows

from libres.db.models import Allocation
from libres.db.rules import AllocationRule
from libres.db.scheduler import Scheduler
from libres.modules import errors

WEEKDAYS = 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR'
MONDAY = datetime(2031, 3, 24, 8)  # the week before Zurich's spring change (30 March 2031)


def opening_hours(scheduler: Scheduler, **options: object) -> AllocationRule:
    values: dict[str, object] = {
        'horizon': timedelta(days=28), 'partly_available': True, 'raster': 15,
        'data': {'note': 'opening hours'}, **options,
    }
    return scheduler.add_rule(WEEKDAYS, MONDAY, MONDAY.replace(hour=18), **values)  # type: ignore[arg-type]


def local_spans(allocations: list[Allocation]) -> list[tuple[datetime, datetime]]:
    return [(a.display_start().replace(tzinfo=None), a.display_end().replace(tzinfo=None))
            for a in allocations]


def book(scheduler: Scheduler, start: datetime, end: datetime) -> uuid.UUID:
    token = scheduler.reserve('guest@example.org', (start, end))
    scheduler.approve_reservations(token)
    return token


def rule_rows(admin_engine: sa.Engine) -> int:
    with admin_engine.connect() as connection:
        return int(connection.execute(sa.text('SELECT count(*) FROM allocation_rules')).scalar_one())


def test_add_rule_makes_the_weekdays_up_to_the_horizon_at_local_eight(scheduler: Scheduler) -> None:
    rule = opening_hours(scheduler)
    scheduler.commit()
    made = scheduler.allocations_by_rule(rule.id)
    assert rule.last_extension is not None and rule.last_extension.created == 20
    assert len(made) == 20
    # 08:00–18:00 on the wall clock before and after the DST change
    assert {(s.time(), e.time()) for s, e in local_spans(made)} == {(time(8), time(18))}
    assert {a.display_start().utcoffset() for a in made} == {timedelta(hours=1), timedelta(hours=2)}
    assert all(a.display_start().weekday() < 5 for a in made)
    assert all(a.data == {'note': 'opening hours', 'rule': rule.id.hex} for a in made)
    assert all(a.partly_available and a.raster == 15 for a in made)
    assert scheduler.rules() == [rule]
    assert scheduler.rule_by_id(rule.id.hex) is rule


def test_extend_rules_is_idempotent_and_goes_as_far_as_asked(scheduler: Scheduler) -> None:
    rule = opening_hours(scheduler)
    assert scheduler.extend_rules() == 0  # the horizon is reached already
    assert scheduler.extend_rules(until=date(2031, 4, 25)) == 5
    assert scheduler.extend_rules(until=date(2031, 4, 25)) == 0
    assert scheduler.extend_rules(until=date(2031, 4, 1)) == 0  # never backwards
    assert len(scheduler.allocations_by_rule(rule.id)) == 25
    assert rule.generated_until == datetime(2031, 4, 26)


def test_an_occurrence_that_overlaps_an_allocation_is_skipped_and_counted(scheduler: Scheduler) -> None:
    scheduler.allocate((datetime(2031, 3, 26, 12), datetime(2031, 3, 26, 13)))
    rule = opening_hours(scheduler)
    assert rule.last_extension is not None
    assert (rule.last_extension.created, rule.last_extension.skipped) == (19, 1)
    assert date(2031, 3, 26) not in {a.display_start().date() for a in scheduler.allocations_by_rule(rule.id)}


def test_an_exception_removes_that_day_and_stays_excepted(scheduler: Scheduler) -> None:
    rule = opening_hours(scheduler)
    assert scheduler.add_rule_exception(rule.id, date(2031, 4, 18)) == 1
    assert scheduler.add_rule_exception(rule.id, date(2031, 4, 19)) == 0  # a Saturday
    assert rule.exceptions == [date(2031, 4, 18), date(2031, 4, 19)]
    scheduler.extend_rules(until=date(2031, 5, 31))
    days = {a.display_start().date() for a in scheduler.allocations_by_rule(rule.id)}
    assert date(2031, 4, 18) not in days and date(2031, 4, 17) in days


def test_an_exception_on_a_booked_day_names_the_reservation_and_changes_nothing(
    scheduler: Scheduler,
) -> None:
    rule = opening_hours(scheduler)
    token = book(scheduler, datetime(2031, 4, 1, 9), datetime(2031, 4, 1, 10))
    scheduler.commit()
    with pytest.raises(errors.AffectedReservationError) as raised:
        scheduler.add_rule_exception(rule.id, date(2031, 4, 1))
    assert raised.value.existing.token == token
    scheduler.rollback()
    assert scheduler.rule_by_id(rule.id).exceptions == []
    assert len(scheduler.allocations_by_rule(rule.id)) == 20


def test_a_pending_reservation_also_protects_its_day(scheduler: Scheduler) -> None:
    rule = opening_hours(scheduler)
    token = scheduler.reserve('guest@example.org', (datetime(2031, 4, 2, 9), datetime(2031, 4, 2, 10)))
    with pytest.raises(errors.AffectedReservationError) as raised:
        scheduler.add_rule_exception(rule.id, date(2031, 4, 2))
    assert raised.value.existing.token == token


def test_change_rule_splits_regenerates_and_retags_the_booked(scheduler: Scheduler) -> None:
    rule = opening_hours(scheduler, horizon=timedelta(days=60))
    token = book(scheduler, datetime(2031, 5, 6, 9), datetime(2031, 5, 6, 10))
    change = scheduler.change_rule(rule.id, effective_from=date(2031, 5, 1),
                                   start_time=time(9), end_time=time(17))
    scheduler.commit()
    assert change.old is rule
    assert rule.rrule == 'FREQ=WEEKLY;UNTIL=20310430T235959;BYDAY=MO,TU,WE,TH,FR'
    old_days = local_spans(scheduler.allocations_by_rule(rule.id))
    assert old_days and max(s for s, _ in old_days) < datetime(2031, 5, 1)
    assert [a.display_start().date() for a in change.retagged] == [date(2031, 5, 6)]
    assert change.retagged[0].data is not None
    assert change.retagged[0].data['rule'] == change.new.id.hex
    new = scheduler.allocations_by_rule(change.new.id)
    # The new rule's horizon counts from its own start: 60 days from 1 May.
    horizon = [date(2031, 5, 1) + timedelta(days=n) for n in range(60)]
    assert [a.display_start().date() for a in new] == [d for d in horizon if d.weekday() < 5]
    kept = [a for a in new if a.display_start().date() == date(2031, 5, 6)]
    assert local_spans(kept) == [(datetime(2031, 5, 6, 8), datetime(2031, 5, 6, 18))]
    assert kept[0].reserved_slots and scheduler.reservations_by_token(token).count() == 1
    others = [span for span in local_spans(new) if span[0].date() != date(2031, 5, 6)]
    assert {(s.time(), e.time()) for s, e in others} == {(time(9), time(17))}
    assert change.new.start == datetime(2031, 5, 1, 9)
    # the old rule had made 1–22 May: 16 weekdays, one booked
    assert change.removed == 15
    assert (change.extension.created, change.extension.skipped) == (len(new) - 1, 1)
    assert scheduler.rules() == [rule, change.new]


def test_change_rule_keeps_a_count(scheduler: Scheduler) -> None:
    rule = scheduler.add_rule('FREQ=DAILY;COUNT=10', datetime(2031, 6, 1, 10), datetime(2031, 6, 1, 11),
                              horizon=timedelta(days=30))
    change = scheduler.change_rule(rule.id, date(2031, 6, 5), start_time=time(14), end_time=time(15))
    assert [a.display_start().hour for a in scheduler.allocations_by_rule(rule.id)] == [10] * 4
    assert [a.display_start().day for a in scheduler.allocations_by_rule(change.new.id)] == list(range(5, 11))
    assert 'COUNT=6' in change.new.rrule


def test_change_rule_times_are_of_the_day_of_the_following_occurrence(scheduler: Scheduler) -> None:
    # Hourly, 20:00 and 23:00: from the 1st on, the times move to 00:00-01:00
    # of the day of the next occurrence (the 1st), not of the day after.
    rule = scheduler.add_rule('FREQ=HOURLY;INTERVAL=3;COUNT=2', datetime(2031, 6, 1, 20),
                              datetime(2031, 6, 1, 21), horizon=timedelta(days=2))
    change = scheduler.change_rule(rule.id, date(2031, 6, 1), start_time=time(0), end_time=time(1))
    assert change.old is None
    assert local_spans(scheduler.allocations_by_rule(change.new.id)) == [
        (datetime(2031, 6, 1, 0), datetime(2031, 6, 1, 1)), (datetime(2031, 6, 1, 3), datetime(2031, 6, 1, 4)),
    ]


def test_stop_keeps_the_allocations_and_makes_no_more(scheduler: Scheduler) -> None:
    rule = opening_hours(scheduler)
    assert scheduler.stop_rule(rule.id).stopped
    assert scheduler.extend_rules(until=date(2031, 12, 31)) == 0
    assert len(scheduler.allocations_by_rule(rule.id)) == 20
    with pytest.raises(errors.InvalidRuleError, match='stopped'):
        scheduler.change_rule(rule.id, date(2031, 4, 1), start_time=time(9))


def test_delete_removes_the_unbooked_and_keeps_the_booked(scheduler: Scheduler) -> None:
    rule = opening_hours(scheduler, quota=3)
    book(scheduler, datetime(2031, 4, 1, 9), datetime(2031, 4, 1, 10))
    book(scheduler, datetime(2031, 4, 1, 9), datetime(2031, 4, 1, 10))  # on a mirror
    scheduler.add_blocker((datetime(2031, 4, 3, 9), datetime(2031, 4, 3, 10)))
    scheduler.commit()
    assert scheduler.delete_rule(rule.id) == (18, 2)
    scheduler.commit()
    assert scheduler.rules() == []
    left = scheduler.managed_allocations().all()
    assert {a.display_start().date() for a in left} == {date(2031, 4, 1), date(2031, 4, 3)}
    # the booked mirror of 1 April, both mirrors the blocker holds on 3 April
    assert len([a for a in left if not a.is_master]) == 3
    with pytest.raises(errors.UnknownRuleError):
        scheduler.delete_rule(rule.id)


def test_whole_day_rules(scheduler: Scheduler) -> None:
    rule = scheduler.add_rule('FREQ=MONTHLY;BYDAY=1MO,-1FR', date(2031, 1, 1), date(2031, 1, 1),
                              whole_day=True, horizon=timedelta(days=90))
    made = scheduler.allocations_by_rule(rule.id)
    assert [a.display_start().date() for a in made] == [
        date(2031, 1, 6), date(2031, 1, 31), date(2031, 2, 3), date(2031, 2, 28),
        date(2031, 3, 3), date(2031, 3, 28)]
    assert all(a.whole_day for a in made)


def test_dst_gap_moves_forward_and_the_repeated_hour_is_the_first(scheduler: Scheduler) -> None:
    # Zurich: 30 March 2031 02:00 → 03:00; 26 October 2031 03:00 → 02:00.
    spring = scheduler.add_rule('FREQ=DAILY;COUNT=3', datetime(2031, 3, 29, 2, 30),
                                datetime(2031, 3, 29, 4), horizon=timedelta(days=5))
    autumn = scheduler.add_rule('FREQ=DAILY;COUNT=3', datetime(2031, 10, 25, 2, 30),
                                datetime(2031, 10, 25, 4), horizon=timedelta(days=5))
    gap = scheduler.allocations_by_rule(spring.id)[1]
    assert gap.start == datetime(2031, 3, 30, 1, 30, tzinfo=UTC)  # 03:30 CEST, shifted by the gap
    assert gap.display_start().replace(tzinfo=None) == datetime(2031, 3, 30, 3, 30)
    assert gap.display_end().replace(tzinfo=None) == datetime(2031, 3, 30, 4)
    repeated = scheduler.allocations_by_rule(autumn.id)[1]
    assert repeated.start == datetime(2031, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 CEST, the first
    assert repeated.end + timedelta(microseconds=1) == datetime(2031, 10, 26, 3, tzinfo=UTC)
    # Wholly in the gap: moved forward as a whole.
    other = Scheduler(scheduler.context, 'gap room', 'Europe/Zurich')
    inside = other.add_rule('FREQ=DAILY;COUNT=3', datetime(2031, 3, 29, 2, 15),
                            datetime(2031, 3, 29, 2, 45), horizon=timedelta(days=5))
    moved = other.allocations_by_rule(inside.id)[1]
    assert local_spans([moved]) == [(datetime(2031, 3, 30, 3, 15), datetime(2031, 3, 30, 3, 45))]
    # The gap hour exactly: nothing is left of it, so it does not happen that day.
    third = Scheduler(scheduler.context, 'third room', 'Europe/Zurich')
    hour = third.add_rule('FREQ=DAILY;COUNT=3', datetime(2031, 3, 29, 2), datetime(2031, 3, 29, 3),
                          horizon=timedelta(days=5))
    assert [a.display_start().day for a in third.allocations_by_rule(hour.id)] == [29, 31]


@pytest.mark.parametrize(('arguments', 'message'), [
    (('FREQ=SOMETIMES', MONDAY, MONDAY + timedelta(hours=1)), 'invalid RRULE'),
    (('BYDAY=MO', MONDAY, MONDAY + timedelta(hours=1)), 'FREQ'),
    (('FREQ=DAILY;DTSTART=20310101T000000', MONDAY, MONDAY + timedelta(hours=1)), 'DTSTART'),
    ((WEEKDAYS, MONDAY, MONDAY - timedelta(hours=1)), 'end after it starts'),
    (('FREQ=DAILY;UNTIL=20300101T000000', MONDAY, MONDAY + timedelta(hours=1)), 'no occurrence'),
    (('FREQ=HOURLY', MONDAY, MONDAY + timedelta(hours=2)), 'overlap'),
])
def test_bad_rules_are_refused_with_nothing_written(
    scheduler: Scheduler, admin_engine: sa.Engine, count_rows: CountRows, arguments: tuple[Any, ...],
    message: str,
) -> None:
    with pytest.raises(errors.InvalidRuleError, match=message):
        scheduler.add_rule(*arguments)
    scheduler.commit()
    assert rule_rows(admin_engine) == 0 and count_rows()['allocations'] == 0


def test_bad_options_unknown_ids_and_far_horizons_are_refused(
    scheduler: Scheduler, admin_engine: sa.Engine, count_rows: CountRows,
) -> None:
    with pytest.raises(errors.InvalidRuleError, match='ten years'):
        scheduler.add_rule(WEEKDAYS, MONDAY, MONDAY.replace(hour=9), horizon=timedelta(days=3654))
    with pytest.raises(errors.InvalidRuleError, match='quota'):
        scheduler.add_rule(WEEKDAYS, MONDAY, MONDAY.replace(hour=9), quota=0)
    with pytest.raises(errors.InvalidRuleError, match='raster'):
        scheduler.add_rule(WEEKDAYS, MONDAY, MONDAY.replace(hour=9), raster=7)
    rule = opening_hours(scheduler)
    scheduler.commit()
    before = count_rows()
    for call in (
        lambda: scheduler.add_rule_exception(uuid.uuid4(), date(2031, 4, 1)),
        lambda: scheduler.stop_rule('not a uuid'),
        lambda: scheduler.change_rule(uuid.uuid4(), date(2031, 4, 1)),
    ):
        with pytest.raises(errors.UnknownRuleError):
            call()
    with pytest.raises(errors.InvalidRuleError, match='ten years'):
        scheduler.extend_rules(until=date(2045, 1, 1))
    with pytest.raises(errors.InvalidRuleError, match='no occurrence'):
        scheduler.change_rule(rule.id, date(2031, 4, 1), rrule='FREQ=DAILY;UNTIL=20310301T000000')
    scheduler.rollback()
    other = Scheduler(scheduler.context, 'other room', 'Europe/Zurich')
    with pytest.raises(errors.UnknownRuleError):
        other.delete_rule(rule.id)  # rules belong to their resource
    scheduler.rollback()
    assert count_rows() == before and rule_rows(admin_engine) == 1


def test_extinguishing_the_records_takes_the_rules_too(scheduler: Scheduler) -> None:
    opening_hours(scheduler)
    other = Scheduler(scheduler.context, 'other room', 'Europe/Zurich')
    kept = opening_hours(other)
    scheduler.extinguish_managed_records()
    assert scheduler.rules() == [] and scheduler.managed_allocations().count() == 0
    assert other.rules() == [kept]
