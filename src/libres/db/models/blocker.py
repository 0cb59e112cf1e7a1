"""Blockers: administrative blocks that take every spot, without approval."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, Enum, Index
from sqlalchemy.orm import Mapped, Query, mapped_column, object_session

from libres.db.models.base import ORMBase, assign_keywords
from libres.db.models.json_ready import span, text
from libres.db.models.other import OtherModels
from libres.db.models.reservation import SpanDisplay, TargetType, _timespans
from libres.db.models.timespan import Timespan
from libres.db.models.timestamp import TimestampMixin
from libres.modules import errors

if TYPE_CHECKING:
    from libres.db.models.allocation import Allocation


class ReservationBlocker(SpanDisplay, TimestampMixin, ORMBase, OtherModels):
    """Blocks the master and every mirror of the targeted allocations."""

    __tablename__ = 'reservation_blockers'

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    token: Mapped[uuid.UUID] = mapped_column(index=True)
    target: Mapped[uuid.UUID] = mapped_column(index=True)
    target_type: Mapped[TargetType] = mapped_column(
        Enum('group', 'allocation', name='reservation_blocker_target_type'), index=True
    )
    resource: Mapped[uuid.UUID] = mapped_column(index=True)
    start: Mapped[datetime | None] = mapped_column(index=True)
    end: Mapped[datetime | None] = mapped_column(index=True)
    timezone: Mapped[str | None]
    reason: Mapped[str | None]

    __table_args__ = (
        Index('blocker_target_ix', 'target', 'id'),
        CheckConstraint('start <= "end"', name='reservation_blockers_start_before_end'),
        CheckConstraint(
            "target_type = 'group' AND start IS NULL AND \"end\" IS NULL"
            " OR target_type = 'allocation' AND start IS NOT NULL AND \"end\" IS NOT NULL",
            name='reservation_blockers_span_matches_target',
        ),
    )

    def __init__(self, **kwargs: Any) -> None:
        assign_keywords(self, kwargs)

    def as_dict(self) -> dict[str, Any]:
        """The blocker as JSON-ready values, with these keys:

        ``id`` (int), ``token``, ``target``, ``resource`` (UUID strings),
        ``target_type`` ('allocation' or 'group'), ``timezone``,
        ``start``/``end`` (ISO 8601 in the blocker's zone with offset,
        ``end`` exclusive; None for a group target), ``reason`` (str or None).
        """
        start, end = span(self)
        return {
            'id': self.id,
            'token': text(self.token),
            'target': text(self.target),
            'target_type': self.target_type,
            'resource': text(self.resource),
            'timezone': self.timezone,
            'start': start,
            'end': end,
            'reason': self.reason,
        }

    def target_allocations(self, masters_only: bool = True) -> Query[Allocation]:
        session = object_session(self)
        if session is None:
            raise errors.LibresAssertionError('the blocker is not attached to a session')
        allocation: type[Allocation] = self.models.Allocation
        query = session.query(allocation).filter(allocation.group == self.target)
        if masters_only:
            query = query.filter(allocation.resource == allocation.mirror_of)
        return query.order_by(allocation._start)

    def timespans(self) -> list[Timespan]:
        return _timespans(self.target_type, self.start, self.end, self.target_allocations)

    @property
    def title(self) -> str | None:
        return self.reason
