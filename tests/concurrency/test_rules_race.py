"""Two processes extending the same rules at once make every occurrence once."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from libres.context.core import Context
from libres.context.registry import create_default_registry
from libres.db.scheduler import Scheduler
from tests.concurrency import rule_workers
from tests.concurrency.test_races import assert_clean

pytestmark = pytest.mark.concurrency
NAMES = ['hall', 'studio', 'court']
UNTIL = date(2031, 12, 31)


def test_two_extensions_at_once_make_each_occurrence_once(
    context: Context, dsn: str, admin_engine: sa.Engine,
) -> None:
    registry = create_default_registry()
    race_context = registry.register_context('race')
    race_context.set_setting('dsn', context.get_setting('dsn'))
    race_context.set_service('session_provider', lambda _: context.get_service('session_provider'))
    schedulers = [Scheduler(race_context, name, 'Europe/Zurich') for name in NAMES]
    for scheduler in schedulers:
        scheduler.add_rule('FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR', datetime(2031, 1, 6, 8),
                           datetime(2031, 1, 6, 12), horizon=timedelta(days=7))
        scheduler.add_rule('FREQ=WEEKLY;BYDAY=MO,WE', datetime(2031, 1, 6, 13),
                           datetime(2031, 1, 6, 17), horizon=timedelta(days=7))
    schedulers[0].commit()
    before = {s.name: s.managed_allocations().count() for s in schedulers}

    spawn = multiprocessing.get_context('spawn')
    start_at = time.time() + 3
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        futures = [pool.submit(rule_workers.extend, dsn, order, UNTIL, start_at)
                   for order in (NAMES, list(reversed(NAMES)))]
        results = [future.result(timeout=300) for future in futures]
    schedulers[0].rollback()

    weekdays = [date(2031, 1, 6) + timedelta(days=n) for n in range((UNTIL - date(2031, 1, 6)).days + 1)]
    mornings = sum(1 for day in weekdays if day.weekday() < 5)
    afternoons = sum(1 for day in weekdays if day.weekday() in (0, 2))
    with admin_engine.connect() as connection:
        duplicates = connection.execute(sa.text(
            'SELECT count(*) FROM (SELECT resource, _start FROM allocations '
            'GROUP BY resource, _start HAVING count(*) > 1) AS twice')).scalar_one()
    assert duplicates == 0
    for scheduler in schedulers:
        assert scheduler.managed_allocations().count() == mornings + afternoons
    assert sum(r['created'] for r in results) == sum(mornings + afternoons - n for n in before.values())
    print(f"rules race: {sum(r['retries'] for r in results)} serialization failures retried")
    assert_clean(dsn)
