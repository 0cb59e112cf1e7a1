"""The rule operations of one scheduler: add, list, extend, except a day,
change from a date on, stop, delete.

Nothing booked is ever deleted or changed by them (see
:mod:`libres.db.rules.allocations` for what counts as booked): a day with
a booking cannot be excepted, and a change or a deletion keeps booked
occurrences. Every check runs before the first write, so bad input leaves
the database as it was.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import takewhile
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from libres.context.core import missing
from libres.db.booking.policies import checked_policies
from libres.db.models import Allocation
from libres.db.rules import allocations as rule_allocations
from libres.db.rules.extension import (
    Extension,
    RuleScheduler,
    as_local,
    extend_rule,
    horizon_end,
    local_now,
    lock_resource,
    locked_rules,
    recurrence_of,
    require_within_limit,
)
from libres.db.rules.model import AllocationRule
from libres.db.rules.recurrence import (
    MAX_HORIZON,
    Recurrence,
    count_of,
    localise,
    normalised_text,
    parse,
    rule_text,
)
from libres.modules import errors
from libres.modules.rasterizer import is_valid_raster

DEFAULT_HORIZON = timedelta(days=90)
POLICY_COLUMNS = ('buffer_before', 'buffer_after', 'min_notice', 'max_advance')


@dataclass
class RuleChange:
    """What :meth:`RuleBook.change` did.

    ``old`` is the rule up to the day before the change (None if it had no
    occurrence before it and was removed), ``new`` the rule from then on;
    ``retagged`` the booked allocations that now belong to ``new``;
    ``removed`` how many unbooked occurrences were deleted to be made anew.
    """

    old: AllocationRule | None
    new: AllocationRule
    retagged: list[Allocation] = field(default_factory=list)
    removed: int = 0
    extension: Extension = field(default_factory=Extension)


def _rule_id(value: Any) -> uuid.UUID:
    if isinstance(value, AllocationRule):
        return value.id
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise errors.UnknownRuleError(value) from None


def _whole_number(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise errors.InvalidRuleError(
            f'the {name} must be a whole number of at least {minimum}, got {value!r}')
    return value


def _checked_options(options: dict[str, Any]) -> dict[str, Any]:
    """The allocation options of a rule, checked (missing ones left out)."""
    checked = dict(options)
    if 'quota' in checked:
        _whole_number('quota', checked['quota'], 1)
    if 'quota_limit' in checked:
        _whole_number('quota limit', checked['quota_limit'], 0)
    if 'raster' in checked and not is_valid_raster(checked['raster']):
        raise errors.InvalidRuleError(f'invalid raster {checked["raster"]!r}: use 5, 10, 15, 30 or 60')
    if any(name in checked for name in POLICY_COLUMNS):
        # Refused here, with the allocations' own rules, before the rule is written.
        checked_policies(
            checked.get('buffer_before'), checked.get('buffer_after'), checked.get('min_notice'),
            checked.get('max_advance'), checked.get('raster', 5), checked.get('partly_available', False),
        )
    if 'data' in checked:
        data = checked['data']
        if data is not None and not isinstance(data, dict):
            raise errors.InvalidRuleError(f'data must be a dict, got {type(data).__name__}')
        checked['data'] = dict(data or {})
    return checked


def _checked_horizon(horizon: Any) -> timedelta:
    if not isinstance(horizon, timedelta) or horizon <= timedelta(0):
        raise errors.InvalidRuleError(f'the horizon must be a positive timedelta, got {horizon!r}')
    if horizon > MAX_HORIZON:
        raise errors.InvalidRuleError(f'the horizon is at most ten years, got {horizon.days} days')
    return horizon


def _first_occurrence(
    start: date | datetime, end: date | datetime, whole_day: bool, timezone: str
) -> tuple[datetime, datetime]:
    """Naive local start and end; whole days run from midnight to midnight."""
    if whole_day:
        first = start.date() if isinstance(start, datetime) else start
        last = end.date() if isinstance(end, datetime) else end
        if not isinstance(first, date) or not isinstance(last, date):
            raise errors.InvalidRuleError('give the first day as dates or datetimes')
        if last < first:
            raise errors.InvalidRuleError(f'the occurrence must end after it starts ({first} – {last})')
        return datetime.combine(first, time()), datetime.combine(last + timedelta(days=1), time())
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        raise errors.InvalidRuleError('give the first occurrence as datetimes (or set whole_day)')
    return as_local(start, timezone), as_local(end, timezone)


class RuleBook:
    """The rules of one scheduler's resource."""

    def __init__(self, scheduler: RuleScheduler) -> None:
        self.scheduler = scheduler

    @property
    def session(self) -> Session:
        return self.scheduler.session

    def _now(self) -> datetime:
        return local_now(self.scheduler.timezone)

    def _locked(self, rule_id: Any) -> AllocationRule:
        identifier = _rule_id(rule_id)
        lock_resource(self.session, self.scheduler.resource)
        found = locked_rules(self.session, self.scheduler.resource, [identifier])
        if not found:
            raise errors.UnknownRuleError(rule_id)
        return found[0]

    # --- reading --------------------------------------------------------------

    def all(self) -> list[AllocationRule]:
        return list(self.session.scalars(
            select(AllocationRule).where(AllocationRule.resource == self.scheduler.resource)
            .order_by(AllocationRule.start, AllocationRule.id)
        ))

    def get(self, rule_id: Any) -> AllocationRule:
        identifier = _rule_id(rule_id)
        rule = self.session.scalars(select(AllocationRule).where(
            AllocationRule.id == identifier, AllocationRule.resource == self.scheduler.resource
        )).first()
        if rule is None:
            raise errors.UnknownRuleError(rule_id)
        return rule

    def allocations(self, rule_id: Any) -> list[Allocation]:
        """The master allocations the rule made, by start."""
        rule = self.get(rule_id)
        return [a for a, _ in rule_allocations.masters(self.session, self.scheduler.resource, rule.hex)]

    # --- writing --------------------------------------------------------------

    def add(
        self, rrule: str, start: date | datetime, end: date | datetime,
        horizon: timedelta = DEFAULT_HORIZON, whole_day: bool = False,
        exceptions: Any = (), **options: Any,
    ) -> AllocationRule:
        zone = self.scheduler.timezone
        local_start, local_end = _first_occurrence(start, end, whole_day, zone)
        checked = _checked_options(options)
        horizon = _checked_horizon(horizon)
        excepted = sorted(set(exceptions))
        if not all(isinstance(day, date) and not isinstance(day, datetime) for day in excepted):
            raise errors.InvalidRuleError(f'exceptions must be dates, got {excepted!r}')
        recurrence = Recurrence.of(rrule, local_start, local_end, zone, excepted)
        recurrence.require_valid()
        rule = AllocationRule(
            id=uuid.uuid4(), resource=self.scheduler.resource, context=self.scheduler.context.name,
            scheduler=self.scheduler.name, timezone=zone, rrule=rule_text(recurrence.rule),
            start=local_start, end=local_end, whole_day=whole_day, horizon=horizon,
            exceptions=excepted, generated_until=local_start, stopped=False,
            **{'quota': 1, 'quota_limit': 0, 'partly_available': False, 'raster': 5,
               'approve_manually': False, 'data': {}, **checked},
        )
        lock_resource(self.session, self.scheduler.resource)
        self.session.add(rule)
        extend_rule(self.scheduler, rule, horizon_end(rule, self._now()))
        return rule

    def extend(self, until: date | datetime | None = None) -> Extension:
        """Make every rule's allocations up to ``until`` (a date: its end) or,
        without it, up to each rule's horizon."""
        now = self._now()
        target = None if until is None else as_local(until, self.scheduler.timezone)
        lock_resource(self.session, self.scheduler.resource)
        rules = locked_rules(self.session, self.scheduler.resource)
        if target is not None:
            for rule in rules:
                require_within_limit(rule, target, now)
        total = Extension()
        for rule in rules:
            total += extend_rule(self.scheduler, rule, target or horizon_end(rule, now))
        return total

    def add_exception(self, rule_id: Any, day: date) -> int:
        """Leave out the rule's occurrence on ``day``; return how many
        allocations went (0 if there was none yet)."""
        if not isinstance(day, date) or isinstance(day, datetime):
            raise errors.InvalidRuleError(f'an exception is a date, got {day!r}')
        rule = self._locked(rule_id)
        start = localise(datetime.combine(day, time()), rule.timezone)
        end = localise(datetime.combine(day + timedelta(days=1), time()), rule.timezone)
        found = rule_allocations.masters(self.session, self.scheduler.resource, rule.hex, start, end)
        for allocation, is_booked in found:
            if is_booked:
                raise errors.AffectedReservationError(rule_allocations.holder(self.session, allocation))
        rule_allocations.remove_unbooked(self.session, self.scheduler.resource, [a.group for a, _ in found])
        if day not in (rule.exceptions or []):
            rule.exceptions = sorted([*(rule.exceptions or []), day])
        return len(found)

    def stop(self, rule_id: Any) -> AllocationRule:
        rule = self._locked(rule_id)
        rule.stopped = True
        return rule

    def delete(self, rule_id: Any) -> tuple[int, int]:
        rule = self._locked(rule_id)
        found = rule_allocations.masters(self.session, self.scheduler.resource, rule.hex)
        unbooked = [a.group for a, is_booked in found if not is_booked]
        rule_allocations.remove_unbooked(self.session, self.scheduler.resource, unbooked)
        self.session.delete(rule)
        return len(unbooked), len(found) - len(unbooked)

    def delete_all(self) -> None:
        """Remove every rule of the resource (its allocations are left alone)."""
        self.session.execute(
            delete(AllocationRule).where(AllocationRule.resource == self.scheduler.resource)
            .execution_options(synchronize_session='fetch')
        )

    def change(
        self, rule_id: Any, effective_from: date, rrule: str | None = None,
        start_time: time | None = None, end_time: time | None = None,
        horizon: timedelta | None = None, data: Any = missing, **options: Any,
    ) -> RuleChange:
        if not isinstance(effective_from, date) or isinstance(effective_from, datetime):
            raise errors.InvalidRuleError(f'effective_from is a date, got {effective_from!r}')
        if data is not missing:
            options['data'] = data
        checked = _checked_options(options)
        old = self._locked(rule_id)
        if old.stopped:
            raise errors.InvalidRuleError('the rule is stopped: add a new rule instead of changing it')
        new_horizon = _checked_horizon(horizon if horizon is not None else old.horizon)
        cut = datetime.combine(effective_from, time())
        old_recurrence = recurrence_of(old)
        before = list(takewhile(lambda moment: moment < cut, old_recurrence.rule))
        new_start, new_end, new_text = self._successor(
            old, old_recurrence, cut, before, rrule, start_time, end_time)
        excepted = sorted(day for day in (old.exceptions or []) if day >= effective_from)
        successor = Recurrence.of(new_text, new_start, new_end, old.timezone, excepted)
        successor.require_valid()

        # Checks done; from here on, writes.
        utc_cut = localise(cut, old.timezone)
        found = rule_allocations.masters(self.session, self.scheduler.resource, old.hex, utc_cut)
        booked = [a for a, is_booked in found if is_booked]
        unbooked = [a.group for a, is_booked in found if not is_booked]
        values = {column: getattr(old, column) for column in (
            'quota', 'quota_limit', 'partly_available', 'raster', 'approve_manually', 'data',
            *POLICY_COLUMNS)}
        values.update(checked)
        new = AllocationRule(
            id=uuid.uuid4(), resource=old.resource, context=old.context, scheduler=old.scheduler,
            timezone=old.timezone, rrule=rule_text(successor.rule), start=new_start, end=new_end,
            whole_day=old.whole_day, horizon=new_horizon, exceptions=excepted,
            generated_until=new_start, stopped=False, **values,
        )
        rule_allocations.remove_unbooked(self.session, self.scheduler.resource, unbooked)
        rule_allocations.retag(self.session, self.scheduler.resource, [a.group for a in booked], new.hex)
        reach = max(old.generated_until, horizon_end(new, self._now()))
        kept_old: AllocationRule | None = old
        if before:
            count = count_of(old_recurrence.rule)
            until = before[-1] if count is not None else cut - timedelta(seconds=1)
            old.rrule = rule_text(old_recurrence.rule.replace(count=None, until=until))
            old.generated_until = min(old.generated_until, cut)
        else:
            self.session.delete(old)
            kept_old = None
        self.session.add(new)
        extension = extend_rule(self.scheduler, new, reach)
        return RuleChange(kept_old, new, booked, len(unbooked), extension)

    @staticmethod
    def _successor(
        old: AllocationRule, old_recurrence: Recurrence, cut: datetime, before: list[datetime],
        rrule: str | None, start_time: time | None, end_time: time | None,
    ) -> tuple[datetime, datetime, str]:
        """The new rule's first occurrence and RRULE text."""
        span_days = (old.end.date() - old.start.date()).days
        start_at = time() if old.whole_day else (start_time or old.start.time())
        end_at = time() if old.whole_day else (end_time or old.end.time())
        if rrule is not None:
            first_day = cut.date()
            text = normalised_text(rrule)
            parse(text, cut)  # a clear error for a bad RRULE before anything else
        else:
            following = old_recurrence.rule.after(cut, inc=True)
            if following is None:
                raise errors.InvalidRuleError(f'the rule has no occurrence from {cut:%Y-%m-%d} on')
            first_day = following.date()
            pattern = old_recurrence.rule
            count = count_of(pattern)
            if count is not None:
                left = count - len(before)
                if left <= 0:
                    raise errors.InvalidRuleError(f'the rule has no occurrence from {cut:%Y-%m-%d} on')
                pattern = pattern.replace(count=left)
            text = rule_text(pattern)
        start = datetime.combine(first_day, start_at)
        end = datetime.combine(first_day + timedelta(days=span_days), end_at)
        if end <= start:
            raise errors.InvalidRuleError(f'the occurrence must end after it starts ({start} – {end})')
        return start, end, text
