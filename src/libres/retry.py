"""Re-run a unit of work when PostgreSQL asks for it.

Under SERIALIZABLE isolation a transaction may be refused because another
one got there first (SQLSTATE 40001), two may deadlock (40P01), two
bookings of one slot may collide on its primary key, or the connection may
drop. None of these is a bug: the answer is to roll back and run the whole
unit again, which then sees the other transaction's result (and, say,
refuses the booking with ``AlreadyReservedError``)::

    from libres.retry import run_with_retries

    def book() -> list[ReservedSlot]:
        token = scheduler.reserve(email, dates)
        slots = scheduler.approve_reservations(token)
        scheduler.commit()
        return slots

    slots = run_with_retries(scheduler, book)

or as a decorator, ``@with_retries(scheduler)``. The unit must contain the
commit, since a serialization failure may only show there.

A connection lost during COMMIT leaves it open whether the commit took
effect; the next attempt then finds the booking made and is refused
(``AlreadyReservedError``), never books twice.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from libres.modules.errors import InvalidArgument, LibresError

P = ParamSpec('P')
T = TypeVar('T')

RETRYABLE_SQLSTATES = frozenset({'40001', '40P01'})
# Terminated by an administrator, server shutting down or starting up.
CONNECTION_SQLSTATES = frozenset({'57P01', '57P02', '57P03'})
SLOT_KEY = 'reserved_slots_pkey'


class Rollbackable(Protocol):
    def rollback(self) -> None: ...


class RetriesExhausted(LibresError):
    """The unit of work kept conflicting; ``__cause__`` is the last failure."""

    def __init__(self, attempts: int, last_error: BaseException) -> None:
        super().__init__(attempts, last_error)
        self.attempts = attempts
        self.last_error = last_error

    def __str__(self) -> str:
        return f'gave up after {self.attempts} attempts: {type(self.last_error).__name__}'


def is_retryable(error: BaseException) -> bool:
    """True for conflicts that a fresh attempt can resolve.

    A library error translated from a database error (``ReservedSlotTaken``
    for a slot-key collision) is judged by the database error: it carries
    its ``orig``, and it is chained as the ``__cause__``."""
    if not isinstance(error, DBAPIError):
        cause = error.__cause__
        if isinstance(error, LibresError) and isinstance(cause, DBAPIError):
            return is_retryable(cause)
        return False
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, 'sqlstate', None) or getattr(error.orig, 'pgcode', None)
    if sqlstate in RETRYABLE_SQLSTATES or sqlstate in CONNECTION_SQLSTATES:
        return True
    if isinstance(error, OperationalError) and (sqlstate is None or sqlstate.startswith('08')):
        # No connection could be made (the server is restarting, say).
        return True
    if sqlstate == '23505':
        diag = getattr(error.orig, 'diag', None)
        return getattr(diag, 'constraint_name', None) == SLOT_KEY
    return False


def run_with_retries(
    target: Rollbackable,
    work: Callable[[], T],
    attempts: int = 5,
    backoff: float = 0.02,
    max_backoff: float = 1.0,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """Run ``work`` until it succeeds, rolling ``target`` back between attempts.

    Waits a random time between attempts (exponential backoff with full
    jitter, so racing clients spread out). Errors that a retry cannot fix
    are raised at once; after ``attempts`` failures, :class:`RetriesExhausted`.
    ``on_retry(attempt, error)`` is called before each new attempt (to log or
    count conflicts).
    """
    if attempts < 1:
        raise InvalidArgument('attempts must be at least 1')
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except Exception as error:
            try:
                target.rollback()
            except Exception as rollback_error:
                # Without a server there is nothing to roll back; anything
                # else is a real problem.
                if not is_retryable(rollback_error):
                    raise
            if not is_retryable(error):
                raise
            if attempt == attempts:
                raise RetriesExhausted(attempts, error) from error
            if on_retry is not None:
                on_retry(attempt, error)
            time.sleep(random.uniform(0, min(max_backoff, backoff * 2 ** (attempt - 1))))
    raise AssertionError('unreachable')  # pragma: no cover


def with_retries(
    target: Rollbackable, attempts: int = 5, backoff: float = 0.02, max_backoff: float = 1.0
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorator form of :func:`run_with_retries`."""

    def decorate(function: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return run_with_retries(
                target, lambda: function(*args, **kwargs), attempts, backoff, max_backoff
            )

        return wrapper

    return decorate


__all__: Any = ('RetriesExhausted', 'is_retryable', 'run_with_retries', 'with_retries')
