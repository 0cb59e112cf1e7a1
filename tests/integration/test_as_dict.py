"""``as_dict()`` of allocations, reservations and blockers: JSON-ready, stable keys."""

from __future__ import annotations

import json
from datetime import datetime

from libres.db.scheduler import Scheduler


def test_records_as_dicts_survive_json_with_local_times(scheduler: Scheduler) -> None:
    day = datetime(2030, 3, 31)  # spring change: 08:00 is +02:00
    [allocation] = scheduler.allocate((day.replace(hour=8), day.replace(hour=10)), partly_available=True,
                                      raster=15, quota=2, data={'room': 'B12'})
    token = scheduler.reserve('alice@example.org', (day.replace(hour=8), day.replace(hour=9)),
                              data={'note': 'hi'})
    [blocker] = scheduler.add_blocker((day.replace(hour=9, minute=30), day.replace(hour=10)), reason='x')
    scheduler.session.flush()
    reservation = scheduler.reservations_by_token(token).one()

    a = json.loads(json.dumps(allocation.as_dict()))
    assert a == {
        'id': allocation.id, 'resource': str(scheduler.resource), 'mirror_of': str(scheduler.resource),
        'group': str(allocation.group), 'type': 'generic', 'timezone': 'Europe/Zurich',
        'start': '2030-03-31T08:00:00+02:00', 'end': '2030-03-31T10:00:00+02:00', 'raster': 15,
        'quota': 2, 'quota_limit': 0, 'partly_available': True, 'approve_manually': False,
        'whole_day': False, 'is_master': True, 'data': {'room': 'B12'},
    }
    r = json.loads(json.dumps(reservation.as_dict()))
    assert r == {
        'id': reservation.id, 'token': str(token), 'target': str(allocation.group),
        'target_type': 'allocation', 'type': 'generic', 'resource': str(scheduler.resource),
        'status': 'pending', 'email': 'alice@example.org', 'timezone': 'Europe/Zurich',
        'start': '2030-03-31T08:00:00+02:00', 'end': '2030-03-31T09:00:00+02:00', 'quota': 1,
        'session_id': None, 'data': {'note': 'hi'},
    }
    b = json.loads(json.dumps(blocker.as_dict()))
    assert b == {
        'id': blocker.id, 'token': str(blocker.token), 'target': str(allocation.group),
        'target_type': 'allocation', 'resource': str(scheduler.resource), 'timezone': 'Europe/Zurich',
        'start': '2030-03-31T09:30:00+02:00', 'end': '2030-03-31T10:00:00+02:00', 'reason': 'x',
    }


def test_group_targets_have_no_span(scheduler: Scheduler) -> None:
    day = datetime(2030, 6, 1)
    allocations = scheduler.allocate([(day, day), (day.replace(day=2), day.replace(day=2))],
                                     whole_day=True, grouped=True)
    token = scheduler.reserve('bob@example.org', group=allocations[0].group)
    scheduler.session.flush()
    entry = scheduler.reservations_by_token(token).one().as_dict()
    assert (entry['target_type'], entry['start'], entry['end']) == ('group', None, None)
    assert allocations[0].as_dict()['whole_day'] is True
    assert allocations[0].as_dict()['end'] == '2030-06-02T00:00:00+02:00'
