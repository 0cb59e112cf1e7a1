"""The ORM floor: bookings and searches written with bare SQLAlchemy.

libres keeps its writes in the ORM (host applications commit through
transaction managers that watch the session), so no booking of ours can be
cheaper than the same writes through a plain ORM session. This measures that
floor on the same schema (ours, with its constraints and triggers), the same
engine settings (the session provider's: pre-ping, SERIALIZABLE) and the
driver of the run, with none of libres' booking logic: read the master,
check its slots are free, add the approved reservation, flush for its id,
add its slots, commit. The statements are those of ``bench.floor``.

    python -m bench.orm_floor reserve_approve --dsn URL --size quick|full --state fresh|analysed
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import extract, func, select
from sqlalchemy.orm import Session, lazyload

from bench.workloads import (
    WARMUP,
    ZONE,
    StatementCounter,
    _repeat,
    _span,
    _year,
    allocate_days,
    new_scheduler,
    result,
    run_from_command_line,
    settle,
    timed,
    working_hours,
)
from libres.db.models import Allocation, Reservation, ReservedSlot
from libres.modules.dates import standardize_date

RASTER = timedelta(minutes=15)
LAST = timedelta(microseconds=1)


class AlreadyReserved(Exception):
    pass


def book(session: Session, resource: uuid.UUID, start: datetime, end: datetime) -> None:
    """One booking in one transaction, through the session's unit of work:
    the master, whether a slot of the span is taken and a new reservation
    id in one query; the reservation and its slots in one flush."""
    start, end = standardize_date(start, ZONE), standardize_date(end, ZONE)
    taken = (
        select(ReservedSlot.start)
        .where(ReservedSlot.resource == resource, ReservedSlot.start.between(start, end - LAST))
        .exists()
    )
    next_id = func.nextval(func.pg_get_serial_sequence('reservations', 'id'))
    master, is_taken, reservation_id = session.execute(
        select(Allocation, taken, next_id)
        .where(
            Allocation.mirror_of == resource, Allocation.resource == resource,
            Allocation._start <= start, Allocation._end >= end - LAST,
        )
        .options(lazyload(Allocation.reserved_slots))
    ).one()
    if is_taken:
        session.rollback()
        raise AlreadyReserved()
    token = uuid.uuid4()
    session.add(Reservation(
        id=reservation_id, token=token, target=master.group, target_type='allocation',
        type='generic', resource=resource, start=start, end=end - LAST, timezone=ZONE,
        status='approved', email='guest@example.org', quota=1,
    ))
    slot = start
    while slot < end:
        session.add(ReservedSlot(
            start=slot, end=slot + RASTER - LAST, resource=resource, allocation_id=master.id,
            reservation_token=token, source_type='reservation', source_id=reservation_id,
        ))
        slot += RASTER
    session.commit()


def reserve_approve(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    scheduler = new_scheduler(dsn)
    scheduler.setup_database()
    scheduler.commit()
    first_day = datetime(2040, 1, 1)
    spans = working_hours(first_day, size['bookings'] + WARMUP)
    allocate_days(scheduler, first_day, len(spans))
    settle(scheduler)
    session, resource = scheduler.session, scheduler.resource
    warmup = timed((lambda s=start, e=end: book(session, resource, s, e)) for start, end in spans[:WARMUP])
    counter = StatementCounter()
    latencies = timed(
        (lambda s=start, e=end: book(session, resource, s, e)) for start, end in spans[WARMUP:]
    )
    return result(latencies, counter.count, first=warmup[0])


def masters(session: Session, resource: uuid.UUID, first: datetime, last: datetime,
            hours: tuple[int, int] | None) -> list[Allocation]:
    """The resource's masters overlapping [first, last] (local), starting in
    the local hours given (all if None), as ORM objects in start order."""
    first, last = standardize_date(first, ZONE), standardize_date(last, ZONE)
    query = select(Allocation).where(
        Allocation.mirror_of == resource, Allocation.resource == resource,
        Allocation._start <= last, Allocation._end >= first,
    )
    if hours is not None:
        local = func.timezone(ZONE, func.timezone('UTC', Allocation._start))
        query = query.where(extract('hour', local).between(*hours))
    options = query.options(lazyload(Allocation.reserved_slots)).order_by(Allocation._start)
    return list(session.scalars(options))


def search_month(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    # search_allocations over 31 days, window 08:00-18:00: hourly allocations
    # starting at 08:00 to 17:00 local meet it.
    scheduler, _, _ = _year(dsn, size)
    start, end = _span(size, 31)
    first, last = start.replace(hour=8), (end - timedelta(days=1)).replace(hour=18)
    found: list[Allocation] = []

    def call() -> None:
        found[:] = masters(scheduler.session, scheduler.resource, first, last, (8, 17))

    outcome = _repeat(scheduler, size, call)
    outcome['found'] = len(found)
    return outcome


def search_year(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    # A window of 00:00 to 23:59 on every day: every allocation matches.
    scheduler, start, end = _year(dsn, size)
    found: list[Allocation] = []

    def call() -> None:
        found[:] = masters(scheduler.session, scheduler.resource, start, end - timedelta(minutes=1), None)

    outcome = _repeat(scheduler, size, call)
    outcome['found'] = len(found)
    return outcome


WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    'reserve_approve': reserve_approve, 'search_month': search_month, 'search_year': search_year,
}


def main() -> None:
    json.dump(run_from_command_line(WORKLOADS), sys.stdout)


if __name__ == '__main__':
    main()
