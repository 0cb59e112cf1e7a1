"""What a booking of some dates targets: whole groups or single allocations.

``reserve`` and ``add_blocker`` walk the same way: a date that meets an
allocation of a group books the whole group, once; a date that meets a
single allocation books that allocation for the date's span, on the
allocation's raster.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from libres.db.models import Allocation
from libres.modules.rasterizer import rasterize_span

DatePair = tuple[datetime, datetime]


@dataclass(frozen=True)
class Target:
    """One thing a booking takes: a group (``span`` is None) or an allocation."""

    allocation: Allocation
    requested: DatePair  # the date the target was found for
    span: DatePair | None  # that date on the allocation's raster; None for a group

    @property
    def group(self) -> uuid.UUID:
        return self.allocation.group

    @property
    def is_group(self) -> bool:
        return self.span is None


def booking_targets(
    dates: Iterable[DatePair], masters: Iterable[tuple[Allocation, bool]]
) -> Iterator[Target]:
    """The targets of ``dates`` among ``masters`` (each with whether it is
    in a group of several), in date order; every group once."""
    masters = list(masters)
    seen_groups: set[uuid.UUID] = set()
    for start, end in dates:
        for allocation, in_group in masters:
            if allocation.group in seen_groups or not allocation.overlaps(start, end):
                continue
            if in_group:
                seen_groups.add(allocation.group)
                yield Target(allocation, (start, end), None)
            else:
                yield Target(allocation, (start, end), rasterize_span(start, end, allocation.raster))
