"""The idle memo lives exactly as long as nothing goes through the session."""

from __future__ import annotations

from sqlalchemy import select, text

from libres.db.booking.fast_path import activity, idle_memo
from libres.db.scheduler import Scheduler


def test_the_memo_survives_idleness_only(scheduler: Scheduler) -> None:
    session = scheduler.session
    idle_memo(session)['read'] = 1
    assert idle_memo(session) == {'read': 1}

    session.execute(select(1))
    assert idle_memo(session) == {}

    idle_memo(session)['read'] = 2
    session.flush()  # nothing to flush: no flush event, the memo stays
    assert idle_memo(session) == {'read': 2}
    session.commit()
    assert idle_memo(session) == {}

    session.execute(select(1))  # a transaction begins
    idle_memo(session)['read'] = 3
    session.rollback()
    assert idle_memo(session) == {}


def test_every_statement_counts(scheduler: Scheduler) -> None:
    session = scheduler.session
    before = activity(session)
    session.execute(text('SELECT 1'))
    session.scalars(select(1)).all()
    assert activity(session) == before + 2
