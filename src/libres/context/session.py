"""The session provider: one SERIALIZABLE SQLAlchemy session per thread."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from libres.context.core import StoppableService
from libres.db import errors_translation
from libres.modules import errors

if TYPE_CHECKING:
    from libres.context.core import Context
    from libres.context.replicas import ReadSide

SERIALIZABLE = 'SERIALIZABLE'


def _url(dsn: str) -> Any:
    url = make_url(dsn)
    # A bare postgresql:// means psycopg 3, the maintained driver.
    if url.drivername == 'postgresql':
        url = url.set(drivername='postgresql+psycopg')
    return url


class SessionProvider(StoppableService):
    """Engine and thread-scoped sessions for a DSN, always SERIALIZABLE.

    A replacement provider must use SERIALIZABLE too: libres relies on it to
    keep overlapping bookings apart.

    ``reads`` is the read side, ``None`` until :meth:`use_replicas` gives it
    replicas (``libres.context.replicas``): then the read-only calls run on
    them.
    """

    reads: ReadSide | None = None

    def __init__(
        self,
        dsn: str,
        engine_config: dict[str, Any] | None = None,
        session_config: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(dsn, str) or not dsn:
            raise errors.DatabaseNotConfigured(
                f'no database configured (dsn is {dsn!r}): set it with '
                f"context.set_setting('dsn', 'postgresql://user:password@host/database')"
            )
        self.assert_valid_postgres_version(dsn)
        self.dsn = dsn
        options: dict[str, Any] = {
            'poolclass': pool.QueuePool,
            'pool_size': 5,
            'max_overflow': 5,
            'isolation_level': SERIALIZABLE,
            # A connection the server dropped is replaced, not handed out.
            'pool_pre_ping': True,
        }
        options.update(engine_config or {})
        self.engine: Engine = create_engine(_url(dsn), **options)
        # The slots of a booking go in one multi-row INSERT, not one per row
        # (psycopg2's dialect does this already; psycopg 3's does not).
        self.engine.dialect.use_insertmanyvalues_wo_returning = True
        # Our constraints' violations surface as library errors, at flush and commit.
        errors_translation.install(self.engine)
        factory: sessionmaker[Session] = sessionmaker(bind=self.engine, **(session_config or {}))
        self.session: scoped_session[Session] = scoped_session(factory)

    def use_replicas(
        self,
        read_dsn: str | Sequence[str],
        fallback: str = 'primary',
        retry_after: float | None = None,
        engine_config: dict[str, Any] | None = None,
    ) -> ReadSide:
        """Route the read-only calls to these replicas (one URL or several,
        tried in order, the first healthy one answers); see
        ``libres.context.replicas`` for what stays on the primary."""
        from libres.context import replicas

        if self.reads is not None:
            raise RuntimeError('this provider has replicas already')
        self.reads = replicas.ReadSide(
            self, replicas.split_dsns(read_dsn), fallback=fallback,
            retry_after=replicas.DEFAULT_RETRY_AFTER if retry_after is None else retry_after,
            engine_config=engine_config,
        )
        return self.reads

    def stop_service(self) -> None:
        if self.reads is not None:
            self.reads.stop()
        self.session.close()
        try:
            connection = self.engine.raw_connection()
        except DBAPIError:
            pass  # the server is gone: there is nothing to release on it
        else:
            connection.invalidate()
        self.engine.dispose()

    def get_postgres_version(self, dsn: str) -> tuple[str, int]:
        if 'postgres' not in dsn:
            raise errors.LibresAssertionError(
                f'libres supports PostgreSQL only, the dsn names {_url(dsn).drivername}'
            )
        engine = create_engine(_url(dsn), poolclass=pool.NullPool)
        try:
            with engine.connect() as connection:
                version = connection.execute(text('SHOW server_version')).scalar_one()
                number = connection.execute(text('SHOW server_version_num')).scalar_one()
        finally:
            engine.dispose()
        return str(version), int(number)

    def assert_valid_postgres_version(self, dsn: str) -> str:
        version, number = self.get_postgres_version(dsn)
        if number < 90100:
            raise errors.UnsupportedDatabase(f'PostgreSQL 9.1+ is required, got {version}')
        return dsn


def provider_for(context: Context) -> SessionProvider:
    """The default session provider of a context: its ``dsn``, and its
    ``read_dsn`` replicas if it names any."""
    from libres.context import replicas

    provider = SessionProvider(context.get_setting('dsn'))
    read_dsns = replicas.split_dsns(context.get_setting('read_dsn'))
    if read_dsns:
        provider.use_replicas(
            read_dsns,
            fallback=context.get_setting('read_fallback'),
            retry_after=context.get_setting('read_retry_after'),
        )
    return provider
