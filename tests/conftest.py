"""Fixtures: a real PostgreSQL for the whole run, a clean state per test.

``LIBRES_TEST_DSN`` names a server to use; without it the embedded server is
started. Either way the run gets a database of its own, created here and
dropped at the end, so concurrent runs never see each other.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

import libres
from libres.context.core import Context
from libres.context.session import SessionProvider
from libres.db import migrate
from libres.db.scheduler import Scheduler
from libres.modules import events
from tests.helpers import CountRows

TABLES = 'reservations, reservation_blockers, reserved_slots, allocations'
# Emptied after each test too, but not counted by count_rows.
CLEARED = f'{TABLES}, allocation_rules'


def _server_dsn() -> str:
    configured = os.environ.get('LIBRES_TEST_DSN')
    if configured:
        return configured
    from libres import embedded

    return embedded.start(database='postgres')


def _with_database(dsn: str, database: str) -> str:
    url = make_url(dsn)
    if url.drivername == 'postgresql':
        url = url.set(drivername='postgresql+psycopg')
    return url.set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope='session')
def server_dsn() -> str:
    return _server_dsn()


@pytest.fixture(scope='session')
def dsn(server_dsn: str) -> Iterator[str]:
    """A fresh database with the libres schema, for this test run only."""
    name = f'libres_test_{uuid.uuid4().hex[:12]}'
    admin = sa.create_engine(_with_database(server_dsn, make_url(server_dsn).database or 'postgres'),
                             isolation_level='AUTOCOMMIT', poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = _with_database(server_dsn, name)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    migrate.ensure_schema(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope='session')
def provider(dsn: str) -> Iterator[SessionProvider]:
    """One provider (engine and pool) for the run: cheap per-test contexts."""
    shared = SessionProvider(dsn)
    yield shared
    shared.stop_service()


@pytest.fixture(scope='session')
def admin_engine(dsn: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(dsn, isolation_level='AUTOCOMMIT')
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _no_event_handlers() -> Iterator[None]:
    yield
    for name in dir(events):
        if name.startswith('on_'):
            del getattr(events, name)[:]


@pytest.fixture
def clean_database(dsn: str, admin_engine: sa.Engine) -> Iterator[str]:
    """The test database's DSN; its tables are emptied after the test."""
    yield dsn
    with admin_engine.connect() as connection:
        connection.execute(sa.text(f'TRUNCATE {CLEARED} RESTART IDENTITY'))


@pytest.fixture
def context(provider: SessionProvider, clean_database: str) -> Iterator[Context]:
    """A context on the test database, emptied afterwards."""
    name = f'test-{uuid.uuid4().hex[:8]}'
    ctx = libres.registry.register_context(name)
    ctx.set_setting('dsn', clean_database)
    ctx.set_service('session_provider', lambda _: provider, cache=False)
    yield ctx
    session = provider.session()
    session.rollback()
    session.close()


@pytest.fixture
def scheduler(context: Context) -> Scheduler:
    return Scheduler(context, 'room', 'Europe/Zurich')


@pytest.fixture
def count_rows(admin_engine: sa.Engine) -> CountRows:
    """Row counts of the four tables, read outside the test's transaction."""

    def count() -> dict[str, int]:
        with admin_engine.connect() as connection:
            return {
                table: connection.execute(sa.text(f'SELECT count(*) FROM {table}')).scalar_one()
                for table in TABLES.split(', ')
            }

    return count
