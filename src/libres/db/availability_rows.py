"""Availability of many allocations from one aggregate query, without ORM objects.

A calendar over a year has thousands of allocations; loading each as an
object with its slots costs far more than the arithmetic. Here the database
counts the slots, computes each row's free share and sums them, returning
one row per range (or per day). The arithmetic is the one of
``Allocation.availability`` and ``Queries.availability_by_allocations`` in
float8: the same operations in the same order, so the same floats.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Session

from libres.db.models import Allocation, ReservedSlot
from libres.db.models.types.uuid_type import to_soft_uuid
from libres.db.overlap import overlaps

ONE_MICROSECOND = timedelta(microseconds=1)


def _float(value: Any) -> Any:
    return cast(value, Float)


def _per_row(start: datetime, end: datetime, resources: Iterable[uuid.UUID]) -> Any:
    """Each allocation row overlapping [start, end] with its availability."""
    in_range = and_(Allocation.mirror_of.in_(list(resources)), overlaps(start, end))
    # Each allocation counts its own slots through the allocation_id index: a
    # lateral aggregate is a lookup per row whatever the statistics say. (A
    # join to slot counts grouped beforehand became, on tables analysed while
    # small, a nested loop over every slot for every allocation.)
    counts = (
        select(
            func.count().label('slots'),
            func.count().filter(ReservedSlot.source_type == 'blocker').label('blocked'),
        )
        .where(ReservedSlot.allocation_id == Allocation.id)
        .lateral('slot_counts')
    )
    blocked = counts.c.blocked
    reserved = counts.c.slots - blocked
    seconds = func.extract('epoch', Allocation._end - Allocation._start + ONE_MICROSECOND)
    # Allocation.count_slots() without arguments.
    total = case(
        (Allocation.partly_available, cast(func.floor(seconds / (Allocation._raster * 60)), Integer)),
        else_=1,
    )
    hundred = _float(literal(100.0))
    # Allocation._percentage, step by step.
    availability = case(
        (total == blocked, _float(literal(0.0))),
        (total - blocked == reserved, _float(literal(0.0))),
        (reserved == 0, hundred),
        else_=hundred - hundred * _float(reserved) / _float(total - blocked),
    )
    return (
        select(
            Allocation._start.label('start'),
            Allocation.id.label('id'),
            Allocation.mirror_of.label('mirror_of'),
            (Allocation.resource == Allocation.mirror_of).label('is_master'),
            Allocation.quota.label('quota'),
            availability.label('availability'),
        )
        .select_from(Allocation)
        .join(counts, true())  # an aggregate without GROUP BY: one row each
        .where(in_range)
        .subquery()
    )


def _sums(rows: Any) -> list[Any]:
    return [
        # Summed in the order of the objects' path, so the float is the same.
        func.sum(aggregate_order_by(rows.c.availability, rows.c.start, rows.c.id)),
        func.count(),
        func.coalesce(func.sum(rows.c.quota).filter(rows.c.is_master), 0),
    ]


def mean_of_spots(total: float | None, count: int, expected: int) -> float:
    """Mean over all spots: ``total`` is the sum over ``count`` written rows,
    ``expected`` the quotas of their masters; mirrors never written count as
    completely free."""
    if not expected:
        return 0
    return (float(total or 0.0) + 100.0 * (expected - count)) / expected


def mean_in_range(
    session: Session, start: datetime, end: datetime, resources: Iterable[uuid.UUID]
) -> float:
    rows = _per_row(start, end, resources)
    total, count, expected = session.execute(select(*_sums(rows))).one()
    return mean_of_spots(total, count, expected)


def by_utc_day(
    session: Session, start: datetime, end: datetime, resources: Iterable[uuid.UUID]
) -> dict[date, tuple[float, set[uuid.UUID]]]:
    """Per UTC date of the allocations' starts: mean availability and resources."""
    rows = _per_row(start, end, resources)
    day = func.date(rows.c.start)
    query: Select[Any] = (
        select(day, *_sums(rows), type_coerce(
            func.array_agg(rows.c.mirror_of.distinct()), ARRAY(PG_UUID(as_uuid=True))
        ))
        .group_by(day)
        .order_by(day)
    )
    return {
        row_day: (mean_of_spots(total, count, expected), {to_soft_uuid(m) for m in mirrors})
        for row_day, total, count, expected, mirrors in session.execute(query)
    }
