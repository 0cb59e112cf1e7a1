"""Recurring availability on the scheduler: thin delegations to
:mod:`libres.db.rules`, which makes allocations through ``allocate``."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from libres.context.core import missing
from libres.db.rules.model import AllocationRule
from libres.db.rules.operations import DEFAULT_HORIZON, RuleBook, RuleChange


class RulesMixin:
    """Rules that make this resource's allocations (see ``libres.db.rules``)."""

    def _rule_book(self) -> RuleBook:
        return RuleBook(self)  # type: ignore[arg-type]

    def extinguish_managed_records(self) -> None:
        """Delete everything this scheduler owns: rules, reservations, blockers, slots, allocations.

        The recurring rules go first: left behind, cron would make their
        allocations again. The rest are bulk deletes, as in libres 1.4.0: no
        event fires; objects of them loaded in the session are marked deleted
        (`synchronize_session='fetch'`), then the session is expired. Nothing is
        committed.
        """
        self._rule_book().delete_all()
        super().extinguish_managed_records()  # type: ignore[misc]

    def add_rule(
        self, rrule: str, start: date | datetime, end: date | datetime,
        horizon: timedelta = DEFAULT_HORIZON, whole_day: bool = False, quota: int = 1,
        quota_limit: int = 0, partly_available: bool = False, raster: int = 5,
        approve_manually: bool = False, data: dict[str, Any] | None = None,
        exceptions: Any = (),
    ) -> AllocationRule:
        """Add a rule (RFC 5545 RRULE text, first occurrence in naive local
        time) and make its allocations up to the horizon; occurrences that
        overlap an allocation are skipped (``rule.last_extension``)."""
        return self._rule_book().add(
            rrule, start, end, horizon=horizon, whole_day=whole_day, exceptions=exceptions,
            quota=quota, quota_limit=quota_limit, partly_available=partly_available,
            raster=raster, approve_manually=approve_manually, data=data,
        )

    def rules(self) -> list[AllocationRule]:
        """The rules of this resource, by first occurrence."""
        return self._rule_book().all()

    def rule_by_id(self, rule_id: Any) -> AllocationRule:
        """One rule of this resource (``UnknownRuleError`` if none)."""
        return self._rule_book().get(rule_id)

    def allocations_by_rule(self, rule_id: Any) -> list[Any]:
        """The master allocations a rule made, by start."""
        return self._rule_book().allocations(rule_id)

    def extend_rules(self, until: date | datetime | None = None) -> int:
        """Make the allocations of every rule up to ``until`` (a date: its
        end) or each rule's horizon; return how many were made. Idempotent;
        run concurrently, the loser gets a serialization failure to retry."""
        return self._rule_book().extend(until).created

    def add_rule_exception(self, rule_id: Any, day: date) -> int:
        """Leave out the rule's occurrence on ``day`` (``AffectedReservationError``
        if it is booked); return how many allocations were removed."""
        return self._rule_book().add_exception(rule_id, day)

    def change_rule(
        self, rule_id: Any, effective_from: date, rrule: str | None = None,
        start_time: time | None = None, end_time: time | None = None,
        horizon: timedelta | None = None, data: Any = missing, **options: Any,
    ) -> RuleChange:
        """Split the rule: the old one ends before ``effective_from``, a new
        one with the changes starts then. Unbooked occurrences from then on
        are made anew; booked ones stay and are re-tagged (``retagged``)."""
        return self._rule_book().change(
            rule_id, effective_from, rrule=rrule, start_time=start_time, end_time=end_time,
            horizon=horizon, data=data, **options,
        )

    def stop_rule(self, rule_id: Any) -> AllocationRule:
        """No more occurrences; the allocations made so far stay."""
        return self._rule_book().stop(rule_id)

    def delete_rule(self, rule_id: Any) -> tuple[int, int]:
        """Delete the rule and its unbooked allocations; return (deleted, kept)."""
        return self._rule_book().delete(rule_id)
