"""``libres db``: the schema's revision, upgrades and downgrades."""

from __future__ import annotations

import re
import sys
from typing import Any

import click
import sqlalchemy as sa
import sqlalchemy.exc
from alembic.util import CommandError as AlembicError

from libres.cli import errors, preflight
from libres.cli.group import common_options, emit_json, json_mode
from libres.cli.report import plural
from libres.cli.target import LIBRES_TABLES, Target, database_options, libres_tables, resolve
from libres.db import migrate

_RELATIVE = re.compile(r'^-\d+$')


def _note(message: str) -> None:
    click.echo(message, err=True)


def _known() -> list[str]:
    return [revision for revision, _, _ in migrate.history()]


def _known_text() -> str:
    return ', '.join(['base', *_known()]) + f' (head is {migrate.head()})'


def _revision(given: str, *, relative: bool) -> str:
    """``given`` if it names a revision; a bogus one is a usage error."""
    if given in ('head', 'base') or given in _known() or (relative and _RELATIVE.match(given)):
        return given
    raise errors.UsageProblem(f'unknown revision {given!r}: known are {_known_text()}')


def _first_line(description: str) -> str:
    return description.splitlines()[0].rstrip('.') if description else ''


def _target(dsn: str | None, use_embedded: bool, timeout: int, *, writes: bool, action: str) -> Target:
    return resolve(dsn, use_embedded, timeout, writes=writes, action=action, note=_note)


@click.group()
@common_options
def db() -> None:
    """Schema migrations: current, history, upgrade, downgrade."""


@db.command()
@click.argument('revision', default='head', required=False)
@click.option('--revision', 'revision_option', default=None, hidden=True)  # the older spelling
@database_options
@common_options
def upgrade(revision: str, revision_option: str | None, dsn: str | None, use_embedded: bool,
            timeout: int) -> None:
    """Migrate the database up to REVISION (default: head); also takes over
    a database made by libres 1.4.0.

    Rows that the new constraints would refuse (overlapping allocations, say)
    are named first and nothing is changed; `libres check` lists them all."""
    wanted = _revision(revision_option or revision, relative=False)
    target = _target(dsn, use_embedded, timeout, writes=True, action='db upgrade')
    engine = target.engine()
    blocking = preflight.blockers(engine)
    if blocking:
        raise errors.Blocked(
            f'cannot upgrade {target.shown}: {preflight.summary(blocking)}; nothing was changed',
            hint='see every record with: libres check --dsn URL; fix them, then upgrade again',
            blocking=[{'constraint': b.constraint, 'table': b.table, 'description': b.description,
                       'rows': b.rows} for b in blocking])
    try:
        before = migrate.upgrade(engine, wanted)
    except sqlalchemy.exc.IntegrityError as error:
        raise errors.Blocked(
            f'the upgrade of {target.shown} stopped: {errors.one_line(str(error.orig))}; nothing was changed',
            hint='see the records with: libres check --dsn URL') from error
    except AlembicError as error:
        raise errors.UsageProblem(f'cannot upgrade to {wanted}: {errors.one_line(str(error))}') from None
    after = migrate.current(engine)
    head = migrate.head()
    marker = ' (head)' if after == head else ''
    if json_mode():
        emit_json({'database': target.shown, 'before': before, 'after': after, 'head': head,
                   'changed': before != after})
    elif before == after:
        click.echo(f'already at {after}{marker}: {target.shown}')
    else:
        click.echo(f'upgraded from {before or "an empty database"} to {after}{marker}: {target.shown}')


def _position(revision: str | None) -> int:
    """0 for base, then 1, 2, … along the history."""
    return 0 if revision is None else _known().index(revision) + 1


def _downgrade_target(current: str, wanted: str) -> str | None:
    """The revision ``wanted`` means from ``current`` (None: base)."""
    known = _known()
    if wanted == 'base':
        return None
    if wanted == 'head':
        return migrate.head()
    if _RELATIVE.match(wanted):
        position = _position(current) + int(wanted)
        if position < 0:
            raise errors.UsageProblem(f'cannot go {wanted} from {current}: there are only '
                                      f'{_position(current)} revisions below it')
        return known[position - 1] if position else None
    return wanted


def _what_it_drops(connection: sa.Connection, current: str, target: str | None) -> str:
    undone = [f'{revision} ({_first_line(description)})'
              for revision, _, description in reversed(migrate.history())
              if _position(target) < _position(revision) <= _position(current)]
    text = 'undoes ' + ', '.join(undone)
    if target is None:
        present = libres_tables(connection)
        rows = {table: connection.execute(sa.text(f'SELECT count(*) FROM {table}')).scalar_one()
                for table in LIBRES_TABLES if table in present}
        counts = ', '.join(f'{table} ({plural(number, "row")})' for table, number in rows.items())
        text += f' and drops the tables {counts} with all their data'
    return text


# Unknown options pass as REVISION, so that -1 is a revision, not an option.
@db.command(context_settings={'ignore_unknown_options': True})
@click.argument('revision')
@click.option('--yes', '-y', is_flag=True, help='Do not ask before dropping the invariants or the data.')
@database_options
@common_options
def downgrade(revision: str, yes: bool, dsn: str | None, use_embedded: bool, timeout: int) -> None:
    """Migrate the database down to REVISION (an id, -1, or base).

    Going below 0002 removes what PostgreSQL enforces; base removes every
    libres table and its data. Both ask first (or take --yes)."""
    wanted = _revision(revision, relative=True)
    target = _target(dsn, use_embedded, timeout, writes=True, action='db downgrade')
    engine = target.engine()
    with engine.connect() as connection:
        current = migrate.current(connection)
        if current is None:
            raise errors.Unavailable(f'{target.shown} has no libres revision: nothing to downgrade',
                                     hint='libres db current tells what it holds', database=target.shown)
        destination = _downgrade_target(current, wanted)
        if _position(destination) >= _position(current):
            raise errors.UsageProblem(
                f'{wanted} is not below the current revision {current} of {target.shown}')
        drops = _what_it_drops(connection, current, destination)
    shown_destination = destination or 'base'
    if _position(destination) < _position(migrate.INVARIANTS_REVISION) and not yes:
        if not sys.stdin.isatty():
            raise errors.UsageProblem(
                f'not confirmed: going to {shown_destination} {drops}',
                hint='pass --yes to go ahead without a terminal to ask on')
        click.echo(f'Going from {current} to {shown_destination} on {target.shown} {drops}.', err=True)
        if not click.confirm('Go ahead?', default=False, err=True):
            raise errors.UsageProblem('not confirmed: nothing was changed')
    try:
        migrate.downgrade(engine, destination or 'base')
    except AlembicError as error:
        raise errors.UsageProblem(f'cannot downgrade to {wanted}: {errors.one_line(str(error))}') from None
    after = migrate.current(engine)
    if json_mode():
        emit_json({'database': target.shown, 'before': current, 'after': after, 'undone': drops})
    else:
        click.echo(f'downgraded from {current}; now at {after or "base"}: {target.shown}')


def _state(connection: sa.Connection, revision: str | None, head: str) -> str:
    if revision == head:
        return 'head'
    if revision is not None:
        return f'head is {head}: libres db upgrade'
    if libres_tables(connection):
        return 'libres 1.4.0 or unversioned tables: libres db upgrade takes them over'
    return 'no libres tables'


@db.command()
@database_options
@common_options
def current(dsn: str | None, use_embedded: bool, timeout: int) -> None:
    """Show the revision of the database, whether it is the newest (head),
    and which database it is."""
    target = _target(dsn, use_embedded, timeout, writes=False, action='db current')
    engine = target.engine()
    head = migrate.head()
    with engine.connect() as connection:
        revision = migrate.current(connection)
        state = _state(connection, revision, head)
    if json_mode():
        emit_json({'revision': revision, 'head': head, 'at_head': revision == head, 'state': state,
                   'database': target.shown})
    else:
        click.echo(f'{revision or "none"} ({state})  {target.shown}')


@db.command()
@common_options
def history() -> None:
    """List the revisions, oldest first."""
    newest = migrate.head()
    rows: list[dict[str, Any]] = [
        {'revision': revision, 'down_revision': down, 'head': revision == newest,
         'description': _first_line(description)}
        for revision, down, description in migrate.history()
    ]
    if json_mode():
        emit_json(rows)
        return
    for row in rows:
        marker = ' (head)' if row['head'] else ''
        click.echo(f'{row["revision"]}{marker}  {row["description"]}')
