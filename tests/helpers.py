"""Helpers shared by the test modules: types of the fixtures, local times."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from libres.db.scheduler import Scheduler

#: The ``count_rows`` fixture: row counts of the four tables, read outside
#: the test's transaction.
CountRows = Callable[[], dict[str, int]]


def explain_reads(
    scheduler: Scheduler, action: Callable[[], Any], explain: str = 'EXPLAIN',
    kinds: tuple[str, ...] = ('SELECT',),
) -> list[tuple[str, str]]:
    """(SQL, plan) of every read statement ``action`` sends through the
    scheduler's engine, explained afterwards with its own parameters."""
    engine = scheduler.session.get_bind().engine
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if sql.lstrip().upper().startswith(kinds) and not many:
            sent.append((sql, params))

    event.listen(engine, 'before_cursor_execute', capture)
    try:
        action()
    finally:
        event.remove(engine, 'before_cursor_execute', capture)
    cursor = scheduler.session.connection().connection.cursor()
    plans = []
    for sql, params in sent:
        cursor.execute(f'{explain} {sql}', params)
        plans.append((sql, '\n'.join(row[0] for row in cursor.fetchall())))
    return plans
