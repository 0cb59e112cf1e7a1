"""The fast paths work through psycopg2 too (its types come back differently)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

import libres
from libres.context.core import Context
from libres.context.session import SessionProvider
from libres.db.scheduler import Scheduler


@pytest.fixture
def psycopg2_context(clean_database: str) -> Iterator[Context]:
    dsn = clean_database.replace('postgresql+psycopg:', 'postgresql+psycopg2:')
    provider = SessionProvider(dsn)
    context = libres.registry.register_context('psycopg2-driver', replace=True)
    context.set_setting('dsn', dsn)
    context.set_service('session_provider', lambda _: provider, cache=False)
    yield context
    provider.stop_service()


def test_booking_search_and_availability_through_psycopg2(psycopg2_context: Context) -> None:
    room = Scheduler(psycopg2_context, 'room', 'Europe/Zurich')
    day = datetime(2030, 5, 6)
    hours = room.allocate([(day + timedelta(hours=h), day + timedelta(hours=h + 1)) for h in range(8, 12)])
    [concert] = room.allocate((day.replace(hour=19), day.replace(hour=22)), quota=3)
    room.commit()
    assert [a.display_start().hour for a in hours] == [8, 9, 10, 11]

    room.approve_reservations(room.reserve('a@example.org', (day.replace(hour=9), day.replace(hour=10))))
    for _ in range(2):
        room.approve_reservations(room.reserve('b@example.org', (day.replace(hour=19), day.replace(hour=22))))
    room.commit()

    assert room.allocation_by_id(concert.id).quota_left == 1
    slots = room.managed_reserved_slots().all()
    # The hour and the concert's first ticket on the room itself, the second on mirror 1.
    assert len(slots) == 3 and len({slot.resource for slot in slots}) == 2
    found = room.search_allocations(day, day + timedelta(hours=23, minutes=59))
    assert len(found) == 5
    # Seven spots: four hours (one booked) and the concert's three (two booked;
    # the third, never written, counts as free).
    expected = (3 * 100.0 + 100.0) / 7
    assert room.availability(day, day + timedelta(days=1)) == pytest.approx(expected)
    start, end = room._prepare_date(day), room._prepare_date(day + timedelta(days=1))
    [(_, (value, resources))] = room.queries.availability_by_day(start, end, [room.resource]).items()
    assert value == pytest.approx(expected) and resources == {room.resource}


def test_constraint_errors_are_translated_through_psycopg2(psycopg2_context: Context) -> None:
    from sqlalchemy.exc import IntegrityError

    from libres.db.models import ReservedSlot
    from libres.modules import errors
    from libres.retry import is_retryable

    room = Scheduler(psycopg2_context, 'room', 'Europe/Zurich')
    [hour] = room.allocate((datetime(2030, 5, 6, 8), datetime(2030, 5, 6, 9)))
    for source_id in (1, 2):
        room.session.add(ReservedSlot(
            resource=hour.resource, start=hour.start, end=hour.end, allocation_id=hour.id,
            source_type='reservation', reservation_token=hour.group, source_id=source_id,
        ))
    with pytest.raises(errors.ReservedSlotTaken, match='reserved_slots_pkey') as info:
        room.session.flush()
    assert isinstance(info.value, IntegrityError) and is_retryable(info.value)
    room.rollback()
