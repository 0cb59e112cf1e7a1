"""Helpers shared by the test modules: types of the fixtures, local times,
the statements a call sends and their plans."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event

from libres.db.scheduler import Scheduler

#: The ``count_rows`` fixture: row counts of the four tables, read outside
#: the test's transaction.
CountRows = Callable[[], dict[str, int]]


def at(hour: int, minute: int = 0, day: int = 1, month: int = 5, year: int = 2030) -> datetime:
    """A naive time, read in the scheduler's zone: by default on 1 May 2030."""
    return datetime(year, month, day, hour, minute)


class Statements(list[tuple[str, Any]]):
    """(SQL, parameters) of each statement sent; ``('COMMIT', None)`` for a commit."""

    @property
    def kinds(self) -> list[str]:
        """The first word of each statement, upper case (``SELECT``, ``INSERT``, ``COMMIT``)."""
        return [sql.split(None, 1)[0].upper() for sql, _ in self]


@contextmanager
def captured_statements(scheduler: Scheduler, commits: bool = False) -> Iterator[Statements]:
    """Every statement the scheduler's engine sends inside the block (and
    every commit, if asked)."""
    engine = scheduler.session.get_bind().engine
    sent = Statements()

    def statement(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        sent.append((sql, params))

    def commit(conn: Any) -> None:
        sent.append(('COMMIT', None))

    event.listen(engine, 'before_cursor_execute', statement)
    if commits:
        event.listen(engine, 'commit', commit)
    try:
        yield sent
    finally:
        event.remove(engine, 'before_cursor_execute', statement)
        if commits:
            event.remove(engine, 'commit', commit)


def explain_reads(
    scheduler: Scheduler, action: Callable[[], Any], explain: str = 'EXPLAIN',
    kinds: tuple[str, ...] = ('SELECT',),
) -> list[tuple[str, str]]:
    """(SQL, plan) of every read statement ``action`` sends through the
    scheduler's engine, explained afterwards with its own parameters."""
    with captured_statements(scheduler) as sent:
        action()
    sent = Statements(
        (sql, params) for sql, params in sent
        if sql.lstrip().upper().startswith(kinds) and not isinstance(params, list)
    )
    cursor = scheduler.session.connection().connection.cursor()
    plans = []
    for sql, params in sent:
        cursor.execute(f'{explain} {sql}', params)
        plans.append((sql, '\n'.join(row[0] for row in cursor.fetchall())))
    return plans


class Clock:
    """A clock for ``libres.modules.clock`` that the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by
