"""The hot queries read through indexes, not through every row (EXPLAIN)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from tests.helpers import captured_statements, explain_reads

from libres.db.scheduler import Scheduler


def plans_of(scheduler: Scheduler, action: Any) -> list[str]:
    """EXPLAIN of every SELECT the action sends, run afterwards with its parameters."""
    return [plan for _, plan in explain_reads(scheduler, action)]


def test_booking_reads_allocations_and_slots_through_indexes(scheduler: Scheduler) -> None:
    first = datetime(2031, 1, 1, tzinfo=UTC)
    for week in range(12):
        start = first + timedelta(days=7 * week)
        scheduler.allocate([(start + timedelta(hours=h), start + timedelta(hours=h + 1)) for h in range(168)])
    scheduler.commit()
    with scheduler.session.get_bind().engine.connect() as connection:
        # Every other hour booked, written directly: the plans need rows, not history.
        connection.execute(sa.text("""
            INSERT INTO reservations (token, target, target_type, type, resource, start, "end",
                timezone, status, email, quota, created)
            SELECT gen_random_uuid(), "group", 'allocation', 'generic', resource, _start, _end,
                timezone, 'approved', 'b@example.org', 1, now()
            FROM allocations WHERE id % 2 = 0
        """))
        connection.execute(sa.text("""
            INSERT INTO reserved_slots (resource, start, "end", allocation_id, source_type,
                reservation_token, source_id, created)
            SELECT a.resource, a._start, a._end, a.id, 'reservation', r.token, r.id, now()
            FROM reservations r JOIN allocations a ON a."group" = r.target
        """))
        connection.execute(sa.text('ANALYZE allocations, reservations, reserved_slots'))
        connection.commit()

    free = scheduler.session.execute(
        sa.text('SELECT _start FROM allocations WHERE id % 2 = 1 ORDER BY id OFFSET 500 LIMIT 1')
    ).scalar_one()
    hour = free.replace(tzinfo=UTC)

    def book() -> None:
        scheduler.approve_reservations(scheduler.reserve('a@example.org', (hour, hour + timedelta(hours=1))))

    plans = plans_of(scheduler, book)
    assert len(plans) == 1  # the masters, read by reserve and reused by the approval
    for plan in plans:
        assert 'Seq Scan' not in plan, plan
        assert 'allocations_no_overlap' in plan, plan  # the GiST index of (resource, span)
    scheduler.rollback()

    token = scheduler.reserve('c@example.org', (hour, hour + timedelta(hours=1)))
    scheduler.commit()
    plans = plans_of(scheduler, lambda: scheduler.approve_reservations(token))
    assert len(plans) == 2  # the token's reservations, the masters
    assert 'ix_reservations_token' in plans[0], plans[0]
    assert all('Seq Scan' not in plan for plan in plans), plans


def test_a_new_batch_checks_overlaps_through_the_gist_index(scheduler: Scheduler) -> None:
    first = datetime(2032, 1, 1, tzinfo=UTC)
    for week in range(12):
        start = first + timedelta(days=7 * week)
        scheduler.allocate([(start + timedelta(hours=h), start + timedelta(hours=h + 1)) for h in range(168)])
    scheduler.session.execute(sa.text('ANALYZE allocations'))
    scheduler.commit()
    with captured_statements(scheduler) as sent:
        start = first + timedelta(days=7 * 12)
        scheduler.allocate([(start + timedelta(hours=h), start + timedelta(hours=h + 1)) for h in range(168)])
    scheduler.rollback()
    assert len(sent) == 1
    cursor = scheduler.session.connection().connection.cursor()
    cursor.execute('EXPLAIN ' + sent[0][0], sent[0][1])
    plan = '\n'.join(row[0] for row in cursor.fetchall())
    assert 'allocations_no_overlap' in plan, plan
    assert 'Seq Scan' not in plan, plan
