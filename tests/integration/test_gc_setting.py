"""The library pauses the host's garbage collector only when asked to."""

from __future__ import annotations

import gc
from datetime import datetime

import pytest
from sqlalchemy import event

from libres.db.models import Allocation
from libres.db.scheduler import Scheduler


def _collector_state_while_loading(scheduler: Scheduler) -> set[bool]:
    seen: set[bool] = set()

    def on_load(session: object, instance: object) -> None:
        if isinstance(instance, Allocation):
            seen.add(gc.isenabled())

    session = scheduler.session
    event.listen(session, 'loaded_as_persistent', on_load)
    try:
        session.expunge_all()
        found = scheduler.search_allocations(datetime(2030, 5, 1, 7), datetime(2030, 5, 2, 10))
        assert len(found) == 2
    finally:
        event.remove(session, 'loaded_as_persistent', on_load)
    return seen


@pytest.mark.parametrize(('setting', 'enabled_while_loading'), [(None, True), (True, False)])
def test_search_pauses_the_collector_only_if_the_context_says_so(
    scheduler: Scheduler, setting: bool | None, enabled_while_loading: bool
) -> None:
    scheduler.allocate([(datetime(2030, 5, d, 8), datetime(2030, 5, d, 9)) for d in (1, 2)])
    scheduler.commit()
    if setting is not None:
        scheduler.context.set_setting('pause_gc_during_loads', setting)
    assert _collector_state_while_loading(scheduler) == {enabled_while_loading}
    assert gc.isenabled()
