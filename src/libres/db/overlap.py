"""When an allocation overlaps a range, as SQL: the condition and its index hint."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, literal_column, or_

from libres.db.models import Allocation
from libres.db.models.types.utcdatetime import UTCDateTime


def overlaps(start: Any, end: Any) -> Any:
    """Inclusive overlap of an allocation with [start, end] (values or
    bind parameters)."""
    return or_(
        and_(Allocation._start <= start, start <= Allocation._end),
        and_(start <= Allocation._start, Allocation._start <= end),
    )


def overlap_hint(start: Any, end: Any) -> Any:
    """A condition implied by ``overlaps(start, end)`` that the GiST index of
    the ``allocations_no_overlap`` constraint answers, given the resource too.

    Alone, the two OR-ed conditions leave the planner a scan of every
    allocation of the resource; with this, it reads only the overlapping
    ones. ``least``/``greatest`` keep a reversed range from raising.
    """
    start, end = _timestamp(start), _timestamp(end)
    closed: Any = literal_column("'[]'")
    return func.tsrange(Allocation._start, Allocation._end, closed).op('&&')(
        func.tsrange(func.least(start, end), func.greatest(start, end), closed)
    )


def on_resource_overlapping(resource: Any, start: Any, end: Any) -> Any:
    """The rows of one resource whose span may overlap [start, end], as the
    GiST index reads them: give it next to ``overlaps(start, end)``. Without
    statistics, the planner otherwise reads every row of the resource
    through ``mirror_resource_ix`` and filters the range."""
    return and_(Allocation.resource == resource, overlap_hint(start, end))


def _timestamp(value: Any) -> Any:
    return value if isinstance(value, ColumnElement) else literal(value, UTCDateTime())
