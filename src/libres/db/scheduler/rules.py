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
        exceptions: Any = (), buffer_before: timedelta | None = None,
        buffer_after: timedelta | None = None, min_notice: timedelta | None = None,
        max_advance: timedelta | None = None,
    ) -> AllocationRule:
        """Add a recurring rule and make its allocations up to the horizon.

        Occurrences that overlap an allocation are skipped (`rule.last_extension`).
        The rule and its allocations are added to the session, not committed.
        `whole_day`, `quota`, `quota_limit`, `partly_available`, `raster`,
        `approve_manually`, `data` and the booking policies (`buffer_before`,
        `buffer_after`, `min_notice`, `max_advance`) mean what they mean for
        `allocate`; every allocation of the rule gets them.

        :param rrule: RFC 5545 RRULE text, e.g. `'FREQ=WEEKLY;BYDAY=MO'`.
        :param start: the first occurrence's start: a `datetime` in naive local
            time (the scheduler's zone), or a `date`.
        :param end: its end, likewise.
        :param horizon: a positive `timedelta` (at most ten years) to make
            allocations ahead.
        :param exceptions: `date`s to leave out.
        :returns: the new `AllocationRule`.
        :raises InvalidRuleError: the RRULE, the first occurrence, the horizon or
            the exceptions are not valid, or the rule yields no occurrence.
        """
        return self._rule_book().add(
            rrule, start, end, horizon=horizon, whole_day=whole_day, exceptions=exceptions,
            quota=quota, quota_limit=quota_limit, partly_available=partly_available,
            raster=raster, approve_manually=approve_manually, data=data,
            buffer_before=buffer_before, buffer_after=buffer_after, min_notice=min_notice,
            max_advance=max_advance,
        )

    def rules(self) -> list[AllocationRule]:
        """The rules of this resource, by first occurrence.

        :returns: a list of `AllocationRule` (the query runs at once).
        """
        return self._rule_book().all()

    def rule_by_id(self, rule_id: Any) -> AllocationRule:
        """One rule of this resource.

        :param rule_id: the rule's UUID (or a string holding one), or the `AllocationRule`.
        :returns: the `AllocationRule`.
        :raises UnknownRuleError: this resource has no such rule (also for an id
            that is not a UUID).
        """
        return self._rule_book().get(rule_id)

    def allocations_by_rule(self, rule_id: Any) -> list[Any]:
        """The master allocations a rule made, by start.

        :param rule_id: the rule's UUID (or a string holding one), or the `AllocationRule`.
        :returns: a list of `Allocation`.
        :raises UnknownRuleError: this resource has no such rule.
        """
        return self._rule_book().allocations(rule_id)

    def extend_rules(self, until: date | datetime | None = None) -> int:
        """Make the allocations of every rule up to `until`, or each rule's horizon.

        Idempotent; run concurrently, the loser gets a serialization failure to
        retry (`libres.retry`).

        :param until: a `date` (up to its end) or a `datetime`, at most ten years
            ahead; `None` for each rule's horizon.
        :returns: how many allocations were made.
        :raises InvalidRuleError: `until` lies more than ten years ahead.
        """
        return self._rule_book().extend(until).created

    def add_rule_exception(self, rule_id: Any, day: date) -> int:
        """Leave out the rule's occurrence on `day`.

        Its unbooked allocations that day are removed; the day is added to the
        rule's exceptions.

        :param rule_id: the rule's UUID (or a string holding one), or the `AllocationRule`.
        :param day: a `date` (not a `datetime`) in the rule's zone.
        :returns: how many allocations were removed (0 if none was made yet).
        :raises InvalidRuleError: `day` is not a `date`.
        :raises UnknownRuleError: this resource has no such rule.
        :raises AffectedReservationError: the occurrence is booked.
        """
        return self._rule_book().add_exception(rule_id, day)

    def change_rule(
        self, rule_id: Any, effective_from: date, rrule: str | None = None,
        start_time: time | None = None, end_time: time | None = None,
        horizon: timedelta | None = None, data: Any = missing, **options: Any,
    ) -> RuleChange:
        """Split the rule: the old one ends before `effective_from`, a new one with the changes starts then.

        Unbooked occurrences from then on are made anew; booked ones stay and are
        re-tagged (`retagged`).

        :param rule_id: the rule's UUID (or a string holding one), or the `AllocationRule`.
        :param effective_from: a `date` (not a `datetime`).
        :param rrule: new RRULE text, or `None` to keep it; likewise the times of
            day, the horizon, `data` and the other options of `add_rule`. With
            the RRULE kept, the new times are of the day of the rule's first
            occurrence from `effective_from` on.
        :returns: a `RuleChange` naming the old and the new rule.
        :raises InvalidRuleError: `effective_from` is not a date, the rule is
            stopped, or the new rule yields no occurrence.
        :raises UnknownRuleError: this resource has no such rule.
        """
        return self._rule_book().change(
            rule_id, effective_from, rrule=rrule, start_time=start_time, end_time=end_time,
            horizon=horizon, data=data, **options,
        )

    def stop_rule(self, rule_id: Any) -> AllocationRule:
        """No more occurrences; the allocations made so far stay.

        :param rule_id: the rule's UUID (or a string holding one), or the `AllocationRule`.
        :returns: the stopped `AllocationRule`.
        :raises UnknownRuleError: this resource has no such rule.
        """
        return self._rule_book().stop(rule_id)

    def delete_rule(self, rule_id: Any) -> tuple[int, int]:
        """Delete the rule and its unbooked allocations.

        :param rule_id: the rule's UUID (or a string holding one), or the `AllocationRule`.
        :returns: `(deleted, kept)`: how many allocations went and how many stay
            because they are booked.
        :raises UnknownRuleError: this resource has no such rule.
        """
        return self._rule_book().delete(rule_id)
