"""A database made and filled by the published libres 1.4.0 is upgraded in
place, keeps every row, reads back through our API and takes new bookings."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import libres
from libres.cli import main as cli
from libres.db import migrate
from libres.db.models import Allocation, Reservation, ReservationBlocker, ReservedSlot
from libres.db.scheduler import Scheduler
from tests.migrations.schema import snapshot

HERE = Path(__file__).parent
TABLES = ('allocations', 'reserved_slots', 'reservations', 'reservation_blockers')


@pytest.fixture(scope='session')
def published_python() -> str:
    """Python of a virtual environment with the published libres 1.4.0."""
    venv = Path(os.environ.get('LIBRES_140_VENV') or Path(tempfile.gettempdir()) / 'libres-1.4.0-venv')
    python = venv / 'bin' / 'python'
    if not (venv / '.installed').exists():
        subprocess.run([sys.executable, '-m', 'venv', '--clear', str(venv)], check=True)
        subprocess.run([str(python), '-m', 'pip', 'install', '--quiet', 'libres==1.4.0', 'psycopg[binary]'],
                       check=True)
        (venv / '.installed').touch()
    return str(python)


# The columns 1.4.0 made: later revisions add columns (0006: holds, buffers, windows).
LEGACY_COLUMNS: dict[str, str] = {}


def rows(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the four tables, in the columns 1.4.0 made (read the first time)."""
    with engine.connect() as connection:
        if not LEGACY_COLUMNS:
            for table in TABLES:
                names = connection.execute(sa.text(f'SELECT * FROM {table} LIMIT 0')).keys()
                LEGACY_COLUMNS[table] = ', '.join(f'"{name}"' for name in names)
        return {
            table: sorted(tuple(row) for row in connection.execute(
                sa.text(f'SELECT {LEGACY_COLUMNS[table]} FROM {table}')))
            for table in TABLES
        }


def test_upgrade_keeps_every_row(published_python: str, fresh_database: Callable[[], str]) -> None:
    dsn = fresh_database()
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    subprocess.run([published_python, str(HERE / 'legacy_fill.py'), dsn], check=True, env=env,
                   cwd=tempfile.gettempdir())
    engine = migrate.engine_for(dsn)
    before = rows(engine)
    assert migrate.current(engine) is None
    assert {t: len(r) for t, r in before.items()} == {
        'allocations': 10, 'reserved_slots': 17, 'reservations': 8, 'reservation_blockers': 2,
    }

    runner = CliRunner()
    result = runner.invoke(cli, ['db', 'upgrade', '--dsn', dsn])
    assert result.exit_code == 0, result.output
    assert f'upgraded from libres 1.4.0 to {migrate.head()}' in result.output
    assert rows(engine) == before
    schema = snapshot(engine)

    again = runner.invoke(cli, ['db', 'upgrade', '--dsn', dsn])
    assert again.exit_code == 0 and f'already at {migrate.head()}' in again.output
    assert snapshot(engine) == schema and rows(engine) == before

    checked = runner.invoke(cli, ['check', '--dsn', dsn, '--expired-before', '2000-01-01'])
    assert checked.exit_code == 0, checked.output

    _read_back_through_the_api(dsn, before)
    _keep_booking(dsn)


def _read_back_through_the_api(dsn: str, before: dict[str, list[tuple[object, ...]]]) -> None:
    context = libres.registry.register_context('legacy', replace=True)
    context.set_setting('dsn', dsn)
    room = Scheduler(context, 'room', 'Europe/Zurich')
    hall = Scheduler(context, 'hall', 'Europe/Zurich')
    course = Scheduler(context, 'course', 'Europe/Zurich')
    session = room.session
    assert session.query(Allocation).count() == len(before['allocations'])
    assert session.query(ReservedSlot).count() == len(before['reserved_slots'])

    [allocation] = room.managed_allocations()
    assert allocation.data == {'name': 'Sitzungszimmer «Zürich»', 'floor': 3}
    assert allocation.display_start() == datetime(2031, 3, 3, 8, tzinfo=allocation.display_start().tzinfo)
    assert allocation.start == datetime(2031, 3, 3, 7, tzinfo=UTC)
    anna = room.managed_reservations().filter(Reservation.email == 'anna@example.org').one()
    assert anna.data == {'note': 'Café ☕'} and anna.status == 'approved'
    assert room.reserved_slots_by_reservation(anna.token).count() == 4
    assert room.managed_reservations().filter(Reservation.status == 'pending').count() == 2
    cart = uuid.UUID('6b1b3c1e-8f7a-4c8e-9a55-2a1d1c3b4a5f')
    assert [r.email for r in room.queries.reservations_by_session(cart)] == ['carl@example.org']
    [blocker] = room.managed_blockers()
    assert blocker.reason == 'Reinigung' and room.reserved_slots_by_blocker(blocker.token).count() == 4

    [master] = hall.managed_allocations().filter(Allocation.resource == hall.resource)
    assert (master.quota, master.quota_limit, master.quota_left) == (5, 2, 1)
    assert hall.managed_allocations().count() == 4

    group_reservations = course.managed_reservations().filter(Reservation.target_type == 'group').all()
    assert sorted(r.status for r in group_reservations) == ['approved', 'pending']
    assert course.managed_blockers().filter(ReservationBlocker.reason == 'Ferien').count() == 1
    session.close()


def _keep_booking(dsn: str) -> None:
    context = libres.registry.register_context('legacy', replace=True)
    context.set_setting('dsn', dsn)
    room = Scheduler(context, 'room', 'Europe/Zurich')
    hall = Scheduler(context, 'hall', 'Europe/Zurich')
    day = datetime(2031, 3, 3)
    token = room.reserve('fritz@example.org', (day.replace(hour=10), day.replace(hour=11)))
    assert len(room.approve_reservations(token)) == 4
    ben = room.managed_reservations().filter(Reservation.email == 'ben@example.org').one()
    room.approve_reservations(ben.token)
    anna = room.managed_reservations().filter(Reservation.email == 'anna@example.org').one()
    room.change_reservation(anna.token, anna.id, day.replace(hour=8), day.replace(hour=9))
    hall.approve_reservations(hall.reserve('last@example.org', (day.replace(hour=20), day.replace(hour=23))))
    room.commit()
    from libres.modules import errors

    with pytest.raises(errors.AlreadyReservedError):
        hall.reserve('late@example.org', (day.replace(hour=20), day.replace(hour=23)))
    room.rollback()
    room.close()
    result = CliRunner().invoke(cli, ['check', '--dsn', dsn, '--expired-before', '2000-01-01'])
    assert result.exit_code == 0, result.output
    room.session_provider.stop_service()
