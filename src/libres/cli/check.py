"""``libres check``: corrupt records per resource, repaired on request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session

from libres import integrity
from libres.cli import errors, report
from libres.cli.group import common_options, emit_json, json_mode
from libres.cli.names import ResourceName, names_by_resource
from libres.cli.target import LIBRES_TABLES, database_options, require_libres_tables, resolve

# Above this many rows (PostgreSQL's estimate) a terminal gets a progress bar.
LARGE = 100_000


class Moment(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 date or time, with or without an offset (without: UTC)."""

    name = 'DATE|DATETIME'

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f'{value!r} is not an ISO date or time (e.g. 2030-01-31, '
                      '2030-01-31T08:00:00+01:00)', param, ctx)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


class Zone(click.ParamType):  # type: ignore[type-arg]
    name = 'ZONE'

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(f'{value!r} is not a time zone (e.g. Europe/Zurich, UTC)', param, ctx)
        return str(value)


def _estimated_rows(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        estimate = connection.execute(sa.text(
            "SELECT coalesce(sum(greatest(reltuples, 0)), 0) FROM pg_class "
            "WHERE relkind = 'r' AND relname = ANY(:tables)"), {'tables': list(LIBRES_TABLES)}).scalar_one()
    return int(estimate)


@contextmanager
def _progress(engine: sa.Engine, steps: int) -> Iterator[Callable[[str], None] | None]:
    """A progress bar on stderr, only for a terminal and a large database."""
    console = Console(stderr=True)
    if not console.is_terminal or _estimated_rows(engine) < LARGE:
        yield None
        return
    columns = (TextColumn('{task.description}'), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task('checking', total=steps)

        def tick(kind: str) -> None:
            progress.update(task, advance=1, description=f'checked {kind.replace("_", " ")}')

        yield tick


@click.command()
@database_options
@click.option('--repair', is_flag=True,
              help='Fix what needs no guessing (orphaned or lost slots, expired carts), then check again.')
@click.option('--expired-before', type=Moment(), default=None,
              help='Carts idle since before this moment count as expired (default: 15 minutes ago).')
@click.option('--name', 'names', type=ResourceName(), multiple=True,
              help="Name a resource in the report by its scheduler's context and name (repeatable).")
@click.option('--uuid-namespace', type=click.UUID, default=None,
              help="The context's uuid_namespace setting, if the application changed it.")
@click.option('--timezone', 'display_zone', type=Zone(), default=None,
              help="Show times in this zone (default: each record's own zone, else UTC).")
@click.option('--all', 'show_all', is_flag=True, help='List every record, not the first 10 of each kind.')
@common_options
def check(dsn: str | None, use_embedded: bool, timeout: int, repair: bool, expired_before: datetime | None,
          names: tuple[tuple[str, str], ...], uuid_namespace: object, display_zone: str | None,
          show_all: bool) -> None:
    """Report corrupt records per resource: exit code 0 if there are none,
    1 if there are (also after --repair, for what is left)."""
    target = resolve(dsn, use_embedded, timeout, writes=repair, action='check --repair',
                     note=lambda line: click.echo(line, err=True))
    engine = target.engine()
    require_libres_tables(engine, target)
    steps = len(integrity.KINDS) * (2 if repair else 1)
    with _progress(engine, steps) as tick, Session(engine) as session:
        if repair:
            found = integrity.repair(session, expired_before, tick)
            session.commit()
        else:
            found = integrity.check(session, expired_before, tick)
    named = names_by_resource(names, uuid_namespace)  # type: ignore[arg-type]
    if json_mode():
        emit_json(report.as_json(found, named, target.shown))
    else:
        report.render(report.console(), found, named, display_zone=display_zone, show_all=show_all,
                      repairing=repair)
    if not found.clean:
        click.get_current_context().exit(errors.FINDINGS)
