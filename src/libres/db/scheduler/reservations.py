"""Reservations: reserve, approve, deny, remove and change."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import bindparam, inspect, select

from libres.db.booking import fast_path
from libres.db.booking.dates import DatePair, Dates
from libres.db.booking.fast_path import ReserveChecks
from libres.db.booking.policies import booked_start, checked_hold, require_in_window
from libres.db.booking.spots import MasterView, SpotUsages
from libres.db.booking.targets import booking_targets
from libres.db.lookups import the_one
from libres.db.models import Allocation, Reservation, ReservedSlot
from libres.db.scheduler.base import AllocationT, ReservationT, SchedulerBase
from libres.modules import clock, errors, events, validation

ONE_MICROSECOND = timedelta(microseconds=1)


# ``reservations_by_token`` built once: it runs in every approval.
_BY_TOKEN = select(Reservation).where(
    Reservation.resource == bindparam('resource'), Reservation.token == bindparam('token')
)


class ReservationsMixin(SchedulerBase[AllocationT, ReservationT]):
    """The two-step booking: reserve (pending), then approve (slots)."""

    def reservation_targets(self, start: datetime, end: datetime) -> list[AllocationT]:
        """The spot to book in every own master allocation overlapping the range.

        Read-only: a spot may be a mirror not written yet (a transient object,
        not added to the session).

        :param start: a `datetime`; naive values are read in the scheduler's
            zone, aware ones converted.
        :param end: likewise.
        :returns: a list of `Allocation` (masters or mirrors), in start order.
        :raises InvalidArgumentType: a date is not a `datetime`.
        :raises AlreadyReservedError: an overlapping allocation has no free spot.
        """
        start, end = self._engine.dates.date(start), self._engine.dates.date(end)
        spots = self._engine.spots
        found = spots.spots_among(spots.masters_overlapping([(start, end)]), start, end)
        return cast('list[AllocationT]', found)

    # --- validation -----------------------------------------------------------

    def _validate_reservation(
        self, dates: list[DatePair], quota: int, next_reservation_id: bool = False,
        holding: bool = False,
    ) -> tuple[list[MasterView], int | None, SpotUsages]:
        """Refuse what cannot be booked; return the overlapping visible masters
        (and a fresh reservation id if asked for, from the same query) and the
        spot usages read. A hold needs free spots even on a waiting list."""
        spots = self._engine.spots
        views, next_id = spots.masters_with_taken(dates, True, next_reservation_id)
        usages: SpotUsages = {}
        by_allocation = {id(view.allocation): view for view in views}
        for start, end, allocation in spots.each_overlap(dates, [v.allocation for v in views]):
            # The waiting list of a manual allocation is never full.
            if holding or not allocation.approve_manually:
                spots.require_free(allocation, start, end, quota, by_allocation[id(allocation)], usages)
            spots.require_contained(allocation, start, end)
            if 0 < allocation.quota_limit < quota:
                raise errors.QuotaOverLimit()
            if allocation.quota < quota:
                raise errors.QuotaImpossible()
            if quota < 1:
                raise errors.InvalidQuota()
        return views, next_id, usages

    # --- reserve --------------------------------------------------------------

    def _session_token(self, session_id: uuid.UUID | None, single_token_per_session: bool) -> uuid.UUID:
        if single_token_per_session and session_id:
            token = self.session.scalars(
                select(Reservation.token)
                .where(Reservation.session_id == session_id)
                .order_by(Reservation.created)
                .limit(1)
            ).first()
            if token is not None:
                return token
        return uuid.uuid4()

    def reserve(
        self,
        email: str,
        dates: Dates | None = None,
        group: uuid.UUID | None = None,
        data: dict[str, Any] | None = None,
        session_id: uuid.UUID | None = None,
        quota: int = 1,
        single_token_per_session: bool = False,
        hold: timedelta | None = None,
        ignore_booking_window: bool = False,
    ) -> uuid.UUID:
        """Create pending reservations and return their token.

        :param email: the booker's address (checked by the context's
            ``email_validator`` service).
        :param dates: a ``(start, end)`` pair, pairs, or a flat sequence (naive:
            the scheduler's zone); or ``group`` instead, to book a group whole.
        :param data: a JSON dict stored on every row.
        :param session_id: a shopping-cart session (``Queries`` confirms or
            expires it); ``single_token_per_session`` reuses its token.
        :param quota: spots per date (at most the allocations' quota limit).
        :param hold: a `timedelta` (more than nothing, at most a day): the
            pending rows take their spots now, until `now + hold`, so nobody
            else can book them meanwhile; `approve_reservations` makes the
            hold the booking. An expired hold blocks nobody.
        :param ignore_booking_window: skip the allocations' `min_notice` and
            `max_advance` (a manager booking for someone).
        :returns: the token; the rows are pending and not flushed (with a
            hold: flushed, with their slots).
        :raises LibresAssertionError: both or neither of dates and group.
        :raises InvalidEmailAddress: not an address.
        :raises AlreadyReservedError: no free spot (not for a waiting list).
        :raises QuotaOverLimit: more spots than one reservation may take;
            ``QuotaImpossible`` more than the quota, ``InvalidQuota`` fewer than one.
        :raises TimerangeTooLong: the dates run past the allocation;
            ``ReservationTooLong`` / ``ReservationTooShort`` for the length.
        :raises InvalidReservationError: no allocation covers the dates.
        :raises OverlappingReservationError: the same target twice in a cart.
        :raises OutsideBookingWindow: a date starts too soon or too far ahead.
        :raises InvalidArgument: a hold of nothing or of more than a day.

        Writes no slots without a hold (``approve_reservations`` does); fires
        ``on_reservations_made``.
        """
        if bool(dates) == bool(group):
            raise errors.LibresAssertionError('give either dates or a group')
        email = self._checked_email(email)
        validation.check_whole_number(quota, 'quota')
        validation.check_flag(single_token_per_session, 'single_token_per_session')
        validation.check_optional_uuid(session_id, 'session id')
        validation.check_flag(ignore_booking_window, 'ignore_booking_window')
        hold = checked_hold(hold)
        data = validation.checked_data(data)
        prepared = self._engine.dates.booking(dates, group, refuse_empty_group=True)
        fresh = not (single_token_per_session and session_id)
        # A fresh token of dates may be approved next, without a flush in
        # between: its row takes an id from the same query.
        visible, next_id, usages = self._validate_reservation(
            prepared, quota, fresh and not group, holding=hold is not None
        )
        own = [view for view in visible if view.allocation.resource == self.resource]
        if not ignore_booking_window:
            self._require_in_window(prepared, own)

        token = self._session_token(session_id, single_token_per_session)
        fields = {'token': token, 'status': 'pending', 'resource': self.resource, 'data': data,
                  'session_id': session_id, 'email': email, 'quota': quota}
        rows = self._checked_new_rows(fields, group, prepared, own)
        if fresh:
            fast_path.remember_fresh_token(self.session, token)
        if next_id is not None:
            rows[0].id = next_id
        self.session.add_all(rows)
        if hold is not None:
            self._hold(rows, clock.now() + hold, own, usages)
        events.on_reservations_made(self.context, cast('list[Reservation]', rows))
        if hold is None and fresh and len(rows) == 1 and rows[0].target_type == 'allocation':
            fast_path.remember_reserve_checks(self.session, token, ReserveChecks(prepared, own, usages))
        return token

    def _require_in_window(self, dates: list[DatePair], own: list[MasterView]) -> None:
        """What every date books of the own allocations it meets starts inside their booking window."""
        windowed = [
            view.allocation for view in own
            if view.allocation.min_notice is not None or view.allocation.max_advance is not None
        ]
        if not windowed:
            return
        now = clock.now()
        for start, end in dates:
            for allocation in windowed:
                if allocation.overlaps(start, end):
                    # Where the booking begins, not where it was asked to.
                    require_in_window(allocation, booked_start(allocation, start, end), now, self.timezone)

    def _hold(
        self, rows: list[ReservationT], held_until: datetime, own: list[MasterView],
        usages: SpotUsages,
    ) -> None:
        """Take the rows' spots as a hold, the rows held until then (the owners
        of the slots). One new row of one spot, checked free already, gets
        its slots from what the check read, all written with the next flush;
        an approval before that flush books them without a statement
        (``fast_path.unwritten_hold``). Otherwise the rows are written, then
        their slots, inside a savepoint, as ``approve_reservations`` does for
        several rows, so a refusal leaves nothing behind."""
        row = rows[0]
        if len(rows) == 1 and self._is_single_spot(row) and row.id is not None:
            row.held_until = held_until
            added: list[object] = []
            for spot, in_way in self._free_spots(row, own, dict(usages)):
                if spot.is_transient:
                    added.append(spot)
                assert row.start is not None and row.end is not None
                added.extend(self._engine.slots.take(
                    spot, row.start, row.end, row.token, 'reservation', row.id, held_until, in_way
                ))
            fast_path.remember_unwritten_hold(self.session, row.token, added)
            return

        def take() -> None:
            for row in rows:
                row.held_until = held_until
            self.session.flush()
            for row in rows:
                self._engine.slots.write_reservation(row, row.id, held_until)
            self.session.flush()

        if len(rows) == 1 and self._is_single_spot(rows[0]):
            take()
        else:
            with self._savepoint():
                take()

    def _checked_email(self, email: object) -> str:
        """The address, stripped, if it is one; else ``InvalidEmailAddress``."""
        if not isinstance(email, str):
            raise errors.InvalidArgumentType(f'the e-mail address must be a string, got {email!r}')
        email = email.strip()
        # Control characters (a newline above all) would let an address
        # smuggle headers into the e-mails applications send.
        if not self.validate_email(email) or any(ord(c) < 32 or ord(c) == 127 for c in email):
            raise errors.InvalidEmailAddress(f'{email!r} is not an e-mail address')
        return email

    def _checked_new_rows(
        self, fields: dict[str, Any], group: uuid.UUID | None, dates: list[DatePair],
        own: list[MasterView],
    ) -> list[ReservationT]:
        """The pending rows of a reservation, refused if they cover nothing or
        repeat a target already in the cart."""
        rows = self._pending_rows(fields, group, dates, own)
        if not rows:
            raise errors.InvalidReservationError('no allocation covers the given dates')
        if fields['session_id']:
            self._refuse_duplicates_in_session(fields['session_id'], rows)
        return rows

    def _pending_rows(
        self, fields: dict[str, Any], group: uuid.UUID | None, dates: list[DatePair],
        own: list[MasterView],
    ) -> list[ReservationT]:
        """One pending row per target: the group asked for, or what the dates
        meet among the own masters (a group once, an allocation per date)."""

        def new_row(**values: Any) -> ReservationT:
            row = self.reservation_cls()
            for key, value in {**fields, **values}.items():
                setattr(row, key, value)
            return row

        if group:
            return [new_row(target=group, target_type='group')]
        return [
            new_row(target=target.group, target_type='group') if target.span is None else new_row(
                target=target.group, target_type='allocation', start=target.span[0],
                end=target.span[1], timezone=target.allocation.timezone,
            )
            for target in booking_targets(dates, [(v.allocation, v.in_group) for v in own])
        ]

    def _refuse_duplicates_in_session(self, session_id: uuid.UUID, rows: Sequence[Reservation]) -> None:
        existing = {
            (target, start)
            for target, start in self.session.execute(
                select(Reservation.target, Reservation.start).where(
                    Reservation.session_id == session_id
                )
            )
        }
        for row in rows:
            if (row.target, row.start) in existing:
                raise errors.OverlappingReservationError()

    # --- approve, deny, remove --------------------------------------------------

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        """Leave no half-written slots behind when a step fails."""
        with self.session.begin_nested():
            yield

    def approve_reservations(self, token: uuid.UUID) -> list[ReservedSlot]:
        """Write the slots of the token's pending reservations (approved ones are left alone).

        Several rows are written inside a savepoint, so a refusal leaves nothing
        behind. The reservations and their slots are flushed before this
        returns (host applications look them up under `no_autoflush` right
        after). Fires `on_reservations_approved` with the approved rows (an
        empty list for an unknown token).

        :param token: the reservation token, a UUID or a string holding one.
        :returns: the new `ReservedSlot` objects, a list.
        :raises InvalidUUID: the token is not a UUID.
        :raises AlreadyReservedError: a spot is taken meanwhile (the error's
            `reservation` names the row).
        :raises NotReservableError: a reservation covers no free allocation any more.
        """
        validation.check_uuid(token, 'token')
        rows = self._reservations_to_approve(token)
        pending = [row for row in rows if row.status == 'pending']
        slots: list[ReservedSlot] = []
        held = [row for row in pending if row.held_until is not None]
        unwritten = fast_path.take_unwritten_hold(self.session, token)
        if unwritten is not None and all(inspect(row).pending for row in held):
            # Neither the rows nor their slots are written yet: they are
            # written as the booking itself, as if reserved without a hold.
            slots = [slot for slot in unwritten if isinstance(slot, ReservedSlot)]
            for slot in slots:
                slot.held_until = None
            for row in held:
                row.status, row.held_until = 'approved', None
        elif held:
            slots = self._engine.slots.confirm_holds(held)
        # Rows whose hold is gone are booked like any other.
        unbooked = [row for row in pending if row.status == 'pending']
        if len(unbooked) == 1 and self._is_single_spot(unbooked[0]):
            slots.extend(self._approve_single(unbooked[0]))
        elif unbooked:
            with self._savepoint():
                for row in unbooked:
                    try:
                        slots.extend(self._engine.slots.write_reservation(row, row.id))
                    except errors.LibresError as error:
                        error.reservation = row
                        raise
        if pending:
            self.session.flush()
        events.on_reservations_approved(self.context, pending)
        return slots

    def _approve_reservation_record(self, reservation: Reservation) -> list[ReservedSlot]:
        """Approve one reservation row and return its new slots (flushed).

        The name and behaviour of libres 1.4.0, which host applications call
        to add a reservation to an existing ticket: no event is fired. A row
        that is already approved gets no second set of slots (1.4.0 booked
        another spot for it)."""
        if reservation.status == 'approved':
            return []
        if reservation.id is None:
            self.session.flush()
        slots = self._engine.slots.write_reservation(reservation, reservation.id)
        self.session.flush()
        return slots

    def _reservations_to_approve(self, token: uuid.UUID) -> list[Reservation]:
        """The token's rows, stored or still unsaved in this session.

        Unsaved rows of the token are not flushed here, so that approving
        them inserts them approved instead of inserting and then updating;
        but anything else pending is flushed first (taking them along): the
        checks must see it.
        """
        unsaved = [
            row for row in self.session.new
            if isinstance(row, Reservation) and row.token == token and row.resource == self.resource
        ]
        # The token's own unwritten hold waits too: it needs no flush.
        own = len(unsaved) + len(fast_path.unwritten_hold(self.session, token) or ())
        if len(self.session.new) > own or self.session.dirty or self.session.deleted:
            self.session.flush()
        if unsaved and fast_path.take_fresh_token(self.session, token):
            # A token this session made and has not flushed yet cannot have
            # stored rows: nothing to look up.
            return unsaved
        with self.session.no_autoflush:
            stored = list(self.session.scalars(
                _BY_TOKEN, {'resource': self.resource, 'token': token}
            ))
        return stored + [row for row in unsaved if row not in stored]

    def _is_single_spot(self, row: Reservation) -> bool:
        """One allocation, one spot, no blocking resources: no savepoint needed."""
        return row.target_type == 'allocation' and row.quota == 1 and not self.blocking_resources

    def _approve_single(self, row: Reservation) -> list[ReservedSlot]:
        """Approve one reservation of one spot: check first, then write.

        Nothing is written before every check has passed, so a refusal leaves
        the session as it was without the cost of a savepoint.
        """
        assert row.start is not None and row.end is not None
        try:
            with self.session.no_autoflush:
                checks = fast_path.reserve_checks(self.session, row) if inspect(row).pending else None
                known: SpotUsages = {}
                next_id = None
                if checks is not None:
                    views, known = checks.views, dict(checks.usages)
                else:
                    views, next_id = self._engine.spots.masters_with_taken(
                        [(row.start, row.end)], next_reservation_id=row.id is None
                    )
                targets = self._free_spots(row, views, known)
            if not targets:
                raise errors.NotReservableError(
                    f'reservation {row.id} (token {row.token}) covers no allocation any more'
                )
        except errors.LibresError as error:
            error.reservation = row
            raise
        row.status = 'approved'
        if row.id is None:
            # An unsaved row is inserted approved, with the id taken above,
            # in the same flush as its slots.
            if next_id is None:
                self.session.flush()
            else:
                row.id = next_id
        slots: list[ReservedSlot] = []
        for spot, in_way in targets:
            slots.extend(self._engine.slots.take(
                spot, row.start, row.end, row.token, 'reservation', row.id, expired_in_way=in_way
            ))
        return slots

    def _free_spots(
        self, row: Reservation, views: list[MasterView], known: SpotUsages
    ) -> list[tuple[Allocation, bool | None]]:
        """The free spot of every master the row's span meets, each with
        whether expired holds are in its way (what the check read tells)."""
        assert row.start is not None and row.end is not None
        targets = []
        for view in views:
            if not view.allocation.overlaps(row.start, row.end):
                continue
            spot = self._engine.spots.master_spot(view, row.start, row.end, known)
            if spot is None:
                raise errors.AlreadyReservedError(
                    f'allocation {view.allocation.id} has no free spot for '
                    f'{errors.describe_span(row.start, row.end, self.timezone)}'
                )
            in_way = bool(view.expired) if spot is view.allocation else (
                any(usage.expired for usage in known.values()) if known else None
            )
            targets.append((spot, in_way))
        return targets

    def deny_reservation(self, token: uuid.UUID) -> None:
        """Remove the token's pending reservations (approved ones stay).

        One bulk delete, as in libres 1.4.0 (host applications may hook it);
        rows loaded in the session are marked deleted. Fires
        `on_reservations_denied` with the denied rows (an empty list if none).

        :param token: the reservation token, a UUID or a string holding one.
        :raises InvalidUUID: the token is not a UUID.
        """
        pending = self.reservations_by_token(token).filter(Reservation.status == 'pending')
        rows = pending.all()
        if rows:
            pending.delete(synchronize_session='fetch')
            if any(row.held_until is not None for row in rows):
                # The database removed the hold's slots with its rows;
                # allocations loaded here must read their slots again.
                self.session.expire_all()
        events.on_reservations_denied(self.context, cast('list[Reservation]', rows))

    def remove_reservation(self, token: uuid.UUID, id: int | None = None) -> None:
        """Remove the token's reservations (or one of them) with their slots.

        Pending and approved alike. Through the unit of work, as libres 1.4.0
        did (host applications answer bulk deletes with a savepoint of their
        transaction manager): deleted, flushed, then the session is expired.
        With `id`, only that row and its own slots go. Fires
        `on_reservations_removed` with the removed rows.

        :param token: the reservation token, a UUID or a string holding one.
        :param id: the `int` id of one reservation of the token, or `None` for all.
        :raises LibresAssertionError: the token is empty.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        self._engine.slots.delete_each(self.reserved_slots_by_reservation(token, id))
        rows = self.reservations_by_token(token, id).all()
        for row in rows:
            self.session.delete(row)
        self.session.flush()
        # Allocations must reload their slot collections.
        self.session.expire_all()
        events.on_reservations_removed(self.context, cast('list[Reservation]', rows))

    # --- changes ----------------------------------------------------------------

    def change_email(self, token: uuid.UUID, new_email: str) -> None:
        """Set the e-mail address of every reservation of the token.

        Changes the loaded objects only: written with the next flush. No event
        fires; an unknown token changes nothing.

        :param token: the reservation token, a UUID or a string holding one.
        :param new_email: the address, checked by the context's `email_validator`.
        :raises InvalidArgumentType: the address is not a string.
        :raises InvalidEmailAddress: the validator refuses the address.
        :raises InvalidUUID: the token is not a UUID.
        """
        if not isinstance(new_email, str):
            raise errors.InvalidArgumentType(f'the e-mail address must be a string, got {new_email!r}')
        if not self.validate_email(new_email):
            raise errors.InvalidEmailAddress(f'{new_email!r} is not an e-mail address')
        for row in self.reservations_by_token(token):
            row.email = new_email

    def change_reservation_data(self, token: uuid.UUID, data: dict[str, Any] | None) -> None:
        """Set the `data` of every reservation of the token.

        Changes the loaded objects only: written with the next flush. No event
        fires; an unknown token changes nothing.

        :param token: the reservation token, a UUID or a string holding one.
        :param data: a JSON-serializable `dict`, or `None`.
        :raises InvalidArgumentType: the data is not a dict.
        :raises InvalidData: NaN or infinity, a NUL character, or more than 1 MiB of JSON.
        :raises InvalidUUID: the token is not a UUID.
        """
        data = validation.checked_data(data)
        for row in self.reservations_by_token(token):
            row.data = data

    def change_reservation_time_candidates(self, tokens: list[uuid.UUID] | None = None) -> Any:
        """The approved reservations whose time may be changed.

        Those of one allocation (not a group) that is partly available.

        :param tokens: a list of tokens (UUIDs or strings holding them) to limit
            the result to; `None` or empty for all.
        :returns: a `Query` of `Reservation`, not yet run.
        :raises InvalidArgumentType: `tokens` is not a list.
        :raises InvalidUUID: a token is not a UUID.
        """
        partly_groups = select(Allocation.group).where(
            Allocation.mirror_of == self.resource, Allocation.partly_available.is_(True)
        )
        query = self.managed_reservations().filter(
            Reservation.status == 'approved',
            Reservation.target_type == 'allocation',
            Reservation.target.in_(partly_groups),
        )
        if tokens:
            validation.check_uuids(tokens, 'tokens')
            query = query.filter(Reservation.token.in_(tokens))
        return query

    def change_reservation_time(
        self, token: uuid.UUID, id: int, new_start: datetime, new_end: datetime
    ) -> ReservationT | None:
        """Deprecated: use `change_reservation`, which this calls.

        Warns with a `DeprecationWarning`; parameters, return value and errors
        are those of `change_reservation` (without `quota`).
        """
        warnings.warn(
            'change_reservation_time is deprecated and will be removed, '
            'use change_reservation instead',
            DeprecationWarning,
            stacklevel=2,
        )
        return self.change_reservation(token, id, new_start, new_end)

    def change_reservation(
        self,
        token: uuid.UUID,
        id: int,
        new_start: datetime,
        new_end: datetime,
        quota: int | None = None,
        ignore_booking_window: bool = False,
    ) -> ReservationT | None:
        """Move a reservation to another span of its allocation, or change its quota.

        Removes and reserves it again inside a savepoint, keeping its token, id,
        e-mail, data and session; an approved one gets its slots again
        (flushed), and so does a pending one whose hold lives, held until the
        same moment (an expired hold is not taken again). Fires
        `on_reservation_time_changed` with the old and new times.

        :param token: the reservation token, a UUID or a string holding one.
        :param id: the `int` id of the reservation.
        :param new_start: a `datetime`; naive values are read in the scheduler's
            zone (not in a DST gap, nor ambiguous where an allocation lies in
            that hour), aware ones converted.
        :param new_end: likewise.
        :param quota: the new `int` quota, or `None` to keep it.
        :param ignore_booking_window: skip the allocation's booking window for
            the new time (a manager moving a booking).
        :returns: the new `Reservation`, or `None` if nothing changes.
        :raises LibresAssertionError: a new date is missing.
        :raises RecordNotFound: the token has no reservation with this id.
        :raises InvalidReservationError: the reservation has no allocation.
        :raises TimerangeTooLong: the new span is not inside the allocation.
        :raises NonExistentTimeError: a local time falls into a DST gap.
        :raises AmbiguousTimeError: a local time is ambiguous and that matters.
        :raises AlreadyReservedError: too few spots are free (and the errors of `reserve`).
        :raises OutsideBookingWindow: the new time starts too soon or too far ahead.
        """
        if not (new_start and new_end):
            raise errors.LibresAssertionError('a new start and a new end are required')
        validation.check_uuid(token, 'token')
        validation.check_id(id)
        validation.check_optional_id(quota, 'quota')
        validation.check_flag(ignore_booking_window, 'ignore_booking_window')
        self._engine.dates.refuse_unclear((new_start, new_end))
        new_start, new_end = self._engine.dates.date(new_start), self._engine.dates.date(new_end)

        existing = the_one(self.reservations_by_token(token, id), f'reservation {id} of token {token}')
        unchanged_quota = quota is None or quota == existing.quota
        if unchanged_quota and existing.start == new_start and \
                existing.end in (new_end, new_end - ONE_MICROSECOND):
            return None

        self._engine.spots.require_inside(self._allocation_of(existing), new_start, new_end)
        return self._rebook(existing, new_start, new_end, quota or existing.quota, ignore_booking_window)

    def _allocation_of(self, row: ReservationT) -> Allocation:
        """The allocation a reservation row books (the one holding its slots, once approved)."""
        allocation: Allocation | None
        if row.status == 'approved':
            allocation = the_one(
                self.allocations_by_reservation(row.token, row.id), f'allocation of reservation {row.id}'
            )
        else:
            allocation = row._target_allocations().first()
        if allocation is None:
            raise errors.InvalidReservationError('the reservation has no allocation')
        return allocation

    def _rebook(
        self, existing: ReservationT, new_start: datetime, new_end: datetime, quota: int,
        ignore_booking_window: bool = False,
    ) -> ReservationT:
        """Remove the row and reserve it again (token, id, e-mail, data and
        session kept) inside a savepoint; slots again if it was approved."""
        token, id = existing.token, existing.id
        email, data, session_id = existing.email, existing.data, existing.session_id
        was_approved = existing.status == 'approved'
        # A live hold moves with the reservation, held until the same moment
        # (a change does not prolong it); an expired one is not taken again.
        held_until = existing.held_until
        if was_approved or held_until is None or held_until <= clock.now():
            held_until = None
        old_time = (existing.display_start(), existing.display_end())

        with self.session.begin_nested():
            self.remove_reservation(token, id)
            new_token = self.reserve(
                email, (new_start, new_end), data=data, quota=quota,
                ignore_booking_window=ignore_booking_window,
            )
            new = self.reservations_by_token(new_token).one()
            new.id = id
            new.token = token
            new.session_id = session_id
            if held_until is not None:
                new.held_until = held_until
            self.session.flush()
            if was_approved:
                self._engine.slots.write_reservation(new, id)
            elif held_until is not None:
                self._engine.slots.write_reservation(new, id, held_until)
            events.on_reservation_time_changed(
                self.context,
                new,
                old_time=old_time,
                new_time=(new.display_start(), new.display_end()),
            )
        return new
