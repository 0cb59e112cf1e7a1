"""How many statements a booking costs: fixed, whatever the data around it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text
from tests.helpers import captured_statements

from libres.db.scheduler import Scheduler
from libres.modules import errors


@contextmanager
def counted(scheduler: Scheduler) -> Iterator[list[str]]:
    """Every statement the scheduler's engine sends, COMMIT included."""
    kinds: list[str] = []
    with captured_statements(scheduler, commits=True) as sent:
        try:
            yield kinds
        finally:
            kinds.extend(sent.kinds)


def book(scheduler: Scheduler, start: datetime, end: datetime) -> list[str]:
    with counted(scheduler) as sent:
        token = scheduler.reserve('guest@example.org', (start, end))
        scheduler.approve_reservations(token)
        scheduler.commit()
    return sent


def test_reserve_approve_commit_takes_four_statements(scheduler: Scheduler) -> None:
    day = datetime(2030, 5, 1)
    scheduler.allocate((day.replace(hour=8), day.replace(hour=18)), partly_available=True, raster=15)
    scheduler.commit()
    counts = [len(book(scheduler, day.replace(hour=h), day.replace(hour=h + 1))) for h in range(8, 18)]
    # Masters with slot starts and a new id; INSERT reservation; INSERT slots
    # (one multi-row statement); COMMIT. The token was made in this session
    # and not flushed, so it needs no lookup, and nothing ran in between, so
    # the approval reuses what reserve read.
    assert counts == [4] * 10
    assert len(scheduler.managed_reserved_slots().all()) == 40


def test_quota_tickets_cost_the_same_for_the_last_mirror_as_for_the_first(scheduler: Scheduler) -> None:
    start, end = datetime(2030, 6, 1, 19), datetime(2030, 6, 1, 22)
    scheduler.allocate((start, end), quota=60)
    scheduler.commit()
    counts = [len(book(scheduler, start, end)) for _ in range(60)]
    # The first ticket takes the master; every later one writes a new mirror
    # and costs the same, however many mirrors exist.
    assert len(set(counts[1:])) == 1, counts
    # Masters with a new id; free spots; INSERT mirror; INSERT reservation;
    # INSERT slots; COMMIT. The approval reuses both reads of reserve.
    assert counts[1] == 6, counts
    assert scheduler.free_allocations_count(scheduler.allocation_by_date(start, end), start, end) == 0
    assert len(scheduler.managed_reserved_slots().all()) == 60


def test_a_full_quota_refuses_the_next_ticket_without_writing(scheduler: Scheduler) -> None:
    start, end = datetime(2030, 6, 1, 19), datetime(2030, 6, 1, 22)
    scheduler.allocate((start, end), quota=3)
    for _ in range(3):
        scheduler.approve_reservations(scheduler.reserve('a@example.org', (start, end)))
    scheduler.commit()
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.reserve('late@example.org', (start, end))
    scheduler.rollback()
    # Two tickets at once need two free spots.
    first = scheduler.managed_reservations().first()
    assert first is not None
    scheduler.remove_reservation(first.token)
    scheduler.commit()
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.reserve('pair@example.org', (start, end), quota=2)
    scheduler.rollback()
    assert scheduler.managed_reservations().count() == 2


def test_approving_a_stored_token_looks_it_up(scheduler: Scheduler) -> None:
    """Reserved in one transaction, approved in the next: the rows are read."""
    day = datetime(2030, 5, 1)
    scheduler.allocate((day.replace(hour=8), day.replace(hour=18)), partly_available=True, raster=15)
    token = scheduler.reserve('guest@example.org', (day.replace(hour=9), day.replace(hour=10)))
    scheduler.commit()
    with counted(scheduler) as sent:
        slots = scheduler.approve_reservations(token)
        scheduler.commit()
    # Reservations of the token; masters with slot starts; UPDATE status;
    # INSERT slots; COMMIT.
    assert len(sent) == 5, sent
    assert len(slots) == 4
    assert scheduler.reservations_by_token(token).one().status == 'approved'


def test_a_fresh_token_flushed_early_is_still_found(scheduler: Scheduler) -> None:
    day = datetime(2030, 5, 1)
    scheduler.allocate((day.replace(hour=8), day.replace(hour=18)), partly_available=True, raster=15)
    token = scheduler.reserve('guest@example.org', (day.replace(hour=9), day.replace(hour=10)))
    scheduler.session.flush()
    assert len(scheduler.approve_reservations(token)) == 4
    scheduler.commit()
    assert scheduler.reservations_by_token(token).one().status == 'approved'


def test_approving_a_group_costs_the_same_for_three_dates_as_for_six(scheduler: Scheduler) -> None:
    def approve_group(days: int, month: int) -> list[str]:
        members = scheduler.allocate(
            [(datetime(2030, month, d, 10), datetime(2030, month, d, 11)) for d in range(1, days + 1)],
            grouped=True,
        )
        token = scheduler.reserve('group@example.org', group=members[0].group)
        scheduler.commit()
        with counted(scheduler) as sent:
            assert len(scheduler.approve_reservations(token)) == days
            scheduler.commit()
        return sent

    # One query for the masters of every date, not one per date.
    assert len(approve_group(3, month=7)) == len(approve_group(6, month=8))


def test_a_batch_that_overlaps_nothing_is_one_statement(scheduler: Scheduler) -> None:
    week = [(datetime(2033, 3, 7, h), datetime(2033, 3, 7, h + 1)) for h in range(8, 18)]
    scheduler.allocate(week[:5])
    with counted(scheduler) as sent:
        added = scheduler.allocate(week[5:])
    assert sent == ['INSERT']  # the overlap check rides in the insert
    assert [a.display_start().hour for a in added] == [13, 14, 15, 16, 17]


def test_an_overlapping_batch_is_looked_at_and_writes_nothing(scheduler: Scheduler) -> None:
    day = [(datetime(2033, 3, 8, h), datetime(2033, 3, 8, h + 1)) for h in range(8, 12)]
    scheduler.allocate(day[1:2])
    scheduler.commit()
    with counted(scheduler) as sent, pytest.raises(errors.OverlappingAllocationError):
        scheduler.allocate(day)
    assert sent == ['INSERT', 'SELECT']  # the guarded insert wrote nothing; then the overlap query
    assert len(scheduler.managed_allocations().all()) == 1

    added = scheduler.allocate(day, skip_overlapping=True)
    assert [a.display_start().hour for a in added] == [8, 10, 11]
    assert len(scheduler.managed_allocations().all()) == 4


def test_a_statement_between_reserve_and_approve_makes_the_approval_read_again(
    scheduler: Scheduler,
) -> None:
    day = datetime(2030, 5, 2)
    scheduler.allocate((day.replace(hour=8), day.replace(hour=18)), partly_available=True, raster=15)
    scheduler.commit()
    token = scheduler.reserve('guest@example.org', (day.replace(hour=9), day.replace(hour=10)))
    with scheduler.session.no_autoflush:  # a flush would store the row: another path
        scheduler.session.execute(select(1))
    with counted(scheduler) as sent:
        slots = scheduler.approve_reservations(token)
        scheduler.commit()
    assert sent == ['SELECT', 'INSERT', 'INSERT', 'COMMIT']  # the masters read again
    assert len(slots) == 4


def test_a_slot_taken_between_reserve_and_approve_is_refused(scheduler: Scheduler) -> None:
    day = datetime(2030, 5, 3)
    scheduler.allocate((day.replace(hour=8), day.replace(hour=18)), partly_available=True, raster=15)
    scheduler.commit()
    hour = (day.replace(hour=9), day.replace(hour=10))
    first = scheduler.reserve('first@example.org', hour)
    # The same hour, reserved and approved in the same session in between:
    # what reserve read for the first token no longer holds.
    scheduler.approve_reservations(scheduler.reserve('second@example.org', hour))
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.approve_reservations(first)
    scheduler.commit()
    assert {r.email for r in scheduler.managed_reservations() if r.status == 'approved'} == {
        'second@example.org'
    }
    assert len(scheduler.managed_reserved_slots().all()) == 4


def test_an_approval_after_commit_does_not_reuse_the_old_read(scheduler: Scheduler) -> None:
    day = datetime(2030, 5, 4)
    scheduler.allocate((day.replace(hour=8), day.replace(hour=18)), partly_available=True, raster=15)
    scheduler.commit()
    token = scheduler.reserve('guest@example.org', (day.replace(hour=9), day.replace(hour=10)))
    scheduler.commit()
    with counted(scheduler) as sent:
        scheduler.approve_reservations(token)
    assert sent.count('SELECT') == 2  # the token's rows, then the masters


def test_a_write_without_flush_between_reserve_and_approve_is_seen(scheduler: Scheduler) -> None:
    day = datetime(2030, 5, 5)
    allocation = scheduler.allocate(
        (day.replace(hour=8), day.replace(hour=18)), partly_available=True, raster=15
    )[0]
    scheduler.commit()
    token = scheduler.reserve('guest@example.org', (day.replace(hour=9), day.replace(hour=10)))
    with scheduler.session.no_autoflush:  # the pending row stays unsaved
        scheduler.session.execute(text("""
            WITH blocker AS (
                INSERT INTO reservation_blockers (token, target, target_type, resource, created)
                VALUES (gen_random_uuid(), gen_random_uuid(), 'group', :resource, now())
                RETURNING id, token
            )
            INSERT INTO reserved_slots (resource, start, "end", allocation_id, source_type,
                reservation_token, source_id, created)
            SELECT :resource, :start, :start + interval '15 minutes' - interval '1 microsecond',
                :allocation, 'blocker', blocker.token, blocker.id, now()
            FROM blocker
        """), {'resource': allocation.resource, 'allocation': allocation.id,
               'start': (allocation._start + timedelta(hours=1, minutes=15)).replace(tzinfo=None)})
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.approve_reservations(token)
    scheduler.rollback()


def test_a_span_widened_by_the_raster_is_read_again(scheduler: Scheduler) -> None:
    day = datetime(2030, 5, 6)
    scheduler.allocate((day.replace(hour=8), day.replace(hour=18)), partly_available=True, raster=15)
    scheduler.commit()
    # 9:05-9:50 books 9:00-10:00: more than reserve read, so it is read again.
    sent = book(scheduler, day.replace(hour=9, minute=5), day.replace(hour=9, minute=50))
    assert sent == ['SELECT', 'SELECT', 'INSERT', 'INSERT', 'COMMIT']
    assert len(scheduler.managed_reserved_slots().all()) == 4


def test_tickets_reserved_together_and_approved_in_reverse_get_their_own_spots(
    scheduler: Scheduler,
) -> None:
    start, end = datetime(2030, 6, 2, 19), datetime(2030, 6, 2, 22)
    scheduler.allocate((start, end), quota=5)
    scheduler.approve_reservations(scheduler.reserve('first@example.org', (start, end)))
    scheduler.commit()
    early = scheduler.reserve('early@example.org', (start, end))
    late = scheduler.reserve('late@example.org', (start, end))
    # The late ticket is approved first and takes the first free mirror, so
    # what reserve read for the early one no longer holds.
    late_spot = {slot.resource for slot in scheduler.approve_reservations(late)}
    early_spot = {slot.resource for slot in scheduler.approve_reservations(early)}
    scheduler.commit()
    assert len(late_spot) == len(early_spot) == 1 and late_spot != early_spot
    master = scheduler.allocation_by_date(start, end)
    assert scheduler.free_allocations_count(master, start, end) == 2


def test_taking_the_id_early_skips_no_reservation_ids(scheduler: Scheduler) -> None:
    day = datetime(2030, 5, 7)
    scheduler.allocate((day.replace(hour=8), day.replace(hour=18)), partly_available=True, raster=15)
    scheduler.commit()
    # Reserved only, approved at once, reserved for a later approval: every
    # row keeps the id its reserve took, none is skipped.
    scheduler.reserve('waiting@example.org', (day.replace(hour=8), day.replace(hour=9)))
    scheduler.approve_reservations(
        scheduler.reserve('now@example.org', (day.replace(hour=9), day.replace(hour=10)))
    )
    later = scheduler.reserve('later@example.org', (day.replace(hour=10), day.replace(hour=11)))
    scheduler.commit()
    scheduler.approve_reservations(later)
    scheduler.commit()
    ids = sorted(r.id for r in scheduler.managed_reservations())
    assert ids == list(range(ids[0], ids[0] + 3))


def test_a_calendar_read_costs_two_statements_however_many_allocations(scheduler: Scheduler) -> None:
    first = datetime(2030, 9, 2)
    hours = [(first + timedelta(hours=h), first + timedelta(hours=h + 1)) for h in range(24 * 21)]
    scheduler.allocate(hours, partly_available=True, raster=15)
    token = scheduler.reserve('a@example.org', (hours[10][0], hours[10][0] + timedelta(minutes=30)))
    scheduler.approve_reservations(token)
    scheduler.commit()
    start, end = scheduler._prepare_range(hours[0][0], hours[-1][1])
    with captured_statements(scheduler) as sent:
        rows = list(scheduler.queries.allocations_with_availability_by_range(start, end, scheduler.resource, []))
    # The allocations, then the slots of the range: no load of each one's slots.
    assert sent.kinds == ['SELECT', 'WITH']
    assert len(rows) == len(hours)
    assert sorted(availability for _, availability, _ in rows)[:2] == [50.0, 100.0]


def test_a_search_reads_its_objects_with_their_group_sizes(scheduler: Scheduler) -> None:
    first = datetime(2030, 10, 7)
    hours = [(first + timedelta(hours=h), first + timedelta(hours=h + 1)) for h in range(24 * 14)]
    scheduler.allocate(hours)
    later = first + timedelta(days=20)
    pair = scheduler.allocate([(later.replace(hour=9), later.replace(hour=9, minute=30)),
                               (later.replace(hour=10), later.replace(hour=10, minute=30))], grouped=True)
    scheduler.commit()
    group = pair[0].group
    windows = {
        'narrow': (first.replace(hour=9), later.replace(hour=11)),
        'wide': (first, later.replace(hour=23, minute=59)),
    }
    for name, (start, end) in windows.items():
        with captured_statements(scheduler) as sent:
            found = scheduler.search_allocations(start, end, strict=True)
        # A narrow window leaves the other rows in the database; either way
        # the objects come with their group sizes: no statement per group
        # (strict: the other members of a group found are not looked up).
        assert len(sent.kinds) == 1, (name, sent.kinds)
        assert len(found) == (14 * 2 + 2 if name == 'narrow' else 14 * 24 + 2), name
        assert [a.group for a in found].count(group) == 2
        assert all(a.in_group == (a.group == group) for a in found)
        # Only the grouped pair, as `groups=` picks by the same sizes.
        assert {a.id for a in scheduler.search_allocations(start, end, groups='yes', strict=True)} == {
            a.id for a in pair}
        scheduler.commit()
