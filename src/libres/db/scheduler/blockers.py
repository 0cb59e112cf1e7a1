"""Blockers: administrative blocks that take every spot at once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from libres.db.booking.dates import DatePair, Dates
from libres.db.booking.targets import booking_targets
from libres.db.lookups import the_one
from libres.db.models import Allocation, ReservationBlocker, ReservedSlot
from libres.db.scheduler.base import AllocationT, ReservationT, SchedulerBase
from libres.modules import errors, validation

_MICROSECOND = timedelta(microseconds=1)


class BlockersMixin(SchedulerBase[AllocationT, ReservationT]):
    """Blocking time on the master and every mirror, without approval."""

    def _validate_blocker(self, dates: list[DatePair]) -> list[Allocation]:
        masters = self._engine.spots.masters_overlapping(dates, visible=True)
        for start, end, allocation in self._engine.spots.each_overlap(dates, masters):
            # A blocker takes every spot, waiting list or not.
            self._engine.spots.require_free(allocation, start, end, allocation.quota, buffered=False)
            self._engine.spots.require_contained(allocation, start, end)
        return [a for a in masters if a.resource == self.resource]

    def add_blocker(
        self,
        dates: Dates | None = None,
        group: uuid.UUID | None = None,
        reason: str | None = None,
        token: uuid.UUID | None = None,
        id: int | None = None,
    ) -> list[ReservationBlocker]:
        """Block dates or a group on every spot (master and mirrors), with no
        approval step; return the blockers (flushed).

        :param dates: a ``(start, end)`` pair, pairs, or a flat sequence (naive:
            the scheduler's zone); or ``group`` to block a group whole.
        :param reason: a text shown with the blocker.
        :param token, id: reuse a token (and id), as ``change_blocker`` does.
        :raises LibresAssertionError: both or neither of dates and group.
        :raises AlreadyReservedError: a spot is taken in the range.
        :raises InvalidReservationError: no allocation covers the dates.
        """
        if bool(dates) == bool(group):
            raise errors.LibresAssertionError('give either dates or a group')
        validation.check_optional_uuid(token, 'token')
        validation.check_optional_id(id)
        validation.check_optional_text(reason, 'reason')
        prepared = self._engine.dates.booking(dates, group)
        masters = self._validate_blocker(prepared)
        batch = _BlockerBatch(self, token or uuid.uuid4(), id, reason)
        blockers, slots = batch.block(prepared, masters, group)
        if not blockers:
            raise errors.InvalidReservationError('no allocation covers the given dates')
        if not slots:
            raise errors.NotReservableError('the blocker covers no allocation')
        return blockers

    def remove_blocker(self, token: uuid.UUID, id: int | None = None) -> None:
        """Remove a token's blockers (or one of them) with their slots.

        Through the unit of work, as libres 1.4.0 did: deleted, flushed, then the
        session is expired. With `id` only that blocker's own slots go. No event
        fires; an unknown token removes nothing.

        :param token: the blocker token, a UUID or a string holding one.
        :param id: the `int` id of one blocker of the token, or `None` for all.
        :raises InvalidUUID: the token is not a UUID.
        :raises LibresAssertionError: the token is empty.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        self._engine.slots.delete_each(self.reserved_slots_by_blocker(token, id))
        for blocker in self.blockers_by_token(token, id):
            self.session.delete(blocker)
        self.session.flush()
        self.session.expire_all()

    def change_blocker_reason(self, token: uuid.UUID, new_reason: str | None) -> None:
        """Set the reason of every blocker of the token.

        Changes the loaded objects only: written with the next flush. No event
        fires; an unknown token changes nothing.

        :param token: the blocker token, a UUID or a string holding one.
        :param new_reason: the text to show, or `None` for none.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the reason is not text.
        :raises InvalidData: the reason contains a NUL character.
        """
        validation.check_optional_text(new_reason, 'reason')
        for blocker in self.blockers_by_token(token):
            blocker.reason = new_reason

    def change_blocker(
        self, token: uuid.UUID, id: int, new_start: datetime, new_end: datetime
    ) -> ReservationBlocker | None:
        """Move one blocker to another span of its allocation.

        Removes and adds it again inside a savepoint (same token, id and reason);
        the slots are flushed. No event fires.

        :param token: the blocker token, a UUID or a string holding one.
        :param id: the `int` id of the blocker.
        :param new_start: a `datetime`; naive values are read in the scheduler's
            zone (not in a DST gap, nor ambiguous where an allocation lies in
            that hour), aware ones converted.
        :param new_end: likewise.
        :returns: the new `ReservationBlocker`, or `None` if the span is unchanged.
        :raises LibresAssertionError: a new date is missing.
        :raises RecordNotFound: the token has no blocker with this id.
        :raises TimerangeTooLong: the new span is not inside the allocation.
        :raises NonExistentTimeError: a local time falls into a DST gap.
        :raises AmbiguousTimeError: a local time is ambiguous and that matters.
        :raises AlreadyReservedError: another booking holds a slot of the new
            span (`ReservedSlotTaken`, when the savepoint is flushed).
        """
        if not (new_start and new_end):
            raise errors.LibresAssertionError('a new start and a new end are required')
        validation.check_uuid(token, 'token')
        validation.check_id(id)
        self._engine.dates.refuse_unclear((new_start, new_end))
        new_start, new_end = self._engine.dates.date(new_start), self._engine.dates.date(new_end)
        existing = the_one(self.blockers_by_token(token, id), f'blocker {id} of token {token}')
        if existing.start == new_start and existing.end in (
            new_end, new_end - _MICROSECOND
        ):
            return None
        allocation = the_one(existing.target_allocations(), f'allocation of blocker {id}')
        self._engine.spots.require_inside(allocation, new_start, new_end)
        reason = existing.reason
        with self.session.begin_nested():
            self.remove_blocker(token, id)
            blockers = self.add_blocker(
                dates=(new_start, new_end), reason=reason, token=token, id=id
            )
        return blockers[0]



class _BlockerBatch:
    """The blockers and slots of one ``add_blocker`` call: one blocker per
    target (a group once, an allocation per date), flushed for its id."""

    def __init__(
        self, scheduler: BlockersMixin[Any, Any], token: uuid.UUID, id: int | None, reason: str | None
    ) -> None:
        self.scheduler = scheduler
        self.token, self.id, self.reason = token, id, reason
        self.blockers: list[ReservationBlocker] = []
        self.slots: list[ReservedSlot] = []

    def block(
        self, dates: list[DatePair], masters: list[Allocation], group: uuid.UUID | None
    ) -> tuple[list[ReservationBlocker], list[ReservedSlot]]:
        if group:
            self._block_group(group)
            return self.blockers, self.slots
        for target in booking_targets(dates, [(a, a.in_group) for a in masters]):
            if target.span is None:
                self._block_group(target.group)
                continue
            blocker = self._new_blocker(
                target=target.group, target_type='allocation',
                start=target.span[0], end=target.span[1], timezone=target.allocation.timezone,
            )
            self._take_every_spot(target.allocation, *target.requested, blocker)
        return self.blockers, self.slots

    def _new_blocker(self, **values: Any) -> ReservationBlocker:
        session = self.scheduler.session
        blocker = ReservationBlocker(
            token=self.token, resource=self.scheduler.resource, reason=self.reason, **values
        )
        if self.id is not None:
            blocker.id = self.id
        session.add(blocker)
        session.flush()
        self.blockers.append(blocker)
        return blocker

    def _block_group(self, group: uuid.UUID) -> None:
        blocker = self._new_blocker(target=group, target_type='group')
        for member in self.scheduler.allocations_by_group(group):
            self._take_every_spot(member, member.start, member.end, blocker)

    def _take_every_spot(
        self, master: Allocation, start: datetime, end: datetime, blocker: ReservationBlocker
    ) -> None:
        take = self.scheduler._engine.slots.take
        for spot in master.siblings():
            self.slots.extend(take(spot, start, end, blocker.token, 'blocker', blocker.id))
