"""Parsing and expanding rules in naive local time, and the DST rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from libres.db.rules.recurrence import Recurrence, count_of, localise, normalised_text, parse, rule_text
from libres.modules.errors import InvalidAllocationError, InvalidRuleError

START = datetime(2031, 3, 28, 8)


def test_text_is_normalised_and_round_trips() -> None:
    assert normalised_text(' rrule:freq=weekly; byday=mo,fr ') == 'FREQ=WEEKLY;BYDAY=MO,FR'
    parsed = parse('FREQ=MONTHLY;BYDAY=1MO,-1FR;COUNT=4', START)
    assert rule_text(parsed) == 'FREQ=MONTHLY;COUNT=4;BYDAY=+1MO,-1FR'
    assert count_of(parsed) == 4 and count_of(parse('FREQ=DAILY', START)) is None


@pytest.mark.parametrize('text', [
    'FREQ=FORTNIGHTLY', 'BYDAY=MO', 'FREQ=DAILY;DTSTART=20310101T000000', 'FREQ=DAILY\nRDATE:20310101',
    'FREQ=DAILY;COUNT=x', 'FREQ=WEEKLY;BYDAY=XX', 'FREQ=DAILY;UNTIL=20310101T000000Z', 42,
])
def test_invalid_rules_are_the_library_error(text: object) -> None:
    with pytest.raises(InvalidRuleError) as raised:
        parse(text, START)  # type: ignore[arg-type]
    assert isinstance(raised.value, InvalidAllocationError)  # caught where allocations are


def test_the_gap_moves_forward_and_the_repeated_hour_is_the_first() -> None:
    zone = 'Europe/Zurich'
    assert localise(datetime(2031, 3, 30, 2, 30), zone) == datetime(2031, 3, 30, 1, 30, tzinfo=UTC)
    assert localise(datetime(2031, 10, 26, 2, 30), zone) == datetime(2031, 10, 26, 0, 30, tzinfo=UTC)
    assert localise(datetime(2031, 3, 9, 2, 30), 'America/New_York') == datetime(2031, 3, 9, 7, 30,
                                                                                  tzinfo=UTC)


def test_eight_stays_eight_across_the_change() -> None:
    recurrence = Recurrence.of('FREQ=DAILY', START, START.replace(hour=18), 'Europe/Zurich',
                               exceptions=[date(2031, 3, 29)])
    found = recurrence.occurrences(START, START + timedelta(days=4))
    assert [o.local_start.day for o in found] == [28, 30, 31]
    assert [o.start.hour for o in found] == [7, 6, 6]  # UTC: 08:00 CET, then 08:00 CEST
    assert all(o.end - o.start == timedelta(hours=10) for o in found)


def test_rules_without_occurrences_or_overlapping_ones_are_refused() -> None:
    with pytest.raises(InvalidRuleError, match='end after'):
        Recurrence.of('FREQ=DAILY', START, START, 'UTC')
    with pytest.raises(InvalidRuleError, match='naive'):
        Recurrence.of('FREQ=DAILY', START.replace(tzinfo=UTC), START.replace(hour=9), 'UTC')
    with pytest.raises(InvalidRuleError, match='no occurrence'):
        Recurrence.of('FREQ=DAILY;COUNT=1', START, START.replace(hour=9), 'UTC',
                      exceptions=[START.date()]).require_valid()
    with pytest.raises(InvalidRuleError, match='overlap'):
        Recurrence.of('FREQ=MINUTELY;INTERVAL=30', START, START.replace(hour=9), 'UTC').require_valid()
