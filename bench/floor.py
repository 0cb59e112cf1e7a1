"""The floor: the same bookings with plain psycopg and the fewest statements.

A correct booking is one SERIALIZABLE transaction: find the allocation, read
its taken slots, insert the reservation, insert its slots (one multi-row
statement), commit. Five statements, no ORM. The schema is the published
1.4.0 one (our migration 0001), without our extra constraints, so this is
the database's own limit for the workload.

    python -m bench.floor reserve_approve|race --dsn URL --size quick|full --state fresh|analysed
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.workloads import (
    SIZES,
    WARMUP,
    ZONE,
    race_result,
    race_slots,
    result,
    run_racers,
    working_hours,
)
from libres.db import migrate
from libres.modules.dates import standardize_date

RESOURCE = uuid.UUID('6f1c7d5e-0000-4000-8000-00000000f100')
RASTER = timedelta(minutes=15)


def libpq(dsn: str) -> str:
    return dsn.replace('postgresql+psycopg://', 'postgresql://')


def utc(value: datetime) -> datetime:
    return standardize_date(value, ZONE).replace(tzinfo=None)


def create_schema(dsn: str) -> None:
    engine = sa.create_engine(dsn, poolclass=sa.pool.NullPool)
    migrate.upgrade(engine, '0001')
    engine.dispose()


def insert_allocations(connection: psycopg.Connection[Any], spans: list[tuple[datetime, datetime]],
                       partly: bool) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            """INSERT INTO allocations (resource, type, mirror_of, "group", quota, quota_limit,
                   partly_available, approve_manually, timezone, _start, _end, _raster, created)
               VALUES (%s, 'generic', %s, %s, 1, 0, %s, false, %s, %s, %s, 15, now())""",
            [(RESOURCE, RESOURCE, uuid.uuid4(), partly, ZONE, utc(start),
              utc(end) - timedelta(microseconds=1)) for start, end in spans],
        )
    connection.commit()


class AlreadyReserved(Exception):
    pass


def book(connection: psycopg.Connection[Any], start: datetime, end: datetime) -> int:
    """One booking in one transaction; returns the statements it sent."""
    start, end = utc(start), utc(end)
    last = end - timedelta(microseconds=1)
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT id, "group", partly_available FROM allocations
               WHERE mirror_of = %s AND resource = %s AND _start <= %s AND _end >= %s""",
            (RESOURCE, RESOURCE, start, last),
        )
        allocation_id, group, partly = cursor.fetchone()  # type: ignore[misc]
        cursor.execute(
            'SELECT 1 FROM reserved_slots WHERE resource = %s AND start >= %s AND start <= %s LIMIT 1',
            (RESOURCE, start, last),
        )
        if cursor.fetchone() is not None:
            connection.rollback()
            raise AlreadyReserved()
        token = uuid.uuid4()
        cursor.execute(
            """INSERT INTO reservations (token, target, target_type, type, resource, start, "end",
                   timezone, status, email, quota, created)
               VALUES (%s, %s, 'allocation', 'generic', %s, %s, %s, %s, 'approved',
                   'guest@example.org', 1, now()) RETURNING id""",
            (token, group, RESOURCE, start, last, ZONE),
        )
        (reservation_id,) = cursor.fetchone()  # type: ignore[misc]
        starts = []
        slot = start
        while slot < end:
            starts.append(slot)
            slot += RASTER if partly else end - start
        values = ', '.join(["(%s, %s, %s, %s, 'reservation', %s, %s, now())"] * len(starts))
        params: list[Any] = []
        for slot_start in starts:
            slot_end = slot_start + (RASTER if partly else end - start) - timedelta(microseconds=1)
            params += [RESOURCE, slot_start, slot_end, allocation_id, token, reservation_id]
        cursor.execute(
            'INSERT INTO reserved_slots (resource, start, "end", allocation_id, source_type,'
            f' reservation_token, source_id, created) VALUES {values}',
            params,
        )
    connection.commit()
    return 5


def settle(dsn: str, state: str) -> None:
    """The analysed state: VACUUM ANALYZE before measuring, as workloads.py does."""
    if state == 'analysed':
        with psycopg.connect(libpq(dsn), autocommit=True) as connection:
            connection.execute('VACUUM ANALYZE allocations, reservations, reserved_slots')


def connect(dsn: str) -> psycopg.Connection[Any]:
    connection = psycopg.connect(libpq(dsn))
    connection.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
    return connection


def reserve_approve(dsn: str, size: dict[str, int], state: str) -> dict[str, Any]:
    create_schema(dsn)
    connection = connect(dsn)
    first_day = datetime(2040, 1, 1)
    spans = working_hours(first_day, size['bookings'] + WARMUP)
    days = sorted({(s.replace(hour=8), s.replace(hour=18)) for s, _ in spans})
    insert_allocations(connection, days, partly=True)
    settle(dsn, state)
    warmup = []
    for start, end in spans[:WARMUP]:
        began = time.perf_counter()
        book(connection, start, end)
        warmup.append(time.perf_counter() - began)
    statements = 0
    latencies = []
    for start, end in spans[WARMUP:]:
        began = time.perf_counter()
        statements += book(connection, start, end)
        latencies.append(time.perf_counter() - began)
    return result(latencies, statements, first=warmup[0])


def _race_worker(dsn: str, slots: list[tuple[datetime, datetime]], seed: int, go: Any, results: Any) -> None:
    connection = connect(dsn)
    order = list(slots)
    random.Random(seed).shuffle(order)
    booked = conflicts = refused = statements = 0
    go.wait()
    for start, end in order:
        for _attempt in range(100):
            try:
                statements += book(connection, start, end)
                booked += 1
                break
            except AlreadyReserved:
                refused += 1
                break
            except (psycopg.errors.SerializationFailure, psycopg.errors.UniqueViolation):
                connection.rollback()
                conflicts += 1
    results.put((booked, conflicts, refused, statements))


def race(dsn: str, size: dict[str, int], state: str) -> dict[str, Any]:
    create_schema(dsn)
    slots = race_slots(size['race_slots'])
    with connect(dsn) as connection:
        insert_allocations(connection, slots, partly=False)
    settle(dsn, state)
    outcomes, seconds = run_racers(_race_worker, dsn, slots)
    with connect(dsn) as connection:
        slots_booked, allocations_booked = connection.execute(
            'SELECT count(*), count(DISTINCT allocation_id) FROM reserved_slots'
        ).fetchone()  # type: ignore[misc]
    return race_result(outcomes, seconds, double_bookings=int(slots_booked - allocations_booked),
                       slots_booked=int(allocations_booked))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('workload', choices=['reserve_approve', 'race'])
    parser.add_argument('--dsn', required=True)
    parser.add_argument('--size', choices=sorted(SIZES), default='quick')
    parser.add_argument('--state', choices=['fresh', 'analysed'], default='fresh')
    args = parser.parse_args()
    workload = reserve_approve if args.workload == 'reserve_approve' else race
    json.dump(workload(args.dsn, SIZES[args.size], args.state), sys.stdout)


if __name__ == '__main__':
    main()
