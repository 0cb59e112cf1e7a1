"""Calendar reads per second: on a streaming standby, against on the primary.

    python -m bench.replica [--seconds 10] [--rounds 2]

Starts a primary and a standby from the embedded PostgreSQL (the fixture of
tests/replication), fills a month of hourly allocations, a third of them
booked, and measures how many calendar reads (``availability`` and
``search_allocations`` over the month, one read transaction each) one
reader does per second while 4 processes book on the primary, with the
reader's ``read_dsn`` on the standby and with everything on the primary.
The modes alternate per round; the figures are medians. Both servers run
on this machine, so they share its cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tests.replication.conftest import Cluster, wait_for_replay

import libres
from libres.context.session import SessionProvider
from libres.db.scheduler import Scheduler
from libres.retry import run_with_retries

MONTH = datetime(2032, 5, 1)
DAYS = 30
HOURS = range(8, 20)
BOOKERS = 4
BOOKER_DAYS = 120


def scheduler_on(provider: SessionProvider, name: str) -> Scheduler:
    # The resource follows from the context's and scheduler's names: the same for every process.
    context = libres.registry.register_context(f'bench-{name}', replace=True)
    context.set_service('session_provider', lambda _: provider, cache=False)
    return Scheduler(context, name, 'Europe/Zurich')


def hourly(first: datetime, days: int) -> list[tuple[datetime, datetime]]:
    return [(first + timedelta(days=d, hours=h), first + timedelta(days=d, hours=h + 1))
            for d in range(days) for h in HOURS]


def fill(primary_dsn: str, runs: int) -> None:
    provider = SessionProvider(primary_dsn)
    calendar = scheduler_on(provider, 'calendar')
    spans = hourly(MONTH, DAYS)
    calendar.allocate(spans)
    for start, end in spans[::3]:
        calendar.approve_reservations(calendar.reserve('guest@example.org', (start, end)))
    calendar.commit()
    for run in range(runs):
        for index in range(BOOKERS):
            # A calendar of its own for each booker in each run, with more
            # hours than a run books.
            scheduler_on(provider, f'booker-{run}-{index}').allocate(hourly(MONTH, BOOKER_DAYS))
            provider.session().commit()
    provider.stop_service()


def booker(primary_dsn: str, index: int, round_no: int, go: Any, stop: Any, booked: Any) -> None:
    provider = SessionProvider(primary_dsn)
    scheduler = scheduler_on(provider, f'booker-{round_no}-{index}')
    count = 0
    go.wait()
    for start, end in hourly(MONTH, BOOKER_DAYS):
        if stop.is_set():
            break

        def unit(start: datetime = start, end: datetime = end) -> None:
            scheduler.approve_reservations(scheduler.reserve('load@example.org', (start, end)))
            scheduler.commit()

        # Four bookers on a fresh calendar conflict now and then under
        # SERIALIZABLE (predicate locks on small indexes): retry longer.
        run_with_retries(scheduler, unit, attempts=50)
        count += 1
    booked.value = count
    provider.stop_service()


def read_calendar(
    primary_dsn: str, standby_dsn: str | None, seconds: float, round_no: int
) -> dict[str, float]:
    spawn = multiprocessing.get_context('fork')
    go, stop = spawn.Event(), spawn.Event()
    counters = [spawn.Value('i', 0) for _ in range(BOOKERS)]
    workers = [spawn.Process(target=booker, args=(primary_dsn, i, round_no, go, stop, counters[i]))
               for i in range(BOOKERS)]
    for worker in workers:
        worker.start()
    # After the fork: the bookers share no connection with the reader.
    provider = SessionProvider(primary_dsn)
    if standby_dsn is not None:
        provider.use_replicas(standby_dsn)
    calendar = scheduler_on(provider, 'calendar')
    end = MONTH + timedelta(days=DAYS) - timedelta(minutes=1)
    calendar.availability(MONTH, end)  # connections and caches warm
    calendar.rollback()
    time.sleep(1.0)  # the bookers connected
    go.set()
    reads = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        calendar.availability(MONTH, end)
        found = calendar.search_allocations(MONTH, end)
        assert len(found) == DAYS * len(HOURS), len(found)
        calendar.rollback()
        reads += 1
    elapsed = time.perf_counter() - began
    stop.set()
    for worker in workers:
        worker.join()
    booked = sum(counter.value for counter in counters)
    provider.stop_service()
    return {'reads_per_s': reads / elapsed, 'bookings_per_s': booked / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(prog='python -m bench.replica', description=__doc__)
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--rounds', type=int, default=2)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix='libres-bench-replica-'))
    cluster = Cluster(base)
    try:
        cluster.start()
        cluster.create_libres_database()
        fill(cluster.primary_dsn, 2 * args.rounds)
        primary = sa.create_engine(cluster.primary_dsn, poolclass=sa.pool.NullPool)
        standby = sa.create_engine(cluster.standby_dsn, poolclass=sa.pool.NullPool)
        wait_for_replay(primary, standby, timeout=120)

        results: dict[str, list[dict[str, float]]] = {'replica': [], 'primary': []}
        round_no = 0
        for _ in range(args.rounds):
            for mode in ('replica', 'primary'):
                standby_dsn = cluster.standby_dsn if mode == 'replica' else None
                results[mode].append(read_calendar(cluster.primary_dsn, standby_dsn, args.seconds, round_no))
                round_no += 1
        print(f'calendar reads (availability + search_allocations over {DAYS} days of '
              f'{len(HOURS)} hourly allocations) while {BOOKERS} processes book on the primary, '
              f'{args.rounds} x {args.seconds:.0f} s, medians:')
        medians = {}
        for mode, runs in results.items():
            reads = statistics.median(r['reads_per_s'] for r in runs)
            booked = statistics.median(r['bookings_per_s'] for r in runs)
            medians[mode] = reads
            print(f'  reads on the {mode:<7}: {reads:7.1f} reads/s   bookings meanwhile: {booked:7.1f}/s')
        print(f'  replica / primary: {medians["replica"] / medians["primary"]:.2f}x')
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    main()
