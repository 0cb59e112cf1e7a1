"""``libres rules``: run the rules from cron.

    libres rules extend [--until 2031-12-31] [--dsn postgresql://…]

Extends the rules of every resource in the database up to ``--until`` (the
end of that day) or each rule's horizon, with a progress bar. Idempotent:
run it nightly; two runs at once make every occurrence once. It writes, so
it never falls back to the embedded server unasked (``--embedded``), like
every writing command of ``libres``.
"""

from __future__ import annotations

from datetime import datetime

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from libres.cli import errors
from libres.cli.group import common_options, emit_json, json_mode
from libres.cli.target import database_options, require_libres_tables, resolve
from libres.db.rules import cron


@click.group('rules')
@common_options
def rules() -> None:
    """Recurring availability rules."""


@rules.command('extend')
@database_options
@click.option('--until', type=click.DateTime(formats=['%Y-%m-%d']), default=None,
              help="make allocations up to the end of this day (default: each rule's horizon)")
@common_options
def extend(dsn: str | None, use_embedded: bool, timeout: int, until: datetime | None) -> None:
    """Make the allocations of every rule of every resource; exit code 1 if
    a resource failed."""
    target = resolve(dsn, use_embedded, timeout, writes=True, action='rules extend',
                     note=lambda line: click.echo(line, err=True))
    require_libres_tables(target.engine(), target)
    url = target.url.render_as_string(hide_password=False)
    console = Console(stderr=True)
    found = cron.owners(url)
    failed: list[cron.Outcome] = []
    created = 0
    columns = (TextColumn('{task.description}'), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=not console.is_terminal,
                  disable=not console.is_terminal) as progress:
        task = progress.add_task('extending rules', total=len(found))
        for outcome in cron.extend_all(url, until.date() if until else None, found):
            created += outcome.created
            if outcome.error:
                failed.append(outcome)
            progress.update(task, advance=1, description=f'{outcome.owner.context}/{outcome.owner.scheduler}')
    failures = [{'resource': f'{o.owner.context}/{o.owner.scheduler}', 'error': str(o.error)} for o in failed]
    if json_mode():
        emit_json({'created': created, 'resources': len(found), 'failed': failures})
    else:
        for failure in failures:
            click.echo(f"{failure['resource']}: {failure['error']}", err=True)
        resources = f'{len(found)} resource' + ('' if len(found) == 1 else 's')
        made = f'{created} allocation' + ('' if created == 1 else 's')
        click.echo(f'{made} made for {resources}' + (f', {len(failed)} failed' if failed else ''))
    if failed:
        click.get_current_context().exit(errors.FINDINGS)
