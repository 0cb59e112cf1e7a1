"""The ``libres`` command: migrations and integrity checks.

``--dsn`` defaults to the environment variable ``LIBRES_DSN`` and, without
it, to the embedded server (``libres[embedded]``).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime

import click
from sqlalchemy.orm import Session

from libres import integrity
from libres.db import migrate

DSN_HELP = 'PostgreSQL URL (default: $LIBRES_DSN, else the embedded server)'


def _dsn(given: str | None) -> str:
    if given:
        return given
    if os.environ.get('LIBRES_DSN'):
        return os.environ['LIBRES_DSN']
    from libres import embedded

    return embedded.start()


dsn_option = click.option('--dsn', default=None, help=DSN_HELP)


@click.group()
def main() -> None:
    """Reserve things in a calendar, on PostgreSQL."""


@main.group()
def db() -> None:
    """Schema migrations."""


@db.command()
@dsn_option
@click.option('--revision', default='head', show_default=True)
def upgrade(dsn: str | None, revision: str) -> None:
    """Migrate the database (also one made by libres 1.4.0)."""
    engine = migrate.engine_for(_dsn(dsn))
    before = migrate.upgrade(engine, revision)
    after = migrate.current(engine)
    if before == after:
        click.echo(f'already at {after}')
    else:
        click.echo(f'upgraded from {before or "an empty database"} to {after}')


@db.command()
@dsn_option
@click.argument('revision')
def downgrade(dsn: str | None, revision: str) -> None:
    """Migrate down to REVISION ('base' removes every libres table)."""
    engine = migrate.engine_for(_dsn(dsn))
    migrate.downgrade(engine, revision)
    click.echo(f'now at {migrate.current(engine) or "base"}')


@db.command()
@dsn_option
def current(dsn: str | None) -> None:
    """Show the revision of the database."""
    click.echo(migrate.current(migrate.engine_for(_dsn(dsn))) or 'none')


@db.command()
def history() -> None:
    """List the revisions, oldest first."""
    newest = migrate.head()
    for revision, _, description in migrate.history():
        marker = ' (head)' if revision == newest else ''
        click.echo(f'{revision}{marker}  {description.splitlines()[0] if description else ""}')


@main.command()
@dsn_option
@click.option('--repair', is_flag=True, help='fix what can be fixed without guessing')
@click.option('--json', 'as_json', is_flag=True, help='machine-readable output')
@click.option('--expired-before', type=click.DateTime(), default=None,
              help='carts idle since before this UTC time count as expired (default: 15 minutes ago)')
def check(dsn: str | None, repair: bool, as_json: bool, expired_before: datetime | None) -> None:
    """Report corrupt records per resource; exit code 1 if any are found."""

    expired = expired_before.replace(tzinfo=UTC) if expired_before else None
    engine = migrate.engine_for(_dsn(dsn))
    with Session(engine) as session:
        if repair:
            report = integrity.repair(session, expired)
            session.commit()
        else:
            report = integrity.check(session, expired)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.render())
    sys.exit(0 if report.clean else 1)


if __name__ == '__main__':  # pragma: no cover
    main()
