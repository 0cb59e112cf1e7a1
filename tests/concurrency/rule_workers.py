"""Worker processes extending rules at once (imported by spawned children)."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import libres
from libres.db.scheduler import Scheduler
from libres.retry import run_with_retries


def extend(dsn: str, names: list[str], until: date, start_at: float) -> dict[str, Any]:
    """Extend the rules of every named resource, starting all together."""
    context = libres.registry.get_context('race', autocreate=True)
    context.set_setting('dsn', dsn)
    result: dict[str, Any] = {'created': 0, 'retries': 0}

    def count(attempt: int, error: BaseException) -> None:
        result['retries'] += 1

    # Line up with the other workers: the race is the point.
    time.sleep(max(0.0, start_at - time.time()))
    for name in names:
        scheduler = Scheduler(context, name, 'Europe/Zurich')

        def unit(scheduler: Scheduler = scheduler) -> int:
            created = scheduler.extend_rules(until)
            scheduler.commit()
            return created

        result['created'] += run_with_retries(scheduler, unit, attempts=20, on_retry=count)
    context.get_service('session_provider').stop_service()
    return result
