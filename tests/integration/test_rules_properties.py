"""Property tests: a rule's allocations are exactly dateutil's expansion,
localised in the zone one occurrence at a time (fold=0), across DST."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libres.context.core import Context
from libres.db.scheduler import Scheduler
from libres.modules import errors

ZONES = ('Europe/Zurich', 'America/New_York')
WEEKDAYS = ('MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU')
ONE_MICROSECOND = timedelta(microseconds=1)


@st.composite
def rules(draw: st.DrawFn) -> tuple[str, datetime, timedelta, timedelta]:
    """RRULE text, first start (naive, near a DST change), duration, horizon."""
    freq = draw(st.sampled_from(['DAILY', 'WEEKLY', 'MONTHLY', 'YEARLY']))
    parts = [f'FREQ={freq}', f'INTERVAL={draw(st.integers(1, 3))}']
    if freq == 'WEEKLY' or (freq == 'DAILY' and draw(st.booleans())):
        days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=4, unique=True))
        parts.append('BYDAY=' + ','.join(days))
    elif freq in ('MONTHLY', 'YEARLY'):
        kind = draw(st.sampled_from(['position', 'monthday', 'none']))
        if kind == 'position':
            positions = draw(st.lists(
                st.tuples(st.sampled_from([1, 2, 3, -1, -2]), st.sampled_from(WEEKDAYS)),
                min_size=1, max_size=2, unique=True))
            parts.append('BYDAY=' + ','.join(f'{n}{day}' for n, day in positions))
        elif kind == 'monthday':
            days = draw(st.lists(st.one_of(st.integers(1, 28), st.integers(-28, -1)), min_size=1, max_size=3,
                                 unique=True))
            parts.append('BYMONTHDAY=' + ','.join(map(str, days)))
        if freq == 'YEARLY' or draw(st.booleans()):
            months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True))
            parts.append('BYMONTH=' + ','.join(map(str, sorted(months))))
    start_day = draw(st.sampled_from([date(2031, 2, 20), date(2031, 3, 20), date(2031, 10, 20),
                                      date(2031, 11, 1)]))
    start = datetime.combine(start_day, datetime.min.time()).replace(
        hour=draw(st.integers(0, 14)), minute=draw(st.sampled_from([0, 15, 30, 45])))
    end_limit = draw(st.sampled_from(['none', 'count', 'until']))
    if end_limit == 'count':
        parts.append(f'COUNT={draw(st.integers(1, 30))}')
    elif end_limit == 'until':
        until = start + timedelta(days=draw(st.integers(0, 200)))
        parts.append(f'UNTIL={until:%Y%m%dT%H%M%S}')
    duration = timedelta(minutes=15 * draw(st.integers(1, 36)))  # at most 9 h: one per day
    horizon = timedelta(days=draw(st.integers(20, 120)))
    return ';'.join(parts), start, duration, horizon


def expected(text: str, start: datetime, duration: timedelta, zone: str, after: datetime,
             before: datetime, excepted: set[date]) -> list[tuple[datetime, datetime]]:
    """dateutil's occurrences in [after, before), each localised with fold=0."""
    tz = ZoneInfo(zone)
    spans = []
    for moment in rrulestr(text, dtstart=start):
        if moment >= before:
            break
        if moment < after or moment.date() in excepted:
            continue
        begin = moment.replace(tzinfo=tz, fold=0).astimezone(UTC)
        end = (moment + duration).replace(tzinfo=tz, fold=0).astimezone(UTC)
        if end > begin:
            spans.append((begin, end))
    return spans


def stored(scheduler: Scheduler, rule_id: uuid.UUID) -> list[tuple[datetime, datetime]]:
    return [(a.start, a.end + ONE_MICROSECOND) for a in scheduler.allocations_by_rule(rule_id)]


@pytest.mark.filterwarnings('ignore::hypothesis.errors.NonInteractiveExampleWarning')
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(rule=rules(), zone=st.sampled_from(ZONES), exception_picks=st.lists(st.integers(0, 40), max_size=3),
       extra=st.integers(1, 200))
def test_allocations_are_the_localised_expansion_and_extending_twice_changes_nothing(
    context: Context, rule: tuple[str, datetime, timedelta, timedelta], zone: str,
    exception_picks: list[int], extra: int,
) -> None:
    text, start, duration, horizon = rule
    scheduler = Scheduler(context, f'room-{uuid.uuid4().hex[:8]}', zone)
    try:
        every: list[datetime] = list(cast(Any, rrulestr(text, dtstart=start))[:41])
        excepted = {every[i].date() for i in exception_picks if i < len(every)}
        if not any(moment.date() not in excepted for moment in every):
            with pytest.raises(errors.InvalidRuleError, match='no occurrence'):
                scheduler.add_rule(text, start, start + duration, horizon=horizon, raster=15,
                                   exceptions=excepted)
            assert scheduler.managed_allocations().count() == 0 and scheduler.rules() == []
            return

        made = scheduler.add_rule(text, start, start + duration, horizon=horizon, raster=15,
                                  exceptions=excepted)
        reach = start + horizon
        assert stored(scheduler, made.id) == expected(text, start, duration, zone, start, reach, excepted)

        later = reach + timedelta(days=extra)
        created = scheduler.extend_rules(until=later)
        spans = expected(text, start, duration, zone, start, later, excepted)
        assert stored(scheduler, made.id) == spans
        assert created == len(spans) - len(expected(text, start, duration, zone, start, reach, excepted))
        assert scheduler.extend_rules(until=later) == 0
        assert scheduler.extend_rules() == 0
        assert stored(scheduler, made.id) == spans
        # none overlap, and every one carries the rule
        assert all(a[1] <= b[0] for a, b in pairwise(spans))
        tags = {a.data['rule'] for a in scheduler.allocations_by_rule(made.id)}
        assert tags == ({made.id.hex} if spans else set())
    finally:
        scheduler.rollback()
