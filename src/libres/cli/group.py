"""The click machinery every ``libres`` command shares.

:class:`LibresGroup` runs a command and turns whatever goes wrong into one
line on stderr and an exit code (see :mod:`libres.cli.errors`); with
``--json`` the error is a JSON object on stdout instead, with ``--debug``
the traceback comes first. ``--json`` and ``--debug`` are accepted both
before the command (``libres --json db current``) and after it.
"""

from __future__ import annotations

import json
import sys
import traceback
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from libres.cli import errors

F = TypeVar('F', bound=Callable[..., Any])

CONTEXT_SETTINGS: dict[str, Any] = {'help_option_names': ['-h', '--help']}
_JSON, _DEBUG = 'libres.json', 'libres.debug'


def _remember(key: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            ctx.find_root().meta[key] = True

    return callback


def common_options(function: F) -> F:
    """Add ``--json`` and ``--debug`` to a command or group."""
    function = click.option(
        '--json', 'json_output', is_flag=True, expose_value=False, is_eager=True,
        callback=_remember(_JSON), help='Machine-readable output on stdout (errors too).',
    )(function)
    return click.option(
        '--debug', is_flag=True, expose_value=False, is_eager=True,
        callback=_remember(_DEBUG), help='Show the traceback when something fails.',
    )(function)


def json_mode() -> bool:
    """Whether the running command was asked for ``--json``."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().meta.get(_JSON))


def _typed(value: Any) -> Any:
    # Integers stay numbers; UUIDs become strings, times ISO 8601 with their
    # offset (naive ones come from the database and are UTC).
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    raise TypeError(f'{type(value).__name__} is not JSON serialisable')


def emit_json(data: Any, *, compact: bool = False) -> None:
    """``data`` as JSON on stdout (``compact``: on one line)."""
    click.echo(json.dumps(data, indent=None if compact else 2, ensure_ascii=False, default=_typed))


def _asked(argv: Sequence[str], flag: str) -> bool:
    # Read from the arguments: a failure may come before click saw the flag.
    words = list(argv)
    return flag in (words[:words.index('--')] if '--' in words else words)


def _translate(error: BaseException) -> errors.CommandError:
    """The expected failure behind an exception raised below a command."""
    import sqlalchemy.exc
    from alembic.util import CommandError as AlembicError

    from libres.modules.errors import LibresError

    if isinstance(error, errors.CommandError):
        return error
    if isinstance(error, click.UsageError):
        where = f" (see '{error.ctx.command_path} -h')" if error.ctx is not None else ''
        return errors.UsageProblem(errors.one_line(error.format_message()) + where)
    if isinstance(error, click.ClickException):
        return errors.UsageProblem(errors.one_line(error.format_message()))
    if isinstance(error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
        return errors.Unavailable(f'lost the database: {errors.one_line(str(error.orig))}')
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        return errors.Unavailable(f'the database refused: {errors.one_line(str(error.orig))}')
    if isinstance(error, AlembicError):
        return errors.UsageProblem(errors.one_line(str(error)))
    if isinstance(error, LibresError):
        return errors.UsageProblem(f'{type(error).__name__}: {errors.one_line(str(error))}')
    problem = errors.CommandError(
        f'unexpected {type(error).__name__}: {errors.one_line(str(error))}',
        hint='this is a bug in libres: run again with --debug and report the traceback',
    )
    return problem


def show_error(problem: errors.CommandError, *, as_json: bool) -> None:
    if as_json:
        extra = {'hint': problem.hint} if problem.hint else {}
        emit_json({'error': problem.message, 'exit_code': problem.exit_code, **extra, **problem.data},
                  compact=True)
        return
    click.echo(f'Error: {problem.message}', err=True)
    if problem.hint:
        click.echo(f'Hint: {problem.hint}', err=True)


class LibresGroup(click.Group):
    """A group whose ``main`` reports errors the ``libres`` way."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs['context_settings'] = {**CONTEXT_SETTINGS, **(kwargs.get('context_settings') or {})}
        super().__init__(*args, **kwargs)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else errors.OK
        except click.Abort:
            click.echo('Aborted.', err=True)
            code = 130
        except Exception as error:  # every failure becomes one line and an exit code
            if _asked(argv, '--debug'):
                traceback.print_exception(error, file=sys.stderr)
            problem = _translate(error)
            show_error(problem, as_json=_asked(argv, '--json'))
            code = problem.exit_code
        if standalone_mode:
            sys.exit(code)
        return code
