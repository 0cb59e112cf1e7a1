"""The reads and the booking keep their index-driven plans without statistics.

A calendar is read right after an administrator filled it: before autovacuum
has analysed the tables, or with statistics taken while they were nearly
empty. Here a database of its own holds a quarter-year of hourly allocations
(30 % booked) plus a week for each of 50 other resources, written in one
INSERT ... SELECT each; autovacuum is off for its tables, so *fresh* has no
statistics at all and *stale* only those of its first day. Every statement a
read sends is explained (with its parameters, through both drivers) and must
look up rows through indexes: no sequential scan of allocations or
reserved_slots (stale statistics excepted for the allocations that drive a
read, see below), no join whose strategy follows the row estimates.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from tests.helpers import explain_reads

import libres
from libres.context.session import SessionProvider
from libres.db import migrate
from libres.db.scheduler import Scheduler

FIRST = datetime(2031, 1, 1, tzinfo=UTC)
QUARTER = 24 * 91
OTHERS = 50
TABLES = ('allocations', 'reservations', 'reserved_slots', 'reservation_blockers')
# SQLAlchemy's own batched load of Allocation.reserved_slots (lazy='selectin'):
# an IN list of primary keys, not SQL of ours; left out of the plan checks.
SELECTIN = re.compile(r'allocation_id IN \([^)]*primary_keys_1')
JOINS_BY_ESTIMATE = re.compile(r'(Hash|Merge)( \w+)? Join')


@dataclass
class Calendar:
    scheduler: Scheduler
    others: list[uuid.UUID]
    state: str


def _fill(connection: sa.Connection, resource: uuid.UUID, start: datetime, hours: int) -> None:
    """Hourly quota-1 allocations; of every ten, the first three booked."""
    params = {'resource': str(resource), 'start': start.replace(tzinfo=None), 'hours': hours}
    connection.execute(sa.text("""
        INSERT INTO allocations (resource, type, mirror_of, "group", quota, quota_limit,
            partly_available, approve_manually, timezone, _start, _end, _raster, created)
        SELECT CAST(:resource AS uuid), 'generic', CAST(:resource AS uuid), gen_random_uuid(),
            1, 0, false, false, 'Europe/Zurich', :start + make_interval(hours => n),
            :start + make_interval(hours => n + 1) - interval '1 microsecond', 15, now()
        FROM generate_series(0, :hours - 1) AS n
    """), params)
    connection.execute(sa.text("""
        INSERT INTO reservations (token, target, target_type, type, resource, start, "end",
            timezone, status, email, quota, created)
        SELECT gen_random_uuid(), "group", 'allocation', 'generic', resource, _start, _end,
            timezone, 'approved', 'filler@example.org', 1, now()
        FROM allocations
        WHERE resource = CAST(:resource AS uuid)
          AND _start >= :start AND _start < :start + make_interval(hours => :hours)
          AND (extract(epoch FROM _start - :start) / 3600)::int % 10 < 3
    """), params)
    connection.execute(sa.text("""
        INSERT INTO reserved_slots (resource, start, "end", allocation_id, source_type,
            reservation_token, source_id, created)
        SELECT a.resource, a._start, a._end, a.id, 'reservation', r.token, r.id, now()
        FROM reservations r JOIN allocations a ON a."group" = r.target
        WHERE r.resource = CAST(:resource AS uuid)
          AND r.start >= :start AND r.start < :start + make_interval(hours => :hours)
    """), params)


def _statistics(connection: sa.Connection) -> int:
    return int(connection.execute(sa.text(
        'SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() AND tablename = ANY(:t)'
    ), {'t': list(TABLES)}).scalar_one())


@pytest.fixture(scope='module', params=['fresh', 'stale'])
def database(request: pytest.FixtureRequest, server_dsn: str) -> Iterator[tuple[str, str]]:
    """A database of this module's own, filled and never (or barely) analysed."""
    state: str = request.param
    name = f'libres_plans_{uuid.uuid4().hex[:12]}'
    server = make_url(server_dsn).set(drivername='postgresql+psycopg')
    admin = sa.create_engine(server.set(database=server.database or 'postgres'),
                             isolation_level='AUTOCOMMIT', poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    migrate.ensure_schema(engine)
    room = Scheduler(libres.registry.register_context('plans-fill', replace=True), 'room', 'Europe/Zurich')
    others = [uuid.uuid5(room.resource, str(n)) for n in range(OTHERS)]
    with engine.begin() as connection:
        for table in TABLES:
            # Nothing analyses these tables while the module runs.
            connection.execute(sa.text(f'ALTER TABLE {table} SET (autovacuum_enabled = false)'))
        if state == 'stale':
            _fill(connection, room.resource, FIRST, 24)
            connection.execute(sa.text('ANALYZE allocations, reservations, reserved_slots'))
            _fill(connection, room.resource, FIRST + timedelta(days=1), QUARTER - 24)
        else:
            _fill(connection, room.resource, FIRST, QUARTER)
        for other in others:
            _fill(connection, other, FIRST, 24 * 7)
    with engine.connect() as connection:
        assert (_statistics(connection) == 0) == (state == 'fresh')
        assert connection.execute(sa.text('SELECT count(*) FROM allocations')).scalar_one() == (
            QUARTER + OTHERS * 24 * 7
        )
    engine.dispose()
    yield url, state
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=['psycopg', 'psycopg2'])
def calendar(request: pytest.FixtureRequest, database: tuple[str, str]) -> Iterator[Calendar]:
    url = database[0].replace('postgresql+psycopg:', f'postgresql+{request.param}:')
    provider = SessionProvider(url)
    context = libres.registry.register_context('plans-fill', replace=True)
    context.set_setting('dsn', url)
    context.set_service('session_provider', lambda _: provider, cache=False)
    scheduler = Scheduler(context, 'room', 'Europe/Zurich')
    others = [uuid.uuid5(scheduler.resource, str(n)) for n in range(OTHERS)]
    yield Calendar(scheduler, others, database[1])
    scheduler.rollback()
    with provider.engine.connect() as connection:
        # The plans must have met the state the fixture made.
        assert (_statistics(connection) == 0) == (database[1] == 'fresh')
    provider.stop_service()


def explained(scheduler: Scheduler, action: Callable[[], Any]) -> list[tuple[str, str]]:
    """(SQL, EXPLAIN ANALYZE output) of every SELECT the action sends."""
    plans = explain_reads(scheduler, action, 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)', ('SELECT', 'WITH'))
    assert plans, 'the action sent no SELECT'
    return plans


def assert_index_driven(plans: list[tuple[str, str]], state: str) -> list[str]:
    """Each plan of ours reads allocations and slots through indexes only.

    Stale statistics say every allocation is the room's, in the range: there
    a sequential scan of allocations is the planner's honest choice for the
    rows that drive the query (never for the slots, never a join by estimate).
    """
    checked = []
    tables = ('reserved_slots',) if state == 'stale' else ('allocations', 'reserved_slots')
    for sql, plan in plans:
        if SELECTIN.search(sql):
            continue
        for table in tables:
            assert f'Seq Scan on {table}' not in plan, plan
        assert not JOINS_BY_ESTIMATE.search(plan), plan
        checked.append(plan)
    assert checked
    return checked


def assert_slots_by_primary_key(plan: str) -> None:
    """The slots are read by resource and start (their primary key), not
    paired with the allocations by a join of any kind."""
    assert 'reserved_slots_pkey' in plan, plan
    assert 'Join' not in plan and 'Nested Loop' not in plan, plan


def test_availability_counts_slots_read_by_key_without_a_join(calendar: Calendar) -> None:
    room = calendar.scheduler
    plans = explained(room, lambda: room.availability(FIRST, FIRST + timedelta(days=91)))
    [plan] = assert_index_driven(plans, calendar.state)
    assert_slots_by_primary_key(plan)


def test_availability_by_day_counts_slots_read_by_key_without_a_join(calendar: Calendar) -> None:
    room = calendar.scheduler
    days = explained(room, lambda: room.queries.availability_by_day(
        FIRST, FIRST + timedelta(days=91), [room.resource]))
    [plan] = assert_index_driven(days, calendar.state)
    assert_slots_by_primary_key(plan)


def test_availability_of_fifty_resources_reads_slots_by_key_without_a_join(calendar: Calendar) -> None:
    room = calendar.scheduler
    plans = explained(room, lambda: room.queries.availability_by_range(
        FIRST, FIRST + timedelta(days=7), calendar.others))
    [plan] = assert_index_driven(plans, calendar.state)
    assert_slots_by_primary_key(plan)


def test_reserved_slots_by_range_reads_slots_by_key_and_checks_their_owner_by_key(calendar: Calendar) -> None:
    room = calendar.scheduler
    month = FIRST + timedelta(days=31)
    plans = explained(room, lambda: room.reserved_slots_by_range(FIRST, month))
    [plan] = assert_index_driven(plans, calendar.state)
    assert_slots_by_primary_key(plan)
    assert 'allocations_pkey' in plan, plan  # each slot's own allocation, by its id


def test_calendar_reads_of_a_month_are_index_driven(calendar: Calendar) -> None:
    room = calendar.scheduler
    month = FIRST + timedelta(days=31)
    found: list[Any] = []
    plans = explained(room, lambda: found.extend(room.queries.allocations_with_availability_by_range(
        FIRST, month, room.resource, [])))
    assert len(found) == 31 * 24 + 1  # the allocation starting on the last hour's end touches it
    assert len(assert_index_driven(plans, calendar.state)) == 2  # the allocations, their slots in the range
    plans = explained(room, lambda: found.extend(room.allocations_with_availability_by_range(FIRST, month)))
    assert_index_driven(plans, calendar.state)


@pytest.mark.parametrize('options', [{}, {'available_only': True}, {'days': ['mo', 'we']},
                                     {'minspots': 1}])
def test_search_reads_group_sizes_through_the_group_index(calendar: Calendar, options: dict[str, Any]) -> None:
    room = calendar.scheduler
    days = 31 if 'minspots' not in options else 2
    end = (FIRST + timedelta(days=days - 1)).replace(hour=18)
    found: list[Any] = []
    plans = explained(room, lambda: found.extend(room.search_allocations(
        FIRST.replace(hour=8), end, **options)))
    assert found
    # Counted in the statement that reads the objects, a lookup per object.
    groups = [plan for sql, plan in plans if 'count(*) FILTER' in sql and '"group"' in sql]
    assert len(groups) == 1
    assert 'ix_allocations_group' in groups[0], groups[0]
    # The resource filters the count: the GiST of (resource, span) serves the
    # range at most once, never the lookup of each group.
    assert groups[0].count('allocations_no_overlap') <= 1, groups[0]
    assert_index_driven(plans, calendar.state)


@pytest.mark.parametrize('database', ['fresh'], indirect=True)
@pytest.mark.parametrize('options', [{}, {'days': ['mo', 'we']}])
def test_search_reads_the_span_and_the_picked_objects_by_the_gist_index(
    calendar: Calendar, options: dict[str, Any]
) -> None:
    """A month of a quarter, without statistics: the range is a condition of
    the GiST index, and the window a filter on the rows it reads (one
    statement), not a filter over every allocation of the room. (Stale
    statistics may choose a scan, see ``assert_index_driven``.)"""
    room = calendar.scheduler
    end = (FIRST + timedelta(days=30)).replace(hour=18)
    found: list[Any] = []
    plans = explained(room, lambda: found.extend(room.search_allocations(
        FIRST.replace(hour=8), end, **options)))
    assert found
    reads = [plan for sql, plan in plans if 'FROM allocations' in sql]
    assert len(reads) == 1, plans
    for plan in reads:
        assert 'allocations_no_overlap' in plan and 'tsrange' in plan.split('Index Cond')[1], plan
        assert 'mirror_resource_ix' not in plan and 'Seq Scan' not in plan, plan
        removed = [int(n) for n in re.findall(r'Rows Removed by Filter: (\d+)', plan)]
        assert all(n < 31 * 24 for n in removed), plan  # within the month, not the quarter
        # The window's arrays come as text, cast once (InitPlan), not per row.
        assert 'InitPlan' in plan, plan


def test_booking_reads_its_masters_and_their_group_sizes_by_index(calendar: Calendar) -> None:
    room = calendar.scheduler
    # An hour the filler left free in both states (hours 3 to 9 of every ten
    # from where it started: day one for fresh, day two for the stale rest).
    hour = FIRST + timedelta(hours=40 * 24 + 3)
    plans = explained(room, lambda: room.approve_reservations(
        room.reserve('a@example.org', (hour, hour + timedelta(hours=1)))))
    [plan] = assert_index_driven(plans, calendar.state)
    assert 'ix_allocations_group' in plan, plan
    # Once, for the masters in the range; not again for each master's group.
    assert plan.count('allocations_no_overlap') == 1, plan


@pytest.mark.parametrize('database', ['fresh'], indirect=True)
def test_free_intervals_read_the_allocations_once_and_the_slots_by_key(calendar: Calendar) -> None:
    """The allocations are read once (by the GiST index, and the spot
    resources once), not once per allocation; the slots by primary key.
    On stale statistics the planner still prefers scans here (see CHANGES)."""
    room = calendar.scheduler
    [(_, plan)] = explained(room, lambda: room.free_intervals(FIRST, FIRST + timedelta(days=28)))
    assert 'allocations_no_overlap' in plan and 'reserved_slots_pkey' in plan, plan
    assert 'Seq Scan on allocations' not in plan and 'Seq Scan on reserved_slots' not in plan, plan
    reads_of_allocations = [line for line in plan.splitlines()
                            if ' on allocations' in line or 'ix_allocations' in line or '_ix ' in line]
    assert reads_of_allocations and all('loops=1)' in line for line in reads_of_allocations), plan
