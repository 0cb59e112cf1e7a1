from __future__ import annotations

import threading
from datetime import datetime

import pytest
import sqlalchemy as sa

from libres.db.scheduler import Scheduler
from libres.modules import errors
from libres.retry import RetriesExhausted, is_retryable, run_with_retries, with_retries

SPAN = (datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 11))


def test_serialization_failures_are_retried(scheduler: Scheduler) -> None:
    scheduler.allocate(SPAN)
    scheduler.commit()
    calls = []

    def book() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.OperationalError('COMMIT', {}, _FakeError('40001'))
        token = scheduler.reserve('a@example.org', SPAN)
        slots = scheduler.approve_reservations(token)
        scheduler.commit()
        return len(slots)

    assert run_with_retries(scheduler, book, backoff=0) == 1
    assert len(calls) == 2


class _FakeError(Exception):
    def __init__(self, sqlstate: str, constraint: str | None = None) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate
        self.diag = type('Diag', (), {'constraint_name': constraint})()


def test_what_counts_as_retryable() -> None:
    def wrap(orig: Exception) -> sa.exc.DBAPIError:
        return sa.exc.DBAPIError('SELECT 1', {}, orig)

    assert is_retryable(wrap(_FakeError('40001')))
    assert is_retryable(wrap(_FakeError('40P01')))
    assert is_retryable(wrap(_FakeError('23505', 'reserved_slots_pkey')))
    assert not is_retryable(wrap(_FakeError('23505', 'resource_start_ix')))
    assert not is_retryable(wrap(_FakeError('23514')))
    assert not is_retryable(errors.AlreadyReservedError())
    assert not is_retryable(ValueError())


def test_attempts_run_out_with_the_cause_attached(scheduler: Scheduler) -> None:
    failure = sa.exc.OperationalError('COMMIT', {}, _FakeError('40001'))
    rolled_back = []

    class Target:
        def rollback(self) -> None:
            rolled_back.append(1)

    def always() -> None:
        raise failure

    with pytest.raises(RetriesExhausted) as info:
        run_with_retries(Target(), always, attempts=3, backoff=0)
    assert info.value.attempts == 3 and info.value.__cause__ is failure
    assert len(rolled_back) == 3
    with pytest.raises(ValueError):
        run_with_retries(Target(), always, attempts=0)


def test_library_errors_are_not_retried(scheduler: Scheduler) -> None:
    scheduler.allocate(SPAN)
    scheduler.approve_reservations(scheduler.reserve('a@example.org', SPAN))
    scheduler.commit()
    calls = []

    @with_retries(scheduler, backoff=0)
    def book(email: str) -> None:
        calls.append(email)
        scheduler.approve_reservations(scheduler.reserve(email, SPAN))
        scheduler.commit()

    with pytest.raises(errors.AlreadyReservedError):
        book('b@example.org')
    assert calls == ['b@example.org']


def test_a_real_collision_is_retried_then_refused(scheduler: Scheduler) -> None:
    scheduler.allocate(SPAN)
    scheduler.commit()
    attempts: list[str] = []

    def competitor() -> None:
        # Same scheduler, another thread: another session and connection.
        scheduler.approve_reservations(scheduler.reserve('fast@example.org', SPAN))
        scheduler.commit()
        scheduler.close()

    calls: list[int] = []

    def book() -> None:
        calls.append(1)
        token = scheduler.reserve('slow@example.org', SPAN)  # sees a free slot
        if not attempts:
            thread = threading.Thread(target=competitor)
            thread.start()
            thread.join()
        attempts.append('try')
        scheduler.approve_reservations(token)
        scheduler.commit()

    with pytest.raises(errors.AlreadyReservedError):
        run_with_retries(scheduler, book, backoff=0)
    # The first attempt collided in the database, the second saw the booking.
    assert attempts == ['try'] and len(calls) == 2
    assert scheduler.managed_reserved_slots().count() == 1


def test_connection_failures_are_retryable() -> None:
    def operational(orig: Exception) -> sa.exc.OperationalError:
        return sa.exc.OperationalError('SELECT 1', {}, orig)

    assert is_retryable(operational(_FakeError('57P01')))
    assert is_retryable(operational(_FakeError('08006')))
    assert is_retryable(operational(Exception('connection refused')))
    assert not is_retryable(sa.exc.ProgrammingError('SELECT 1', {}, _FakeError('42601')))
