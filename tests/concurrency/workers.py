"""Worker processes for the concurrency suite (imported by spawned children)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import libres
from libres.db.scheduler import Scheduler
from libres.modules import errors
from libres.retry import RetriesExhausted, run_with_retries

DAY = datetime(2032, 1, 5)
Span = tuple[datetime, datetime]


def _scheduler(dsn: str, name: str) -> Scheduler:
    context = libres.registry.get_context('race', autocreate=True)
    context.set_setting('dsn', dsn)
    return Scheduler(context, name, 'UTC')


def _attempt_all(scheduler: Scheduler, units: Iterable[Callable[[], Any]], attempts: int = 30,
                 backoff: float = 0.02) -> dict[str, Any]:
    """Run each unit through the retry helper and count what happened."""
    result: dict[str, Any] = {'booked': [], 'refused': 0, 'retries': 0, 'exhausted': 0}

    def count_retry(attempt: int, error: BaseException) -> None:
        result['retries'] += 1

    for unit in units:
        try:
            result['booked'].append(run_with_retries(
                scheduler, unit, attempts=attempts, backoff=backoff, on_retry=count_retry))
        except RetriesExhausted:
            result['exhausted'] += 1
        except errors.LibresError:
            scheduler.rollback()
            result['refused'] += 1
    scheduler.session_provider.stop_service()
    return result


def book(dsn: str, name: str, spans: list[Span], seed: int, quota: int = 1, attempts: int = 30,
         backoff: float = 0.02) -> dict[str, Any]:
    """Try to reserve and approve every span (in a shuffled order)."""
    scheduler = _scheduler(dsn, name)
    random.Random(seed).shuffle(spans)

    def unit(span: Span) -> str:
        token = scheduler.reserve(f'worker{seed}@example.org', span, quota=quota)
        scheduler.approve_reservations(token)
        scheduler.commit()
        return str(token)

    return _attempt_all(scheduler, (partial(unit, span) for span in spans), attempts, backoff)


def block(dsn: str, name: str, spans: list[Span], seed: int) -> dict[str, Any]:
    """Try to block every span, as an administrator would."""
    scheduler = _scheduler(dsn, name)

    def unit(span: Span) -> str:
        [blocker] = scheduler.add_blocker(span, reason=f'admin {seed}')
        scheduler.commit()
        return str(blocker.token)

    return _attempt_all(scheduler, (partial(unit, span) for span in spans))


def shrink(dsn: str, name: str, allocation_id: int, quotas: list[int]) -> dict[str, Any]:
    """Lower the quota step by step while others book."""
    scheduler = _scheduler(dsn, name)

    def unit(quota: int) -> int:
        scheduler.change_quota(scheduler.allocation_by_id(allocation_id), quota)
        scheduler.commit()
        return quota

    return _attempt_all(scheduler, (partial(unit, quota) for quota in quotas))


def move_and_remove(dsn: str, name: str, allocation_ids: list[int], seed: int) -> dict[str, Any]:
    """Move every allocation half an hour later, then remove it, while others book."""
    scheduler = _scheduler(dsn, name)

    def move(allocation_id: int) -> str:
        allocation = scheduler.allocation_by_id(allocation_id)
        scheduler.move_allocation(allocation_id, allocation.start + timedelta(minutes=30),
                                  allocation.end + timedelta(minutes=30))
        scheduler.commit()
        return 'moved'

    def remove(allocation_id: int) -> str:
        scheduler.remove_allocation(allocation_id)
        scheduler.commit()
        return 'removed'

    units = [lambda i=i, step=step: step(i) for i in allocation_ids for step in (move, remove)]
    return _attempt_all(scheduler, units)


def cart(dsn: str, name: str, span: Span, session_id: str, confirm: bool) -> dict[str, Any]:
    """Either confirm a cart (and approve it) or expire every cart, racing each other."""
    scheduler = _scheduler(dsn, name)

    def unit() -> str:
        if confirm:
            scheduler.queries.confirm_reservations_for_session(uuid.UUID(session_id))
            for reservation in scheduler.managed_reservations().filter_by(status='pending'):
                scheduler.approve_reservations(reservation.token)
            scheduler.commit()
            return 'confirmed'
        expired = scheduler.queries.remove_expired_reservation_sessions(datetime(2100, 1, 1))
        scheduler.commit()
        return f'expired {len(expired)}'

    return _attempt_all(scheduler, [unit])


def hours(n: int, start: datetime = DAY) -> list[Span]:
    return [(start + timedelta(hours=i), start + timedelta(hours=i + 1)) for i in range(n)]
