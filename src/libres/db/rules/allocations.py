"""The allocations a rule made: finding them, telling the booked ones apart,
removing the others and re-tagging."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from libres.db.models import Allocation, Reservation, ReservationBlocker, ReservedSlot


def tagged(resource: uuid.UUID, rule_hex: str) -> ColumnElement[bool]:
    """Rows (masters and mirrors) of the resource whose ``data['rule']`` is the rule."""
    return and_(
        Allocation.mirror_of == resource,
        func.jsonb_extract_path_text(Allocation.data, 'rule') == rule_hex,
    )


def booked() -> ColumnElement[bool]:
    """An allocation (or any sibling) has a slot, a reservation or a blocker."""
    sibling = aliased(Allocation)
    slot = exists(
        select(ReservedSlot.allocation_id)
        .join(sibling, ReservedSlot.allocation_id == sibling.id)
        .where(sibling.mirror_of == Allocation.mirror_of, sibling.group == Allocation.group)
    )
    reservation = exists(select(Reservation.id).where(Reservation.target == Allocation.group))
    blocker = exists(select(ReservationBlocker.id).where(ReservationBlocker.target == Allocation.group))
    return or_(slot, reservation, blocker)


def _window(start: datetime | None, end: datetime | None) -> list[ColumnElement[bool]]:
    conditions = []
    if start is not None:
        conditions.append(Allocation._start >= start)
    if end is not None:
        conditions.append(Allocation._start < end)
    return conditions


def masters(
    session: Session, resource: uuid.UUID, rule_hex: str,
    start: datetime | None = None, end: datetime | None = None,
) -> list[tuple[Allocation, bool]]:
    """The rule's master allocations starting in [start, end) (aware UTC
    bounds, open if None), each with whether it is booked; by start."""
    query = (
        select(Allocation, booked())
        .where(tagged(resource, rule_hex), Allocation.resource == resource, *_window(start, end))
        .order_by(Allocation._start)
    )
    return [(allocation, bool(is_booked)) for allocation, is_booked in session.execute(query)]


def remove_unbooked(session: Session, resource: uuid.UUID, groups: list[uuid.UUID]) -> None:
    """Delete the allocations (masters and mirrors) of these groups; the
    booked check is repeated in the statement, so a booking that arrived in
    between is never deleted."""
    if not groups:
        return
    session.execute(
        delete(Allocation)
        .where(Allocation.mirror_of == resource, Allocation.group.in_(groups), ~booked())
        .execution_options(synchronize_session='fetch')
    )


def retag(session: Session, resource: uuid.UUID, groups: list[uuid.UUID], rule_hex: str) -> None:
    """Point the allocations of these groups (mirrors too) at another rule."""
    if not groups:
        return
    rows = session.scalars(
        select(Allocation).where(Allocation.mirror_of == resource, Allocation.group.in_(groups))
    )
    for row in rows:
        row.data = {**(row.data or {}), 'rule': rule_hex}


def holder(session: Session, allocation: Allocation) -> Any:
    """What books the allocation: a reservation, else a blocker, else a slot."""
    reservation = session.scalars(
        select(Reservation).where(Reservation.target == allocation.group).order_by(Reservation.id)
    ).first()
    if reservation is not None:
        return reservation
    blocker = session.scalars(
        select(ReservationBlocker).where(ReservationBlocker.target == allocation.group)
        .order_by(ReservationBlocker.id)
    ).first()
    if blocker is not None:
        return blocker
    sibling = aliased(Allocation)
    return session.scalars(
        select(ReservedSlot).join(sibling, ReservedSlot.allocation_id == sibling.id)
        .where(sibling.mirror_of == allocation.mirror_of, sibling.group == allocation.group)
    ).first()
