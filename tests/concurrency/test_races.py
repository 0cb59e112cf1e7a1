"""Eight processes race on one database through the public API.

Every scenario ends with exact counts and a clean integrity check.
"""

from __future__ import annotations

import multiprocessing
import random
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from libres import integrity
from libres.db.models import Reservation, ReservedSlot
from libres.db.scheduler import Scheduler
from tests.concurrency import workers

pytestmark = pytest.mark.concurrency
PROCESSES = 8


def race(jobs: list[tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]]) -> list[dict[str, Any]]:
    spawn = multiprocessing.get_context('spawn')
    with ProcessPoolExecutor(max_workers=len(jobs), mp_context=spawn) as pool:
        futures = [pool.submit(function, *args) for function, args in jobs]
        results = [future.result(timeout=300) for future in futures]
    operations = sum(len(r['booked']) + r['refused'] + r.get('exhausted', 0) for r in results)
    print(f"race: {len(jobs)} processes, {operations} operations, {sum(r['retries'] for r in results)} "
          f"conflicts retried, {sum(r['refused'] for r in results)} refused by the library, "
          f"{sum(r.get('exhausted', 0) for r in results)} gave up")
    return results


def fresh(scheduler: Scheduler) -> Scheduler:
    """Forget the snapshot this process took before the race."""
    scheduler.rollback()
    return scheduler


def assert_clean(dsn: str) -> None:
    engine = sa.create_engine(dsn, poolclass=sa.pool.NullPool)
    with Session(engine) as session:
        report = integrity.check(session)
    engine.dispose()
    assert report.clean, report.render()


def test_quota_one_allocations_are_booked_once_each(racing: Scheduler, dsn: str) -> None:
    spans = workers.hours(24)
    racing.allocate(spans)
    racing.commit()
    results = race([(workers.book, (dsn, 'hall', list(spans), seed)) for seed in range(PROCESSES)])
    fresh(racing)
    booked = sum(len(r['booked']) for r in results)
    assert booked == 24
    assert sum(r['refused'] for r in results) == PROCESSES * 24 - 24
    assert racing.managed_reserved_slots().count() == 24
    assert racing.managed_reservations().filter(Reservation.status == 'approved').count() == 24
    assert_clean(dsn)


def test_quota_twenty_with_forty_attempts(racing: Scheduler, dsn: str) -> None:
    span = workers.hours(1)
    [master] = racing.allocate(span, quota=20)
    racing.commit()
    results = race([(workers.book, (dsn, 'hall', span * 5, seed)) for seed in range(PROCESSES)])
    fresh(racing)
    assert sum(len(r['booked']) for r in results) == 20
    assert sum(r['refused'] for r in results) == 20
    assert racing.allocation_by_id(master.id).quota_left == 0
    slots = racing.managed_reserved_slots().all()
    assert len(slots) == 20 and len({s.resource for s in slots}) == 20
    assert_clean(dsn)


def test_random_overlapping_spans_never_share_a_slot(racing: Scheduler, dsn: str) -> None:
    day = workers.DAY
    racing.allocate((day.replace(hour=8), day.replace(hour=20)), partly_available=True, raster=15)
    racing.commit()
    rng = random.Random(7)
    jobs = []
    for seed in range(PROCESSES):
        spans = []
        for _ in range(6):
            start = day.replace(hour=8) + timedelta(minutes=15 * rng.randrange(0, 44))
            spans.append((start, start + timedelta(minutes=15 * rng.randrange(1, 5))))
        jobs.append((workers.book, (dsn, 'hall', spans, seed)))
    results = race(jobs)
    fresh(racing)
    approved = racing.managed_reservations().filter(Reservation.status == 'approved').all()
    assert len(approved) == sum(len(r['booked']) for r in results) > 0
    slots = racing.managed_reserved_slots().all()
    assert len({s.start for s in slots}) == len(slots)
    spans = [(r.start, r.end) for r in approved if r.start is not None and r.end is not None]
    assert len(spans) == len(approved)
    expected = sum(int((end - start + timedelta(microseconds=1)) / timedelta(minutes=15)) for start, end in spans)
    assert len(slots) == expected
    assert_clean(dsn)


def test_blockers_while_others_reserve(racing: Scheduler, dsn: str) -> None:
    spans = workers.hours(16)
    racing.allocate(spans, quota=2)
    racing.commit()
    jobs: list[tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]] = [
        (workers.book, (dsn, 'hall', list(spans), seed)) for seed in range(PROCESSES - 2)
    ]
    jobs += [(workers.block, (dsn, 'hall', list(spans), 100 + n)) for n in range(2)]
    results = race(jobs)
    fresh(racing)
    blocked = sum(len(r['booked']) for r in results[-2:])
    booked = sum(len(r['booked']) for r in results[:-2])
    slots = racing.managed_reserved_slots().all()
    blocker_slots = [s for s in slots if s.source_type == 'blocker']
    # A blocker takes both spots of a span; bookings fill the rest.
    assert len(blocker_slots) == 2 * blocked
    assert booked + len(blocker_slots) == len(slots) <= 32
    assert len(slots) == 32
    assert_clean(dsn)


def test_quota_shrinks_while_others_reserve(racing: Scheduler, dsn: str) -> None:
    span = workers.hours(1)
    [master] = racing.allocate(span, quota=12)
    racing.commit()
    jobs: list[tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]] = [
        (workers.book, (dsn, 'hall', span * 3, seed)) for seed in range(PROCESSES - 1)
    ]
    jobs.append((workers.shrink, (dsn, 'hall', master.id, [10, 8, 6])))
    results = race(jobs)
    fresh(racing)
    quota = racing.allocation_by_id(master.id).quota
    slots = racing.session.query(ReservedSlot).all()
    assert len(slots) <= quota
    assert len({s.resource for s in slots}) == len(slots)
    booked = sum(len(r['booked']) for r in results[:-1])
    assert booked == len(slots)
    assert_clean(dsn)


def test_moves_and_removals_while_others_reserve(racing: Scheduler, dsn: str) -> None:
    spans = [(s, s + timedelta(minutes=30)) for s, _ in workers.hours(12)]
    allocations = racing.allocate(spans, partly_available=True, raster=30)
    ids = [a.id for a in allocations]
    racing.commit()
    jobs: list[tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]] = [
        (workers.book, (dsn, 'hall', list(spans), seed)) for seed in range(PROCESSES - 1)
    ]
    jobs.append((workers.move_and_remove, (dsn, 'hall', ids, 99)))
    results = race(jobs)
    fresh(racing)
    admin = results[-1]
    left = racing.managed_allocations().all()
    # An allocation goes only if nobody booked it; a booked one stays where it was.
    assert len(left) == 12 - admin['booked'].count('removed')
    slots = racing.managed_reserved_slots().all()
    assert len(slots) == len({s.allocation_id for s in slots}) == sum(len(r['booked']) for r in results[:-1])
    for allocation in left:
        assert all(allocation.start <= s.start and s.end <= allocation.end for s in allocation.reserved_slots)
    assert_clean(dsn)


def test_a_cart_confirmed_while_its_session_expires(racing: Scheduler, dsn: str) -> None:
    outcomes = []
    for round_ in range(4):
        span = workers.hours(1, workers.DAY + timedelta(days=round_))
        racing.allocate(span)
        cart_id = uuid.uuid4()
        token = racing.reserve('buyer@example.org', span, session_id=cart_id)
        racing.commit()
        results = race([
            (workers.cart, (dsn, 'hall', span[0], str(cart_id), True)),
            (workers.cart, (dsn, 'hall', span[0], str(cart_id), False)),
        ])
        fresh(racing)
        confirmed = results[0]['booked'] == ['confirmed']
        rows = racing.reservations_by_token(token).all()
        if confirmed:
            # Confirmed first: the reservation survives, approved, out of the cart.
            assert [(r.status, r.session_id) for r in rows] == [('approved', None)]
        else:
            # Expired first: nothing is left, and confirming found nothing.
            assert rows == [] and results[0]['refused'] == 1
        outcomes.append(confirmed)
        assert_clean(dsn)
    assert len(outcomes) == 4
