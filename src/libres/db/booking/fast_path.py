"""Everything the booking engine remembers between two calls.

A ``reserve`` followed by ``approve_reservations`` of the same fresh token
is the common case, and the approval would read again exactly what the
reservation just read. What is kept, all of it in ``session.info`` of the
caller's session (documented in docs/architecture.md):

* ``libres.fresh_tokens``: tokens ``reserve`` made in this session and that
  cannot have stored rows yet (at most ``MAX_FRESH_TOKENS``; beyond, the set
  is emptied and approving only looks the rows up);
* ``libres.unwritten_holds``: per token, the objects of a hold ``reserve``
  added and that are not flushed yet (its slots, a mirror row); approving
  before the flush books them in memory (:func:`take_unwritten_hold`);
* ``libres.activity`` and ``libres.idle_memo``: what a reservation read
  (:class:`ReserveChecks`), kept only while the session stays *idle*; three
  listeners on the session (``do_orm_execute``, ``after_flush``,
  ``after_transaction_end``) count its activity.

**The invariant.** A memo entry is used only if, since it was stored,

1. no statement ran through the session, nothing was flushed and no
   transaction ended (the activity count is unchanged); then the database,
   one SERIALIZABLE snapshot plus the session's own flushed writes, still
   answers what it answered; and
2. nothing waits to be flushed but the token's own new rows (no other new,
   changed or deleted object could change the answer once flushed).

:func:`reserve_checks` checks both itself; it relies on no flush elsewhere.
A fresh token is used only by the session that made it, and it is dropped
from the set when its rows are approved. Anything else takes the general
path, which ``tests/integration/test_fast_path_equivalence.py`` proves gives
the same database state and return values.
"""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session

from libres.db.booking.dates import DatePair
from libres.db.booking.spots import MasterView, SpotUsages
from libres.db.models import Reservation

ACTIVITY = 'libres.activity'
IDLE_MEMO = 'libres.idle_memo'
FRESH_TOKENS = 'libres.fresh_tokens'
UNWRITTEN_HOLDS = 'libres.unwritten_holds'
MAX_FRESH_TOKENS = 1000


# --- activity and the idle memo -----------------------------------------------------

def _bump(session: Session) -> None:
    session.info[ACTIVITY] += 1


def _on_execute(state: ORMExecuteState) -> None:
    _bump(state.session)


def _on_flush_or_end(session: Session, *_: Any) -> None:
    _bump(session)


def activity(session: Session) -> int:
    """A count of statements, flushes and ended transactions; the first
    reading starts counting (and attaches the three listeners)."""
    if ACTIVITY not in session.info:
        session.info[ACTIVITY] = 0
        event.listen(session, 'do_orm_execute', _on_execute)
        event.listen(session, 'after_flush', _on_flush_or_end)
        event.listen(session, 'after_transaction_end', _on_flush_or_end)
    return int(session.info[ACTIVITY])


def idle_memo(session: Session) -> dict[Any, Any]:
    """A dict for what the session read, emptied as soon as anything else
    goes through the session. Store a result right after its query.

    Objects added to the session but not flushed are not activity: a read
    that they could change must not be taken from here while they wait
    (:func:`reserve_checks` makes sure of it).
    """
    now = activity(session)
    stored = session.info.get(IDLE_MEMO)
    if stored is None or stored[0] != now:
        stored = session.info[IDLE_MEMO] = (now, {})
    memo: dict[Any, Any] = stored[1]
    return memo


# --- what reserve read ---------------------------------------------------------------

class ReserveChecks(NamedTuple):
    """What ``reserve`` read for a fresh token of one row."""

    dates: list[DatePair]
    views: list[MasterView]  # the own resource's masters overlapping ``dates``
    usages: SpotUsages  # the spots of quota masters read along the way


def remember_reserve_checks(session: Session, token: uuid.UUID, checks: ReserveChecks) -> None:
    """Keep what ``reserve`` just read for the token's one row."""
    idle_memo(session)[ReserveChecks, token] = checks


def _only_own_rows_wait(session: Session, token: uuid.UUID) -> bool:
    if session.dirty or session.deleted:
        return False
    return all(isinstance(row, Reservation) and row.token == token for row in session.new)


def reserve_checks(session: Session, row: Reservation) -> ReserveChecks | None:
    """What ``reserve`` read for this unsaved row, if the invariant above
    holds and what was read covers the row's rastered span."""
    checks: ReserveChecks | None = idle_memo(session).get((ReserveChecks, row.token))
    if checks is None or not _only_own_rows_wait(session, row.token):
        return None
    if row.start is None or row.end is None:
        return None
    if not any(start <= row.start and row.end <= end for start, end in checks.dates):
        return None  # rastering widened the span beyond what was read
    return checks


# --- fresh tokens --------------------------------------------------------------------

def remember_fresh_token(session: Session, token: uuid.UUID) -> None:
    """Note a token made just now, whose rows are all still in ``session.new``."""
    fresh_tokens = session.info.setdefault(FRESH_TOKENS, set())
    if len(fresh_tokens) > MAX_FRESH_TOKENS:
        # Reserved and never approved: forget them; a lookup is only slower.
        fresh_tokens.clear()
    fresh_tokens.add(token)


def take_fresh_token(session: Session, token: uuid.UUID) -> bool:
    """Whether the token was fresh (its rows cannot be stored yet); it is not any more."""
    fresh_tokens: set[uuid.UUID] = session.info.get(FRESH_TOKENS, set())
    if token in fresh_tokens:
        fresh_tokens.discard(token)
        return True
    return False


# --- unwritten holds -----------------------------------------------------------------

def remember_unwritten_hold(session: Session, token: uuid.UUID, added: list[object]) -> None:
    """Note what ``reserve`` added to the session for the token's hold."""
    holds = session.info.setdefault(UNWRITTEN_HOLDS, {})
    if len(holds) > MAX_FRESH_TOKENS:
        holds.clear()  # never approved: forget them; approving only costs statements
    holds[token] = added


def unwritten_hold(session: Session, token: uuid.UUID) -> list[object] | None:
    """The objects of the token's hold if every one still waits to be flushed."""
    added: list[object] | None = session.info.get(UNWRITTEN_HOLDS, {}).get(token)
    if added is None or not all(inspect(item).pending for item in added):
        return None
    return added


def take_unwritten_hold(session: Session, token: uuid.UUID) -> list[object] | None:
    """``unwritten_hold``, forgotten from now on."""
    added = unwritten_hold(session, token)
    session.info.get(UNWRITTEN_HOLDS, {}).pop(token, None)
    return added
