"""What a session read, kept only while the session stays idle.

A session is idle between two moments when nothing went through it: no
statement, no flush, no end of a transaction. What it read at the first is
then still what the database (one SERIALIZABLE snapshot, plus the session's
own flushed writes) would answer at the second. ``approve_reservations``
uses this to reuse what ``reserve`` just read instead of reading it again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

_COUNT = 'libres.activity'
_MEMO = 'libres.idle_memo'


def _bump(session: Session) -> None:
    session.info[_COUNT] += 1


def _on_execute(state: ORMExecuteState) -> None:
    _bump(state.session)


def _on_flush_or_end(session: Session, *_: Any) -> None:
    _bump(session)


def activity(session: Session) -> int:
    """A count of statements, flushes and ended transactions; the first
    reading starts counting."""
    if _COUNT not in session.info:
        session.info[_COUNT] = 0
        event.listen(session, 'do_orm_execute', _on_execute)
        event.listen(session, 'after_flush', _on_flush_or_end)
        event.listen(session, 'after_transaction_end', _on_flush_or_end)
    return int(session.info[_COUNT])


def idle_memo(session: Session) -> dict[Any, Any]:
    """A dict for what the session read, emptied as soon as anything else
    goes through the session. Store a result right after its query.

    Objects added to the session but not flushed are not activity: a read
    that they could change must not be taken from here while they wait.
    """
    now = activity(session)
    stored = session.info.get(_MEMO)
    if stored is None or stored[0] != now:
        stored = session.info[_MEMO] = (now, {})
    memo: dict[Any, Any] = stored[1]
    return memo
