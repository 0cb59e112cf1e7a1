"""A sweep of bad calls (issue 13): every public Scheduler and Queries method
given wrong types, plus the bad inputs a new user runs into (no database
configured, unknown zones, tokens that are not UUIDs, NaN and NUL in data,
addresses that are not addresses, DST gaps, naive datetimes in queries).

Every call must raise (nothing bad is accepted), at least 95 % must raise a
``LibresError`` subclass, and the four tables must be byte-identical after
the whole sweep. ``python -m pytest tests/integration/test_bad_input_sweep.py -s``
prints the table of calls and what each raised.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.helpers import at

import libres
from libres.context.core import Context
from libres.db.models import ReservedSlot
from libres.db.scheduler import Scheduler
from libres.modules import errors

TABLES = ('allocations', 'reserved_slots', 'reservations', 'reservation_blockers')
ZURICH = ZoneInfo('Europe/Zurich')
NOT_A_UUID = "1' OR '1'='1"




def aware(hour: int) -> datetime:
    return datetime(2030, 5, 1, hour, tzinfo=UTC)


@dataclass
class World:
    room: Scheduler
    partly: int
    quota: int
    token: uuid.UUID
    blocker_token: uuid.UUID
    group: uuid.UUID
    session_id: uuid.UUID

    @property
    def queries(self) -> Any:
        return self.room.queries


@pytest.fixture
def world(context: Context) -> World:
    room = Scheduler(context, 'room', 'Europe/Zurich')
    [partly] = room.allocate((at(8), at(12)), partly_available=True, raster=15)
    [quota] = room.allocate((at(18), at(20)), quota=3, quota_limit=2)
    group = room.allocate([(at(8, day=d), at(9, day=d)) for d in (2, 3)], grouped=True)
    room.allocate((datetime(2030, 10, 27, 0), datetime(2030, 10, 27, 1)))  # before the repeated hour
    room.allocate((datetime(2030, 10, 27, 2, tzinfo=ZURICH, fold=1), datetime(2030, 10, 27, 4)))
    token = room.reserve('a@example.org', (at(8), at(9)))
    room.approve_reservations(token)
    [blocker] = room.add_blocker((at(11), at(12)))
    session_id = uuid.uuid4()
    room.reserve('cart@example.org', (at(18), at(19)), session_id=session_id)
    room.commit()
    return World(room, partly.id, quota.id, token, blocker.token, group[0].group, session_id)


def table_digests(engine: sa.Engine) -> dict[str, str]:
    """One md5 per table over every row's text, read outside the test's session."""
    with engine.connect() as connection:
        return {
            table: connection.execute(sa.text(
                f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {table} t"
            )).scalar_one()
            for table in TABLES
        }


def _slot_twice(w: World) -> None:
    room = w.room.allocation_by_id(w.quota)
    for _ in range(2):
        w.room.session.add(ReservedSlot(
            resource=room.resource, start=room.start, end=room.end, allocation_id=room.id,
            source_type='reservation', reservation_token=uuid.uuid4(), source_id=1))
    w.room.session.flush()


def _without_dsn(w: World) -> Any:
    context = libres.registry.register_context(f'sweep-{uuid.uuid4().hex[:8]}')
    return Scheduler(context, 'room', 'UTC').allocate((at(8), at(9)))


def _deprecated(call: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        return call()


W = World
Call = Callable[[W], Any]
A = Any  # wrong types on purpose: the sweep passes what the signatures refuse
CASES: list[tuple[str, Call]] = [
    # --- what a new user runs into
    ('a context without a dsn', _without_dsn),
    ("new_scheduler(ctx, 'x', 'Zurich')", lambda w: libres.new_scheduler(w.room.context, 'x', 'Zurich')),
    ("Scheduler(ctx, 'x', '')", lambda w: Scheduler(w.room.context, 'x', '')),
    ('Scheduler(ctx, x, ZoneInfo)', lambda w: Scheduler(w.room.context, 'x', ZURICH)),  # type: ignore[arg-type]
    ('Scheduler(ctx, 42, UTC)', lambda w: Scheduler(w.room.context, 42, 'UTC')),  # type: ignore[arg-type]
    ('Scheduler(blocking_names=5)', lambda w: Scheduler(w.room.context, 'x', 'UTC', blocking_names=5)),  # type: ignore[arg-type]
    ('reserve e-mail with trailing SQL', lambda w: w.room.reserve(
        "a@example.org'); DELETE FROM reservations; --", (at(9), at(10)))),
    ('reserve e-mail with a trailing word', lambda w: w.room.reserve('a@example.org now', (at(9), at(10)))),
    ('reserve e-mail None', lambda w: w.room.reserve(None, (at(9), at(10)))),  # type: ignore[arg-type]
    ('change_email to no address', lambda w: w.room.change_email(w.token, 'nobody')),
    ('change_email to a number', lambda w: w.room.change_email(w.token, 5)),  # type: ignore[arg-type]
    ('reserve data with NaN', lambda w: w.room.reserve('a@example.org', (at(9), at(10)), data={'x': float('nan')})),
    ('reserve data with infinity', lambda w: w.room.reserve('a@example.org', (at(9), at(10)),
                                                            data={'x': [float('inf')]})),
    ('reserve data with NUL', lambda w: w.room.reserve('a@example.org', (at(9), at(10)), data={'x': 'a\x00'})),
    ('allocate data with a NUL key', lambda w: w.room.allocate((at(13), at(14)), data={'k\x00': 1})),
    ('change data to nested NaN', lambda w: w.room.change_reservation_data(w.token, {'a': {'b': float('nan')}})),
    ('change data to a list', lambda w: w.room.change_reservation_data(w.token, [1])),  # type: ignore[arg-type]
    ('allocate data not JSON', lambda w: w.room.allocate((at(13), at(14)), data={'x': object()})),
    ('reserve in the spring gap', lambda w: w.room.reserve(
        'a@example.org', (datetime(2030, 3, 31, 2, 15), datetime(2030, 3, 31, 2, 45)))),
    ('allocate in the spring gap', lambda w: w.room.allocate(
        (datetime(2030, 3, 31, 2, 30), datetime(2030, 3, 31, 4)))),
    ('allocate in the repeated hour', lambda w: w.room.allocate(
        (datetime(2030, 10, 27, 2, 30), datetime(2030, 10, 27, 3)))),
    ('reserve in the repeated hour', lambda w: w.room.reserve(
        'a@example.org', (datetime(2030, 10, 27, 2, 15), datetime(2030, 10, 27, 2, 45)))),
    ('block in the repeated hour', lambda w: w.room.add_blocker(
        (datetime(2030, 10, 27, 2, 15), datetime(2030, 10, 27, 2, 45)))),
    ('move into the spring gap', lambda w: w.room.move_allocation(
        w.partly, datetime(2030, 3, 31, 2, 30), datetime(2030, 3, 31, 4))),
    ('change_reservation into the gap', lambda w: w.room.change_reservation(
        w.token, 1, datetime(2030, 3, 31, 2, 30), datetime(2030, 3, 31, 4))),
    ('the same slot twice (flush)', _slot_twice),
    ('allocate overlapping', lambda w: w.room.allocate((at(11), at(13)))),
    ('allocation_by_id unknown', lambda w: w.room.allocation_by_id(99999)),
    ('change_reservation on an unknown id', lambda w: w.room.change_reservation(w.token, 99999, at(9), at(10))),
    ('Queries with naive datetimes', lambda w: w.queries.availability_by_range(at(8), at(9), [w.room.resource])),
    ('Queries naive through a query', lambda w: w.queries.all_allocations_in_range(at(8), at(9)).all()),
    # --- Scheduler: wrong types, method by method
    ('allocate a string', lambda w: w.room.allocate('tomorrow')),  # type: ignore[arg-type]
    ('allocate numbers', lambda w: w.room.allocate((1, 2))),  # type: ignore[arg-type]
    ('allocate a number', lambda w: w.room.allocate(5)),  # type: ignore[arg-type]
    ("allocate whole_day='no'", lambda w: w.room.allocate((at(13), at(14)), whole_day='no')),  # type: ignore[arg-type]
    ('allocate quota 2.5', lambda w: w.room.allocate((at(13), at(14)), quota=2.5)),  # type: ignore[arg-type]
    ("allocate raster '15'", lambda w: w.room.allocate((at(13), at(14)), raster='15')),  # type: ignore[arg-type]
    ('reserve dates as strings', lambda w: w.room.reserve('a@example.org', ('08:00', '09:00'))),  # type: ignore[arg-type]
    ("reserve quota '1'", lambda w: w.room.reserve('a@example.org', (at(9), at(10)), quota='1')),  # type: ignore[arg-type]
    ('reserve group not a UUID', lambda w: w.room.reserve('a@example.org', group=NOT_A_UUID)),  # type: ignore[arg-type]
    ('reserve session_id not a UUID', lambda w: w.room.reserve('a@example.org', (at(9), at(10)),
                                                               session_id='cart-1')),  # type: ignore[arg-type]
    ("reserve single_token_per_session='no'", lambda w: w.room.reserve(
        'a@example.org', (at(9), at(10)), single_token_per_session='no')),  # type: ignore[arg-type]
    ('approve_reservations not a UUID', lambda w: w.room.approve_reservations(NOT_A_UUID)),  # type: ignore[arg-type]
    ('approve_reservations None', lambda w: w.room.approve_reservations(None)),  # type: ignore[arg-type]
    ('deny_reservation a number', lambda w: w.room.deny_reservation(42)),  # type: ignore[arg-type]
    ('remove_reservation not a UUID', lambda w: w.room.remove_reservation(NOT_A_UUID)),  # type: ignore[arg-type]
    ("remove_reservation id 'x'", lambda w: w.room.remove_reservation(w.token, 'x')),  # type: ignore[arg-type]
    ("change_quota '2'", lambda w: w.room.change_quota(w.room.allocation_by_id(w.quota), '2')),  # type: ignore[arg-type]
    ('change_quota of an id', lambda w: w.room.change_quota(w.quota, 2)),  # type: ignore[arg-type]
    ('reordered_keylist of a string', lambda w: w.room.reordered_keylist('abc', 1)),  # type: ignore[arg-type]
    ("move_allocation id 'x'", lambda w: w.room.move_allocation('x', at(8), at(9))),  # type: ignore[arg-type]
    ('move_allocation to strings', lambda w: w.room.move_allocation(w.partly, 'now', 'later')),  # type: ignore[arg-type]
    ('move_allocation group not a UUID', lambda w: w.room.move_allocation(w.partly, group='g')),  # type: ignore[arg-type]
    ("remove_allocation id 'x'", lambda w: w.room.remove_allocation('x')),  # type: ignore[arg-type]
    ('remove_allocation groups not UUIDs', lambda w: w.room.remove_allocation(groups=['g'])),  # type: ignore[list-item]
    ('remove_unused_allocations strings', lambda w: w.room.remove_unused_allocations('a', 'b')),  # type: ignore[arg-type]
    ("remove_unused_allocations days='mo'", lambda w: w.room.remove_unused_allocations(
        date(2030, 5, 1), date(2030, 5, 9), days='mo')),
    ("availability('today')", lambda w: w.room.availability('today')),  # type: ignore[arg-type]
    ('free_allocations_count of an id', lambda w: w.room.free_allocations_count(w.quota, at(18), at(19))),  # type: ignore[arg-type]
    ('reservation_targets numbers', lambda w: w.room.reservation_targets(1, 2)),  # type: ignore[arg-type]
    ('search_allocations strings', lambda w: w.room.search_allocations('8', '9')),  # type: ignore[arg-type]
    ("search_allocations minspots '1'", lambda w: w.room.search_allocations(at(8), at(9), minspots='1')),  # type: ignore[arg-type]
    ("search_allocations days='mo'", lambda w: w.room.search_allocations(at(8), at(9), days='mo')),
    ("search_allocations groups='maybe'", lambda w: w.room.search_allocations(at(8), at(9), groups='maybe')),
    ('reserved_slots_by_range strings', lambda w: w.room.reserved_slots_by_range('a', 'b')),  # type: ignore[call-overload]
    ('allocations_with_availability_by_range strings', lambda w: list(
        w.room.allocations_with_availability_by_range('a', 'b'))),  # type: ignore[arg-type]
    ('change_reservation_data not a UUID', lambda w: w.room.change_reservation_data(NOT_A_UUID, {})),  # type: ignore[arg-type]
    ('change_reservation_time_candidates strings', lambda w: w.room.change_reservation_time_candidates(
        ['t'])),  # type: ignore[list-item]
    ("change_reservation_time id 'x'", lambda w: _deprecated(
        lambda: w.room.change_reservation_time(w.token, 'x', at(9), at(10)))),  # type: ignore[arg-type]
    ('change_reservation to strings', lambda w: w.room.change_reservation(w.token, 1, 'a', 'b')),  # type: ignore[arg-type]
    ('change_reservation not a UUID', lambda w: w.room.change_reservation(NOT_A_UUID, 1, at(9), at(10))),  # type: ignore[arg-type]
    ('add_blocker token not a UUID', lambda w: w.room.add_blocker((at(9), at(10)), token='t')),  # type: ignore[arg-type]
    ('add_blocker reason a number', lambda w: w.room.add_blocker((at(9), at(10)), reason=5)),  # type: ignore[arg-type]
    ('add_blocker group not a UUID', lambda w: w.room.add_blocker(group='g')),  # type: ignore[arg-type]
    ('remove_blocker not a UUID', lambda w: w.room.remove_blocker(NOT_A_UUID)),  # type: ignore[arg-type]
    ('change_blocker_reason a number', lambda w: w.room.change_blocker_reason(w.blocker_token, 5)),  # type: ignore[arg-type]
    ('change_blocker to strings', lambda w: w.room.change_blocker(w.blocker_token, 1, 'a', 'b')),  # type: ignore[arg-type]
    ("allocation_by_id '1'", lambda w: w.room.allocation_by_id('1')),  # type: ignore[arg-type]
    ('allocations_by_ids a string', lambda w: w.room.allocations_by_ids('12')),  # type: ignore[arg-type]
    ('allocations_by_group not a UUID', lambda w: w.room.allocations_by_group('g')),  # type: ignore[arg-type]
    ('allocations_by_groups a UUID', lambda w: w.room.allocations_by_groups(w.group)),  # type: ignore[arg-type]
    ('allocations_by_reservation not a UUID', lambda w: w.room.allocations_by_reservation('t')),  # type: ignore[arg-type]
    ('allocations_by_blocker not a UUID', lambda w: w.room.allocations_by_blocker(7)),  # type: ignore[arg-type]
    ('allocations_in_range strings', lambda w: w.room.allocations_in_range('a', 'b')),  # type: ignore[arg-type]
    ('allocation_by_date strings', lambda w: w.room.allocation_by_date('a', 'b')),  # type: ignore[arg-type]
    ('allocation_dates_by_group not a UUID', lambda w: w.room.allocation_dates_by_group('g')),  # type: ignore[arg-type]
    ('allocation_mirrors_by_master an id', lambda w: w.room.allocation_mirrors_by_master(w.quota)),  # type: ignore[arg-type]
    ('allocation_dates_by_ids strings', lambda w: list(w.room.allocation_dates_by_ids(['a']))),  # type: ignore[list-item]
    ("allocation_dates_by_ids start_time '8'", lambda w: list(
        w.room.allocation_dates_by_ids([w.partly], start_time='8'))),  # type: ignore[arg-type]
    ('manual_approval_required a string', lambda w: w.room.manual_approval_required('12')),  # type: ignore[arg-type]
    ('reserved_slots_by_type not a UUID', lambda w: w.room.reserved_slots_by_type('t')),  # type: ignore[arg-type]
    ('reserved_slots_by_reservation None', lambda w: w.room.reserved_slots_by_reservation(None)),  # type: ignore[arg-type]
    ("reserved_slots_by_blocker id 'x'", lambda w: w.room.reserved_slots_by_blocker(w.blocker_token, 'x')),  # type: ignore[arg-type]
    ('reservations_by_group a number', lambda w: w.room.reservations_by_group(5)),  # type: ignore[arg-type]
    ("reservations_by_allocation 'x'", lambda w: w.room.reservations_by_allocation('x')),  # type: ignore[arg-type]
    ('reservations_by_token SQL text', lambda w: w.room.reservations_by_token(NOT_A_UUID)),
    ("reservations_by_token id 'x'", lambda w: w.room.reservations_by_token(w.token, 'x')),  # type: ignore[arg-type]
    ('blockers_by_token a number', lambda w: w.room.blockers_by_token(5)),  # type: ignore[arg-type]
    # --- Queries: wrong types
    ('Queries.all_allocations_in_range strings', lambda w: w.queries.all_allocations_in_range('a', 'b')),
    ('Queries.allocations_in_range not a query', lambda w: w.queries.allocations_in_range('q', aware(8), aware(9))),
    ('Queries.overlapping_allocations bad dates', lambda w: w.queries.overlapping_allocations(
        w.room.managed_allocations(), [(1, 2)])),
    ('Queries.availability_by_allocations ids', lambda w: w.queries.availability_by_allocations([1, 2])),
    ('Queries.availability_by_range resource text', lambda w: w.queries.availability_by_range(
        aware(8), aware(9), ['room'])),
    ('Queries.availability_by_day a UUID', lambda w: w.queries.availability_by_day(
        aware(8), aware(9), w.room.resource)),
    ('Queries.reserved_slots_by_range resource 5', lambda w: w.queries.reserved_slots_by_range(
        aware(8), aware(9), 5, [])),
    ('Queries.availability_and_partitions ids', lambda w: list(
        w.queries.availability_and_partitions_by_allocations([1], w.room.resource, []))),
    ('Queries.allocations_with_availability naive', lambda w: list(
        w.queries.allocations_with_availability_by_range(at(8), at(9), w.room.resource, []))),
    ('Queries.reservations_by_session a number', lambda w: w.queries.reservations_by_session(5)),
    ('Queries.confirm_reservations_for_session text', lambda w: w.queries.confirm_reservations_for_session('s')),
    ('Queries.confirm_reservations_for_session unknown', lambda w: w.queries.confirm_reservations_for_session(
        uuid.uuid4())),
    ('Queries.remove_reservation_from_session text', lambda w: w.queries.remove_reservation_from_session(
        w.session_id, 't')),
    ('Queries.remove_reservation_from_session unknown', lambda w: w.queries.remove_reservation_from_session(
        w.session_id, uuid.uuid4())),
    ("Queries.find_expired_reservation_sessions 'x'", lambda w: w.queries.find_expired_reservation_sessions('x')),
    ('Queries.find_expired_reservation_sessions naive', lambda w: w.queries.find_expired_reservation_sessions(
        datetime(2030, 1, 1))),
    ('Queries.remove_expired_reservation_sessions a date', lambda w: w.queries.remove_expired_reservation_sessions(
        date(2030, 1, 1))),
]



def _run(world: World, call: Call) -> BaseException | None:
    try:
        call(world)
    except Exception as error:
        return error
    finally:
        world.room.rollback()
    return None


def test_the_sweep_is_big_enough() -> None:
    assert len(CASES) >= 60
    assert len({name for name, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(('name', 'call'), CASES, ids=[name for name, _ in CASES])
def test_each_bad_call_raises_a_library_error(world: World, name: str, call: Call) -> None:
    raised = _run(world, call)
    assert raised is not None, f'{name}: accepted'
    assert isinstance(raised, errors.LibresError), f'{name}: {type(raised).__name__}: {raised}'


def test_the_whole_sweep_changes_no_table(world: World, admin_engine: sa.Engine) -> None:
    before = table_digests(admin_engine)
    rows: list[tuple[str, str]] = []
    accepted: list[str] = []
    foreign: list[str] = []
    for name, call in CASES:
        raised = _run(world, call)
        if raised is None:
            accepted.append(name)
            rows.append((name, 'accepted'))
            continue
        rows.append((name, type(raised).__name__))
        if not isinstance(raised, errors.LibresError):
            foreign.append(f'{name}: {type(raised).__name__}')
    world.room.commit()
    print('\n| call | raised |\n| --- | --- |')
    for name, raised_name in rows:
        print(f'| {name} | `{raised_name}` |'.replace('|  ', '| '))
    assert accepted == []
    assert len(foreign) / len(CASES) <= 0.05, foreign
    assert table_digests(admin_engine) == before
