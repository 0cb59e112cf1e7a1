"""Which database a command works on, and connecting to it.

``--dsn`` (else ``$LIBRES_DSN``) names a PostgreSQL URL; ``--embedded``
asks for the embedded server. Without either, a command that only reads
uses the embedded server if one has been set up, and says so on stderr; a
command that writes refuses to guess, since a forgotten variable in
production must not look like success.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

import click
import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.engine import URL, make_url

from libres import embedded
from libres.cli import errors
from libres.db import migrate

F = TypeVar('F', bound=Callable[..., Any])

DRIVERS = ('psycopg', 'psycopg2')
DEFAULT_TIMEOUT = 10
LIBRES_TABLES = ('allocations', 'reserved_slots', 'reservations', 'reservation_blockers')


def database_options(function: F) -> F:
    """Add ``--dsn``, ``--embedded`` and ``--timeout`` to a command."""
    for option in reversed((
        click.option('--dsn', metavar='URL', default=None,
                     help='PostgreSQL URL, e.g. postgresql://user@host:5432/db (default: $LIBRES_DSN).'),
        click.option('--embedded', 'use_embedded', is_flag=True,
                     help='Use the embedded server ($LIBRES_EMBEDDED_DATA), starting it if needed.'),
        click.option('--timeout', type=click.IntRange(min=1), default=DEFAULT_TIMEOUT, show_default=True,
                     metavar='SECONDS', help='Give up connecting after this many seconds.'),
    )):
        function = option(function)
    return function


def shown(url: URL) -> str:
    """The URL for people: no password, the socket directory readable."""
    return unquote(url._replace(password=None).render_as_string(hide_password=False))


def parse(dsn: str) -> URL:
    """The URL if it names PostgreSQL through a driver libres supports."""
    try:
        url = make_url(dsn)
    except sqlalchemy.exc.ArgumentError:
        raise errors.UsageProblem(
            f'not a database URL: {dsn!r} (expected postgresql://user@host:5432/database)') from None
    if url.get_backend_name() != 'postgresql':
        raise errors.UsageProblem(
            f'libres works on PostgreSQL only, not {url.get_backend_name()}: '
            'give a postgresql://, postgresql+psycopg:// or postgresql+psycopg2:// URL')
    if url.get_driver_name() not in DRIVERS:
        raise errors.UsageProblem(
            f'the driver {url.get_driver_name()} is not supported: use postgresql+psycopg:// '
            'or postgresql+psycopg2://')
    return url


@dataclass
class Target:
    """The database a command works on."""

    url: URL
    origin: str  # '--dsn', '$LIBRES_DSN' or 'the embedded server'
    timeout: int = DEFAULT_TIMEOUT

    @property
    def shown(self) -> str:
        return shown(self.url)

    def engine(self) -> sa.Engine:
        """An engine, once a first connection has shown the server answers."""
        try:
            engine = migrate.engine_for(self.url.render_as_string(hide_password=False), self.timeout)
        except ImportError as error:
            raise errors.UsageProblem(
                f'the {self.url.get_driver_name()} driver is not installed ({error.name} is missing): '
                "pip install 'libres[psycopg2]' or use a postgresql+psycopg:// URL") from None
        try:
            with engine.connect() as connection:
                connection.execute(sa.text('SELECT 1'))
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as error:
            raise errors.Unavailable(
                f'cannot connect to {self.shown}: {_reason(error, self.timeout)}',
                database=self.shown) from error
        return engine


def _reason(error: sqlalchemy.exc.DBAPIError, timeout: int) -> str:
    """The driver's reason, without the boilerplate around it."""
    lines = [line.strip() for line in str(error.orig).splitlines() if line.strip()] or ['no reason given']
    # libpq (through psycopg or psycopg2) says where it tried, then why,
    # then perhaps a hint on the next line.
    first = lines[0]
    reason = first.rpartition(' failed: ')[2] if ' failed: ' in first else first
    reason = reason.removeprefix('FATAL:').strip()
    if 'timeout expired' in reason:
        return f'no answer within {timeout} s (is it a PostgreSQL server? --timeout changes the wait)'
    hints = [line for line in lines[1:] if not line.startswith(('Multiple connection', '- host'))]
    reason = reason[:1].lower() + reason[1:]
    return f'{reason} ({" ".join(hints)[:1].lower()}{" ".join(hints)[1:]})' if hints else reason


def _embedded(database: str, *, initialise: bool) -> str:
    directory = embedded.default_data_dir()
    if not initialise and not embedded.is_initialised(directory):
        raise errors.UsageProblem(
            f'no database given and no embedded server in {directory}: '
            'pass --dsn URL, set $LIBRES_DSN, or --embedded to set one up')
    try:
        return embedded.start(directory, database)
    except embedded.NotInstalled as error:
        raise errors.UsageProblem(str(error)) from None
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        raise errors.Unavailable(
            f'could not start the embedded server in {directory}: {errors.one_line(str(error))}',
            hint=f'its log is {directory / "log"}') from None


def resolve(dsn: str | None, use_embedded: bool, timeout: int, *, writes: bool, action: str,
            note: Callable[[str], None]) -> Target:
    """The database the options name; ``writes`` refuses to fall back to the
    embedded server unasked. ``note`` receives the line saying that it did."""
    given = dsn or None
    origin = '--dsn'
    if given is None and os.environ.get('LIBRES_DSN'):
        given, origin = os.environ['LIBRES_DSN'], '$LIBRES_DSN'
    if given is not None and use_embedded:
        raise errors.UsageProblem(f'{origin} and --embedded exclude each other: give one')
    if given is not None:
        return Target(parse(given), origin, timeout)
    if use_embedded:
        return Target(make_url(_embedded(embedded.DEFAULT_DATABASE, initialise=True)),
                      'the embedded server', timeout)
    if writes:
        raise errors.UsageProblem(
            f'{action} needs a database: pass --dsn URL, set $LIBRES_DSN, '
            'or --embedded for the embedded server',
            hint='libres never writes to the embedded server unless asked')
    url = make_url(_embedded(embedded.DEFAULT_DATABASE, initialise=False))
    note(f'No --dsn and no $LIBRES_DSN: reading the embedded server in {embedded.default_data_dir()} '
         f'(database {url.database}).')
    return Target(url, 'the embedded server', timeout)


def libres_tables(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names()) & set(LIBRES_TABLES)


def require_libres_tables(engine: sa.Engine, target: Target) -> None:
    """Refuse a database without the libres tables (exit code 3)."""
    with engine.connect() as connection:
        found = libres_tables(connection)
    if found == set(LIBRES_TABLES):
        return
    if not found:
        raise errors.Unavailable(
            f'{target.shown} is not a libres database (no libres tables)',
            hint='create the schema with: libres db upgrade --dsn URL', database=target.shown)
    missing = ', '.join(sorted(set(LIBRES_TABLES) - found))
    raise errors.Unavailable(f'{target.shown} is not a complete libres database: {missing} missing',
                             database=target.shown)
