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
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    CTE,
    Float,
    Integer,
    Select,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Session

from libres.db.models import Allocation, ReservedSlot
from libres.db.models.types.utcdatetime import UTCDateTime
from libres.db.models.types.uuid_type import to_soft_uuid
from libres.db.overlap import overlaps
from libres.modules import clock

ONE_MICROSECOND = timedelta(microseconds=1)


def _float(value: Any) -> Any:
    return cast(value, Float)


def allocations_in_range(start: Any, end: Any, resources: Any) -> CTE:
    """The allocations of ``resources`` (masters and mirrors) overlapping
    [start, end] (values or bind parameters), read once for every part of a
    statement that needs them."""
    return (
        select(
            Allocation.id, Allocation.resource, Allocation.mirror_of, Allocation.quota,
            Allocation.partly_available, Allocation._start, Allocation._end, Allocation._raster,
        )
        .where(Allocation.mirror_of.in_(resources), overlaps(start, end))
        .cte('in_range')
    )


def possible_slots(allocations: CTE, *columns: Any, booked_time_only: bool = True) -> Select[Any]:
    """``columns`` of every slot that may belong to ``allocations``: on their
    resources, starting between their first start and their last end; only
    those counted as booked time (``ReservedSlot.is_booked_time`` at NOW),
    or with ``booked_time_only=False`` all that block (buffers too).

    A superset (a slot lies within its allocation, on its resource), found by
    single-table index conditions (the slots' primary key is resource and
    start) on values computed once: no join whose strategy follows the row
    estimates. (A join to slot counts grouped beforehand became, on tables
    analysed while small, a nested loop over every slot for every
    allocation; a lookup per allocation, a sequential scan of a small slot
    table for each one.)
    """
    # The three values in one pass over the allocations: grouped by resource
    # (hashed, where a DISTINCT would sort every row), then one row.
    per_resource = (
        select(
            allocations.c.resource,
            func.min(allocations.c._start).label('first'),
            func.max(allocations.c._end).label('last'),
        )
        .group_by(allocations.c.resource)
        .subquery()
    )
    bounds = select(
        func.array_agg(per_resource.c.resource).label('resources'),
        func.min(per_resource.c.first).label('first'),
        func.max(per_resource.c.last).label('last'),
    ).cte(f'{allocations.name}_bounds')
    resources = select(bounds.c.resources).scalar_subquery()
    first = select(bounds.c.first).scalar_subquery()
    last = select(bounds.c.last).scalar_subquery()
    kind = ReservedSlot.booked_time_at(NOW) if booked_time_only else ReservedSlot.blocking_at(NOW)
    return select(*columns).where(
        # Cast: ANY of an array value, not of the subquery's rows.
        ReservedSlot.resource == any_(cast(resources, ARRAY(PG_UUID(as_uuid=True)))),
        ReservedSlot.start >= first,
        ReservedSlot.start <= last,
        kind,
    )


def _per_row(start: Any, end: Any, resources: Any, with_mirror_of: bool = False) -> Any:
    """Each allocation row overlapping [start, end] with its availability
    (and its ``mirror_of`` if asked: carrying a uuid through the grouping
    costs an array per allocation)."""
    counted = _counted(allocations_in_range(start, end, resources), with_mirror_of)
    total, blocked = counted.c.total, counted.c.blocked
    columns = [
        counted.c.start,
        counted.c.id,
        counted.c.master_quota.is_not(None).label('is_master'),
        counted.c.master_quota.label('quota'),
        _percentage(total, blocked, counted.c.slots - blocked).label('availability'),
    ]
    if with_mirror_of:
        columns.append(counted.c.mirror_of)
    return select(*columns).subquery()


def _counted(allocations: Any, with_mirror_of: bool) -> Any:
    """Per allocation: its start, slot count, master quota, and how many of
    its slots are taken and by blockers."""
    seconds = func.extract('epoch', allocations.c._end - allocations.c._start + ONE_MICROSECOND)
    # Allocation.count_slots() without arguments.
    slot_count = case(
        (allocations.c.partly_available,
         cast(func.floor(seconds / (allocations.c._raster * 60)), Integer)),
        else_=1,
    )
    own_columns: list[Any] = [
        allocations.c.id.label('id'),
        allocations.c._start.label('start'),
        slot_count.label('total'),
        # The quota of a master, NULL for a mirror (a quota is at least 1).
        case((allocations.c.resource == allocations.c.mirror_of, allocations.c.quota))
        .label('master_quota'),
        null().label('blocker'),
    ]
    slot_columns: list[Any] = [
        ReservedSlot.allocation_id, null(), null(), null(),
        case((ReservedSlot.source_type == 'blocker', 1)),
    ]
    if with_mirror_of:
        own_columns.append(allocations.c.mirror_of.label('mirror_of'))
        slot_columns.append(null())
    # The allocations and their possible slots in one stream, grouped by
    # allocation id: each allocation's row carries its columns, each slot
    # adds one to the group (slots of other allocations form groups without
    # an allocation row and drop out).
    rows = union_all(
        select(*own_columns), possible_slots(allocations, *slot_columns)
    ).subquery('rows')
    counted_columns: list[Any] = [
        rows.c.id,
        func.max(rows.c.start).label('start'),
        func.max(rows.c.total).label('total'),
        func.max(rows.c.master_quota).label('master_quota'),
        (func.count() - 1).label('slots'),
        func.count(rows.c.blocker).label('blocked'),
    ]
    if with_mirror_of:
        # uuid has no max(): the one value of the allocation's own row.
        mirror_of = func.array_agg(rows.c.mirror_of).filter(rows.c.start.is_not(None))
        counted_columns.append(type_coerce(mirror_of, ARRAY(PG_UUID(as_uuid=True)))[1].label('mirror_of'))
    return (
        select(*counted_columns)
        .group_by(rows.c.id)
        .having(func.max(rows.c.start).is_not(None))
        .subquery('counted')
    )


def _percentage(total: Any, blocked: Any, reserved: Any) -> Any:
    """``Allocation._percentage``, step by step, in SQL."""
    hundred = _float(literal(100.0))
    return case(
        (total == blocked, _float(literal(0.0))),
        (total - blocked == reserved, _float(literal(0.0))),
        (reserved == 0, hundred),
        else_=hundred - hundred * _float(reserved) / _float(total - blocked),
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


# The statements are built once, with parameters: composing (and keying) an
# expression of this size costs milliseconds, more than running it, and
# search_allocations(minspots=...) asks once per candidate.
START = bindparam('start', type_=UTCDateTime())
NOW = bindparam('now', type_=UTCDateTime())
END = bindparam('end', type_=UTCDateTime())
RESOURCES: Any = bindparam('resources', expanding=True)


def parameters(start: datetime, end: datetime, resources: Iterable[uuid.UUID]) -> dict[str, Any]:
    """The values of START, END, RESOURCES and NOW (the clock: holds expire) for one run."""
    return {'start': start, 'end': end, 'resources': list(resources), 'now': clock.now()}


@lru_cache(maxsize=1)
def _mean_statement() -> Select[Any]:
    return select(*_sums(_per_row(START, END, RESOURCES)))


@lru_cache(maxsize=1)
def _by_day_statement() -> Select[Any]:
    rows = _per_row(START, END, RESOURCES, with_mirror_of=True)
    day = func.date(rows.c.start)
    return (
        select(day, *_sums(rows), type_coerce(
            func.array_agg(rows.c.mirror_of.distinct()), ARRAY(PG_UUID(as_uuid=True))
        ))
        .group_by(day)
        .order_by(day)
    )


@lru_cache(maxsize=1)
def _by_span_statement() -> Select[Any]:
    rows = _per_row(START, END, RESOURCES)
    return select(rows.c.start, *_sums(rows)).group_by(rows.c.start)


def mean_by_span(
    session: Session, start: datetime, end: datetime, resources: Iterable[uuid.UUID]
) -> dict[datetime, float]:
    """Per master in the range, by its start: the mean availability of its
    spots, which ``mean_in_range`` gives for the master's own span (a master
    and its mirrors share their span, and no other allocation of the
    resources overlaps it). One query for ``search_allocations(minspots=)``."""
    rows = session.execute(_by_span_statement(), parameters(start, end, resources))
    return {row_start: mean_of_spots(total, count, expected) for row_start, total, count, expected in rows}


def mean_in_range(
    session: Session, start: datetime, end: datetime, resources: Iterable[uuid.UUID]
) -> float:
    total, count, expected = session.execute(
        _mean_statement(), parameters(start, end, resources)
    ).one()
    return mean_of_spots(total, count, expected)


def by_utc_day(
    session: Session, start: datetime, end: datetime, resources: Iterable[uuid.UUID]
) -> dict[date, tuple[float, set[uuid.UUID]]]:
    """Per UTC date of the allocations' starts: mean availability and resources."""
    rows = session.execute(_by_day_statement(), parameters(start, end, resources))
    return {
        row_day: (mean_of_spots(total, count, expected), {to_soft_uuid(m) for m in mirrors})
        for row_day, total, count, expected, mirrors in rows
    }
