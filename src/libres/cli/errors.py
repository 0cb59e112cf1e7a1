"""Exit codes and the expected failures of the ``libres`` command.

Every failure a user can cause or meet (a wrong URL, a server that does not
answer, a bogus revision) is a :class:`CommandError`: the command prints its
message on one line and exits with its code. Anything else is a bug.
"""

from __future__ import annotations

from typing import Any

OK = 0
FINDINGS = 1  # ``check`` found corrupt records, or they block ``db upgrade``
USAGE = 2  # wrong arguments, a refused URL, no database given, not confirmed
UNAVAILABLE = 3  # cannot connect, or not a libres database
INTERNAL = 4  # a bug in libres: run with --debug and report it


class CommandError(Exception):
    """An expected failure: ``message`` is shown on one line, ``hint`` (if
    any) on a second; ``data`` is added to the JSON form of the error."""

    exit_code = INTERNAL

    def __init__(self, message: str, hint: str | None = None, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.data = data


class UsageProblem(CommandError):
    """The command cannot run as given (exit code 2)."""

    exit_code = USAGE


class Unavailable(CommandError):
    """The database cannot be reached or is not a libres database (exit code 3)."""

    exit_code = UNAVAILABLE


class Blocked(CommandError):
    """Records in the database stop the command (exit code 1)."""

    exit_code = FINDINGS


def one_line(text: str) -> str:
    """Collapse a (driver's) multi-line message into one line."""
    return ' '.join(part.strip() for part in text.splitlines() if part.strip())
