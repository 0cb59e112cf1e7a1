"""The ``libres`` command (click, with rich for tables and progress).

One module per command group (:mod:`~libres.cli.db`, :mod:`~libres.cli.check`,
:mod:`~libres.cli.embedded`), registered on the root group in
:mod:`~libres.cli.app`. A new group follows the same pattern: a click group
whose commands take :func:`~libres.cli.group.common_options` (``--json``,
``--debug``) and, if they need a database,
:func:`~libres.cli.target.database_options` with
:func:`~libres.cli.target.resolve`; expected failures are raised as
:class:`~libres.cli.errors.CommandError` subclasses, which the root group
turns into one line and an exit code.
"""

from __future__ import annotations

from libres.cli.app import main

__all__ = ('main',)

if __name__ == '__main__':  # pragma: no cover
    main()
