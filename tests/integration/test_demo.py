"""The demo (``make demo``) on every weekday, across DST changes and month ends.

The demo takes its dates from one starting day (``--today``); these tests
name the days themselves, so they do not depend on the day they run on.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from libres import demo

# Every weekday (2031-03-17 is a Monday); the last two book on the day
# Zurich moves its clocks forward (30 March) and at the month end (31 March).
EVERY_WEEKDAY = [date(2031, 3, 17) + timedelta(days=n) for n in range(8)]
# Booking on 26 October 2031, the day Zurich moves its clocks back.
AUTUMN_DST = date(2031, 10, 19)


def _assert_three_stories(out: str) -> None:
    assert '✓ alice@example.org books 09:00–10:30' in out
    assert '✗ bob@example.org books 10:00–11:00: refused, AlreadyReservedError' in out
    assert 'Waiting list: 3 applications' in out
    assert '✗ staff approve finn@example.org: refused' in out
    assert 'Places left: 0, waiting list: 0' in out
    assert 'Course: 3 Wednesday afternoons' in out
    assert '✓ dana@example.org enrols for the whole course' in out
    assert '✗ hana@example.org enrols for the whole course: refused' in out
    assert '✗ hugo@example.org buys 3: refused, QuotaOverLimit' in out
    assert 'Tickets left: 1 of 5' in out
    assert '1 session removed' in out
    # The cart holds the last ticket until its hold expires (issue 16).
    assert 'jo@example.org puts the last ticket in the cart' in out and 'held until' in out
    assert '✗ kim@example.org buys 1: refused, AlreadyReservedError' in out
    assert '✓ kim@example.org buys 1' in out
    assert '✗ jo@example.org checks out: refused, AlreadyReservedError' in out
    assert '✓ facility management blocks 12:00–13:00 (cleaning)' in out
    assert '✗ dave@example.org books 12:30–13:30: refused' in out
    assert '✓ alice@example.org moves to 15:00–16:30 (same id and token)' in out
    assert '✓ the hall adds two chairs: quota 5 → 7' in out
    assert '✗ the hall tries to go back to 5 seats: refused, AffectedReservationError' in out
    assert 'Rule: weekdays 08:00–12:00, 10 allocations made' in out
    assert "that day's allocation is gone" in out
    assert '09:00–13:00 (the rule is split in two)' in out


@pytest.mark.parametrize('today', [*EVERY_WEEKDAY, AUTUMN_DST], ids=lambda d: f'{d:%a-%Y-%m-%d}')
def test_demo_tells_the_three_stories(
    today: date, clean_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo.main(['--dsn', clean_database, '--today', today.isoformat()]) == 0
    _assert_three_stories(capsys.readouterr().out)


def test_a_second_run_starts_from_a_clean_slate(
    clean_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        assert demo.main(['--dsn', clean_database, '--today', '2031-03-19']) == 0
        _assert_three_stories(capsys.readouterr().out)


@pytest.mark.parametrize('today', [*EVERY_WEEKDAY, AUTUMN_DST])
def test_the_course_never_meets_the_nursery_day(today: date) -> None:
    days = demo.DemoDays(today)
    assert [d.weekday() for d in days.course] == [2, 2, 2]
    assert days.nursery < days.course[0] <= days.nursery + timedelta(days=7)
