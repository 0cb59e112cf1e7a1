"""Bookings survive killed connections and a server restart."""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import libres
from libres import embedded, integrity
from libres.db import migrate
from libres.db.models import Reservation, ReservedSlot
from libres.db.scheduler import Scheduler
from tests.concurrency import workers

pytestmark = pytest.mark.concurrency
WORKERS = 4
SPANS = 80


@pytest.fixture
def own_server() -> tuple[Path, str]:  # type: ignore[misc]
    # A server of its own: this test stops and starts it.
    base = Path(tempfile.mkdtemp(prefix='lbrf'))
    data = base / 'pg'
    dsn = embedded.start(data, database='faults')
    yield data, dsn
    embedded.stop(data)
    shutil.rmtree(base, ignore_errors=True)


def terminate_backends(admin_dsn: str) -> int:
    engine = sa.create_engine(admin_dsn, poolclass=sa.pool.NullPool, isolation_level='AUTOCOMMIT')
    try:
        with engine.connect() as connection:
            return len(connection.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = 'faults' AND pid <> pg_backend_pid()")).all())
    except sa.exc.OperationalError:
        return 0  # the server is restarting
    finally:
        engine.dispose()


def test_no_booking_is_lost_to_faults(own_server: tuple[Path, str]) -> None:
    data, dsn = own_server
    migrate.ensure_schema(migrate.engine_for(dsn))
    context = libres.registry.register_context('race', replace=True)
    context.set_setting('dsn', dsn)
    scheduler = Scheduler(context, 'hall', 'UTC')
    spans = workers.hours(SPANS)
    scheduler.allocate(spans)
    scheduler.commit()
    scheduler.close()

    admin_dsn = dsn.replace('/faults?', '/postgres?')
    spawn = multiprocessing.get_context('spawn')
    killed = restarts = 0
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=spawn) as pool:
        futures = [pool.submit(workers.book, dsn, 'hall', list(spans), seed, 1, 80, 0.05)
                   for seed in range(WORKERS)]
        started = time.monotonic()
        while not all(f.done() for f in futures):
            wait(futures, timeout=0.3)
            killed += terminate_backends(admin_dsn)
            if not restarts and time.monotonic() - started > 0.6:
                embedded.stop(data)
                time.sleep(1)
                embedded.start(data, database='faults')
                restarts += 1
        results = [f.result() for f in futures]

    assert restarts == 1 and killed > 0
    assert sum(r['exhausted'] for r in results) == 0
    scheduler.session_provider.stop_service()
    context = libres.registry.register_context('race', replace=True)
    context.set_setting('dsn', dsn)
    scheduler = Scheduler(context, 'hall', 'UTC')
    approved = {str(r.token): r for r in scheduler.managed_reservations().filter(Reservation.status == 'approved')}
    seen_committed = [token for r in results for token in r['booked']]
    # Every booking a worker saw committed is there, with its slot.
    assert set(seen_committed) <= set(approved)
    for token in seen_committed:
        assert scheduler.reserved_slots_by_reservation(approved[token].token).count() == 1
    # Every span was booked exactly once, nothing half-written remains.
    assert len(approved) == SPANS
    assert scheduler.session.query(ReservedSlot).count() == SPANS
    assert scheduler.managed_reservations().filter(Reservation.status == 'pending').count() == 0
    with Session(migrate.engine_for(dsn)) as session:
        assert integrity.check(session).clean
    scheduler.session_provider.stop_service()
    print(f'faults: {killed} connections killed, 1 restart, '
          f'{sum(r["retries"] for r in results)} retries, {len(seen_committed)} bookings seen committed')
