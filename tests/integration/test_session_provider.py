from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

import libres
from libres.context.session import SessionProvider
from libres.db.scheduler import Scheduler


def test_sessions_are_serializable_and_per_thread(provider: SessionProvider) -> None:
    session = provider.session()
    assert session.execute(sa.text('SHOW transaction_isolation')).scalar() == 'serializable'
    assert provider.session() is session
    other = []
    thread = threading.Thread(target=lambda: other.append(provider.session()))
    thread.start()
    thread.join()
    assert other[0] is not session
    session.rollback()


@pytest.mark.parametrize(('scheme', 'driver'), [
    ('postgresql', 'psycopg'), ('postgresql+psycopg', 'psycopg'), ('postgresql+psycopg2', 'psycopg2'),
])
def test_driver_chosen_by_the_dsn(dsn: str, scheme: str, driver: str) -> None:
    url = sa.engine.make_url(dsn).set(drivername=scheme).render_as_string(hide_password=False)
    provider = SessionProvider(url)
    try:
        assert provider.engine.dialect.driver == driver
        assert provider.session().execute(sa.text('SELECT 1')).scalar() == 1
    finally:
        provider.stop_service()


def test_version(provider: SessionProvider, dsn: str) -> None:
    version, number = provider.get_postgres_version(dsn)
    assert isinstance(version, str) and number >= 140000
    with pytest.raises(AssertionError):
        provider.get_postgres_version('sqlite://')


def test_stopping_an_unused_provider(dsn: str) -> None:
    SessionProvider(dsn).stop_service()


def test_custom_json_serializer_round_trips_datetimes(dsn: str) -> None:
    def dumps(value: object) -> str:
        return json.dumps(value, default=lambda v: {'__dt__': v.isoformat()})

    def loads(text: str) -> object:
        return json.loads(text, object_hook=lambda d: datetime.fromisoformat(d['__dt__']) if '__dt__' in d else d)

    context = libres.registry.register_context('custom-json', replace=True)
    context.set_setting('dsn', dsn)
    context.set_service('session_provider', lambda ctx: SessionProvider(
        ctx.get_setting('dsn'), engine_config={'json_serializer': dumps, 'json_deserializer': loads}
    ), cache=True)
    scheduler = Scheduler(context, 'json', 'UTC')
    when = datetime(2030, 1, 1, 12, tzinfo=UTC)
    try:
        [allocation] = scheduler.allocate((datetime(2030, 1, 1, 8), datetime(2030, 1, 1, 9)), data={'when': when})
        scheduler.commit()
        scheduler.session.expire_all()
        assert scheduler.allocation_by_id(allocation.id).data == {'when': when}
    finally:
        scheduler.extinguish_managed_records()
        scheduler.commit()
        context.get_service('session_provider').stop_service()


def test_session_recovers_after_its_connection_was_killed(
    provider: SessionProvider, admin_engine: sa.Engine
) -> None:
    session = provider.session()
    pid = session.execute(sa.text('SELECT pg_backend_pid()')).scalar()
    session.commit()
    with admin_engine.connect() as connection:
        connection.execute(sa.text('SELECT pg_terminate_backend(:pid)'), {'pid': pid})
    # The pool checks the connection before handing it out again.
    assert session.execute(sa.text('SELECT 1')).scalar() == 1
    session.rollback()


def test_concurrent_writers_of_one_allocation_conflict(scheduler: Scheduler, provider: SessionProvider) -> None:
    [allocation] = scheduler.allocate((datetime(2030, 1, 1, 8), datetime(2030, 1, 1, 9)))
    scheduler.commit()
    other = sa.orm.Session(provider.engine)
    try:
        mine = scheduler.allocation_by_id(allocation.id)
        theirs = other.get(type(mine), allocation.id)
        assert theirs is not None
        mine.quota = 2
        theirs.quota = 3
        scheduler.session.flush()
        scheduler.commit()
        with pytest.raises(OperationalError) as info:
            other.flush()
            other.commit()
        assert info.value.orig.sqlstate.startswith('40')  # type: ignore[union-attr]
    finally:
        other.rollback()
        other.close()
