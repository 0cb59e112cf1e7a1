"""In-place changes of ``data`` are written, whatever loaded the object.

The column's dict tracks its owners with weak references of its own
(``libres.db.models.types.json_type``) instead of SQLAlchemy's
``WeakKeyDictionary``; these tests pin what that collection must keep doing.
"""

from __future__ import annotations

import gc
from datetime import datetime

from libres.db.models import Allocation
from libres.db.models.types.json_type import TrackedDict
from libres.db.scheduler import Scheduler


def test_an_in_place_change_of_loaded_data_is_written(scheduler: Scheduler) -> None:
    scheduler.allocate((datetime(2030, 3, 1, 8), datetime(2030, 3, 1, 9)), data={'a': 1})
    scheduler.commit()
    loaded = scheduler.managed_allocations().one()
    assert isinstance(loaded.data, TrackedDict)
    loaded.data['a'] = 2
    assert loaded in scheduler.session.dirty
    scheduler.commit()
    scheduler.session.expunge_all()
    assert scheduler.managed_allocations().one().data == {'a': 2}


def test_one_dict_given_to_two_allocations_marks_both(scheduler: Scheduler) -> None:
    scheduler.allocate([(datetime(2030, 3, 2, 8), datetime(2030, 3, 2, 9)),
                        (datetime(2030, 3, 3, 8), datetime(2030, 3, 3, 9))])
    scheduler.commit()
    first, second = scheduler.managed_allocations().order_by(Allocation._start).all()
    shared = TrackedDict({'room': 'A'})
    first.data = shared
    second.data = shared
    scheduler.session.flush()
    first.data['room'] = 'B'
    assert first in scheduler.session.dirty and second in scheduler.session.dirty
    scheduler.commit()
    scheduler.session.expunge_all()
    assert [a.data for a in scheduler.managed_allocations().order_by(Allocation._start)] == [
        {'room': 'B'}, {'room': 'B'}
    ]


def test_a_dict_outliving_its_owner_changes_without_error(scheduler: Scheduler) -> None:
    scheduler.allocate((datetime(2030, 3, 4, 8), datetime(2030, 3, 4, 9)), data={'a': 1})
    scheduler.commit()
    data = scheduler.managed_allocations().one().data
    assert isinstance(data, TrackedDict)
    scheduler.session.expunge_all()
    gc.collect()
    data['a'] = 3  # the owner is gone: nothing to mark, nothing raised
    assert list(data._parents.items()) == []
