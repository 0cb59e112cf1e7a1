"""Each public write method alone, committed by the host's transaction manager.

The session is joined to ``transaction`` through ``zope.sqlalchemy``, which
commits a session only if its ORM events showed a change: a write the
session machinery does not see is silently rolled back at
``transaction.commit()``. The setup of each case is committed first; the
method then runs alone in a fresh transaction.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import transaction
from sqlalchemy.orm import Session

from libres.db.scheduler import Scheduler

from .cases import WRITE_CASES
from .support import BulkStatements, NoSavepointDataManager, WriteCase, commit_setup

CASES = [pytest.param(case, id=case.name) for case in WRITE_CASES]
UNIT_OF_WORK_CASES = [pytest.param(case, id=case.name) for case in WRITE_CASES if not case.bulk_in_1_4_0]
BULK_CASES = [pytest.param(case, id=case.name) for case in WRITE_CASES if case.bulk_in_1_4_0]


@pytest.mark.parametrize('case', CASES)
def test_write_is_committed_by_transaction_commit(
    case: WriteCase, host_scheduler: Scheduler, host_session: Session, outside: sa.Engine
) -> None:
    state = case.setup(host_scheduler)
    commit_setup(host_session)

    case.act(host_scheduler, state)
    transaction.commit()

    case.check(outside, host_scheduler, state)


@pytest.mark.parametrize('case', UNIT_OF_WORK_CASES)
def test_write_passes_beside_a_data_manager_without_savepoints(
    case: WriteCase, host_scheduler: Scheduler, host_session: Session, outside: sa.Engine,
    bulk_listener: BulkStatements, file_manager: NoSavepointDataManager,
) -> None:
    """1.4.0 ran these methods through the unit of work: the host's listener
    never takes a savepoint, so an uploaded file in the same transaction
    does no harm."""
    bulk_listener.take_savepoint = False
    state = case.setup(host_scheduler)
    commit_setup(host_session)
    bulk_listener.seen.clear()
    bulk_listener.take_savepoint = True

    transaction.get().join(file_manager)
    case.act(host_scheduler, state)
    transaction.commit()

    assert bulk_listener.seen == []
    assert file_manager.committed
    case.check(outside, host_scheduler, state)


@pytest.mark.parametrize('case', BULK_CASES)
def test_bulk_statement_kept_from_1_4_0_reaches_the_host_listener(
    case: WriteCase, host_scheduler: Scheduler, host_session: Session, outside: sa.Engine,
    bulk_listener: BulkStatements, file_manager: NoSavepointDataManager,
) -> None:
    """Documents the methods that 1.4.0 ran as ORM bulk statements (the
    spec's "bulk-delete" steps): the host's listener sees them and, with a
    data manager without savepoints joined, refuses them as it did with
    1.4.0. Without that data manager the method commits."""
    bulk_listener.take_savepoint = False
    state = case.setup(host_scheduler)
    commit_setup(host_session)
    bulk_listener.seen.clear()
    bulk_listener.take_savepoint = True

    transaction.get().join(file_manager)
    with pytest.raises(TypeError, match='Savepoints unsupported'):
        case.act(host_scheduler, state)
    assert bulk_listener.seen
    transaction.abort()
    assert not file_manager.committed

    # The same call with nothing but the session in the transaction: the
    # listener's savepoint is an SQL savepoint, and the write commits.
    bulk_listener.seen.clear()
    case.act(host_scheduler, state)
    transaction.commit()
    assert bulk_listener.seen
    case.check(outside, host_scheduler, state)
