"""What the host finds in the database right after the library returns.

After ``reserve()`` and ``approve_reservations()`` the host opens a ticket
for the token inside ``session.no_autoflush`` and looks the reservations up
by token with a plain query: 1.4.0 had flushed them by then (its own queries
inside ``approve_reservations`` autoflushed), so the lookup found them.
And the private ``_approve_reservation_record``, with which the host adds a
reservation to an existing ticket.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
import transaction
from sqlalchemy.orm import Session

from libres.db.models import Reservation, ReservedSlot
from libres.db.scheduler import Scheduler

from .cases import span
from .support import commit_setup, count, rows

TICKET = {'ticket': 'RSV-1', 'seats': 2}


def single(s: Scheduler) -> tuple[Any, dict[str, Any]]:
    s.allocate(span(0, 10, 12))
    return span(0, 10, 12), {}


def partly(s: Scheduler) -> tuple[Any, dict[str, Any]]:
    s.allocate(span(0, 10, 12), partly_available=True, raster=30)
    return span(0, 10, 11), {}


def quota(s: Scheduler) -> tuple[Any, dict[str, Any]]:
    s.allocate(span(0, 10, 12), quota=3)
    return span(0, 10, 12), {'quota': 2}


def two_dates(s: Scheduler) -> tuple[Any, dict[str, Any]]:
    s.allocate([span(0, 10, 12), span(1, 10, 12)])
    return [span(0, 10, 12), span(1, 10, 12)], {}


def group(s: Scheduler) -> tuple[Any, dict[str, Any]]:
    [first, _] = s.allocate([span(0, 10, 12), span(1, 10, 12)], grouped=True)
    return None, {'group': first.group}


def cart_session(s: Scheduler) -> tuple[Any, dict[str, Any]]:
    s.allocate(span(0, 10, 12))
    return span(0, 10, 12), {'session_id': uuid.uuid4(), 'single_token_per_session': True}


# (setup, reservation rows, slots) per kind of booking
BOOKINGS: dict[str, tuple[Callable[[Scheduler], tuple[Any, dict[str, Any]]], int, int]] = {
    'single': (single, 1, 1),
    'partly': (partly, 1, 2),
    'quota': (quota, 1, 2),
    'two_dates': (two_dates, 2, 2),
    'group': (group, 1, 2),
    'cart_session': (cart_session, 1, 1),
}


@pytest.mark.parametrize('booking', list(BOOKINGS))
def test_reservations_and_slots_are_found_under_no_autoflush_after_approval(
    booking: str, host_scheduler: Scheduler, host_session: Session, outside: sa.Engine
) -> None:
    setup, expected_rows, expected_slots = BOOKINGS[booking]
    dates, options = setup(host_scheduler)
    commit_setup(host_session)

    token = host_scheduler.reserve('guest@example.org', dates, data=TICKET, **options)
    host_scheduler.approve_reservations(token)

    with host_session.no_autoflush:
        found = host_session.query(Reservation).filter(Reservation.token == token).all()
        slots = host_session.query(ReservedSlot).filter(ReservedSlot.reservation_token == token).all()
        stored = host_session.execute(
            sa.select(sa.func.count()).select_from(Reservation).where(Reservation.token == token)
        ).scalar_one()
        # What the ticket is made of: the title and the data of the reservation.
        titles = {reservation.title for reservation in found}
        data = [reservation.data for reservation in found]

    assert len(found) == expected_rows and stored == expected_rows
    assert titles == {'guest@example.org'}
    assert data == [TICKET] * expected_rows
    assert {reservation.status for reservation in found} == {'approved'}
    assert len(slots) == expected_slots
    assert {slot.source_id for slot in slots} == {reservation.id for reservation in found}

    transaction.commit()
    assert count(outside, 'reservations', 'token = :t AND status = :s', t=str(token), s='approved') \
        == expected_rows
    assert count(outside, 'reserved_slots', 'reservation_token = :t', t=str(token)) == expected_slots


def test_approve_reservation_record_adds_a_reservation_to_an_existing_ticket(
    host_scheduler: Scheduler, host_session: Session, outside: sa.Engine
) -> None:
    """The host's "add a reservation to this ticket": reserve with a
    temporary token, give the record the ticket's token, approve that record
    alone, inside a transaction savepoint it can roll back to."""
    s = host_scheduler
    s.allocate([span(0, 10, 12), span(1, 10, 12)])
    ticket_token = s.reserve('guest@example.org', span(0, 10, 12))
    s.approve_reservations(ticket_token)
    commit_setup(host_session)

    savepoint = transaction.savepoint()
    temporary = s.reserve('guest@example.org', span(1, 10, 12))
    reservation = s.reservations_by_token(temporary).one()
    reservation.token = ticket_token
    slots = s._approve_reservation_record(reservation)
    host_session.flush()
    assert savepoint.valid

    assert [type(slot) for slot in slots] == [ReservedSlot]
    assert slots[0].source_id == reservation.id and slots[0].reservation_token == ticket_token
    assert reservation.status == 'approved'
    added_id = reservation.id
    transaction.commit()

    ticket = rows(outside, 'SELECT id, status FROM reservations WHERE token = :t ORDER BY id', t=str(ticket_token))
    assert [status for _, status in ticket] == ['approved', 'approved']
    assert ticket[1][0] == added_id
    by_owner = rows(
        outside, 'SELECT source_id, count(*) FROM reserved_slots WHERE reservation_token = :t '
        'GROUP BY source_id ORDER BY source_id', t=str(ticket_token),
    )
    assert [(owner, n) for owner, n in by_owner] == [(ticket[0][0], 1), (added_id, 1)]
    assert count(outside, 'reservations', 'token = :t', t=str(temporary)) == 0


def test_approve_reservation_record_writes_the_slots_of_that_record_only(
    host_scheduler: Scheduler, host_session: Session, outside: sa.Engine
) -> None:
    s = host_scheduler
    s.allocate([span(0, 10, 12), span(1, 10, 12)], quota=2)
    token = s.reserve('guest@example.org', [span(0, 10, 12), span(1, 10, 12)])
    other = s.reserve('other@example.org', span(0, 10, 12))
    commit_setup(host_session)

    first, second = s.reservations_by_token(token).order_by(Reservation.id).all()
    slots = s._approve_reservation_record(first)
    first_id, second_id = first.id, second.id
    transaction.commit()

    assert len(slots) == 1
    assert rows(outside, 'SELECT id, status FROM reservations WHERE token = :t ORDER BY id', t=str(token)) \
        == [(first_id, 'approved'), (second_id, 'pending')]
    assert [r[0] for r in rows(outside, 'SELECT source_id FROM reserved_slots WHERE reservation_token = :t',
                               t=str(token))] == [first_id]
    assert count(outside, 'reserved_slots', 'reservation_token = :t', t=str(other)) == 0
