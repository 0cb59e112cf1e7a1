"""Fixtures of a host application: libres on a session joined to a
``transaction`` manager through ``zope.sqlalchemy``, on either driver.

Every test here runs twice, once with psycopg 3 and once with psycopg2, on
its own session provider (its listeners must not reach other tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import transaction
import zope.sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import libres
from libres.context.core import Context
from libres.context.session import SessionProvider
from libres.db.scheduler import Scheduler

from .support import BulkStatements, NoSavepointDataManager

DRIVERS = ('psycopg', 'psycopg2')


@pytest.fixture(params=DRIVERS)
def host_dsn(request: pytest.FixtureRequest, clean_database: str) -> str:
    """The test database's DSN with the driver under test."""
    url = make_url(clean_database).set(drivername=f'postgresql+{request.param}')
    return url.render_as_string(hide_password=False)


@pytest.fixture
def host_provider(host_dsn: str) -> Iterator[SessionProvider]:
    """A session provider whose sessions are joined to ``transaction``."""
    transaction.abort()
    provider = SessionProvider(host_dsn)
    zope.sqlalchemy.register(provider.session)
    yield provider
    transaction.abort()
    provider.session.remove()
    provider.stop_service()


@pytest.fixture
def host_context(host_provider: SessionProvider) -> Iterator[Context]:
    context = libres.registry.register_context(f'host-{uuid.uuid4().hex[:8]}')
    context.set_setting('dsn', host_provider.dsn)
    context.set_service('session_provider', lambda _: host_provider, cache=False)
    yield context


@pytest.fixture
def host_scheduler(host_context: Context) -> Scheduler:
    return Scheduler(host_context, 'hall', 'Europe/Zurich')


@pytest.fixture
def host_session(host_provider: SessionProvider) -> Session:
    return host_provider.session()


@pytest.fixture
def bulk_listener(host_provider: SessionProvider) -> Iterator[BulkStatements]:
    """The host's listener: a transaction savepoint on every ORM bulk
    UPDATE/DELETE of the session."""
    listener = BulkStatements()
    event.listen(host_provider.session, 'do_orm_execute', listener)
    yield listener
    event.remove(host_provider.session, 'do_orm_execute', listener)


@pytest.fixture
def file_manager() -> NoSavepointDataManager:
    """A data manager without savepoints, joined to the current transaction
    (call ``join()`` again after each commit)."""
    return NoSavepointDataManager()


@pytest.fixture
def outside(admin_engine: sa.Engine) -> sa.Engine:
    """A connection pool outside the host's transaction, to see what was committed."""
    return admin_engine
