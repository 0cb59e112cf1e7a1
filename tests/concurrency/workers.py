"""Worker processes for the concurrency suite (imported by spawned children)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import libres
from libres.db.scheduler import Scheduler
from libres.modules import errors
from libres.retry import RetriesExhausted, run_with_retries

DAY = datetime(2032, 1, 5)


def _scheduler(dsn: str, name: str) -> Scheduler:
    context = libres.registry.get_context('race', autocreate=True)
    context.set_setting('dsn', dsn)
    return Scheduler(context, name, 'UTC')


def book(dsn: str, name: str, spans: list[tuple[datetime, datetime]], seed: int,
         quota: int = 1, attempts: int = 30, backoff: float = 0.02) -> dict[str, Any]:
    """Try to reserve and approve every span (in a shuffled order)."""
    scheduler = _scheduler(dsn, name)
    random.Random(seed).shuffle(spans)
    result: dict[str, Any] = {'booked': [], 'refused': 0, 'retries': 0, 'exhausted': 0}

    def count_retry(attempt: int, error: BaseException) -> None:
        result['retries'] += 1

    for span in spans:
        def unit(span: tuple[datetime, datetime] = span) -> str:
            token = scheduler.reserve(f'worker{seed}@example.org', span, quota=quota)
            scheduler.approve_reservations(token)
            scheduler.commit()
            return str(token)

        try:
            result['booked'].append(run_with_retries(
                scheduler, unit, attempts=attempts, backoff=backoff, on_retry=count_retry))
        except RetriesExhausted:
            result['exhausted'] += 1
        except errors.LibresError:
            scheduler.rollback()
            result['refused'] += 1
    scheduler.close()
    scheduler.session_provider.stop_service()
    return result


def block(dsn: str, name: str, spans: list[tuple[datetime, datetime]], seed: int) -> dict[str, Any]:
    """Try to block every span, as an administrator would."""
    scheduler = _scheduler(dsn, name)
    result: dict[str, Any] = {'booked': [], 'refused': 0, 'retries': 0}

    def count_retry(attempt: int, error: BaseException) -> None:
        result['retries'] += 1

    for span in spans:
        def unit(span: tuple[datetime, datetime] = span) -> str:
            [blocker] = scheduler.add_blocker(span, reason=f'admin {seed}')
            scheduler.commit()
            return str(blocker.token)

        try:
            result['booked'].append(run_with_retries(scheduler, unit, attempts=30, on_retry=count_retry))
        except errors.LibresError:
            scheduler.rollback()
            result['refused'] += 1
    scheduler.session_provider.stop_service()
    return result


def shrink(dsn: str, name: str, allocation_id: int, quotas: list[int]) -> dict[str, Any]:
    """Lower the quota step by step while others book."""
    scheduler = _scheduler(dsn, name)
    result: dict[str, Any] = {'booked': [], 'refused': 0, 'retries': 0}

    def count_retry(attempt: int, error: BaseException) -> None:
        result['retries'] += 1

    for quota in quotas:
        def unit(quota: int = quota) -> int:
            scheduler.change_quota(scheduler.allocation_by_id(allocation_id), quota)
            scheduler.commit()
            return quota

        try:
            result['booked'].append(run_with_retries(scheduler, unit, attempts=30, on_retry=count_retry))
        except errors.LibresError:
            scheduler.rollback()
            result['refused'] += 1
    scheduler.session_provider.stop_service()
    return result


def hours(n: int, start: datetime = DAY) -> list[tuple[datetime, datetime]]:
    return [(start + timedelta(hours=i), start + timedelta(hours=i + 1)) for i in range(n)]


def move_and_remove(dsn: str, name: str, allocation_ids: list[int], seed: int) -> dict[str, Any]:
    """Move every allocation one hour later, then remove it, while others book."""
    scheduler = _scheduler(dsn, name)
    result: dict[str, Any] = {'booked': [], 'refused': 0, 'retries': 0, 'exhausted': 0}

    def count_retry(attempt: int, error: BaseException) -> None:
        result['retries'] += 1

    for allocation_id in allocation_ids:
        def move(allocation_id: int = allocation_id) -> str:
            allocation = scheduler.allocation_by_id(allocation_id)
            scheduler.move_allocation(allocation_id, allocation.start + timedelta(minutes=30),
                                      allocation.end + timedelta(minutes=30))
            scheduler.commit()
            return 'moved'

        def remove(allocation_id: int = allocation_id) -> str:
            scheduler.remove_allocation(allocation_id)
            scheduler.commit()
            return 'removed'

        for unit in (move, remove):
            try:
                result['booked'].append(run_with_retries(scheduler, unit, attempts=30, on_retry=count_retry))
            except errors.LibresError:
                scheduler.rollback()
                result['refused'] += 1
    scheduler.session_provider.stop_service()
    return result


def cart(dsn: str, name: str, span: tuple[datetime, datetime], session_id: str, confirm: bool) -> dict[str, Any]:
    """Either confirm a cart or expire every cart, racing each other."""
    import uuid

    scheduler = _scheduler(dsn, name)
    result: dict[str, Any] = {'booked': [], 'refused': 0, 'retries': 0, 'exhausted': 0}

    def count_retry(attempt: int, error: BaseException) -> None:
        result['retries'] += 1

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

    try:
        result['booked'].append(run_with_retries(scheduler, unit, attempts=30, on_retry=count_retry))
    except errors.LibresError:
        scheduler.rollback()
        result['refused'] += 1
    scheduler.session_provider.stop_service()
    return result
