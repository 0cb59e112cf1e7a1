"""The ``libres`` command: the root group and the groups it is made of."""

from __future__ import annotations

import click

import libres
from libres.cli.check import check
from libres.cli.db import db
from libres.cli.demo import demo
from libres.cli.embedded import embedded
from libres.cli.group import LibresGroup, common_options
from libres.db.rules.cli import rules


@click.group(name='libres', cls=LibresGroup)
@click.version_option(libres.__version__, '--version', '-V', prog_name='libres',
                      message='%(prog)s %(version)s')
@common_options
def main() -> None:
    """Reserve things in a calendar, on PostgreSQL: the schema, its
    integrity, recurring rules, the embedded server and the demo.

    \b
    Exit codes: 0 fine, 1 findings (check; what blocks an upgrade),
    2 usage (wrong arguments, no database given, not confirmed),
    3 cannot connect or not a libres database.
    Errors are one line on stderr; --debug shows the traceback and
    --json makes every answer, errors too, a JSON object on stdout."""


# One module per command group; a new group is one more line here.
main.add_command(db)
main.add_command(check)
main.add_command(embedded)
main.add_command(rules)
main.add_command(demo)
