"""Making a rule's allocations up to a point in (naive local) time.

Two extensions of one resource at once must not make an occurrence twice.
Each rule operation first takes a transaction-level advisory lock of the
resource, then reads its rules ``FOR UPDATE``. A second transaction that
waited for the lock with an older snapshot is refused by PostgreSQL with a
serialization failure (SQLSTATE 40001) as soon as it reads a rule the first
one changed; :func:`libres.retry.run_with_retries` runs it again, and the
fresh attempt finds the work done. The allocations' exclusion constraint
(no two overlapping allocations per resource) is the last line: a duplicate
occurrence cannot exist in the database at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from libres.db.models import Allocation
from libres.db.rules.model import AllocationRule
from libres.db.rules.recurrence import MAX_HORIZON, Occurrence, Recurrence, require_apart
from libres.modules.dates import get_timezone, utcnow
from libres.modules.errors import InvalidRuleError

# The advisory lock space of rules (two-key form; other libres locks use one key).
LOCK_CLASS = 0x6C72


class RuleScheduler(Protocol):
    """What the rules need of a scheduler: its public API only."""

    name: str
    timezone: str
    context: Any

    @property
    def session(self) -> Session: ...

    @property
    def resource(self) -> uuid.UUID: ...

    def allocate(self, dates: Any, partly_available: bool = ..., raster: int = ...,
                 whole_day: bool = ..., quota: int | None = ..., quota_limit: int = ...,
                 grouped: bool = ..., data: dict[str, Any] | None = ...,
                 approve_manually: bool = ..., skip_overlapping: bool = ...,
                 buffer_before: timedelta | None = ..., buffer_after: timedelta | None = ...,
                 min_notice: timedelta | None = ..., max_advance: timedelta | None = ...,
                 ) -> list[Allocation]: ...


@dataclass
class Extension:
    """What an extension did: allocations made, occurrences skipped because
    something overlapped them."""

    created: int = 0
    skipped: int = 0

    def __add__(self, other: Extension) -> Extension:
        return Extension(self.created + other.created, self.skipped + other.skipped)


def lock_resource(session: Session, resource: uuid.UUID) -> None:
    """Serialise rule operations on one resource until the transaction ends."""
    session.execute(select(func.pg_advisory_xact_lock(LOCK_CLASS, func.hashtext(str(resource)))))


def locked_rules(session: Session, resource: uuid.UUID, ids: Sequence[uuid.UUID] | None = None
                 ) -> list[AllocationRule]:
    """The resource's rules (or those of ``ids``), locked, freshly read."""
    query = select(AllocationRule).where(AllocationRule.resource == resource)
    if ids is not None:
        query = query.where(AllocationRule.id.in_(list(ids)))
    return list(session.scalars(
        query.order_by(AllocationRule.start, AllocationRule.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ))


def local_now(timezone: str) -> datetime:
    return utcnow().astimezone(get_timezone(timezone)).replace(tzinfo=None)


def as_local(value: date | datetime, timezone: str) -> datetime:
    """Naive local time; a date means its end (the next midnight)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(get_timezone(timezone)).replace(tzinfo=None)
        return value
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), time())
    raise InvalidRuleError(f'expected a date or datetime, got {value!r}')


def horizon_end(rule: AllocationRule, now: datetime) -> datetime:
    """Allocations should exist up to the horizon after now, or after the
    rule's start if it starts later."""
    return max(now, rule.start) + rule.horizon


def require_within_limit(rule: AllocationRule, until: datetime, now: datetime) -> None:
    if until > max(now, rule.start) + MAX_HORIZON:
        raise InvalidRuleError(f'{until} is more than ten years ahead')


def recurrence_of(rule: AllocationRule) -> Recurrence:
    return Recurrence.of(rule.rrule, rule.start, rule.end, rule.timezone, rule.exceptions or ())


def _apart_in_time(occurrences: list[Occurrence]) -> tuple[list[Occurrence], int]:
    """Drop occurrences the DST gap moved onto an earlier one (counted)."""
    kept: list[Occurrence] = []
    dropped = 0
    for occurrence in sorted(occurrences, key=lambda o: o.start):
        if kept and occurrence.start < kept[-1].end:
            dropped += 1
        else:
            kept.append(occurrence)
    return kept, dropped


def extend_rule(scheduler: RuleScheduler, rule: AllocationRule, until: datetime) -> Extension:
    """Make the rule's occurrences from where it stopped up to ``until``
    (naive local, exclusive). Occurrences that overlap an allocation are
    skipped and counted. The caller holds the resource lock."""
    if rule.stopped or until <= rule.generated_until:
        nothing = rule.last_extension = Extension()
        return nothing
    recurrence = recurrence_of(rule)
    occurrences = recurrence.occurrences(rule.generated_until, until)
    require_apart([o.local_start for o in occurrences], recurrence.duration)
    occurrences, dropped = _apart_in_time(occurrences)
    made: list[Allocation] = []
    if occurrences:
        made = scheduler.allocate(
            [(o.start, o.end) for o in occurrences],
            partly_available=rule.partly_available,
            raster=rule.raster,
            quota=rule.quota,
            quota_limit=rule.quota_limit,
            data={**(rule.data or {}), 'rule': rule.hex},
            approve_manually=rule.approve_manually,
            skip_overlapping=True,
            buffer_before=rule.buffer_before,
            buffer_after=rule.buffer_after,
            min_notice=rule.min_notice,
            max_advance=rule.max_advance,
        )
    rule.generated_until = until
    done = rule.last_extension = Extension(len(made), len(occurrences) - len(made) + dropped)
    return done
