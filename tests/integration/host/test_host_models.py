"""Models of the host: subclasses of ours with a polymorphic identity, a
table of its own on our metadata, and resources named by their UUID.

The host's allocations and reservations subclass ours (single-table, the
``type`` column tells them apart); its own tables live on
``ORMBase.metadata`` next to ours and point at our rows; its resources are
UUIDs, and the context's ``uuid_generator`` returns the name unchanged, so
the scheduler's resource is the host's resource id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import transaction
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from libres.context.core import Context
from libres.context.session import SessionProvider
from libres.db.models import Allocation, ORMBase, Reservation
from libres.db.scheduler import Scheduler

from .cases import span
from .support import commit_setup, count, rows, scalar

IDENTITY = 'host-custom'


class HostAllocation(Allocation):
    __mapper_args__ = {'polymorphic_identity': IDENTITY}

    @property
    def label(self) -> str:
        return f'{self.display_start():%H:%M} (host)'


class HostReservation(Reservation):
    __mapper_args__ = {'polymorphic_identity': IDENTITY}


@pytest.fixture
def ticket_model(host_provider: SessionProvider, outside: sa.Engine) -> Iterator[type[Any]]:
    """A host table declared on our metadata, created for the test and
    dropped (from the database and the metadata) after it."""

    class HostBase(DeclarativeBase):
        metadata = ORMBase.metadata

    class Ticket(HostBase):
        __tablename__ = 'host_tickets'

        id: Mapped[int] = mapped_column(primary_key=True)
        token: Mapped[uuid.UUID] = mapped_column(sa.Uuid, index=True)
        allocation_id: Mapped[int] = mapped_column(ForeignKey('allocations.id'))
        title: Mapped[str | None]

    table: sa.Table = Ticket.__table__  # type: ignore[assignment]
    table.create(outside)
    yield Ticket
    transaction.abort()
    host_provider.session.remove()
    table.drop(outside)
    ORMBase.metadata.remove(table)
    HostBase.registry.dispose()


@pytest.fixture
def custom_scheduler(host_context: Context) -> Scheduler:
    return Scheduler(
        host_context, 'hall', 'Europe/Zurich',
        allocation_cls=HostAllocation, reservation_cls=HostReservation,
    )


@pytest.mark.parametrize('data', [None, {'kind': 'course'}], ids=['without_data', 'with_data'])
def test_subclassed_allocations_are_created_and_committed(
    data: dict[str, Any] | None, custom_scheduler: Scheduler, host_session: Session, outside: sa.Engine
) -> None:
    created = custom_scheduler.allocate([span(0, 10, 12), span(1, 10, 12)], data=data)
    assert [type(a) for a in created] == [HostAllocation, HostAllocation]
    transaction.commit()

    assert rows(outside, 'SELECT type, count(*) FROM allocations GROUP BY type') == [(IDENTITY, 2)]


def test_subclassed_records_and_a_host_table_in_one_transaction(
    custom_scheduler: Scheduler, host_session: Session, outside: sa.Engine, ticket_model: type[Any]
) -> None:
    s = custom_scheduler
    s.allocate(span(0, 10, 12), quota=2)
    s.allocate(span(1, 10, 12), data={'kind': 'course'})
    commit_setup(host_session)

    token = s.reserve('guest@example.org', span(0, 10, 12), quota=2)
    s.approve_reservations(token)
    reservation = s.reservations_by_token(token).one()
    assert type(reservation) is HostReservation
    [allocation] = s.allocations_by_reservation(token).filter(Allocation.resource == s.resource).all()
    assert type(allocation) is HostAllocation and allocation.label == '10:00 (host)'
    host_session.add(ticket_model(token=token, allocation_id=allocation.id, title=reservation.title))
    transaction.commit()

    assert scalar(outside, 'SELECT type FROM reservations WHERE token = :t', t=str(token)) == IDENTITY
    # The mirror the second spot made real is the host's class too.
    assert rows(outside, 'SELECT type, count(*) FROM allocations GROUP BY type') == [(IDENTITY, 3)]
    assert rows(
        outside,
        'SELECT t.title, a.type FROM host_tickets t JOIN allocations a ON a.id = t.allocation_id '
        'JOIN reservations r ON r.token = t.token',
    ) == [('guest@example.org', IDENTITY)]

    # Read back in a new transaction: polymorphic loading gives the subclasses.
    loaded = host_session.query(Allocation).order_by(Allocation._start, Allocation.id).all()
    assert [type(a) for a in loaded] == [HostAllocation] * 3
    ticket = host_session.query(ticket_model).join(Allocation, Allocation.id == ticket_model.allocation_id).one()
    assert ticket.token == token
    assert type(host_session.query(Reservation).one()) is HostReservation


def test_scheduler_setup_leaves_a_host_table_on_our_metadata_alone(
    custom_scheduler: Scheduler, host_session: Session, outside: sa.Engine, ticket_model: type[Any]
) -> None:
    custom_scheduler.setup_database()
    custom_scheduler.allocate(span(0, 10, 12), data={'kind': 'course'})
    transaction.commit()
    assert count(outside, 'host_tickets') == 0
    assert count(outside, 'allocations') == 1


def identity(name: uuid.UUID) -> uuid.UUID:
    """The host's generator: its resource ids are UUIDs already."""
    assert isinstance(name, uuid.UUID)
    return name


@pytest.fixture
def resource_id(host_context: Context) -> uuid.UUID:
    host_context.set_service('uuid_generator', lambda _: identity)
    return uuid.uuid4()


def test_uuid_named_scheduler_with_identity_generator(
    host_context: Context, resource_id: uuid.UUID, host_session: Session, outside: sa.Engine
) -> None:
    s = Scheduler(host_context, resource_id, 'Europe/Zurich')
    assert s.resource == resource_id
    [allocation] = s.allocate(span(0, 10, 12), quota=2)
    allocation_id = allocation.id
    s.allocate(span(1, 10, 12))
    commit_setup(host_session)

    first = s.reserve('a@example.org', span(0, 10, 12))
    second = s.reserve('b@example.org', span(0, 10, 12))
    s.approve_reservations(first)
    s.approve_reservations(second)
    [blocker] = s.add_blocker(span(1, 10, 12), reason='repairs')
    blocker_token = blocker.token
    transaction.commit()

    r = str(resource_id)
    assert count(outside, 'allocations', 'resource = :r AND mirror_of = :r', r=r) == 2
    # The mirror's resource is derived from the host's id, and points back to it.
    [(mirror,)] = rows(outside, 'SELECT resource FROM allocations WHERE mirror_of = :r AND resource <> :r', r=r)
    assert str(mirror) != r
    assert count(outside, 'reservations', 'resource = :r AND status = :s', r=r, s='approved') == 2
    assert count(outside, 'reservation_blockers', 'resource = :r', r=r) == 1
    assert count(outside, 'reserved_slots', 'resource IN (:r, :m)', r=r, m=str(mirror)) == 3

    # A scheduler made anew for the next request sees the same records.
    again = Scheduler(host_context, resource_id, 'Europe/Zurich')
    assert again.managed_allocations().count() == 3
    assert again.managed_reservations().count() == 2
    assert again.allocation_by_id(allocation_id).quota_left == 0
    assert len(again.search_allocations(*span(0, 9, 13), strict=True)) == 1
    assert again.availability(*span(0, 0, 23)) == 0
    again.remove_reservation(first)
    again.remove_blocker(blocker_token)
    transaction.commit()
    assert count(outside, 'reserved_slots') == 1
