"""A count of what a session did: statements run, flushes, ended transactions.

Two equal readings mean nothing went through the session in between: what
it read at the first is still what the database (one SERIALIZABLE snapshot,
plus the session's own flushed writes) would answer at the second. That lets
``approve_reservations`` reuse the checks ``reserve`` just made instead of
querying the same allocations again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

_KEY = 'libres.activity'


def _bump(session: Session) -> None:
    session.info[_KEY] += 1


def _on_execute(state: ORMExecuteState) -> None:
    _bump(state.session)


def _on_flush_or_end(session: Session, *_: Any) -> None:
    _bump(session)


def activity(session: Session) -> int:
    """The session's count; the first reading starts counting."""
    if _KEY not in session.info:
        session.info[_KEY] = 0
        event.listen(session, 'do_orm_execute', _on_execute)
        event.listen(session, 'after_flush', _on_flush_or_end)
        event.listen(session, 'after_transaction_end', _on_flush_or_end)
    return int(session.info[_KEY])
