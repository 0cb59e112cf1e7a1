"""Extending the rules of every resource in a database (what cron runs).

Each rule row names its context, scheduler and zone, so the scheduler is
rebuilt from the database alone. Every resource is one transaction, retried
on serialization failures: a run that races another one, or a host
application, ends with each occurrence made once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from libres.context.core import Context
from libres.context.registry import Registry, create_default_registry
from libres.db import migrate
from libres.db.rules.model import AllocationRule
from libres.db.scheduler import Scheduler
from libres.modules.errors import LibresError
from libres.retry import RetriesExhausted, run_with_retries


class Owner(NamedTuple):
    """Who a set of rules belongs to."""

    context: str
    scheduler: str
    timezone: str
    resource: uuid.UUID


@dataclass
class Outcome:
    owner: Owner
    created: int = 0
    retries: int = 0
    error: str | None = None


def owners(dsn: str) -> list[Owner]:
    """Every resource with a rule still running, in a stable order."""
    engine = migrate.engine_for(dsn)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(AllocationRule.context, AllocationRule.scheduler, AllocationRule.timezone,
                       AllocationRule.resource)
                .where(AllocationRule.stopped.is_(False))
                .distinct()
                .order_by(AllocationRule.context, AllocationRule.scheduler, AllocationRule.timezone)
            )
            return [Owner(*row) for row in rows]
    finally:
        engine.dispose()


def _extend_one(scheduler: Scheduler, until: date | datetime | None, outcome: Outcome) -> None:
    def unit() -> int:
        created = scheduler.extend_rules(until)
        scheduler.commit()
        return created

    def count(attempt: int, error: BaseException) -> None:
        outcome.retries += 1

    try:
        outcome.created = run_with_retries(scheduler, unit, attempts=10, on_retry=count)
    except RetriesExhausted as error:
        outcome.error = str(error)
    except LibresError as error:
        scheduler.rollback()
        outcome.error = f'{type(error).__name__}: {error}'


def extend_all(
    dsn: str, until: date | datetime | None = None, found: list[Owner] | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> Iterator[Outcome]:
    """Extend every resource's rules; yields one outcome per resource."""
    registry = create_default_registry()
    contexts: dict[str, Context] = {}
    try:
        yield from _each(registry, contexts, dsn, until, found, progress)
    finally:
        for context in contexts.values():
            context.get_service('session_provider').stop_service()


def _each(
    registry: Registry, contexts: dict[str, Context], dsn: str, until: date | datetime | None,
    found: list[Owner] | None, progress: Callable[[Outcome], None] | None,
) -> Iterator[Outcome]:
    for owner in found if found is not None else owners(dsn):
        context = contexts.get(owner.context)
        if context is None:
            # A registry of its own: the names are the application's, not ours.
            context = contexts[owner.context] = registry.register_context(owner.context, replace=True)
            context.set_setting('dsn', dsn)
        scheduler = Scheduler(context, owner.scheduler, owner.timezone)
        outcome = Outcome(owner)
        if scheduler.resource != owner.resource:
            # The application derives its resources in its own way.
            outcome.error = 'the rule was made by a scheduler with another UUID generator'
        else:
            _extend_one(scheduler, until, outcome)
        if progress is not None:
            progress(outcome)
        yield outcome
