"""``libres rules``: run the rules from cron.

    libres rules extend [--until 2031-12-31] [--dsn postgresql://…]

Extends the rules of every resource in the database up to ``--until`` (the
end of that day) or each rule's horizon, with a progress bar. Idempotent:
run it nightly; two runs at once make every occurrence once.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from libres.db.rules import cron

DSN_HELP = 'PostgreSQL URL (default: $LIBRES_DSN, else the embedded server)'


def _dsn(given: str | None) -> str:
    if given:
        return given
    if os.environ.get('LIBRES_DSN'):
        return os.environ['LIBRES_DSN']
    from libres import embedded

    return embedded.start()


@click.group('rules')
def rules() -> None:
    """Recurring availability rules."""


@rules.command('extend')
@click.option('--until', type=click.DateTime(formats=['%Y-%m-%d']), default=None,
              help='make allocations up to the end of this day (default: each rule\'s horizon)')
@click.option('--dsn', default=None, help=DSN_HELP)
def extend(until: datetime | None, dsn: str | None) -> None:
    """Make the allocations of every rule of every resource; exit code 1 if
    a resource failed."""
    url = _dsn(dsn)
    console = Console(stderr=True)
    found = cron.owners(url)
    failed: list[cron.Outcome] = []
    created = 0
    columns = (TextColumn('{task.description}'), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=not console.is_terminal) as progress:
        task = progress.add_task('extending rules', total=len(found))
        for outcome in cron.extend_all(url, until.date() if until else None, found):
            created += outcome.created
            if outcome.error:
                failed.append(outcome)
            progress.update(task, advance=1, description=f'{outcome.owner.context}/{outcome.owner.scheduler}')
    for outcome in failed:
        owner = outcome.owner
        click.echo(f'{owner.context}/{owner.scheduler}: {outcome.error}', err=True)
    click.echo(f'{created} allocations made for {len(found)} resources'
               + (f', {len(failed)} failed' if failed else ''))
    sys.exit(1 if failed else 0)
