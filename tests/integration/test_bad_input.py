"""Bad calls get the documented error (or the documented no-op) and change
no row in any table."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import NoResultFound, StatementError
from tests.helpers import at

from libres.context.core import Context
from libres.db.scheduler import Scheduler
from libres.modules import errors

TABLES = ('allocations', 'reserved_slots', 'reservations', 'reservation_blockers')
DAY = datetime(2030, 5, 1)
UTC = UTC




@dataclass
class World:
    room: Scheduler
    other: Scheduler
    room_allocation: int
    quota_allocation: int
    other_allocation: int
    other_token: uuid.UUID
    pending_token: uuid.UUID
    group: uuid.UUID


@pytest.fixture
def world(context: Context) -> World:
    room = Scheduler(context, 'room', 'Europe/Zurich')
    other = Scheduler(context, 'other', 'Europe/Zurich')
    [partly] = room.allocate((at(8), at(12)), partly_available=True, raster=15)
    [quota] = room.allocate((at(18), at(20)), quota=3, quota_limit=2)
    group = room.allocate([(at(8, day=d), at(9, day=d)) for d in (2, 3)], grouped=True)
    [foreign] = other.allocate((at(8), at(12)))
    other_token = other.reserve('other@example.org', (at(8), at(12)))
    other.approve_reservations(other_token)
    pending = room.reserve('pending@example.org', (at(8), at(9)))
    room.commit()
    return World(room, other, partly.id, quota.id, foreign.id, other_token, pending, group[0].group)


def rows(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {t: sorted(map(tuple, connection.execute(sa.text(f'SELECT * FROM {t}')))) for t in TABLES}


W = World
Call = Callable[[W], Any]


def _reserve_unserializable_data(w: W) -> None:
    w.room.reserve('a@example.org', (at(10), at(11)), data={'when': object()})
    w.room.commit()
RAISES: list[tuple[str, Call, type[BaseException]]] = [
    # dates
    ('allocate end before start', lambda w: w.room.allocate((at(15), at(14))), errors.InvalidAllocationError),
    ('allocate zero length', lambda w: w.room.allocate((at(15), at(15))), errors.InvalidAllocationError),
    ('allocate overlapping', lambda w: w.room.allocate((at(11), at(13))), errors.OverlappingAllocationError),
    ('allocate a string', lambda w: w.room.allocate('tomorrow'), TypeError),  # type: ignore[arg-type]
    ('allocate an odd number of dates', lambda w: w.room.allocate([at(13), at(14), at(15)]), ValueError),
    ('allocate dates that are not datetimes', lambda w: w.room.allocate((1, 2)), TypeError),  # type: ignore[arg-type]
    ('allocate plain dates', lambda w: w.room.allocate((DAY.date(), DAY.date())), TypeError),  # type: ignore[arg-type]
    ('allocate raster 7', lambda w: w.room.allocate((at(13), at(14)), raster=7), AssertionError),
    ('allocate raster as text', lambda w: w.room.allocate((at(13), at(14)), raster='15'), AssertionError),  # type: ignore[arg-type]
    ('allocate a negative quota', lambda w: w.room.allocate((at(13), at(14)), quota=-2), ValueError),
    ('allocate a quota as text', lambda w: w.room.allocate((at(13), at(14)), quota='3'), TypeError),  # type: ignore[arg-type]
    ('allocate a negative quota limit', lambda w: w.room.allocate((at(13), at(14)), quota_limit=-1), ValueError),
    ('allocate grouped and partly', lambda w: w.room.allocate([(at(13), at(14))], grouped=True,
                                                              partly_available=True), errors.InvalidAllocationError),
    ('reserve end before start', lambda w: w.room.reserve('a@example.org', (at(10), at(9))), errors.ReservationTooShort),
    ('reserve zero length', lambda w: w.room.reserve('a@example.org', (at(10), at(10))), errors.ReservationTooShort),
    ('reserve four minutes', lambda w: w.room.reserve('a@example.org', (at(10), at(10, 4))), errors.ReservationTooShort),
    ('reserve more than a day', lambda w: w.room.reserve('a@example.org', (at(8), at(9, day=2))),
     errors.ReservationTooLong),
    ('reserve outside allocations', lambda w: w.room.reserve('a@example.org', (at(13), at(14))),
     errors.InvalidReservationError),
    ('reserve across the allocation end', lambda w: w.room.reserve('a@example.org', (at(11), at(13))),
     errors.TimerangeTooLong),
    ('reserve mixed naive and aware, outside', lambda w: w.room.reserve(
        'a@example.org', (at(13), datetime(2030, 5, 1, 14, tzinfo=UTC))), errors.InvalidReservationError),
    ('reserve a non-existent local time', lambda w: w.room.reserve(
        'a@example.org', (datetime(2030, 3, 31, 2, 15), datetime(2030, 3, 31, 2, 45))), errors.NonExistentTimeError),
    ('reserve an ambiguous local time', lambda w: w.room.reserve(
        'a@example.org', (datetime(2030, 10, 27, 2, 15), datetime(2030, 10, 27, 2, 45))), errors.InvalidReservationError),
    ('reserve quota 0', lambda w: w.room.reserve('a@example.org', (at(18), at(20)), quota=0), errors.InvalidQuota),
    ('reserve quota -1', lambda w: w.room.reserve('a@example.org', (at(18), at(20)), quota=-1), errors.InvalidQuota),
    ('reserve above the limit', lambda w: w.room.reserve('a@example.org', (at(18), at(20)), quota=3),
     errors.QuotaOverLimit),
    ('reserve above the quota', lambda w: w.room.reserve('a@example.org', (at(18), at(20)), quota=4),
     errors.AlreadyReservedError),
    ('reserve a quota as text', lambda w: w.room.reserve('a@example.org', (at(18), at(20)), quota='2'), TypeError),  # type: ignore[arg-type]
    ('reserve group and dates', lambda w: w.room.reserve('a@example.org', (at(8), at(9)), group=w.group),
     AssertionError),
    ('reserve neither group nor dates', lambda w: w.room.reserve('a@example.org'), AssertionError),
    ('reserve an unknown group', lambda w: w.room.reserve('a@example.org', group=uuid.uuid4()),
     errors.InvalidReservationError),
    ('reserve without an e-mail', lambda w: w.room.reserve('', (at(10), at(11))), errors.InvalidEmailAddress),
    ('reserve a malformed e-mail', lambda w: w.room.reserve('not an address', (at(10), at(11))),
     errors.InvalidEmailAddress),
    ('reserve an e-mail without a dot', lambda w: w.room.reserve('a@localhost', (at(10), at(11))),
     errors.InvalidEmailAddress),
    ('reserve an e-mail with a header', lambda w: w.room.reserve('a@example.org\nBcc: all@example.org',
                                                                 (at(10), at(11))), errors.InvalidEmailAddress),
    ('reserve an e-mail with a carriage return', lambda w: w.room.reserve('a\r@example.org', (at(10), at(11))),
     errors.InvalidEmailAddress),
    ('reserve an e-mail that is not text', lambda w: w.room.reserve(42, (at(10), at(11))), TypeError),  # type: ignore[arg-type]
    ('reserve data that is not JSON', _reserve_unserializable_data,
     TypeError),
    ('reserve huge data', lambda w: w.room.reserve('a@example.org', (at(10), at(11)),
                                                   data={'blob': 'x' * (1024 * 1024 + 1)}), ValueError),
    ('reserve data that is a list', lambda w: w.room.reserve('a@example.org', (at(10), at(11)), data=[1, 2]),  # type: ignore[arg-type]
     TypeError),
    ('allocate huge data', lambda w: w.room.allocate((at(13), at(14)), data={'blob': 'x' * (1024 * 1024 + 1)}),
     ValueError),
    ('change data to something huge', lambda w: w.room.change_reservation_data(
        w.pending_token, {'blob': 'x' * (1024 * 1024 + 1)}), ValueError),
    ('block end before start', lambda w: w.room.add_blocker((at(10), at(9))), errors.ReservationTooShort),
    ('block outside allocations', lambda w: w.room.add_blocker((at(13), at(14))), errors.InvalidReservationError),
    ('block dates and group', lambda w: w.room.add_blocker((at(8), at(9)), group=w.group), AssertionError),
    ('change an unknown reservation', lambda w: w.room.change_reservation(uuid.uuid4(), 1, at(9), at(10)),
     NoResultFound),
    ("change another resource's reservation", lambda w: w.room.change_reservation(w.other_token, 1, at(9), at(10)),
     NoResultFound),
    ('change a blocker that does not exist', lambda w: w.room.change_blocker(uuid.uuid4(), 1, at(9), at(10)),
     NoResultFound),
    ('change the quota to 0', lambda w: w.room.change_quota(w.room.allocation_by_id(w.quota_allocation), 0),
     AssertionError),
    ('move without anything to move', lambda w: w.room.move_allocation(w.room_allocation), AssertionError),
    ('move to end before start', lambda w: w.room.move_allocation(w.room_allocation, at(12), at(8)),
     errors.InvalidAllocationError),
    ("move another resource's allocation", lambda w: w.room.move_allocation(w.other_allocation, at(13), at(14)),
     NoResultFound),
    ("remove another resource's allocation", lambda w: w.room.remove_allocation(w.other_allocation), NoResultFound),
    ('remove an allocation with a pending reservation', lambda w: w.room.remove_allocation(w.room_allocation),
     errors.AffectedPendingReservationError),
    ('search with whole_day maybe', lambda w: w.room.search_allocations(at(8), at(9), whole_day='maybe'),
     AssertionError),
    ('queries with naive datetimes', lambda w: w.room.queries.availability_by_range(at(8), at(9), [w.room.resource]),
     StatementError),
    ('confirm a session without id', lambda w: w.room.queries.confirm_reservations_for_session(None),  # type: ignore[arg-type]
     AssertionError),
    ('confirm an unknown session', lambda w: w.room.queries.confirm_reservations_for_session(uuid.uuid4()),
     errors.NoReservationsToConfirm),
    ('a scheduler with a tzinfo', lambda w: Scheduler(w.room.context, 'x', ZoneInfo('UTC')), AssertionError),  # type: ignore[arg-type]
]

NO_OPS: list[tuple[str, Call, Any]] = [
    ('approve an unknown token', lambda w: w.room.approve_reservations(uuid.uuid4()), []),
    ("approve another resource's token", lambda w: w.room.approve_reservations(w.other_token), []),
    ('deny an unknown token', lambda w: w.room.deny_reservation(uuid.uuid4()), None),
    ("deny another resource's token", lambda w: w.room.deny_reservation(w.other_token), None),
    ("remove another resource's reservation", lambda w: w.room.remove_reservation(w.other_token), None),
    ('remove an unknown blocker', lambda w: w.room.remove_blocker(uuid.uuid4()), None),
    ("change the e-mail of another resource's token", lambda w: w.room.change_email(w.other_token, 'x@y.org'), None),
    ('reservations of an unknown token', lambda w: w.room.reservations_by_token(uuid.uuid4()).all(), []),
    ('reservations of an empty session', lambda w: w.room.queries.reservations_by_session(None).all(), []),
]


@pytest.mark.parametrize(('name', 'call', 'error'), RAISES, ids=[c[0] for c in RAISES])
def test_bad_call_raises_and_changes_nothing(world: World, admin_engine: sa.Engine, name: str, call: Call,
                                             error: type[BaseException]) -> None:
    before = rows(admin_engine)
    with pytest.raises(error):
        call(world)
    world.room.rollback()
    world.room.commit()
    assert rows(admin_engine) == before


@pytest.mark.parametrize(('name', 'call', 'result'), NO_OPS, ids=[c[0] for c in NO_OPS])
def test_harmless_call_is_a_no_op(world: World, admin_engine: sa.Engine, name: str, call: Call,
                                  result: Any) -> None:
    before = rows(admin_engine)
    assert call(world) == result
    world.room.commit()
    assert rows(admin_engine) == before


def test_quotes_and_sql_are_stored_verbatim(world: World, admin_engine: sa.Engine) -> None:
    # An address that is not one is refused (issue 13); quotes in a real one are kept.
    with pytest.raises(errors.InvalidEmailAddress):
        world.room.reserve("o'brien\"; DROP TABLE reservations; --@example.org", (at(10), at(11)))
    nasty = "o'brien+'--@example.org"
    token = world.room.reserve(nasty, (at(10), at(11)), data={"'; DELETE FROM allocations; --": "\\' OR 1=1"})
    world.room.commit()
    [row] = world.room.reservations_by_token(token)
    assert row.email == nasty and row.data == {"'; DELETE FROM allocations; --": "\\' OR 1=1"}
    assert len(rows(admin_engine)['allocations']) == 5


def test_there_are_at_least_forty_bad_calls() -> None:
    assert len(RAISES) + len(NO_OPS) >= 40
    library_errors = sum(1 for _, _, e in RAISES if issubclass(e, errors.LibresError))
    assert library_errors >= 25
