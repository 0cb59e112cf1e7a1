"""How free is the calendar: availability, free spots and search."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from libres.db.models import Allocation
from libres.db.queries import Queries
from libres.db.scheduler.allocations import weekdays
from libres.db.scheduler.base import SchedulerBase
from libres.modules.dates import get_timezone, localize, to_timezone

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
CHOICES = ('yes', 'no', 'any')


class AvailabilityMixin(SchedulerBase):
    """Read-only questions about free time."""

    def availability(self, start: datetime | None = None, end: datetime | None = None) -> float:
        """Free share of this scheduler's allocations in the range, in percent."""
        start = self._prepare_date(start or EARLIEST)
        end = self._prepare_date(end or LATEST)
        if not self.blocking_resources:
            return self.queries.availability_by_range(start, end, [self.resource])

        # Weighted by quota: a free quota-4 allocation is 100 %, not 25 %.
        weighted = 0.0
        quotas = 0
        for allocation, availability, _ in self.queries.allocations_with_availability_by_range(
            start, end, self.resource, self.blocking_resources, normalize_dst=False
        ):
            weighted += availability * allocation.quota
            quotas += allocation.quota
        return weighted / quotas if quotas else 0.0

    def _local_window(
        self, allocation: Allocation, start: datetime, end: datetime
    ) -> tuple[datetime, datetime]:
        """The searched time of day on the allocation's own (local) days."""
        zone = get_timezone(self.timezone)
        day_start = to_timezone(allocation.display_start(), zone).date()
        day_end = to_timezone(allocation.end, zone).date()
        return (
            localize(datetime.combine(day_start, start.time()), zone),
            localize(datetime.combine(day_end, end.time()), zone),
        )

    def search_allocations(
        self,
        start: datetime,
        end: datetime,
        days: Iterable[Any] | None = None,
        minspots: int = 0,
        available_only: bool = False,
        whole_day: str = 'any',
        groups: str = 'any',
        strict: bool = False,
    ) -> list[Allocation]:
        """Allocations in the date range whose times meet the time window."""
        if not (start and end):
            raise AssertionError('a start and an end are required')
        if whole_day not in CHOICES or groups not in CHOICES:
            raise AssertionError("whole_day and groups take 'yes', 'no' or 'any'")
        if available_only and self.blocking_resources:
            raise NotImplementedError('available_only is not supported with blocking resources')

        day_filter = weekdays(days) if days else None
        candidates = self.allocations_in_range(start, end).order_by(Allocation._start)

        found: list[Allocation] = []
        seen_groups: set[Any] = set()
        for allocation in candidates:
            if not self.is_allocation_exposed(allocation):
                continue
            s, e = self._local_window(allocation, start, end)
            if not allocation.overlaps(s, e):
                continue
            if day_filter is not None and allocation.display_start().weekday() not in day_filter:
                continue
            if whole_day != 'any' and allocation.whole_day != (whole_day == 'yes'):
                continue
            if minspots and 0 < allocation.quota_limit < minspots:
                continue
            if available_only and allocation.find_spot(s, e) is None:
                continue
            if minspots:
                # Looked up on the instance: consumers replace it.
                availability = self.availability(allocation.start, allocation.end)
                if minspots / allocation.quota * 100 > availability:
                    continue
            in_group = allocation.group in seen_groups or allocation.in_group
            if in_group:
                seen_groups.add(allocation.group)
            if groups != 'any' and in_group != (groups == 'yes'):
                continue
            found.append(allocation)

        if not strict and groups != 'no' and seen_groups:
            known = {a.id for a in found}
            extras = self.allocations_by_groups(seen_groups).filter(
                Allocation.id.notin_(known)
            ).all()
            for extra in extras:
                extra.is_extra_result = True  # type: ignore[attr-defined]
            found = sorted(found + extras, key=lambda a: a._start)
        return found

    def reserved_slots_by_range(
        self, start: datetime, end: datetime
    ) -> tuple[dict[datetime, int], set[datetime]]:
        return self.queries.reserved_slots_by_range(
            self._prepare_date(start),
            self._prepare_date(end),
            self.resource,
            self.blocking_resources,
        )

    def allocations_with_availability_by_range(
        self, start: datetime, end: datetime, normalize_dst: bool = True
    ) -> Iterator[tuple[Allocation, float, list[tuple[float, bool]]]]:
        start, end = self._prepare_date(start), self._prepare_date(end)
        if self.blocking_resources:
            yield from self.queries.allocations_with_availability_by_range(
                start, end, self.resource, self.blocking_resources, normalize_dst
            )
            return

        rows = self.queries.allocations_in_range(self.managed_allocations(), start, end)
        for _, siblings_iter in groupby(rows.order_by(Allocation._start), key=lambda a: a._start):
            siblings = list(siblings_iter)
            if len(siblings) == 1 and siblings[0].partly_available:
                single = siblings[0]
                availability = (
                    single.normalized_availability if normalize_dst else single.availability
                )
            else:
                availability = Queries.availability_by_allocations(siblings)
            for master in (a for a in siblings if a.is_master):
                yield master, availability, master.availability_partitions(normalize_dst=normalize_dst)
