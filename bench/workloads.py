"""The benchmark workloads, run through the public libres API.

This file runs under either implementation: our checkout or the published
libres 1.4.0 in its own virtual environment. It imports nothing from the
project but ``libres`` itself, so both interpreters can run it unchanged.

    python bench/workloads.py WORKLOAD --dsn URL --size quick|full --state fresh|analysed

It prints one JSON object: operations, seconds, SQL statements, per-operation
latencies, the first call of a read, and workload-specific figures. The
database must be empty; the workload creates the schema with
``setup_database()``.

The state is how the database stands when the measurement starts: *fresh*
is exactly as the writes left it (no VACUUM, no ANALYZE by the benchmark,
autovacuum at PostgreSQL's defaults, as on a user's database right after an
administrator filled a calendar); *analysed* runs ``VACUUM ANALYZE`` first.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

import libres
from libres.modules import errors

ZONE = 'Europe/Zurich'
HOUR = timedelta(hours=1)
YEAR_START = datetime(2030, 1, 1)

# How much work each size does; "quick" is a smoke run of a minute or two.
SIZES: dict[str, dict[str, int]] = {
    'quick': {'bookings': 60, 'quota': 60, 'race_slots': 20, 'year_hours': 24 * 28,
              'searches': 3, 'weeks': 8, 'existing_bookings': 40, 'resources': 50,
              'resource_hours': 24 * 7},
    'full': {'bookings': 300, 'quota': 200, 'race_slots': 50, 'year_hours': 24 * 365,
             'searches': 5, 'weeks': 52, 'existing_bookings': 200, 'resources': 50,
             'resource_hours': 24 * 28},
}
# Set by main(): 'fresh' or 'analysed'.
STATE = {'name': 'fresh'}
RACERS = 8
WARMUP = 5


class StatementCounter:
    """Counts what goes to the server: every cursor execute and every COMMIT."""

    def __init__(self) -> None:
        self.count = 0
        event.listen(Engine, 'before_cursor_execute', self._statement)
        event.listen(Engine, 'commit', self._statement)

    def _statement(self, *args: Any, **kwargs: Any) -> None:
        self.count += 1


def new_scheduler(dsn: str) -> Any:
    # Every process registers the same context anew (a forked one inherits
    # the parent's): the context name is part of the resource UUID.
    context = libres.registry.register_context('bench', replace=True)
    context.set_setting('dsn', dsn)
    return libres.new_scheduler(context, 'bench', ZONE)


def timed(operations: Iterator[Callable[[], Any]]) -> list[float]:
    latencies = []
    for operation in operations:
        began = time.perf_counter()
        operation()
        latencies.append(time.perf_counter() - began)
    return latencies


def result(latencies: list[float], statements: int, **extra: Any) -> dict[str, Any]:
    return {
        'operations': len(latencies),
        'seconds': sum(latencies),
        'statements': statements,
        'latencies': latencies,
        **extra,
    }


# --- bulk data written with SQL, identical for both implementations --------------

def settle(scheduler: Any) -> None:
    """In the analysed state, VACUUM ANALYZE before measuring; in the fresh
    state nothing: the planner sees what a user's database shows."""
    scheduler.commit()
    if STATE['name'] != 'analysed':
        return
    engine = scheduler.session.get_bind()
    with engine.connect().execution_options(isolation_level='AUTOCOMMIT') as connection:
        connection.execute(sa.text('VACUUM ANALYZE allocations, reservations, reserved_slots'))


def analysed_tables(scheduler: Any) -> int:
    """How many of our three tables have statistics (by us or autovacuum)."""
    return int(scheduler.session.execute(sa.text("""
        SELECT count(*) FROM pg_stat_user_tables
        WHERE relname IN ('allocations', 'reservations', 'reserved_slots')
          AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)
    """)).scalar())


def fill_hourly(scheduler: Any, start: datetime, hours: int, booked_every: int, booked_of: int) -> None:
    """Hourly quota-1 allocations from ``start`` (UTC); of every ``booked_of``
    consecutive ones the first ``booked_every`` are approved reservations."""
    resource = str(scheduler.resource)
    params = {'resource': resource, 'start': start, 'hours': hours, 'zone': ZONE,
              'every': booked_every, 'of': booked_of}
    with scheduler.session.get_bind().connect() as connection:
        connection.execute(sa.text("""
            INSERT INTO allocations (resource, type, mirror_of, "group", quota, quota_limit,
                partly_available, approve_manually, timezone, _start, _end, _raster, created)
            SELECT CAST(:resource AS uuid), 'generic', CAST(:resource AS uuid), gen_random_uuid(),
                1, 0, false, false, :zone,
                :start + make_interval(hours => n),
                :start + make_interval(hours => n + 1) - interval '1 microsecond',
                15, now()
            FROM generate_series(0, :hours - 1) AS n
        """), params)
        connection.execute(sa.text("""
            INSERT INTO reservations (token, target, target_type, type, resource, start, "end",
                timezone, status, email, quota, created)
            SELECT gen_random_uuid(), a."group", 'allocation', 'generic', a.resource, a._start, a._end,
                :zone, 'approved', 'filler@example.org', 1, now()
            FROM allocations a
            WHERE a.resource = CAST(:resource AS uuid)
              AND a._start >= :start AND a._start < :start + make_interval(hours => :hours)
              AND (extract(epoch FROM a._start - :start) / 3600)::int % :of < :every
        """), params)
        connection.execute(sa.text("""
            INSERT INTO reserved_slots (resource, start, "end", allocation_id, source_type,
                reservation_token, source_id, created)
            SELECT a.resource, a._start, a._end, a.id, 'reservation', r.token, r.id, now()
            FROM reservations r JOIN allocations a ON a."group" = r.target
            WHERE r.resource = CAST(:resource AS uuid) AND r.email = 'filler@example.org'
              AND r.start >= :start AND r.start < :start + make_interval(hours => :hours)
        """), params)
        connection.commit()


# --- workloads -------------------------------------------------------------------

def book(scheduler: Any, start: datetime, end: datetime, quota: int = 1) -> None:
    token = scheduler.reserve('guest@example.org', (start, end), quota=quota)
    scheduler.approve_reservations(token)
    scheduler.commit()


def working_hours(first_day: datetime, count: int) -> list[tuple[datetime, datetime]]:
    """One-hour spans, ten per day from 08:00."""
    spans = []
    for index in range(count):
        start = first_day + timedelta(days=index // 10, hours=8 + index % 10)
        spans.append((start, start + HOUR))
    return spans


def allocate_days(scheduler: Any, first_day: datetime, spans: int) -> None:
    days = (spans + 9) // 10
    dates = [(first_day + timedelta(days=d, hours=8), first_day + timedelta(days=d, hours=18))
             for d in range(days)]
    scheduler.allocate(dates, partly_available=True, raster=15)
    scheduler.commit()


def reserve_approve(dsn: str, size: dict[str, int], existing: int = 0) -> dict[str, Any]:
    scheduler = new_scheduler(dsn)
    scheduler.setup_database()
    scheduler.commit()
    if existing:
        fill_hourly(scheduler, datetime(2031, 1, 1), existing, 1, 1)
    count = size['existing_bookings'] if existing else size['bookings']
    first_day = datetime(2040, 1, 1)
    spans = working_hours(first_day, count + WARMUP)
    allocate_days(scheduler, first_day, len(spans))
    settle(scheduler)
    warmup = timed((lambda s=start, e=end: book(scheduler, s, e)) for start, end in spans[:WARMUP])
    counter = StatementCounter()
    latencies = timed(
        (lambda s=start, e=end: book(scheduler, s, e)) for start, end in spans[WARMUP:]
    )
    return result(latencies, counter.count, first=warmup[0], analysed=analysed_tables(scheduler))


def quota_tickets(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    scheduler = new_scheduler(dsn)
    scheduler.setup_database()
    quota = size['quota']
    start, end = datetime(2030, 6, 1, 19), datetime(2030, 6, 1, 22)
    scheduler.allocate((start, end), quota=quota, quota_limit=1)
    settle(scheduler)
    counter = StatementCounter()
    latencies = timed((lambda: book(scheduler, start, end)) for _ in range(quota))
    booked = scheduler.session.execute(sa.text('SELECT count(*) FROM reserved_slots')).scalar()
    tenth = max(1, quota // 10)
    first, last = latencies[:tenth], latencies[-tenth:]
    return result(latencies, counter.count, booked=booked, first=latencies[0],
                  last_vs_first=(sum(last) / len(last)) / (sum(first) / len(first)),
                  analysed=analysed_tables(scheduler))


def race_slots(count: int) -> list[tuple[datetime, datetime]]:
    """One-hour allocations, every other hour from 1 March 2030."""
    first = datetime(2030, 3, 1)
    return [(first + 2 * n * HOUR, first + (2 * n + 1) * HOUR) for n in range(count)]


def _race_worker(dsn: str, slots: list[tuple[datetime, datetime]], seed: int,
                 go: Any, results: Any) -> None:
    scheduler = new_scheduler(dsn)
    counter = StatementCounter()
    order = list(slots)
    random.Random(seed).shuffle(order)
    booked = conflicts = refused = 0
    go.wait()
    for start, end in order:
        for _attempt in range(100):
            try:
                book(scheduler, start, end)
                booked += 1
                break
            except errors.LibresError:
                scheduler.rollback()
                refused += 1
                break
            except sa.exc.SQLAlchemyError:
                # A serialization failure or a slot-key collision: try again.
                scheduler.rollback()
                conflicts += 1
    results.put((booked, conflicts, refused, counter.count))


Outcome = tuple[int, int, int, int]  # booked, conflicts, refused, statements


def run_racers(
    worker: Callable[..., None], dsn: str, slots: list[tuple[datetime, datetime]]
) -> tuple[list[Outcome], float]:
    """Start RACERS processes, release them together, wait for their outcomes."""
    spawn = multiprocessing.get_context('fork')
    go, results = spawn.Event(), spawn.Queue()
    workers = [spawn.Process(target=worker, args=(dsn, slots, seed, go, results))
               for seed in range(RACERS)]
    for process in workers:
        process.start()
    time.sleep(1.0)  # let every worker connect before the start
    began = time.perf_counter()
    go.set()
    outcomes = [results.get() for _ in workers]
    seconds = time.perf_counter() - began
    for process in workers:
        process.join()
    return outcomes, seconds


def race_result(outcomes: list[Outcome], seconds: float, double_bookings: int,
                slots_booked: int) -> dict[str, Any]:
    return {
        'operations': sum(o[0] for o in outcomes),
        'seconds': seconds,
        'statements': sum(o[3] for o in outcomes),
        'latencies': [],
        'conflicts': sum(o[1] for o in outcomes),
        'refused': sum(o[2] for o in outcomes),
        'double_bookings': double_bookings,
        'slots_booked': slots_booked,
    }


def race(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    scheduler = new_scheduler(dsn)
    scheduler.setup_database()
    slots = race_slots(size['race_slots'])
    scheduler.allocate(slots)
    settle(scheduler)
    scheduler.session.get_bind().dispose()

    outcomes, seconds = run_racers(_race_worker, dsn, slots)

    counts = scheduler.session.execute(sa.text("""
        SELECT (SELECT count(*) FROM reserved_slots),
               (SELECT count(DISTINCT allocation_id) FROM reserved_slots),
               (SELECT count(*) FROM reservations WHERE status = 'approved')
    """)).one()
    return race_result(
        outcomes, seconds,
        double_bookings=int(counts[0] - counts[1]) + abs(int(counts[2] - counts[1])),
        slots_booked=int(counts[1]),
    )


def _year(dsn: str, size: dict[str, int]) -> tuple[Any, datetime, datetime]:
    scheduler = new_scheduler(dsn)
    scheduler.setup_database()
    scheduler.commit()
    fill_hourly(scheduler, YEAR_START, size['year_hours'], 3, 10)
    settle(scheduler)
    end = YEAR_START + timedelta(hours=size['year_hours'])
    return scheduler, YEAR_START, end


def _repeat(scheduler: Any, size: dict[str, int], call: Callable[[], Any]) -> dict[str, Any]:
    def once() -> None:
        call()
        scheduler.commit()

    # The first call is what a user waits for on the fresh database: reported
    # apart, it also pays for imports and compiled-statement caches.
    first = timed(iter([once]))[0]
    counter = StatementCounter()
    latencies = timed(once for _ in range(size['searches']))
    return result(latencies, counter.count, first=first, analysed=analysed_tables(scheduler))


def search_year(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    scheduler, start, end = _year(dsn, size)
    found = []

    # A window of 00:00 to 23:59 on every day: every allocation of the year matches.
    last_minute = end - timedelta(minutes=1)

    def call() -> None:
        found[:] = scheduler.search_allocations(start, last_minute)

    outcome = _repeat(scheduler, size, call)
    outcome['found'] = len(found)
    return outcome


def availability_year(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    scheduler, start, end = _year(dsn, size)
    value = []
    outcome = _repeat(scheduler, size, lambda: value.append(scheduler.availability(start, end)))
    outcome['availability'] = round(value[-1], 3)
    return outcome


def by_day_year(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    scheduler, start, end = _year(dsn, size)
    # Queries wants aware datetimes.
    zone = ZoneInfo(ZONE)
    start, end = start.replace(tzinfo=zone), end.replace(tzinfo=zone)
    days: list[Any] = []

    def call() -> None:
        days[:] = [scheduler.queries.availability_by_day(start, end, [scheduler.resource])]

    outcome = _repeat(scheduler, size, call)
    outcome['days'] = len(days[0])
    return outcome


def bulk_allocate(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    scheduler = new_scheduler(dsn)
    scheduler.setup_database()
    scheduler.commit()
    counter = StatementCounter()
    week = timedelta(days=7)

    def allocate_week(first: datetime) -> None:
        scheduler.allocate([(first + h * HOUR, first + (h + 1) * HOUR) for h in range(7 * 24)])
        scheduler.commit()

    settle(scheduler)
    # Aware UTC hours: naive local ones would hit the hour a spring DST change skips.
    year_start = YEAR_START.replace(tzinfo=UTC)
    latencies = timed(
        (lambda first=year_start + n * week: allocate_week(first)) for n in range(size['weeks'])
    )
    allocations = size['weeks'] * 7 * 24
    # Operations are allocations, not weeks: the table shows allocations per second.
    return {'operations': allocations, 'seconds': sum(latencies), 'statements': counter.count,
            'latencies': [seconds / (7 * 24) for seconds in latencies],
            'first': latencies[0] / (7 * 24), 'analysed': analysed_tables(scheduler)}


# --- what a calendar page reads ----------------------------------------------------

def _aware(scheduler: Any, value: datetime) -> datetime:
    # Queries wants aware datetimes.
    return value.replace(tzinfo=ZoneInfo(ZONE))


def _span(size: dict[str, int], days: int) -> tuple[datetime, datetime]:
    """The first ``days`` of the filled range, at most all of it."""
    end = YEAR_START + min(timedelta(days=days), timedelta(hours=size['year_hours']))
    return YEAR_START, end


def calendar(days: int) -> Callable[[str, dict[str, int]], dict[str, Any]]:
    """``Queries.allocations_with_availability_by_range`` over ``days``, as
    a calendar view asks for its events."""

    def workload(dsn: str, size: dict[str, int]) -> dict[str, Any]:
        scheduler, _, _ = _year(dsn, size)
        start, end = (_aware(scheduler, value) for value in _span(size, days))
        rows: list[Any] = []

        def call() -> None:
            rows[:] = scheduler.queries.allocations_with_availability_by_range(
                start, end, scheduler.resource, [])

        outcome = _repeat(scheduler, size, call)
        outcome['rows'] = len(rows)
        return outcome

    return workload


def reserved_slots(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    scheduler, _, _ = _year(dsn, size)
    start, end = (_aware(scheduler, value) for value in _span(size, 31))
    found: list[int] = []

    def call() -> None:
        reserved, blocked = scheduler.reserved_slots_by_range(start, end)
        found[:] = [len(reserved), len(blocked)]

    outcome = _repeat(scheduler, size, call)
    outcome['slices'] = found[0]
    return outcome


def search(span_days: int, **options: Any) -> Callable[[str, dict[str, int]], dict[str, Any]]:
    """``search_allocations`` over ``span_days`` of the year, window 08:00-18:00."""

    def workload(dsn: str, size: dict[str, int]) -> dict[str, Any]:
        scheduler, _, _ = _year(dsn, size)
        start, end = _span(size, span_days)
        found: list[Any] = []

        def call() -> None:
            found[:] = scheduler.search_allocations(
                start.replace(hour=8), (end - timedelta(days=1)).replace(hour=18), **options)

        outcome = _repeat(scheduler, size, call)
        outcome['found'] = len(found)
        return outcome

    return workload


def availability_resources(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    """``Queries.availability_by_range`` over 50 resources' hourly allocations."""
    scheduler = new_scheduler(dsn)
    scheduler.setup_database()
    scheduler.commit()
    resources = []
    for number in range(size['resources']):
        other = libres.new_scheduler(scheduler.context, f'room-{number}', ZONE)
        fill_hourly(other, YEAR_START, size['resource_hours'], 3, 10)
        resources.append(other.resource)
    settle(scheduler)
    start = _aware(scheduler, YEAR_START)
    end = start + timedelta(hours=size['resource_hours'])
    value: list[float] = []
    outcome = _repeat(scheduler, size, lambda: value.append(
        scheduler.queries.availability_by_range(start, end, resources)))
    outcome['availability'] = round(value[-1], 3)
    return outcome


WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    'reserve_approve': reserve_approve,
    'quota': quota_tickets,
    'race': race,
    'search_year': search_year,
    'availability_year': availability_year,
    'by_day_year': by_day_year,
    'bulk_allocate': bulk_allocate,
    'calendar_week': calendar(7),
    'calendar_month': calendar(31),
    'calendar_year': calendar(366),
    'reserved_slots_month': reserved_slots,
    'search_month': search(31),
    'search_weekdays': search(31, days=['mo', 'tu', 'we', 'th', 'fr']),
    'search_minspots': search(7, minspots=1),
    'search_available': search(31, available_only=True),
    'availability_50': availability_resources,
    'existing_1k': lambda dsn, size: reserve_approve(dsn, size, 1_000),
    'existing_10k': lambda dsn, size: reserve_approve(dsn, size, 10_000),
    'existing_50k': lambda dsn, size: reserve_approve(dsn, size, 50_000),
}


def run_from_command_line(workloads: dict[str, Callable[..., dict[str, Any]]]) -> dict[str, Any]:
    """Run the workload the command line names (``NAME --dsn URL --size S
    --state fresh|analysed``) and return its outcome."""
    parser = argparse.ArgumentParser()
    parser.add_argument('workload', choices=sorted(workloads))
    parser.add_argument('--dsn', required=True)
    parser.add_argument('--size', choices=sorted(SIZES), default='quick')
    parser.add_argument('--state', choices=['fresh', 'analysed'], default='fresh')
    args = parser.parse_args()
    STATE['name'] = args.state
    return workloads[args.workload](args.dsn, SIZES[args.size])


def main() -> None:
    outcome = run_from_command_line(WORKLOADS)
    outcome['libres'] = getattr(libres, '__version__', 'unknown')
    json.dump(outcome, sys.stdout)


if __name__ == '__main__':
    main()
