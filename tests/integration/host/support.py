"""Pieces of a host application that runs libres inside a transaction manager.

They copy the habits of our biggest user: a ``transaction`` manager with the
session joined through ``zope.sqlalchemy``, a data manager without savepoints
(an uploaded file, say) in the same transaction, and a session listener that
takes a savepoint for every ORM bulk UPDATE or DELETE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import transaction
from sqlalchemy.orm import ORMExecuteState, Session
from zope.sqlalchemy import mark_changed

from libres.db.scheduler import Scheduler


class NoSavepointDataManager:
    """A data manager that cannot take savepoints (it has no ``savepoint``).

    ``transaction.savepoint()`` refuses any transaction it has joined with
    ``TypeError: ('Savepoints unsupported', <the data manager>)``.
    """

    def __init__(self) -> None:
        self.transaction_manager = transaction.manager
        self.calls: list[str] = []

    def abort(self, txn: transaction.Transaction) -> None:
        self.calls.append('abort')

    def tpc_begin(self, txn: transaction.Transaction) -> None:
        self.calls.append('tpc_begin')

    def commit(self, txn: transaction.Transaction) -> None:
        self.calls.append('commit')

    def tpc_vote(self, txn: transaction.Transaction) -> None:
        self.calls.append('tpc_vote')

    def tpc_finish(self, txn: transaction.Transaction) -> None:
        self.calls.append('tpc_finish')

    def tpc_abort(self, txn: transaction.Transaction) -> None:
        self.calls.append('tpc_abort')

    def sortKey(self) -> str:  # the name IDataManager requires
        return 'host-files'

    @property
    def committed(self) -> bool:
        return 'tpc_finish' in self.calls


@dataclass(eq=False)  # hashable: SQLAlchemy keeps listeners in sets
class BulkStatements:
    """A session listener that takes a savepoint on each ORM bulk UPDATE or
    DELETE, as the host application does, and remembers what it saw."""

    seen: list[str] = field(default_factory=list)
    take_savepoint: bool = True

    def __call__(self, state: ORMExecuteState) -> None:
        if state.is_update or state.is_delete:
            kind = 'UPDATE' if state.is_update else 'DELETE'
            mapper = state.bind_mapper
            self.seen.append(f'{kind} {mapper.class_.__name__ if mapper is not None else "?"}')
            if self.take_savepoint:
                transaction.savepoint()


def commit_setup(session: Session) -> None:
    """Commit setup data through the transaction manager, whatever the
    library did to the session (the setup is not what a test checks)."""
    mark_changed(session)
    transaction.commit()


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    """One value read on a connection of its own, outside the host's transaction."""
    with engine.connect() as connection:
        return connection.execute(sa.text(sql), params).scalar_one()


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text(sql), params))


def count(engine: sa.Engine, table: str, where: str = 'true', **params: Any) -> int:
    return int(scalar(engine, f'SELECT count(*) FROM {table} WHERE {where}', **params))


def resource_of(scheduler: Scheduler) -> str:
    return str(scheduler.resource)


@dataclass
class WriteCase:
    """One public write method, called alone in a fresh transaction.

    ``setup`` prepares (and the fixture commits) what the method needs and
    returns it; ``act`` calls the method; ``check`` reads the database from
    another connection afterwards. ``bulk_in_1_4_0`` marks the methods that
    libres 1.4.0 ran as an ORM bulk statement (the spec's "bulk-delete"
    steps): there the host's savepoint listener fires, as it did with 1.4.0.
    """

    name: str
    setup: Callable[[Scheduler], dict[str, Any]]
    act: Callable[[Scheduler, dict[str, Any]], Any]
    check: Callable[[sa.Engine, Scheduler, dict[str, Any]], None]
    bulk_in_1_4_0: bool = False
