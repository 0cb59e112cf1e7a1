"""Holds, buffers and booking windows (issue 16) under random sequences of
operations, checked after every step against a model of every slot.

The machine of ``test_state_machine`` models occupied hours per spot on a
raster of 60 minutes and counts slots per hour; buffers need slots of 15
minutes and a kind per slot (booking, live or expired hold, buffer), and a
hold needs a clock. So this is a second machine on the same day
(``DAY``), with a clock it moves itself: every call's outcome (success or
the exact error) is predicted by the model, and the slots, the reservation
rows, the buffers, the availability and ``libres.integrity.check`` are read
back from the database after each step.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy.orm import Session, selectinload
from tests.integration.test_state_machine import DAY

from libres import integrity
from libres.context.core import Context
from libres.db.models import Allocation, Reservation, ReservationBlocker, ReservedSlot
from libres.db.scheduler import Scheduler
from libres.modules import clock, errors
from libres.modules.utils import generate_uuids

MINUTE = timedelta(minutes=1)
ONE_MICROSECOND = timedelta(microseconds=1)
DAWN = 6 * 60  # the clock at the start of every example: 06:00 on DAY
CARTS = (uuid.UUID(int=1), uuid.UUID(int=2))
NO_SESSION_EXPIRES = datetime(2000, 1, 1, tzinfo=UTC)


def at(minute: int) -> datetime:
    """``minute`` minutes after midnight of DAY, aware UTC."""
    return DAY + minute * MINUTE


def minutes(value: datetime) -> int:
    return int((value.astimezone(UTC) - DAY) / MINUTE)


class MovableClock:
    """The clock of ``libres.modules.clock`` during the test: minutes after
    midnight of DAY, moved by a rule."""

    def __init__(self) -> None:
        self.minute = DAWN

    def __call__(self) -> datetime:
        return at(self.minute)


@dataclass(eq=False)
class Booking:
    """A reservation row (or a blocker) and the slots it owns now."""

    token: uuid.UUID
    place: Place = field(repr=False)
    start: int  # as asked (minutes)
    end: int
    spots: int
    kind: Literal['pending', 'approved', 'blocker']
    cart: uuid.UUID | None = None
    held_until: int | None = None  # the row's column (minutes)
    taken: list[tuple[int, int]] = field(default_factory=list)  # (spot, slot start)

    @property
    def row_start(self) -> int:
        """The stored start: the asked one on the allocation's raster."""
        return self.place.floor(self.start)

    @property
    def row_end(self) -> int:
        return -(-self.end // self.place.raster) * self.place.raster

    def holds(self) -> bool:
        """A pending row whose hold still has its slots (live or expired)."""
        return self.kind == 'pending' and bool(self.taken)

    def expired(self, now: int) -> bool:
        return self.holds() and self.held_until is not None and self.held_until <= now


@dataclass(eq=False)
class Slot:
    owner: Booking
    buffer: bool

    def blocks(self, now: int) -> bool:
        """All but a slot of an expired hold keep others off the spot."""
        return not self.owner.expired(now)

    def kind(self, now: int) -> str:
        if self.owner.kind == 'pending':
            state = 'expired hold' if self.owner.expired(now) else 'live hold'
            return f'{state} buffer' if self.buffer else state
        return 'buffer' if self.buffer else ('blocker' if self.owner.kind == 'blocker' else 'booking')


@dataclass(eq=False)
class Place:
    """An allocation (times in minutes, ``end`` exclusive) and its spots."""

    id: int
    start: int
    end: int
    quota: int
    partly: bool
    raster: int
    before: int
    after: int
    notice: int | None
    advance: int | None
    spots: list[dict[int, Slot]] = field(default_factory=list, repr=False)  # slot start -> slot, per spot

    def floor(self, minute: int) -> int:
        return minute - minute % self.raster

    def slot_starts(self, start: int, end: int) -> list[int]:
        """The starts of the raster slots of [start, end), inside the allocation."""
        if not self.partly:
            return [self.start]
        start, end = max(start, self.start), min(end, self.end)
        return list(range(self.floor(start), end, self.raster))

    def occupied(self, start: int, end: int) -> tuple[int, int]:
        """What a reservation takes on its spot: the span and its buffers, clipped."""
        if not self.partly:
            return start, end
        return max(start - self.before, self.start), min(end + self.after, self.end)

    def booked_start(self, start: int) -> int:
        """When a booking asked from ``start`` begins: its first slot."""
        return self.slot_starts(start, start + 1)[0]

    def in_window(self, start: int, now: int) -> bool:
        begins = self.booked_start(start)
        return (self.notice is None or begins >= now + self.notice) and (
            self.advance is None or begins <= now + self.advance
        )

    def free(self, index: int, starts: list[int], now: int) -> bool:
        spot = self.spots[index]
        return all(s not in spot or not spot[s].blocks(now) for s in starts)

    def free_spots(self, start: int, end: int, now: int, buffers: bool = True) -> list[int]:
        starts = self.slot_starts(*(self.occupied(start, end) if buffers else (start, end)))
        return [i for i in range(self.quota) if self.free(i, starts, now)]

    def slot_end(self, start: int) -> int:
        return self.end if not self.partly else start + self.raster

    def availability(self, index: int, now: int) -> float:
        """``Allocation.availability`` of one spot: buffers and expired holds are no booked time."""
        total = len(self.slot_starts(self.start, self.end))
        counted = [s for s in self.spots[index].values() if not s.buffer and s.blocks(now)]
        blocked = sum(1 for s in counted if s.owner.kind == 'blocker')
        reserved = len(counted) - blocked
        if total == blocked or total - blocked == reserved:
            return 0.0
        return 100.0 - 100.0 * reserved / (total - blocked)


def kind_of(slot: ReservedSlot, now: datetime) -> str:
    """A slot row's kind in the words of ``Slot.kind``."""
    if slot.held_until is not None:
        state = 'live hold' if slot.blocks(now) else 'expired hold'
        return f'{state} buffer' if slot.buffer else state
    if slot.buffer:
        return 'buffer'
    return 'blocker' if slot.source_type == 'blocker' else 'booking'


Outcome = type[errors.LibresError] | None


class Policies(RuleBasedStateMachine):
    context: Context
    engine: sa.Engine

    def __init__(self) -> None:
        super().__init__()
        self.clock = MovableClock()
        clock.set_clock(self.clock)
        self.scheduler = Scheduler(self.context, 'policies', 'UTC')
        self.places: list[Place] = []
        self.bookings: list[Booking] = []  # in the order they were made: tokens are random
        self.refused = False
        self.scheduler.extinguish_managed_records()
        self.scheduler.commit()

    def teardown(self) -> None:
        self.scheduler.rollback()
        self.scheduler.extinguish_managed_records()
        self.scheduler.commit()
        clock.set_clock(None)

    @property
    def now(self) -> int:
        return self.clock.minute

    # --- helpers ------------------------------------------------------------

    def attempt(self, label: str, call: Callable[[], Any], expected: Outcome) -> tuple[bool, Any]:
        """Run a call and commit, or roll back on a libres error; the outcome
        must be the predicted one (``expected``: the error, or None)."""
        try:
            result = call()
            self.scheduler.commit()
        except errors.LibresError as error:
            self.scheduler.rollback()
            event(f'{label}: {type(error).__name__}')
            assert expected is not None, f'refused with {error!r}, the model expected success'
            assert isinstance(error, expected), f'refused with {error!r}, expected {expected.__name__}'
            return False, None
        assert expected is None, f'succeeded, the model expected {expected.__name__}'
        event(f'{label}: ok')
        return True, result

    def release(self, booking: Booking) -> None:
        for index, start in booking.taken:
            del booking.place.spots[index][start]
        booking.taken = []

    def take(self, booking: Booking, index: int, start: int, end: int) -> None:
        """Write a booking's slots on one spot (a reservation's buffers too),
        removing whole every expired hold in the way first."""
        place = booking.place
        booked = place.slot_starts(start, end)
        wanted = place.slot_starts(*place.occupied(start, end)) if booking.kind != 'blocker' else booked
        spot = place.spots[index]
        for owner in {id(spot[s].owner): spot[s].owner for s in wanted if s in spot}.values():
            assert owner.expired(self.now), 'the model took a spot that is not free'
            self.release(owner)
        for slot_start in wanted:
            spot[slot_start] = Slot(booking, slot_start not in booked)
            booking.taken.append((index, slot_start))

    def book(self, booking: Booking, start: int, end: int) -> None:
        """Take the first free spot, ``booking.spots`` times (checked free before)."""
        for _ in range(booking.spots):
            free = booking.place.free_spots(start, end, self.now)
            self.take(booking, free[0], start, end)

    def draw_span(self, data: st.DataObject, place: Place, longest: int = 24 * 60) -> tuple[int, int]:
        """A span inside the allocation, on quarter hours (a raster of 60 rounds it)."""
        start = data.draw(st.sampled_from(range(place.start, place.end - 14, 15)), label='start')
        end = data.draw(st.sampled_from(range(start + 15, min(place.end, start + longest) + 1, 15)), label='end')
        return start, end

    def pending(self, held: bool | None = None) -> list[Booking]:
        return [b for b in self.bookings if b.kind == 'pending' and (held is None or b.holds() == held)]

    def reserve_outcome(
        self, place: Place, start: int, end: int, spots: int, ignore_window: bool,
        cart: uuid.UUID | None,
    ) -> Outcome:
        """What ``reserve`` says, in the order it checks."""
        if len(place.free_spots(start, end, self.now)) < spots:
            return errors.AlreadyReservedError
        if not ignore_window and not place.in_window(start, self.now):
            return errors.OutsideBookingWindow
        if cart is not None and any(
            b.cart == cart and b.place is place and b.row_start == place.floor(start)
            for b in self.bookings
        ):
            return errors.OverlappingReservationError
        return None

    # --- the clock ----------------------------------------------------------

    @rule(by=st.sampled_from([1, 4, 5, 10, 15, 30, 60]))
    def clock_moves(self, by: int) -> None:
        self.clock.minute += by

    # --- allocations ----------------------------------------------------------

    def _allocate(self, start: int, end: int, quota: int, partly: bool, raster: int,
                  before: int, after: int, notice: int | None, advance: int | None) -> None:
        bad_buffer = any(b and (not partly or b % raster) for b in (before, after))
        bad_window = advance == 0 or (notice is not None and advance is not None and notice > advance)
        clash = any(p.start < end and start < p.end for p in self.places)
        expected: Outcome = (
            errors.InvalidArgument if bad_buffer or bad_window
            else errors.OverlappingAllocationError if clash else None
        )

        def call() -> Allocation:
            [allocation] = self.scheduler.allocate(
                (at(start), at(end)), quota=quota, partly_available=partly, raster=raster,
                buffer_before=before * MINUTE, buffer_after=after * MINUTE,
                min_notice=None if notice is None else notice * MINUTE,
                max_advance=None if advance is None else advance * MINUTE,
            )
            return allocation

        ok, allocation = self.attempt('allocate', call, expected)
        if ok:
            self.places.append(Place(
                allocation.id, start, end, quota, partly, raster, before, after, notice, advance,
                [{} for _ in range(quota)],
            ))

    def _draw_allocation(self, data: st.DataObject) -> None:
        """Policies that go together: buffers on the raster of partly
        available allocations, a window that can be met."""
        raster = data.draw(st.sampled_from([15, 60]), label='raster')
        partly = data.draw(st.booleans(), label='partly')
        # Mostly an hour no allocation holds yet (overlaps are refused, and tried too).
        hours = [h for h in range(6, 14) if not any(p.start <= h * 60 < p.end for p in self.places)]
        anywhere = not hours or data.draw(st.integers(0, 4), label='anywhere') == 0
        start = data.draw(st.integers(6, 13) if anywhere else st.sampled_from(hours), label='hour') * 60
        length = data.draw(st.integers(1, 4), label='hours') * 60
        if raster == 15:
            start += data.draw(st.sampled_from([0, 15, 30, 45]), label='offset')
            length -= data.draw(st.sampled_from([0, 15, 30]), label='shorter')
        buffer = st.sampled_from([0, 0, 1, 2]) if partly else st.just(0)
        before = data.draw(buffer, label='before') * raster
        after = data.draw(buffer, label='after') * raster
        notice = data.draw(st.sampled_from([None, None, 0, 30, 60, 120]), label='notice')
        advance = data.draw(st.sampled_from([None, None, 120, 180, 300]), label='advance')
        quota = data.draw(st.integers(1, 3), label='quota')
        self._allocate(start, start + length, quota, partly, raster, before, after, notice, advance)

    @initialize(data=st.data())
    def first_allocation(self, data: st.DataObject) -> None:
        self._draw_allocation(data)

    @initialize(data=st.data())
    def second_allocation(self, data: st.DataObject) -> None:
        self._draw_allocation(data)

    @precondition(lambda self: len(self.places) < 4)
    @rule(data=st.data())
    def new_allocation(self, data: st.DataObject) -> None:
        self._draw_allocation(data)

    @rule(bad=st.sampled_from([
        {'partly': False, 'before': 15},  # a whole allocation has no time around it
        {'raster': 60, 'after': 30},  # off the raster
        {'notice': 120, 'advance': 60},  # nothing could be booked
        {'advance': 0},
    ]))
    @precondition(lambda self: not self.refused)
    def refuse_policies_that_do_not_go_together(self, bad: dict[str, Any]) -> None:
        """Once per example (nothing is written: the invariants see no new allocation)."""
        self.refused = True
        options: dict[str, Any] = {'partly': True, 'raster': 15, 'before': 0, 'after': 0,
                                   'notice': None, 'advance': None}
        self._allocate(23 * 60, 24 * 60, 1, **{**options, **bad})

    # --- reservations ---------------------------------------------------------

    @precondition(lambda self: self.places)
    @rule(data=st.data())
    def reserve(self, data: st.DataObject) -> None:
        # Drawn here, not as arguments: rules with fewer arguments come first
        # in hypothesis' choice, and this is the rule that matters most.
        again = [b for b in self.bookings if b.kind != 'blocker']
        if again and data.draw(st.integers(0, 3), label='again') == 0:
            # The span (and cart) of a reservation made before: taken, or twice in a cart.
            before = data.draw(st.sampled_from(again), label='as')
            place, start, end, cart = before.place, before.start, before.end, before.cart
        else:
            place = data.draw(st.sampled_from(self.places), label='place')
            start, end = self.draw_span(data, place)
            cart = data.draw(st.sampled_from([None, *CARTS]), label='cart')
        spots = data.draw(st.integers(1, place.quota + 1), label='spots')  # one too many at most
        hold = data.draw(st.sampled_from([None, 5, 15, 30]), label='hold')
        approve = data.draw(st.booleans(), label='approve')
        ignore_window = data.draw(st.booleans(), label='ignore_window')
        self._reserve(place, start, end, spots, hold, approve, ignore_window, cart)

    def _reserve(self, place: Place, start: int, end: int, spots: int, hold: int | None,
                 approve: bool, ignore_window: bool, cart: uuid.UUID | None) -> None:
        expected = self.reserve_outcome(place, start, end, spots, ignore_window, cart)

        def call() -> uuid.UUID:
            token = self.scheduler.reserve(
                'who@example.org', (at(start), at(end)), quota=spots, session_id=cart,
                hold=None if hold is None else hold * MINUTE, ignore_booking_window=ignore_window,
            )
            if approve:
                self.scheduler.approve_reservations(token)
            return token

        label = f"reserve{' held' if hold else ''}{' and approve' if approve else ''}"
        if any(s.owner.expired(self.now) for i in range(place.quota) for s in place.spots[i].values()):
            label += ' near an expired hold'
        ok, token = self.attempt(label, call, expected)
        if not ok:
            return
        booking = Booking(token, place, start, end, spots, 'pending', cart)
        if hold is not None:
            booking.held_until = self.now + hold
            self.book(booking, start, end)
        if approve:
            if hold is None:
                self.book(booking, start, end)
            booking.kind, booking.held_until = 'approved', None
        self.bookings.append(booking)

    @precondition(lambda self: any(b.expired(self.now) for b in self.bookings))
    @rule(data=st.data())
    def book_over_an_expired_hold(self, data: st.DataObject) -> None:
        """Book exactly the span of an expired hold, directly."""
        held = data.draw(st.sampled_from([b for b in self.bookings if b.expired(self.now)]), label='hold')
        ignore_window = data.draw(st.booleans(), label='ignore_window')
        self._reserve(held.place, held.start, held.end, 1, None, True, ignore_window, None)

    def _approve(self, booking: Booking) -> None:
        if booking.holds():
            expected: Outcome = None  # the hold becomes the booking, expired or not
        else:
            enough = len(booking.place.free_spots(booking.start, booking.end, self.now)) >= booking.spots
            expected = None if enough else errors.AlreadyReservedError
        label = 'approve ' + ('a live hold' if booking.holds() and not booking.expired(self.now)
                              else 'an expired hold' if booking.holds() else 'anew')
        ok, _ = self.attempt(label, lambda: self.scheduler.approve_reservations(booking.token), expected)
        if not ok:
            return
        booked_anew = not booking.holds()
        # Approved before its slots are taken: a pending row with a past
        # held_until and slots would look like an expired hold to ``free_spots``.
        booking.kind, booking.held_until = 'approved', None
        if booked_anew:
            self.book(booking, booking.start, booking.end)
        for index, start in booking.taken:
            assert booking.place.spots[index][start].owner is booking

    @precondition(lambda self: self.pending())
    @rule(data=st.data())
    def approve(self, data: st.DataObject) -> None:
        """A pending reservation, holds first (live or expired, with their slots)."""
        candidates = self.pending(held=True) + self.pending(held=False)
        self._approve(data.draw(st.sampled_from(candidates), label='pending'))

    @precondition(lambda self: self.bookings)
    @rule(data=st.data())
    def deny_or_remove(self, data: st.DataObject) -> None:
        booking = data.draw(st.sampled_from(self.bookings), label='booking')
        deny = data.draw(st.booleans(), label='deny')
        if booking.kind == 'blocker':
            call: Callable[[], None] = lambda: self.scheduler.remove_blocker(booking.token)  # noqa: E731
        elif deny:
            call = lambda: self.scheduler.deny_reservation(booking.token)  # noqa: E731
        else:
            call = lambda: self.scheduler.remove_reservation(booking.token)  # noqa: E731
        self.attempt('deny' if deny else 'remove', call, None)
        if deny and booking.kind == 'approved':
            return  # approved reservations cannot be denied
        self.release(booking)
        self.bookings.remove(booking)

    def _movable(self) -> list[Booking]:
        """Approved and pending reservations of one spot (held, expired or plain)."""
        return [b for b in self.bookings if b.kind != 'blocker' and b.spots == 1 and b.place.partly]

    @precondition(lambda self: self._movable())
    @rule(data=st.data())
    def change_reservation(self, data: st.DataObject) -> None:
        booking = data.draw(st.sampled_from(self._movable()), label='booking')
        place = booking.place
        start, end = self.draw_span(data, place)
        ignore_window = data.draw(st.booleans(), label='ignore_window')
        unchanged = (start, end) == (booking.row_start, booking.row_end)
        kept = [(index, slot_start, place.spots[index][slot_start]) for index, slot_start in booking.taken]
        self.release(booking)
        if unchanged:
            expected: Outcome = None
        elif not place.free_spots(start, end, self.now):
            expected = errors.AlreadyReservedError
        elif not ignore_window and not place.in_window(start, self.now):
            expected = errors.OutsideBookingWindow
        else:
            expected = None
        [row] = self.scheduler.reservations_by_token(booking.token)
        ok, changed = self.attempt('change_reservation', lambda: self.scheduler.change_reservation(
            booking.token, row.id, at(start), at(end), ignore_booking_window=ignore_window), expected)
        if unchanged:
            assert changed is None
        if not ok or unchanged:
            for index, slot_start, slot in kept:
                place.spots[index][slot_start] = slot
                booking.taken.append((index, slot_start))
            return
        booking.start, booking.end = start, end
        live_hold = booking.held_until is not None and booking.held_until > self.now
        if booking.kind == 'approved' or live_hold:
            self.book(booking, start, end)  # a hold keeps its moment
        else:
            booking.held_until = None  # an expired hold is not taken again

    # --- changing allocations ---------------------------------------------------

    def _owners(self, spot: dict[int, Slot]) -> list[Booking]:
        return list({id(s.owner): s.owner for s in spot.values()}.values())

    def move_outcome(self, place: Place, start: int, end: int) -> Outcome:
        """What ``move_allocation`` says, in the order it checks."""
        if any(p is not place and p.start < end and start < p.end for p in self.places):
            return errors.OverlappingAllocationError
        moves = (start, end) != (place.start, place.end)
        for spot in place.spots:
            for slot_start, slot in spot.items():
                if place.partly and not slot.buffer and not start <= slot_start < end:
                    return errors.AffectedReservationError
                if not place.partly and moves:
                    return errors.AffectedReservationError
        for booking in self.pending():
            if booking.place is place and (moves if not place.partly else not (
                    start <= booking.row_start and booking.row_end <= end)):
                return errors.AffectedPendingReservationError
        return None

    def rewrite_buffers(self, place: Place) -> None:
        """Each owner's buffers on each spot, clipped to the place's new span."""
        for index, spot in enumerate(place.spots):
            for owner in self._owners(spot):
                if owner.kind == 'blocker':
                    continue
                booked = sorted(s for s, slot in spot.items() if slot.owner is owner and not slot.buffer)
                for slot_start in [s for s, slot in spot.items() if slot.owner is owner and slot.buffer]:
                    del spot[slot_start]
                    owner.taken.remove((index, slot_start))
                first, last = place.occupied(booked[0], booked[-1] + place.raster)
                for slot_start in place.slot_starts(first, last):
                    if slot_start not in booked:
                        assert slot_start not in spot, 'a new buffer met a slot'
                        spot[slot_start] = Slot(owner, True)
                        owner.taken.append((index, slot_start))

    @precondition(lambda self: self.places)
    @rule(data=st.data())
    def move_allocation(self, data: st.DataObject) -> None:
        """Shift or resize an allocation on its raster (bookings, holds and
        buffers on it)."""
        place = data.draw(st.sampled_from(self.places), label='place')
        step = place.raster
        start = place.start + step * data.draw(st.integers(-2, 2), label='start by')
        end = place.end + step * data.draw(st.integers(-2, 2), label='end by')
        if end <= start or start < 0 or end > 24 * 60:
            return
        expected = self.move_outcome(place, start, end)
        ok, _ = self.attempt('move_allocation', lambda: self.scheduler.move_allocation(
            place.id, at(start), at(end)), expected)
        if ok:
            place.start, place.end = start, end
            self.rewrite_buffers(place)

    @precondition(lambda self: self.places)
    @rule(data=st.data())
    def change_quota(self, data: st.DataObject) -> None:
        """Grow or shrink a quota: an expired hold on the allocation goes
        (its spot counts as free), the booked spots close up to the front."""
        place = data.draw(st.sampled_from(self.places), label='place')
        quota = data.draw(st.integers(1, 4), label='quota')
        whole = place.slot_starts(place.start, place.end)
        free = [i for i in range(place.quota) if place.free(i, whole, self.now)]
        shrinks_by = place.quota - quota
        expected = errors.AffectedReservationError if len(free) < shrinks_by else None
        ok, _ = self.attempt('change_quota', lambda: self.scheduler.change_quota(
            self.scheduler.allocation_by_id(place.id), quota), expected)
        if not ok:
            return
        if quota > place.quota:
            place.spots.extend({} for _ in range(quota - place.quota))
        elif quota < place.quota:
            for spot in place.spots:
                for owner in self._owners(spot):
                    if owner.expired(self.now):
                        self.release(owner)
            booked = [spot for i, spot in enumerate(place.spots) if i not in free]
            place.spots = booked + [{} for _ in range(quota - len(booked))]
            self.renumber(place)
        place.quota = quota

    def renumber(self, place: Place) -> None:
        """Rebuild every owner's ``taken`` from the spots after they moved."""
        owners = {id(s.owner): s.owner for spot in place.spots for s in spot.values()}
        for owner in owners.values():
            owner.taken = []
        for index, spot in enumerate(place.spots):
            for slot_start, slot in spot.items():
                slot.owner.taken.append((index, slot_start))

    # --- blockers -------------------------------------------------------------

    @precondition(lambda self: self.places and sum(b.kind == 'blocker' for b in self.bookings) < 2)
    @rule(data=st.data())
    def block(self, data: st.DataObject) -> None:
        """Short blockers, two at most: they take every spot."""
        place = data.draw(st.sampled_from(self.places), label='place')
        free = [(s, s + length) for s in range(place.start, place.end - 14, 15) for length in (15, 30)
                if s + length <= place.end
                and len(place.free_spots(s, s + length, self.now, buffers=False)) == place.quota]
        if free and data.draw(st.integers(0, 3), label='somewhere free') > 0:
            start, end = data.draw(st.sampled_from(free), label='span')
        else:
            start, end = self.draw_span(data, place, longest=30)
        # A blocker takes every spot over its own time, no buffers around it.
        every = len(place.free_spots(start, end, self.now, buffers=False)) == place.quota
        ok, blockers = self.attempt('add_blocker', lambda: self.scheduler.add_blocker((at(start), at(end))),
                                    None if every else errors.AlreadyReservedError)
        if ok:
            booking = Booking(blockers[0].token, place, start, end, place.quota, 'blocker')
            for index in range(place.quota):
                self.take(booking, index, start, end)
            self.bookings.append(booking)

    # --- expiry -------------------------------------------------------------

    def _anything_expired(self) -> bool:
        return any(b.expired(self.now) or (b.cart and b.kind == 'pending') for b in self.bookings)

    @precondition(lambda self: self._anything_expired())
    @rule(carts_too=st.booleans())
    def remove_expired_sessions(self, carts_too: bool) -> None:
        """Every expired hold loses its slots; with ``carts_too`` every cart
        with a pending reservation goes, whole."""
        expiration = datetime.now(UTC) + timedelta(days=1) if carts_too else NO_SESSION_EXPIRES
        _, removed = self.attempt(
            'remove_expired_reservation_sessions', lambda: self.scheduler.queries.remove_expired_reservation_sessions(expiration), None)
        for booking in self.bookings:
            if booking.expired(self.now):
                self.release(booking)
        carts = {b.cart for b in self.bookings if carts_too and b.cart and b.kind == 'pending'}
        assert set(removed) == carts
        for booking in [b for b in self.bookings if b.cart in carts]:
            self.release(booking)
            self.bookings.remove(booking)

    # --- invariants -----------------------------------------------------------

    def spot_index(self, place: Place, resource: uuid.UUID) -> int:
        return [self.scheduler.resource, *generate_uuids(self.scheduler.resource, place.quota)].index(resource)

    @invariant()
    def slots_match_the_model(self) -> None:
        """Every slot row, its owner and kind, is the model's, and no other."""
        by_start = {p.start: p for p in self.places}
        now = clock.now()
        with Session(self.engine) as session:
            found = set()
            for slot, allocation in session.execute(
                sa.select(ReservedSlot, Allocation).join(Allocation, Allocation.id == ReservedSlot.allocation_id)
            ).all():
                place = by_start[minutes(allocation._start)]
                assert slot.resource == allocation.resource
                held = None if slot.held_until is None else minutes(slot.held_until)
                found.add((place.start, self.spot_index(place, slot.resource), minutes(slot.start),
                           slot.end + ONE_MICROSECOND, slot.reservation_token, slot.source_type,
                           slot.buffer, held, kind_of(slot, now)))
        expected = {
            (place.start, index, start, at(place.slot_end(start)), s.owner.token,
             'blocker' if s.owner.kind == 'blocker' else 'reservation', s.buffer,
             s.owner.held_until if s.owner.kind == 'pending' else None, s.kind(self.now))
            for place in self.places for index, spot in enumerate(place.spots) for start, s in spot.items()
        }
        assert found == expected, (sorted(found - expected, key=str), sorted(expected - found, key=str))

    @invariant()
    def rows_match_the_model(self) -> None:
        with Session(self.engine) as session:
            rows = {r.token: r for r in session.scalars(sa.select(Reservation))}
            blockers = {b.token for b in session.scalars(sa.select(ReservationBlocker))}
        reservations = [b for b in self.bookings if b.kind != 'blocker']
        assert set(rows) == {b.token for b in reservations}
        assert blockers == {b.token for b in self.bookings if b.kind == 'blocker'}
        for booking in reservations:
            row = rows[booking.token]
            held = None if row.held_until is None else minutes(row.held_until)
            assert (row.status, held, row.quota, row.session_id) == (
                booking.kind, booking.held_until, booking.spots, booking.cart)
            assert row.start is not None and minutes(row.start) == booking.row_start

    @invariant()
    def every_booking_has_exactly_its_buffers(self) -> None:
        """Read from the database alone: each reservation's slots on each of
        its spots are its span's slots, and its clipped buffers around them."""
        with Session(self.engine) as session:
            rows = {r.id: r for r in session.scalars(sa.select(Reservation))}
            owned: dict[tuple[int, uuid.UUID], list[ReservedSlot]] = {}
            for slot in session.scalars(sa.select(ReservedSlot).where(ReservedSlot.source_type == 'reservation')):
                owned.setdefault((slot.source_id, slot.resource), []).append(slot)
            allocations = {a.id: a for a in session.scalars(sa.select(Allocation))}
            per_row: dict[int, int] = {}
            for (row_id, _), slots in owned.items():
                row = rows[row_id]
                per_row[row_id] = per_row.get(row_id, 0) + 1
                [allocation] = {allocations[s.allocation_id].id for s in slots}
                a = allocations[allocation]
                assert row.start is not None and row.end is not None
                if not a.partly_available:
                    assert [(s.start, s.buffer) for s in slots] == [(a._start, False)]
                    continue
                step = timedelta(minutes=a.raster)
                first = max(row.start - (a.buffer_before or timedelta()), a._start)
                last = min(row.end + (a.buffer_after or timedelta()), a._end)
                span = {row.start + k * step for k in range(int((row.end - row.start) / step) + 1)}
                around = {first + k * step for k in range(int((last - first) / step) + 1)} - span
                assert {s.start for s in slots if not s.buffer} == span
                assert {s.start for s in slots if s.buffer} == around
                assert len({s.held_until for s in slots}) == 1  # a hold's buffers are held with it
            for row_id, spots in per_row.items():
                assert spots == rows[row_id].quota

    @invariant()
    def availability_matches_the_model(self) -> None:
        now = self.now
        with Session(self.engine) as session:
            rows = session.scalars(sa.select(Allocation).options(selectinload(Allocation.reserved_slots))).all()
            by_start = {p.start: p for p in self.places}
            assert len({(a.resource, a._start) for a in rows}) == len(rows)
            for allocation in rows:
                place = by_start[minutes(allocation._start)]
                index = self.spot_index(place, allocation.resource)
                assert allocation.availability == pytest.approx(place.availability(index, now))
                if allocation.is_master:
                    quota_left = sum(1 for i in range(place.quota)
                                     if place.free(i, place.slot_starts(place.start, place.end), now))
                    assert allocation.quota_left == quota_left
        spots = [p.availability(i, now) for p in self.places for i in range(p.quota)]
        mean = sum(spots) / len(spots) if spots else 0.0
        assert self.scheduler.availability(DAY, DAY + timedelta(hours=23)) == pytest.approx(mean)
        self.scheduler.rollback()

    @invariant()
    def integrity_finds_nothing_but_expired_holds(self) -> None:
        with Session(self.engine) as session:
            report = integrity.check(session)
        assert set().union(*(kinds for kinds in report.findings.values())) <= {'expired_holds'}
        assert report.count('expired_holds') == sum(
            1 for p in self.places for spot in p.spots for s in spot.values() if not s.blocks(self.now))


@pytest.mark.filterwarnings('ignore::hypothesis.errors.NonInteractiveExampleWarning')
def test_holds_buffers_and_windows_keep_every_invariant(context: Context, admin_engine: sa.Engine) -> None:
    Policies.context = context
    Policies.engine = admin_engine
    runner = Policies.TestCase
    runner.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                               suppress_health_check=list(HealthCheck))
    try:
        runner().runTest()
    finally:
        clock.set_clock(None)
