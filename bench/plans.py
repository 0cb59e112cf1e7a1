"""EXPLAIN (ANALYZE, BUFFERS) of the statements the calendar reads send.

    python -m bench.plans [--state fresh|analysed] [--hours N] [--only NAME ...]

Fills a new database with hourly allocations, 30 % booked (as the benchmark
does) and, in the *fresh* state, never analyses it: the planner has no
statistics, as on a user's database right after a big ``allocate``; *stale*
analyses after the first day only, as autovacuum may have. Each read runs
once through the public API; every SELECT it sent is then explained with its
parameters. For reading plans, not for timing them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from bench import workloads
from libres import embedded

TICKETS = (datetime(2031, 6, 1, 19), datetime(2031, 6, 1, 22))


def captured(engine: sa.Engine, action: Callable[[], Any]) -> list[tuple[str, Any]]:
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if sql.lstrip().upper().startswith(('SELECT', 'WITH')) and not many:
            sent.append((sql, params))

    event.listen(engine, 'before_cursor_execute', capture)
    try:
        action()
    finally:
        event.remove(engine, 'before_cursor_execute', capture)
    return sent


def reads(scheduler: Any, hours: int, others: list[Any]) -> dict[str, Callable[[], Any]]:
    start = workloads.YEAR_START
    aware = workloads._aware(scheduler, start)
    month, year = timedelta(days=31), timedelta(hours=hours)
    queries = scheduler.queries
    resource = scheduler.resource
    window = start.replace(hour=8), (start + month - timedelta(days=1)).replace(hour=18)
    return {
        'availability': lambda: scheduler.availability(start, start + year),
        'availability_by_day': lambda: queries.availability_by_day(aware, aware + year, [resource]),
        'availability_50': lambda: queries.availability_by_range(aware, aware + month, others),
        'calendar_month': lambda: list(queries.allocations_with_availability_by_range(
            aware, aware + month, resource, [])),
        'scheduler_calendar_month': lambda: list(scheduler.allocations_with_availability_by_range(
            start, start + month)),
        'reserved_slots_month': lambda: scheduler.reserved_slots_by_range(aware, aware + month),
        'search_year': lambda: scheduler.search_allocations(start, start + year - timedelta(minutes=1)),
        'search_month': lambda: scheduler.search_allocations(*window),
        'search_available': lambda: scheduler.search_allocations(*window, available_only=True),
        'search_minspots': lambda: scheduler.search_allocations(
            window[0], window[0] + timedelta(days=1, hours=10), minspots=1),
        'book': lambda: scheduler.approve_reservations(scheduler.reserve(
            'a@example.org', (start + timedelta(days=40, hours=9), start + timedelta(days=40, hours=10)))),
        'book_quota': lambda: scheduler.approve_reservations(scheduler.reserve('a@example.org', TICKETS)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--state', choices=['fresh', 'stale', 'analysed'], default='fresh')
    parser.add_argument('--hours', type=int, default=24 * 91, help='hourly allocations (a quarter)')
    parser.add_argument('--resources', type=int, default=50, help='other resources, a week each')
    parser.add_argument('--only', nargs='*', default=None)
    parser.add_argument('--database', default='bench_plans')
    parser.add_argument('--driver', choices=['psycopg', 'psycopg2'], default='psycopg')
    args = parser.parse_args()

    dsn = embedded.start()
    admin = sa.create_engine(dsn.replace('/libres?', '/postgres?'), isolation_level='AUTOCOMMIT',
                             poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS {args.database} WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE {args.database}')
    workloads.STATE['name'] = args.state
    target = dsn.replace('/libres?', f'/{args.database}?').replace('+psycopg:', f'+{args.driver}:')
    scheduler = workloads.new_scheduler(target)
    scheduler.setup_database()
    scheduler.commit()
    if args.state == 'stale':
        # Analysed after the first day, as autovacuum may have done: the
        # statistics then describe a calendar a hundred times smaller.
        workloads.fill_hourly(scheduler, workloads.YEAR_START, 24, 3, 10)
        workloads.STATE['name'] = 'analysed'
        workloads.settle(scheduler)
        workloads.STATE['name'] = 'fresh'
        day = timedelta(days=1)
        workloads.fill_hourly(scheduler, workloads.YEAR_START + day, args.hours - 24, 3, 10)
    else:
        workloads.fill_hourly(scheduler, workloads.YEAR_START, args.hours, 3, 10)
    others = []
    for number in range(args.resources):
        other = workloads.libres.new_scheduler(scheduler.context, f'room-{number}', workloads.ZONE)
        workloads.fill_hourly(other, workloads.YEAR_START, 24 * 7, 3, 10)
        others.append(other.resource)
    # A quota allocation with a few tickets sold, for the quota booking.
    scheduler.allocate(TICKETS, quota=200, quota_limit=1)
    for _ in range(5):
        scheduler.approve_reservations(scheduler.reserve('b@example.org', TICKETS))
    workloads.settle(scheduler)
    engine = scheduler.session.get_bind().engine
    for name, action in reads(scheduler, args.hours, others).items():
        if args.only and name not in args.only:
            continue
        for number, (sql, params) in enumerate(captured(engine, action), 1):
            cursor = scheduler.session.connection().connection.cursor()
            cursor.execute('EXPLAIN (ANALYZE, BUFFERS) ' + sql, params)
            plan = '\n'.join(row[0] for row in cursor.fetchall())
            print(f'=== {name} #{number}\n{sql}\n--- {params!r}\n{plan}\n', flush=True)
        scheduler.rollback()
    print('analysed tables:', workloads.analysed_tables(scheduler))


if __name__ == '__main__':
    main()
