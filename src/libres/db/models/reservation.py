"""Reservations: a request for dates or a group, pending then approved."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import CheckConstraint, Enum, Index, String, Text
from sqlalchemy.orm import Mapped, Query, mapped_column, object_session

from libres.db.models.base import ORMBase, assign_keywords
from libres.db.models.json_ready import span, text
from libres.db.models.other import OtherModels
from libres.db.models.timespan import Timespan
from libres.db.models.timestamp import TimestampMixin
from libres.modules import errors
from libres.modules.dates import to_timezone

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from libres.db.models.allocation import Allocation

__all__ = ('Reservation', 'Timespan')

ONE_MICROSECOND = timedelta(microseconds=1)
TargetType = Literal['group', 'allocation']
Status = Literal['pending', 'approved']


class SpanDisplay:
    """Display helpers of records with an optional span in a stored zone."""

    start: Any
    end: Any
    timezone: Any

    def display_start(self, timezone: str | tzinfo | None = None) -> datetime:
        if self.start is None:
            raise errors.LibresAssertionError('a group target has no start')
        return to_timezone(self.start, _zone(timezone, self.timezone))

    def display_end(self, timezone: str | tzinfo | None = None) -> datetime:
        if self.end is None:
            raise errors.LibresAssertionError('a group target has no end')
        return to_timezone(self.end + ONE_MICROSECOND, _zone(timezone, self.timezone))


class Reservation(SpanDisplay, TimestampMixin, ORMBase, OtherModels):
    """One row per targeted allocation or group; rows of one request share a token."""

    __tablename__ = 'reservations'

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    token: Mapped[uuid.UUID] = mapped_column(index=True)
    target: Mapped[uuid.UUID] = mapped_column(index=True)
    target_type: Mapped[TargetType] = mapped_column(
        Enum('group', 'allocation', name='reservation_target_type'), index=True
    )
    type: Mapped[str] = mapped_column(Text, index=True)
    resource: Mapped[uuid.UUID] = mapped_column(index=True)
    start: Mapped[datetime | None] = mapped_column(index=True)
    end: Mapped[datetime | None] = mapped_column(index=True)
    timezone: Mapped[str | None]
    status: Mapped[Status] = mapped_column(
        Enum('pending', 'approved', name='reservation_status'), index=True
    )
    data: Mapped[dict[str, Any] | None] = mapped_column(deferred=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    quota: Mapped[int]
    # Pending with a hold: its slots are written and keep its spot until then.
    held_until: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index('target_status_ix', 'status', 'target', 'id'),
        CheckConstraint('quota >= 1', name='reservations_quota_positive'),
        CheckConstraint('start <= "end"', name='reservations_start_before_end'),
        # Allocation targets have a span, group targets none.
        CheckConstraint(
            "target_type = 'group' AND start IS NULL AND \"end\" IS NULL"
            " OR target_type = 'allocation' AND start IS NOT NULL AND \"end\" IS NOT NULL",
            name='reservations_span_matches_target',
        ),
    )

    __mapper_args__ = {
        'polymorphic_on': 'type',
        'polymorphic_identity': 'generic',
    }

    def __init__(self, **kwargs: Any) -> None:
        assign_keywords(self, kwargs)

    def as_dict(self) -> dict[str, Any]:
        """The reservation row as JSON-ready values, with these keys:

        ``id`` (int), ``token``, ``target``, ``resource``, ``session_id``
        (UUID strings, ``session_id`` None outside a cart), ``target_type``
        ('allocation' or 'group'), ``type``, ``status`` ('pending' or
        'approved'), ``email``, ``timezone``, ``start``/``end`` (ISO 8601 in
        the reservation's zone with offset, ``end`` exclusive; None for a
        group target), ``quota`` (int), ``data`` (dict or None; a deferred
        column: undefer it when listing many).
        """
        start, end = span(self)
        return {
            'id': self.id,
            'token': text(self.token),
            'target': text(self.target),
            'target_type': self.target_type,
            'type': self.type,
            'resource': text(self.resource),
            'status': self.status,
            'email': self.email,
            'timezone': self.timezone,
            'start': start,
            'end': end,
            'quota': self.quota,
            'session_id': text(self.session_id),
            'data': self.data,
        }

    def _session(self) -> Session:
        session = object_session(self)
        if session is None:
            raise errors.LibresAssertionError('the reservation is not attached to a session')
        return session

    def _target_allocations(self) -> Query[Allocation]:
        """The master allocations this reservation targets, by start."""
        allocation: type[Allocation] = self.models.Allocation
        return (
            self._session()
            .query(allocation)
            .filter(allocation.group == self.target)
            .filter(allocation.resource == allocation.mirror_of)
            .order_by(allocation._start)
        )

    def timespans(self) -> list[Timespan]:
        return _timespans(self.target_type, self.start, self.end, self._target_allocations)

    @property
    def title(self) -> str:
        return self.email

    @property
    def autoapprovable(self) -> bool:
        return not any(a.approve_manually for a in self._target_allocations())


def _zone(given: str | tzinfo | None, own: str | None) -> str | tzinfo:
    zone = given or own
    if zone is None:
        raise errors.LibresAssertionError('no timezone given and none stored')
    return zone


def _timespans(
    target_type: str,
    start: datetime | None,
    end: datetime | None,
    allocations: Any,
) -> list[Timespan]:
    """Shared by reservations and blockers; the group form keeps the stored
    (minus one microsecond) end, as the original does."""
    if target_type == 'allocation':
        assert start is not None and end is not None
        return [Timespan(start, end + ONE_MICROSECOND)]
    if target_type == 'group':
        return [Timespan(a.start, a.end) for a in allocations()]
    raise errors.NotSupported(f'unknown target type {target_type!r}')
