"""What the host does to our tables in its own transactions, as with 1.4.0.

An upgrade step writes slots and then alters a libres table in the same
transaction; the host deletes a reservation or a blocker directly (and may
delete the slots itself afterwards). Our triggers must not refuse either:
the database removes the slots with their owner, and a host that deletes
them itself gets no error and no warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import transaction
from sqlalchemy.orm import Session

from libres.context.session import SessionProvider
from libres.db.models import Reservation, ReservationBlocker, ReservedSlot
from libres.db.scheduler import Scheduler

from .cases import span
from .support import commit_setup, count, scalar

COLUMN = 'host_upgrade_note'
TABLES = ('reserved_slots', 'reservations', 'allocations')


@pytest.fixture
def added_column(host_provider: SessionProvider, outside: sa.Engine) -> Iterator[str]:
    """The column an upgrade step adds; dropped again once the host's
    session has let go of its tables."""
    yield COLUMN
    transaction.abort()
    host_provider.session.remove()
    with outside.connect() as connection:
        for table in TABLES:
            connection.execute(sa.text(f'ALTER TABLE {table} DROP COLUMN IF EXISTS {COLUMN}'))


def column_exists(db: sa.Engine, table: str) -> bool:
    return bool(scalar(
        db, 'SELECT count(*) FROM information_schema.columns WHERE table_name = :t AND column_name = :c',
        t=table, c=COLUMN,
    ))


def approve(s: Scheduler) -> None:
    s.approve_reservations(s.reserve('guest@example.org', span(0, 10, 12)))


def approve_stored(s: Scheduler) -> None:
    """A reservation stored first, then approved: an UPDATE of reservations."""
    token = s.reserve('guest@example.org', span(0, 10, 12))
    s.session.flush()
    s.approve_reservations(token)


def block(s: Scheduler) -> None:
    s.add_blocker(span(0, 10, 12))


def move_with_slots(s: Scheduler) -> None:
    """An allocation moved while it holds slots: an UPDATE of allocations."""
    [allocation] = s.allocations_in_range(*span(0, 10, 12)).all()
    s.approve_reservations(s.reserve('guest@example.org', span(0, 10, 11)))
    s.session.flush()
    s.move_allocation(allocation.id, *span(0, 10, 13))


UPGRADES: dict[str, tuple[dict[str, Any], Callable[[Scheduler], None], str]] = {
    'approved_slots_then_reserved_slots': ({}, approve, 'reserved_slots'),
    'blocker_slots_then_reserved_slots': ({'quota': 2}, block, 'reserved_slots'),
    'approval_update_then_reservations': ({}, approve_stored, 'reservations'),
    'moved_allocation_then_allocations': ({'partly_available': True, 'raster': 15}, move_with_slots, 'allocations'),
}


@pytest.mark.parametrize('upgrade', list(UPGRADES))
def test_upgrade_step_writes_slots_then_alters_the_table_in_one_transaction(
    upgrade: str, host_scheduler: Scheduler, host_session: Session, outside: sa.Engine, added_column: str
) -> None:
    options, write, table = UPGRADES[upgrade]
    host_scheduler.allocate(span(0, 10, 12), **options)
    commit_setup(host_session)

    write(host_scheduler)
    host_session.flush()
    host_session.execute(sa.text(f'ALTER TABLE {table} ADD COLUMN {added_column} text'))
    transaction.commit()

    assert column_exists(outside, table)
    assert count(outside, 'reserved_slots') >= 1


def book(s: Scheduler, session: Session) -> Any:
    s.allocate(span(0, 10, 12), partly_available=True, raster=30)
    token = s.reserve('guest@example.org', span(0, 10, 12))
    s.approve_reservations(token)
    commit_setup(session)
    return token


def block_partly(s: Scheduler, session: Session) -> Any:
    s.allocate(span(0, 10, 12), partly_available=True, raster=30, quota=2)
    [blocker] = s.add_blocker(span(0, 10, 12))
    token = blocker.token
    commit_setup(session)
    return token


OWNERS = {
    'reservation': (book, Reservation, 'reservation', 4),
    'blocker': (block_partly, ReservationBlocker, 'blocker', 8),
}


def load_owner_and_slots(s: Scheduler, session: Session, owner: str, token: Any) -> tuple[Any, list[Any]]:
    _, model_class, kind, expected = OWNERS[owner]
    model: Any = model_class
    record = session.query(model).filter(model.token == token).one()
    slots = session.query(ReservedSlot).filter(
        ReservedSlot.reservation_token == token, ReservedSlot.source_type == kind
    ).all()
    assert len(slots) == expected
    # The allocation's collection is loaded too, as a host's page would have it.
    assert all(slot.allocation.reserved_slots for slot in slots)
    return record, slots


def assert_nothing_left(db: sa.Engine, token: Any, owner: str) -> None:
    table = 'reservations' if owner == 'reservation' else 'reservation_blockers'
    assert count(db, table, 'token = :t', t=str(token)) == 0
    assert count(db, 'reserved_slots', 'reservation_token = :t', t=str(token)) == 0


@pytest.mark.parametrize('owner', list(OWNERS))
def test_owner_deleted_directly_takes_its_slots_along(
    owner: str, host_scheduler: Scheduler, host_session: Session, outside: sa.Engine
) -> None:
    token = OWNERS[owner][0](host_scheduler, host_session)
    record, _slots = load_owner_and_slots(host_scheduler, host_session, owner, token)

    with warnings.catch_warnings():
        warnings.simplefilter('error')
        host_session.delete(record)
        host_session.flush()
        transaction.commit()

    assert_nothing_left(outside, token, owner)


@pytest.mark.parametrize('owner', list(OWNERS))
def test_host_deletes_the_slots_itself_after_deleting_the_owner(
    owner: str, host_scheduler: Scheduler, host_session: Session, outside: sa.Engine
) -> None:
    token = OWNERS[owner][0](host_scheduler, host_session)
    record, slots = load_owner_and_slots(host_scheduler, host_session, owner, token)

    with warnings.catch_warnings():
        warnings.simplefilter('error')
        host_session.delete(record)
        host_session.flush()
        for slot in slots:
            host_session.delete(slot)
        host_session.flush()
        transaction.commit()

    assert_nothing_left(outside, token, owner)


@pytest.mark.parametrize('owner', list(OWNERS))
def test_host_deletes_owner_and_slots_in_one_flush(
    owner: str, host_scheduler: Scheduler, host_session: Session, outside: sa.Engine
) -> None:
    token = OWNERS[owner][0](host_scheduler, host_session)
    record, slots = load_owner_and_slots(host_scheduler, host_session, owner, token)

    with warnings.catch_warnings():
        warnings.simplefilter('error')
        host_session.delete(record)
        for slot in slots:
            host_session.delete(slot)
        transaction.commit()

    assert_nothing_left(outside, token, owner)


@pytest.mark.parametrize('owner', list(OWNERS))
def test_slots_go_with_their_owner_and_the_calendar_is_free_again(
    owner: str, host_scheduler: Scheduler, host_session: Session, outside: sa.Engine
) -> None:
    """After the owner went directly, the same time can be booked again."""
    token = OWNERS[owner][0](host_scheduler, host_session)
    record, _slots = load_owner_and_slots(host_scheduler, host_session, owner, token)
    host_session.delete(record)
    transaction.commit()

    again = host_scheduler.reserve('next@example.org', span(0, 10, 12))
    host_scheduler.approve_reservations(again)
    transaction.commit()
    assert count(outside, 'reserved_slots', 'reservation_token = :t', t=str(again)) == 4
