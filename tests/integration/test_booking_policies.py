"""Holds, buffers and booking windows (issue 16): what each promises, on a real database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.helpers import Clock, CountRows, captured_statements

from libres.db.models import ReservedSlot
from libres.db.scheduler import Scheduler
from libres.modules import clock, errors

NOW = datetime(2031, 3, 3, 8, tzinfo=UTC)
DAY = datetime(2031, 3, 10)  # a week after NOW; naive: Europe/Zurich
HOLD = timedelta(minutes=15)


@pytest.fixture
def now() -> Iterator[Clock]:
    moved = Clock(NOW)
    with clock.using(moved):
        yield moved


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


def slots(scheduler: Scheduler) -> list[tuple[str, str, str]]:
    """(local start, kind, reservation email) of every slot, in order."""
    rows = scheduler.session.execute(sa.text("""
        SELECT s.start, s.buffer, s.held_until, coalesce(r.email, '-')
        FROM reserved_slots s LEFT JOIN reservations r ON r.id = s.source_id
        ORDER BY s.start, s.resource"""))
    result = []
    for start, buffer, held_until, email in rows:
        kind = 'buffer' if buffer else ('hold' if held_until else 'booking')
        local = start.replace(tzinfo=UTC).astimezone(ZoneInfo(scheduler.timezone))
        result.append((f'{local:%H:%M}', kind, email))
    return result


# --- holds ----------------------------------------------------------------------


def test_a_held_ticket_cannot_be_sold_to_someone_else(scheduler: Scheduler, now: Clock) -> None:
    scheduler.allocate((at(20), at(22)))
    scheduler.commit()
    cart = uuid.uuid4()
    held = scheduler.reserve('first@example.org', (at(20), at(22)), session_id=cart, hold=HOLD)
    scheduler.commit()
    assert [kind for _, kind, _ in slots(scheduler)] == ['hold']

    with pytest.raises(errors.AlreadyReservedError):
        scheduler.reserve('second@example.org', (at(20), at(22)))
    scheduler.rollback()

    now.advance(timedelta(minutes=14))
    scheduler.approve_reservations(held)
    scheduler.commit()
    assert slots(scheduler) == [('20:00', 'booking', 'first@example.org')]
    reservation = scheduler.reservations_by_token(held).one()
    assert reservation.status == 'approved' and reservation.held_until is None


def test_an_expired_hold_is_removed_by_whoever_books_over_it(scheduler: Scheduler, now: Clock) -> None:
    scheduler.allocate((at(20), at(22)))
    scheduler.commit()
    held = scheduler.reserve('first@example.org', (at(20), at(22)), session_id=uuid.uuid4(), hold=HOLD)
    scheduler.commit()
    now.advance(HOLD + timedelta(seconds=1))

    token = scheduler.reserve('second@example.org', (at(20), at(22)))
    scheduler.approve_reservations(token)
    scheduler.commit()
    assert slots(scheduler) == [('20:00', 'booking', 'second@example.org')]

    # The first buyer comes back too late: the spot is sold.
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.approve_reservations(held)
    scheduler.rollback()


def test_approving_after_expiry_succeeds_while_the_spot_is_free(scheduler: Scheduler, now: Clock) -> None:
    scheduler.allocate((at(20), at(22)))
    scheduler.commit()
    held = scheduler.reserve('late@example.org', (at(20), at(22)), hold=HOLD)
    scheduler.commit()
    now.advance(timedelta(hours=2))
    [slot] = scheduler.approve_reservations(held)
    scheduler.commit()
    assert slot.kind == 'booking'
    assert slots(scheduler) == [('20:00', 'booking', 'late@example.org')]


def test_availability_counts_a_hold_only_while_it_lives(scheduler: Scheduler, now: Clock) -> None:
    [allocation] = scheduler.allocate((at(20), at(22)), quota=3)
    scheduler.commit()
    scheduler.reserve('two@example.org', (at(20), at(22)), quota=2, hold=HOLD)
    scheduler.commit()
    assert scheduler.availability(at(0), at(23, 59)) == pytest.approx(100 / 3)
    assert scheduler.session.get(type(allocation), allocation.id).quota_left == 1  # type: ignore[union-attr]
    assert len(scheduler.search_allocations(at(0), at(23, 59), minspots=2)) == 0
    now.advance(HOLD)
    scheduler.session.expire_all()
    assert scheduler.availability(at(0), at(23, 59)) == 100.0
    assert len(scheduler.search_allocations(at(0), at(23, 59), minspots=3)) == 1


def test_remove_expired_sessions_releases_expired_holds(scheduler: Scheduler, now: Clock) -> None:
    scheduler.allocate([(at(20), at(21)), (at(21, 30), at(22))])
    scheduler.commit()
    scheduler.reserve('a@example.org', (at(20), at(21)), session_id=uuid.uuid4(), hold=HOLD)
    scheduler.reserve('b@example.org', (at(21, 30), at(22)), hold=timedelta(hours=1))
    scheduler.commit()
    now.advance(timedelta(minutes=20))
    scheduler.queries.remove_expired_reservation_sessions(NOW + timedelta(minutes=10))
    scheduler.commit()
    assert slots(scheduler) == [('21:30', 'hold', 'b@example.org')]


def test_a_hold_on_several_spots_is_one_transaction(scheduler: Scheduler, now: Clock) -> None:
    scheduler.allocate((at(20), at(22)), quota=2)
    scheduler.commit()
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.reserve('three@example.org', (at(20), at(22)), quota=3, hold=HOLD)
    scheduler.rollback()
    scheduler.allocate((at(10), at(12)), quota=3)
    token = scheduler.reserve('three@example.org', (at(10), at(12)), quota=3, hold=HOLD)
    scheduler.commit()
    assert [kind for _, kind, _ in slots(scheduler)] == ['hold'] * 3
    assert len(scheduler.approve_reservations(token)) == 3
    scheduler.commit()
    assert [kind for _, kind, _ in slots(scheduler)] == ['booking'] * 3


# --- buffers ------------------------------------------------------------------------


def buffered(scheduler: Scheduler) -> Any:
    [allocation] = scheduler.allocate(
        (at(8), at(18)), partly_available=True, raster=15,
        buffer_before=timedelta(minutes=15), buffer_after=timedelta(minutes=15),
    )
    scheduler.commit()
    return allocation


def book(scheduler: Scheduler, email: str, start: datetime, end: datetime) -> uuid.UUID:
    token = scheduler.reserve(email, (start, end))
    scheduler.approve_reservations(token)
    scheduler.commit()
    return token


def test_a_booking_occupies_its_buffers_on_the_same_spot(scheduler: Scheduler) -> None:
    allocation = buffered(scheduler)
    book(scheduler, 'a@example.org', at(10), at(11))
    assert [(start, kind) for start, kind, _ in slots(scheduler)] == [
        ('09:45', 'buffer'), ('10:00', 'booking'), ('10:15', 'booking'), ('10:30', 'booking'),
        ('10:45', 'booking'), ('11:00', 'buffer'),
    ]
    # Buffers are never booked time.
    scheduler.session.expire_all()
    assert scheduler.session.get(type(allocation), allocation.id).availability == 90.0  # type: ignore[union-attr]
    assert scheduler.availability(at(0), at(23, 59)) == 90.0
    reserved, blocked, buffers = scheduler.reserved_slots_by_range(at(8), at(18), with_buffers=True)
    assert len(reserved) == 12 and not blocked and len(buffers) == 6
    assert len(scheduler.reserved_slots_by_range(at(8), at(18))[0]) == 12


@pytest.mark.parametrize(('start', 'end', 'fits'), [
    ((11, 0), (12, 0), False),   # on the buffer after
    ((11, 15), (12, 0), False),  # its buffer before meets the other's buffer after
    ((11, 30), (12, 0), True),   # buffer to buffer: they touch, no more
    ((9, 0), (9, 45), False),    # its buffer after meets the other's buffer before
    ((9, 0), (9, 30), True),
    ((8, 0), (9, 30), True),     # clipped at the start of the allocation
])
def test_a_buffer_never_meets_a_booking_or_a_buffer(
    scheduler: Scheduler, start: tuple[int, int], end: tuple[int, int], fits: bool
) -> None:
    buffered(scheduler)
    book(scheduler, 'a@example.org', at(10), at(11))
    if fits:
        book(scheduler, 'b@example.org', at(*start), at(*end))
        assert 'b@example.org' in {email for _, _, email in slots(scheduler)}
    else:
        with pytest.raises(errors.AlreadyReservedError):
            book(scheduler, 'b@example.org', at(*start), at(*end))
        scheduler.rollback()


def test_a_buffer_is_clipped_to_the_allocation(scheduler: Scheduler) -> None:
    buffered(scheduler)
    book(scheduler, 'edge@example.org', at(17), at(18))
    assert [kind for _, kind, _ in slots(scheduler)] == ['buffer'] + ['booking'] * 4


def test_rules_pass_the_policies_to_their_allocations(scheduler: Scheduler) -> None:
    scheduler.add_rule(
        'FREQ=WEEKLY;COUNT=3', at(8), at(18), partly_available=True, raster=15,
        buffer_after=timedelta(minutes=30), min_notice=timedelta(hours=2),
    )
    scheduler.commit()
    made = scheduler.managed_allocations().all()
    assert len(made) == 3
    assert {(a.buffer_after, a.buffer_before, a.min_notice) for a in made} == {
        (timedelta(minutes=30), None, timedelta(hours=2))
    }


# --- booking window ----------------------------------------------------------------


def windowed(scheduler: Scheduler) -> None:
    scheduler.allocate(
        [(DAY.replace(day=d, hour=9), DAY.replace(day=d, hour=10)) for d in (3, 4, 10)]
        + [(datetime(2031, 4, 20, 9), datetime(2031, 4, 20, 10))],
        min_notice=timedelta(days=1), max_advance=timedelta(days=30),
    )
    scheduler.commit()


def test_a_booking_outside_the_window_is_refused_naming_it(scheduler: Scheduler, now: Clock) -> None:
    windowed(scheduler)
    with pytest.raises(errors.OutsideBookingWindow) as soon:
        scheduler.reserve('soon@example.org', (DAY.replace(day=3, hour=9), DAY.replace(day=3, hour=10)))
    # Local time: 08:00 UTC is 09:00 in Zurich in March.
    assert 'between 2031-03-04 09:00 (Europe/Zurich)' in str(soon.value)
    # and summer time has begun by the window's end.
    assert 'and 2031-04-02 10:00 (Europe/Zurich)' in str(soon.value)
    assert soon.value.earliest == NOW + timedelta(days=1)
    with pytest.raises(errors.OutsideBookingWindow):
        scheduler.reserve('far@example.org', (datetime(2031, 4, 20, 9), datetime(2031, 4, 20, 10)))
    scheduler.reserve('fine@example.org', (DAY.replace(day=4, hour=9), DAY.replace(day=4, hour=10)))
    scheduler.reserve('manager@example.org', (DAY.replace(day=3, hour=9), DAY.replace(day=3, hour=10)),
                      ignore_booking_window=True)


def test_change_reservation_checks_the_window_for_the_new_time(scheduler: Scheduler, now: Clock) -> None:
    scheduler.allocate((at(8), at(18)), partly_available=True, raster=15, min_notice=timedelta(days=1))
    scheduler.commit()
    token = book(scheduler, 'move@example.org', at(9), at(10))
    reservation = scheduler.reservations_by_token(token).one()
    now.advance(timedelta(days=6, hours=22))  # 07:00 local on the day: 10:00 is too soon
    with pytest.raises(errors.OutsideBookingWindow):
        scheduler.change_reservation(token, reservation.id, at(10), at(11))
    scheduler.rollback()
    moved = scheduler.change_reservation(token, reservation.id, at(10), at(11), ignore_booking_window=True)
    assert moved is not None and moved.display_start().hour == 10


# --- bad input, nothing written -------------------------------------------------------


@pytest.mark.parametrize(('options', 'error'), [
    ({'buffer_before': timedelta(minutes=-15)}, errors.InvalidArgument),
    ({'buffer_after': timedelta(minutes=10)}, errors.InvalidArgument),  # raster 15
    ({'buffer_after': 15}, errors.InvalidArgumentType),
    ({'buffer_before': timedelta(minutes=15), 'partly_available': False}, errors.InvalidArgument),
    ({'min_notice': timedelta(days=91), 'max_advance': timedelta(days=90)}, errors.InvalidArgument),
    ({'max_advance': timedelta(0)}, errors.InvalidArgument),
    ({'min_notice': timedelta(hours=-1)}, errors.InvalidArgument),
])
def test_bad_policies_are_refused_with_nothing_written(
    scheduler: Scheduler, count_rows: CountRows, options: dict[str, Any], error: type[Exception]
) -> None:
    before = count_rows()
    with pytest.raises(error):
        scheduler.allocate((at(8), at(18)), **{'partly_available': True, 'raster': 15, **options})
    scheduler.commit()
    assert count_rows() == before


@pytest.mark.parametrize(('hold', 'error'), [
    (timedelta(0), errors.InvalidArgument),
    (timedelta(seconds=-1), errors.InvalidArgument),
    (timedelta(days=1, seconds=1), errors.InvalidArgument),
    (900, errors.InvalidArgumentType),
])
def test_bad_holds_are_refused_with_nothing_written(
    scheduler: Scheduler, count_rows: CountRows, hold: Any, error: type[Exception]
) -> None:
    scheduler.allocate((at(20), at(22)))
    scheduler.commit()
    before = count_rows()
    with pytest.raises(error):
        scheduler.reserve('x@example.org', (at(20), at(22)), hold=hold)
    scheduler.commit()
    assert count_rows() == before


# --- what PostgreSQL enforces ----------------------------------------------------------


def test_the_database_refuses_a_hold_without_a_held_owner(scheduler: Scheduler, now: Clock) -> None:
    scheduler.allocate((at(20), at(22)))
    scheduler.commit()
    token = scheduler.reserve('plain@example.org', (at(20), at(22)))
    scheduler.commit()
    reservation = scheduler.reservations_by_token(token).one()
    allocation = scheduler.managed_allocations().one()
    with pytest.raises(errors.ConstraintViolation, match=r'reserved_slot_has_owner|no owner'):
        scheduler.session.execute(sa.insert(ReservedSlot).values(
            resource=allocation.resource, start=allocation._start, end=allocation._end,
            allocation_id=allocation.id, source_type='reservation', source_id=reservation.id,
            reservation_token=token, held_until=NOW + HOLD, buffer=False,
        ))
    scheduler.rollback()


def test_a_hold_and_a_booking_never_share_a_slot(scheduler: Scheduler, now: Clock) -> None:
    scheduler.allocate((at(20), at(22)))
    scheduler.commit()
    scheduler.reserve('held@example.org', (at(20), at(22)), hold=HOLD)
    scheduler.commit()
    allocation = scheduler.managed_allocations().one()
    # Written around the library's checks: the primary key still refuses it.
    with pytest.raises(errors.ReservedSlotTaken):
        scheduler.session.execute(sa.insert(ReservedSlot).values(
            resource=allocation.resource, start=allocation._start, end=allocation._end,
            allocation_id=allocation.id, source_type='blocker', source_id=1,
            reservation_token=uuid.uuid4(), buffer=False,
        ))
    scheduler.rollback()


# --- libres check ------------------------------------------------------------------------


def test_check_finds_expired_holds_and_repair_removes_them(scheduler: Scheduler, now: Clock) -> None:
    from libres import integrity

    scheduler.allocate([(at(20), at(21)), (at(21, 30), at(22))])
    scheduler.commit()
    scheduler.reserve('gone@example.org', (at(20), at(21)), hold=HOLD)
    scheduler.reserve('here@example.org', (at(21, 30), at(22)), hold=timedelta(hours=2))
    scheduler.commit()
    assert integrity.check(scheduler.session).clean
    now.advance(timedelta(minutes=30))
    report = integrity.check(scheduler.session)
    assert {kind for kinds in report.findings.values() for kind in kinds} == {'expired_holds'}
    assert report.count('expired_holds') == 1
    repaired = integrity.repair(scheduler.session)
    scheduler.commit()
    assert repaired.repaired == {'expired_holds': 1} and repaired.clean
    assert slots(scheduler) == [('21:30', 'hold', 'here@example.org')]


def test_holds_and_buffers_with_psycopg2(context: Any, now: Clock) -> None:
    """The interval columns and the policy statements on the other driver."""
    from libres.context.session import SessionProvider

    dsn = context.get_setting('dsn').replace('postgresql+psycopg://', 'postgresql+psycopg2://')
    if not dsn.startswith('postgresql+psycopg2://'):
        dsn = 'postgresql+psycopg2://' + dsn.split('://', 1)[1]
    provider = SessionProvider(dsn)
    context.set_service('session_provider', lambda _: provider, cache=False)
    try:
        room = Scheduler(context, 'room', 'Europe/Zurich')
        assert room.session.get_bind().dialect.driver == 'psycopg2'
        room.allocate((at(8), at(18)), partly_available=True, raster=15,
                      buffer_after=timedelta(minutes=30), max_advance=timedelta(days=60))
        room.commit()
        [allocation] = room.managed_allocations().all()
        assert allocation.buffer_after == timedelta(minutes=30) and allocation.max_advance == timedelta(days=60)
        token = room.reserve('two@example.org', (at(9), at(10)), hold=HOLD)
        room.commit()
        room.approve_reservations(token)
        room.commit()
        assert [kind for _, kind, _ in slots(room)] == ['booking'] * 4 + ['buffer'] * 2
    finally:
        provider.session().rollback()
        provider.stop_service()


def test_a_blocker_needs_no_buffers_of_its_own(scheduler: Scheduler) -> None:
    buffered(scheduler)
    book(scheduler, 'a@example.org', at(10), at(11))
    # Right after the booking's buffer: a blocker keeps no time around itself.
    scheduler.add_blocker((at(11, 15), at(12)))
    scheduler.commit()
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.add_blocker((at(11), at(11, 30)))
    scheduler.rollback()


def test_denying_a_held_reservation_frees_its_spot_at_once(scheduler: Scheduler, now: Clock) -> None:
    [allocation] = scheduler.allocate((at(20), at(22)))
    scheduler.commit()
    token = scheduler.reserve('held@example.org', (at(20), at(22)), hold=HOLD)
    scheduler.commit()
    loaded = scheduler.allocation_by_id(allocation.id)
    assert not loaded.is_available()
    scheduler.deny_reservation(token)
    assert loaded.is_available()
    assert slots(scheduler) == []
    scheduler.commit()


# --- a hold approved in the same transaction ---------------------------------------------


def test_a_hold_approved_before_its_flush_costs_what_a_plain_booking_costs(
    scheduler: Scheduler, now: Clock
) -> None:
    scheduler.allocate([(at(20), at(21)), (at(21, 30), at(22, 30))])
    scheduler.commit()
    with captured_statements(scheduler) as plain:
        token = scheduler.reserve('plain@example.org', (at(20), at(21)))
        scheduler.approve_reservations(token)
    with captured_statements(scheduler) as held:
        token = scheduler.reserve('held@example.org', (at(21, 30), at(22, 30)), hold=HOLD)
        slots_made = scheduler.approve_reservations(token)
    scheduler.commit()
    assert held.kinds == plain.kinds == ['SELECT', 'INSERT', 'INSERT']
    assert [slot.kind for slot in slots_made] == ['booking']
    assert [kind for _, kind, _ in slots(scheduler)] == ['booking', 'booking']
    assert scheduler.reservations_by_token(token).one().held_until is None


def test_a_hold_flushed_before_its_approval_is_confirmed_in_place(
    scheduler: Scheduler, now: Clock
) -> None:
    scheduler.allocate((at(20), at(21)))
    scheduler.commit()
    token = scheduler.reserve('held@example.org', (at(20), at(21)), hold=HOLD)
    scheduler.session.flush()
    assert [kind for _, kind, _ in slots(scheduler)] == ['hold']
    with captured_statements(scheduler) as confirmed:
        [slot] = scheduler.approve_reservations(token)
    scheduler.commit()
    assert 'UPDATE' in confirmed.kinds and 'INSERT' not in confirmed.kinds
    assert slot.kind == 'booking' and slots(scheduler) == [('20:00', 'booking', 'held@example.org')]


def test_the_window_is_checked_at_the_start_of_what_is_booked(scheduler: Scheduler, now: Clock) -> None:
    # Slots of an hour: 09:15–10:00 books the slot from 09:00.
    scheduler.allocate((at(9), at(12)), partly_available=True, raster=60, min_notice=timedelta(hours=1))
    # A whole allocation: any part of it books all of it.
    scheduler.allocate((at(14), at(15)), max_advance=timedelta(hours=4))
    scheduler.commit()
    now.advance(timedelta(days=7) - timedelta(minutes=50))  # 08:10 on DAY: the earliest start is 09:10
    with pytest.raises(errors.OutsideBookingWindow) as soon:
        scheduler.reserve('soon@example.org', (at(9, 15), at(10)))
    assert str(soon.value).startswith('2031-03-10 09:00 (Europe/Zurich) is outside')
    scheduler.reserve('fine@example.org', (at(10), at(11)))
    # The latest start is 12:10: 14:00–15:00 is too late, and so is any part of it.
    for start in (at(14), at(14, 30)):
        with pytest.raises(errors.OutsideBookingWindow):
            scheduler.reserve('late@example.org', (start, at(15)))
    now.advance(timedelta(hours=2))  # the latest start is 14:10
    for start in (at(14), at(14, 30)):
        scheduler.reserve('whole@example.org', (start, at(15)))


# --- changing an allocation under holds and buffers ------------------------------------


def test_moving_an_allocation_clips_and_extends_its_buffers(scheduler: Scheduler) -> None:
    allocation = buffered(scheduler)  # 08:00-18:00, 15 minutes before and after
    book(scheduler, 'early@example.org', at(8), at(9))
    book(scheduler, 'late@example.org', at(16, 45), at(17, 45))
    assert [start for start, kind, _ in slots(scheduler) if kind == 'buffer'] == ['09:00', '16:30', '17:45']

    # Shrunk to the bookings: the buffer after the late one falls outside.
    scheduler.move_allocation(allocation.id, at(8), at(17, 45))
    scheduler.commit()
    assert [start for start, kind, _ in slots(scheduler) if kind == 'buffer'] == ['09:00', '16:30']

    # Grown at both ends: the buffers clipped before take their whole time.
    scheduler.move_allocation(allocation.id, at(7), at(19))
    scheduler.commit()
    assert [(start, kind) for start, kind, _ in slots(scheduler) if kind == 'buffer'] == [
        ('07:45', 'buffer'), ('09:00', 'buffer'), ('16:30', 'buffer'), ('17:45', 'buffer'),
    ]
    # A booking itself still may not fall outside.
    with pytest.raises(errors.AffectedReservationError):
        scheduler.move_allocation(allocation.id, at(8, 15), at(19))
    scheduler.rollback()


def test_moving_an_allocation_keeps_the_buffers_of_a_hold_held(scheduler: Scheduler, now: Clock) -> None:
    allocation = buffered(scheduler)
    held = scheduler.reserve('cart@example.org', (at(8), at(9)), hold=HOLD)
    scheduler.commit()
    scheduler.move_allocation(allocation.id, at(7), at(18))
    scheduler.commit()
    assert slots(scheduler)[:2] == [('07:45', 'buffer', 'cart@example.org'), ('08:00', 'hold', 'cart@example.org')]
    # The new buffer is part of the hold: it goes when the hold goes.
    [buffer_slot] = [s for s in scheduler.session.scalars(sa.select(ReservedSlot)) if s.buffer and s.start.hour == 6]
    assert buffer_slot.held_until == NOW + HOLD
    assert len(scheduler.approve_reservations(held)) == 6
    scheduler.commit()
    assert {kind for _, kind, _ in slots(scheduler)} == {'booking', 'buffer'}


def test_shrinking_a_quota_over_an_expired_hold_removes_the_hold(scheduler: Scheduler, now: Clock) -> None:
    [master] = scheduler.allocate((at(20), at(22)), quota=3)
    scheduler.commit()
    expired = scheduler.reserve('gone@example.org', (at(20), at(22)), hold=HOLD)
    scheduler.commit()
    book(scheduler, 'stays@example.org', at(20), at(22))  # on the second spot: the first is held
    now.advance(HOLD)
    # The first spot counts as free; the booking moves there, where the
    # expired hold's slot still is.

    scheduler.change_quota(scheduler.session.get(type(master), master.id), 1)  # type: ignore[arg-type]
    scheduler.commit()
    assert slots(scheduler) == [('20:00', 'booking', 'stays@example.org')]
    # The buyer who let the hold expire finds the spot sold.
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.approve_reservations(expired)
    scheduler.rollback()


def test_shrinking_a_quota_keeps_a_live_hold(scheduler: Scheduler, now: Clock) -> None:
    [master] = scheduler.allocate((at(20), at(22)), quota=3)
    scheduler.commit()
    scheduler.reserve('cart@example.org', (at(20), at(22)), hold=HOLD)
    book(scheduler, 'sold@example.org', at(20), at(22))
    scheduler.change_quota(scheduler.session.get(type(master), master.id), 2)  # type: ignore[arg-type]
    scheduler.commit()
    assert sorted(kind for _, kind, _ in slots(scheduler)) == ['booking', 'hold']
    with pytest.raises(errors.AffectedReservationError):
        scheduler.change_quota(scheduler.session.get(type(master), master.id), 1)  # type: ignore[arg-type]
    scheduler.rollback()


def test_changing_a_held_reservation_moves_its_hold(scheduler: Scheduler, now: Clock) -> None:
    buffered(scheduler)
    token = scheduler.reserve('cart@example.org', (at(10), at(11)), hold=HOLD)
    scheduler.commit()
    [row] = scheduler.reservations_by_token(token)
    now.advance(timedelta(minutes=5))
    scheduler.change_reservation(token, row.id, at(14), at(15))
    scheduler.commit()
    # Held until the same moment: a change does not prolong the hold.
    [row] = scheduler.reservations_by_token(token)
    assert (row.status, row.held_until) == ('pending', NOW + HOLD)
    assert [(start, kind) for start, kind, _ in slots(scheduler)] == [
        ('13:45', 'buffer'), ('14:00', 'hold'), ('14:15', 'hold'), ('14:30', 'hold'), ('14:45', 'hold'),
        ('15:00', 'buffer'),
    ]
    assert {s.held_until for s in scheduler.session.scalars(sa.select(ReservedSlot))} == {NOW + HOLD}
    # Nobody else gets the new time while the hold lives; the old one is free.
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.reserve('other@example.org', (at(14), at(15)))
    scheduler.rollback()
    book(scheduler, 'other@example.org', at(10), at(11))
    assert len(scheduler.approve_reservations(token)) == 6
    scheduler.commit()


def test_changing_a_held_reservation_onto_taken_time_keeps_the_hold(
    scheduler: Scheduler, now: Clock
) -> None:
    buffered(scheduler)
    book(scheduler, 'first@example.org', at(14), at(15))
    token = scheduler.reserve('cart@example.org', (at(10), at(11)), hold=HOLD)
    scheduler.commit()
    [row] = scheduler.reservations_by_token(token)
    before = slots(scheduler)
    with pytest.raises(errors.AlreadyReservedError):
        scheduler.change_reservation(token, row.id, at(14, 30), at(15, 30))
    scheduler.rollback()
    assert slots(scheduler) == before


def test_changing_an_expired_hold_leaves_a_plain_pending_reservation(
    scheduler: Scheduler, now: Clock
) -> None:
    buffered(scheduler)
    token = scheduler.reserve('cart@example.org', (at(10), at(11)), hold=HOLD)
    scheduler.commit()
    [row] = scheduler.reservations_by_token(token)
    now.advance(HOLD)
    scheduler.change_reservation(token, row.id, at(14), at(15))
    scheduler.commit()
    [row] = scheduler.reservations_by_token(token)
    assert (row.status, row.held_until) == ('pending', None)
    assert slots(scheduler) == []


def test_a_hold_changed_before_its_flush_is_approved_at_its_new_time(scheduler: Scheduler, now: Clock) -> None:
    buffered(scheduler)
    token = scheduler.reserve('cart@example.org', (at(10), at(11)), hold=HOLD)
    [row] = scheduler.reservations_by_token(token)
    scheduler.change_reservation(token, row.id, at(14), at(15))
    assert len(scheduler.approve_reservations(token)) == 6
    scheduler.commit()
    assert [(start, kind) for start, kind, _ in slots(scheduler)] == [
        ('13:45', 'buffer'), ('14:00', 'booking'), ('14:15', 'booking'), ('14:30', 'booking'),
        ('14:45', 'booking'), ('15:00', 'buffer'),
    ]
