"""A scheduler never reads, changes or removes another resource's records,
whatever token or id it is handed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import NoResultFound
from tests.helpers import at

from libres.context.core import Context
from libres.context.registry import create_default_registry
from libres.db.scheduler import Scheduler

TABLES = ('allocations', 'reserved_slots', 'reservations', 'reservation_blockers')




@pytest.fixture
def victim(context: Context) -> dict[str, Any]:
    """Records of scheduler 'victim' in context A; attackers are scheduler
    'attacker' in the same context and a scheduler of the same name in
    another context."""
    victim = Scheduler(context, 'victim', 'UTC')
    [allocation] = victim.allocate((at(8), at(12)), partly_available=True, raster=15, quota=2)
    token = victim.reserve('v@example.org', (at(8), at(9)))
    victim.approve_reservations(token)
    pending = victim.reserve('p@example.org', (at(9), at(10)))
    [blocker] = victim.add_blocker((at(11), at(12)))
    victim.commit()
    [row] = victim.reservations_by_token(token)
    return {'allocation': allocation.id, 'group': allocation.group, 'token': token, 'id': row.id,
            'pending': pending, 'blocker': blocker.token, 'blocker_id': blocker.id}


def attackers(context: Context) -> list[Scheduler]:
    other_context = create_default_registry().register_context('elsewhere')
    other_context.set_setting('dsn', context.get_setting('dsn'))
    other_context.set_service('session_provider', lambda _: context.get_service('session_provider'))
    return [Scheduler(context, 'attacker', 'UTC'), Scheduler(other_context, 'victim', 'UTC')]


EMPTY: list[tuple[str, Callable[[Scheduler, dict[str, Any]], Any]]] = [
    ('reservations_by_token', lambda s, v: s.reservations_by_token(v['token']).all()),
    ('reservations_by_token with id', lambda s, v: s.reservations_by_token(v['token'], v['id']).all()),
    ('reservations_by_group', lambda s, v: s.reservations_by_group(v['group']).all()),
    ('reserved_slots_by_reservation', lambda s, v: s.reserved_slots_by_reservation(v['token']).all()),
    ('reserved_slots_by_blocker', lambda s, v: s.reserved_slots_by_blocker(v['blocker']).all()),
    ('reserved_slots_by_type', lambda s, v: s.reserved_slots_by_type(v['token']).all()),
    ('blockers_by_token', lambda s, v: s.blockers_by_token(v['blocker']).all()),
    ('allocations_by_reservation', lambda s, v: s.allocations_by_reservation(v['token']).all()),
    ('allocations_by_blocker', lambda s, v: s.allocations_by_blocker(v['blocker']).all()),
    ('allocations_by_ids', lambda s, v: s.allocations_by_ids([v['allocation']]).all()),
    ('allocations_by_group', lambda s, v: s.allocations_by_group(v['group']).all()),
    ('allocation_dates_by_group', lambda s, v: s.allocation_dates_by_group(v['group'])),
    ('allocation_dates_by_ids', lambda s, v: list(s.allocation_dates_by_ids([v['allocation']]))),
    ('allocations_in_range', lambda s, v: s.allocations_in_range(at(7), at(13)).all()),
    ('search_allocations', lambda s, v: s.search_allocations(at(7), at(13))),
    ('change_reservation_time_candidates', lambda s, v: s.change_reservation_time_candidates([v['token']]).all()),
    ('approve_reservations', lambda s, v: s.approve_reservations(v['pending'])),
    ('manual_approval_required', lambda s, v: [] if not s.manual_approval_required([v['allocation']]) else ['x']),
]

NO_OPS: list[tuple[str, Callable[[Scheduler, dict[str, Any]], Any]]] = [
    ('deny_reservation', lambda s, v: s.deny_reservation(v['pending'])),
    ('remove_reservation', lambda s, v: s.remove_reservation(v['token'])),
    ('remove_reservation with id', lambda s, v: s.remove_reservation(v['token'], v['id'])),
    ('change_email', lambda s, v: s.change_email(v['token'], 'evil@example.org')),
    ('change_reservation_data', lambda s, v: s.change_reservation_data(v['token'], {'evil': True})),
    ('remove_blocker', lambda s, v: s.remove_blocker(v['blocker'])),
    ('change_blocker_reason', lambda s, v: s.change_blocker_reason(v['blocker'], 'evil')),
    ('extinguish_managed_records', lambda s, v: s.extinguish_managed_records()),
    ('remove_unused_allocations', lambda s, v: s.remove_unused_allocations(at(0), at(23))),
]

REFUSED: list[tuple[str, Callable[[Scheduler, dict[str, Any]], Any]]] = [
    ('allocation_by_id', lambda s, v: s.allocation_by_id(v['allocation'])),
    ('reservations_by_allocation', lambda s, v: s.reservations_by_allocation(v['allocation'])),
    ('move_allocation', lambda s, v: s.move_allocation(v['allocation'], at(13), at(14))),
    ('remove_allocation', lambda s, v: s.remove_allocation(v['allocation'])),
    ('change_reservation', lambda s, v: s.change_reservation(v['token'], v['id'], at(9), at(10))),
    ('change_blocker', lambda s, v: s.change_blocker(v['blocker'], v['blocker_id'], at(10), at(11))),
    ('allocation_by_date', lambda s, v: s.allocation_by_date(at(8), at(9))),
]


def rows(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {t: sorted(map(tuple, connection.execute(sa.text(f'SELECT * FROM {t}')))) for t in TABLES}


@pytest.mark.parametrize(('name', 'call'), EMPTY, ids=[e[0] for e in EMPTY])
def test_reads_see_nothing_of_others(context: Context, victim: dict[str, Any], admin_engine: sa.Engine,
                                     name: str, call: Callable[[Scheduler, dict[str, Any]], Any]) -> None:
    before = rows(admin_engine)
    for attacker in attackers(context):
        assert call(attacker, victim) == []
        attacker.commit()
    assert rows(admin_engine) == before


@pytest.mark.parametrize(('name', 'call'), NO_OPS, ids=[e[0] for e in NO_OPS])
def test_changes_touch_nothing_of_others(context: Context, victim: dict[str, Any], admin_engine: sa.Engine,
                                         name: str, call: Callable[[Scheduler, dict[str, Any]], Any]) -> None:
    before = rows(admin_engine)
    for attacker in attackers(context):
        call(attacker, victim)
        attacker.commit()
    assert rows(admin_engine) == before


@pytest.mark.parametrize(('name', 'call'), REFUSED, ids=[e[0] for e in REFUSED])
def test_direct_access_is_refused(context: Context, victim: dict[str, Any], admin_engine: sa.Engine,
                                  name: str, call: Callable[[Scheduler, dict[str, Any]], Any]) -> None:
    before = rows(admin_engine)
    for attacker in attackers(context):
        with pytest.raises(NoResultFound):
            call(attacker, victim)
        attacker.rollback()
    assert rows(admin_engine) == before
