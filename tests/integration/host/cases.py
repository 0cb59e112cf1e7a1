"""Every public write method of the scheduler and of ``Queries``, as one case:
what it needs beforehand, the call itself, and what must be in the database
afterwards (read from another connection)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from libres.db.scheduler import Scheduler

from .support import WriteCase, count, rows, scalar

MONDAY = datetime(2030, 6, 3)
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A naive time (read in the scheduler's zone) in the week of MONDAY."""
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


def span(day: int, start: int, end: int) -> tuple[datetime, datetime]:
    return at(day, start), at(day, end)


def utc(value: datetime) -> datetime:
    """What the database stores for a naive Europe/Zurich summer time."""
    return value - timedelta(hours=2)


def own(scheduler: Scheduler) -> dict[str, str]:
    return {'r': str(scheduler.resource)}


# --- setups -----------------------------------------------------------------


def nothing(s: Scheduler) -> dict[str, Any]:
    return {}


def one_allocation(s: Scheduler, **options: Any) -> dict[str, Any]:
    [allocation] = s.allocate(span(0, 10, 12), **options)
    return {'id': allocation.id, 'group': allocation.group}


def partly_allocation(s: Scheduler) -> dict[str, Any]:
    return one_allocation(s, partly_available=True, raster=15)


def pending(s: Scheduler, **options: Any) -> dict[str, Any]:
    state = one_allocation(s, **options)
    state['token'] = s.reserve('guest@example.org', span(0, 10, 12))
    return state


def approved(s: Scheduler) -> dict[str, Any]:
    state = pending(s)
    s.approve_reservations(state['token'])
    return state


def approved_part(s: Scheduler) -> dict[str, Any]:
    state = partly_allocation(s)
    state['token'] = s.reserve('guest@example.org', span(0, 10, 11))
    s.approve_reservations(state['token'])
    s.session.flush()
    state['rid'] = s.reservations_by_token(state['token']).one().id
    return state


def two_dates_one_token(s: Scheduler) -> dict[str, Any]:
    s.allocate([span(0, 10, 12), span(1, 10, 12)])
    token = s.reserve('guest@example.org', [span(0, 10, 12), span(1, 10, 12)])
    s.approve_reservations(token)
    s.session.flush()
    ids = sorted(r.id for r in s.reservations_by_token(token))
    return {'token': token, 'ids': ids}


def pending_quota(s: Scheduler) -> dict[str, Any]:
    state = one_allocation(s, quota=3)
    state['token'] = s.reserve('guest@example.org', span(0, 10, 12), quota=2)
    return state


def pending_group(s: Scheduler) -> dict[str, Any]:
    members = s.allocate([span(0, 10, 12), span(1, 10, 12)], grouped=True)
    group = members[0].group
    return {'group': group, 'token': s.reserve('guest@example.org', group=group)}


def blocked(s: Scheduler) -> dict[str, Any]:
    state = one_allocation(s, quota=2)
    [blocker] = s.add_blocker(span(0, 10, 12), reason='repairs')
    state.update(token=blocker.token, bid=blocker.id)
    return state


def blocked_part(s: Scheduler) -> dict[str, Any]:
    state = partly_allocation(s)
    [blocker] = s.add_blocker(span(0, 10, 11), reason='repairs')
    state.update(token=blocker.token, bid=blocker.id)
    return state


def quota_three_fully_booked_then_first_freed(s: Scheduler) -> dict[str, Any]:
    state = one_allocation(s, quota=3)
    tokens = []
    for _ in range(3):
        token = s.reserve('guest@example.org', span(0, 10, 12))
        s.approve_reservations(token)
        tokens.append(token)
    s.session.flush()
    # The first booking sits on the master: free it, so shrinking moves one.
    s.remove_reservation(tokens[0])
    state['tokens'] = tokens
    return state


def grouped_pair(s: Scheduler) -> dict[str, Any]:
    members = s.allocate([span(0, 10, 12), span(1, 10, 12)], grouped=True)
    return {'group': members[0].group}


def quota_two_with_mirror_row(s: Scheduler) -> dict[str, Any]:
    state = one_allocation(s, quota=2)
    tokens = [s.reserve('guest@example.org', span(0, 10, 12)) for _ in range(2)]
    for token in tokens:
        s.approve_reservations(token)
    s.session.flush()
    for token in tokens:
        s.remove_reservation(token)
    return state


def unused_and_used(s: Scheduler) -> dict[str, Any]:
    s.allocate([span(day, 10, 12) for day in range(3)])
    token = s.reserve('guest@example.org', span(1, 10, 12))
    s.approve_reservations(token)
    return {'token': token}


def everything(s: Scheduler) -> dict[str, Any]:
    state = approved(s)
    s.allocate(span(1, 10, 12), quota=2)
    s.add_blocker(span(1, 10, 12))
    s.allocate(span(2, 10, 12))
    s.reserve('other@example.org', span(2, 10, 12))
    return state


def cart(s: Scheduler, old: bool = False) -> dict[str, Any]:
    s.allocate([span(0, 10, 12), span(1, 10, 12)])
    session_id = uuid.uuid4()
    state: dict[str, Any] = {'session_id': session_id}
    state['token'] = s.reserve('guest@example.org', span(0, 10, 12), session_id=session_id)
    state['other'] = s.reserve('guest@example.org', span(1, 10, 12), session_id=session_id)
    if old:
        s.session.flush()
        s.session.execute(sa.update(s.reservation_cls).where(
            s.reservation_cls.session_id == session_id
        ).values(created=LONG_AGO, modified=LONG_AGO))
    return state


# --- checks -----------------------------------------------------------------


def allocations_are(n: int, where: str = 'true') -> Any:
    def check(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
        assert count(db, 'allocations', f'mirror_of = :r AND ({where})', **own(s)) == n
    return check


def reservation_status(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> list[str]:
    return [row[0] for row in rows(
        db, 'SELECT status FROM reservations WHERE resource = :r AND token = :t ORDER BY id',
        t=str(state['token']), **own(s),
    )]


def slots_of(db: sa.Engine, token: Any, kind: str = 'reservation') -> list[Any]:
    return rows(
        db, 'SELECT resource, start, "end", source_id FROM reserved_slots '
        'WHERE reservation_token = :t AND source_type = :k ORDER BY start, resource',
        t=str(token), k=kind,
    )


def check_reserved(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    assert reservation_status(db, s, state) == ['pending']


def check_approved(slots: int) -> Any:
    def check(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
        assert set(reservation_status(db, s, state)) == {'approved'}
        assert len(slots_of(db, state['token'])) == slots
    return check


def check_quota_approved(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    check_approved(2)(db, s, state)
    # The second spot is an imaginary mirror: approving made it a row.
    assert count(db, 'allocations', 'mirror_of = :r', **own(s)) == 2
    assert len({slot.resource for slot in slots_of(db, state['token'])}) == 2


def check_no_reservation(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    assert reservation_status(db, s, state) == []
    assert slots_of(db, state['token']) == []


def check_removed_one_of_two(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    second = state['ids'][1]
    assert [r[0] for r in rows(db, 'SELECT id FROM reservations WHERE token = :t', t=str(state['token']))] \
        == [second]
    assert {slot.source_id for slot in slots_of(db, state['token'])} == {second}


def check_moved_reservation(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    [(rid, start, status)] = rows(
        db, 'SELECT id, start, status FROM reservations WHERE token = :t', t=str(state['token'])
    )
    assert rid == state['rid'] and status == 'approved'
    assert start == utc(at(0, 11))
    slots = slots_of(db, state['token'])
    assert [slot.start for slot in slots] == [utc(at(0, 11)), utc(at(0, 11, 15)), utc(at(0, 11, 30)),
                                              utc(at(0, 11, 45))]
    assert {slot.source_id for slot in slots} == {state['rid']}


def check_column(table: str, column: str, value: Any) -> Any:
    def check(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
        assert scalar(db, f'SELECT {column} FROM {table} WHERE token = :t', t=str(state['token'])) == value
    return check


def check_blocked(slots: int) -> Any:
    def check(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
        assert count(db, 'reservation_blockers', 'resource = :r', **own(s)) >= 1
        assert len(slots_of(db, state['token'], 'blocker')) == slots
    return check


def check_blocker_gone(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    assert count(db, 'reservation_blockers', 'resource = :r', **own(s)) == 0
    assert slots_of(db, state['token'], 'blocker') == []


def check_moved_blocker(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    [(bid, start, reason)] = rows(
        db, 'SELECT id, start, reason FROM reservation_blockers WHERE token = :t', t=str(state['token'])
    )
    assert (bid, start, reason) == (state['bid'], utc(at(0, 11)), 'repairs')
    starts = [slot.start for slot in slots_of(db, state['token'], 'blocker')]
    assert starts == [utc(at(0, 11)), utc(at(0, 11, 15)), utc(at(0, 11, 30)), utc(at(0, 11, 45))]


def check_quota(value: int) -> Any:
    def check(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
        assert scalar(db, 'SELECT quota FROM allocations WHERE id = :i', i=state['id']) == value
    return check


def check_shrunk(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    check_quota(2)(db, s, state)
    # The two remaining bookings now sit on the master and mirror 1.
    resources = {row[0] for row in rows(
        db, 'SELECT s.resource FROM reserved_slots s WHERE s.reservation_token IN (:a, :b)',
        a=str(state['tokens'][1]), b=str(state['tokens'][2]),
    )}
    assert str(s.resource) in {str(r) for r in resources} and len(resources) == 2
    assert count(db, 'allocations', 'mirror_of = :r', **own(s)) == 2


def check_moved_allocation(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    assert scalar(db, 'SELECT _start FROM allocations WHERE id = :i', i=state['id']) == utc(at(0, 13))


def check_session_confirmed(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    assert count(db, 'reservations', 'session_id = :i', i=str(state['session_id'])) == 0
    assert count(db, 'reservations', 'token = :t', t=str(state['token'])) == 1


def check_removed_from_cart(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    assert count(db, 'reservations', 'token = :t', t=str(state['token'])) == 0
    assert count(db, 'reservations', 'session_id = :i AND modified IS NOT NULL',
                 i=str(state['session_id'])) == 1


def check_cart_expired(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    assert count(db, 'reservations', 'session_id = :i', i=str(state['session_id'])) == 0
    assert count(db, 'allocations', 'mirror_of = :r', **own(s)) == 2


def check_extinguished(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    r = own(s)
    assert count(db, 'allocations', 'mirror_of = :r', **r) == 0
    assert count(db, 'reservations', 'resource = :r', **r) == 0
    assert count(db, 'reservation_blockers', 'resource = :r', **r) == 0
    assert count(db, 'reserved_slots') == 0


def check_record_approved(db: sa.Engine, s: Scheduler, state: dict[str, Any]) -> None:
    check_approved(1)(db, s, state)


# --- acts -------------------------------------------------------------------


def change_reservation_time(s: Scheduler, state: dict[str, Any]) -> Any:
    with pytest.warns(DeprecationWarning):
        return s.change_reservation_time(state['token'], state['rid'], at(0, 11), at(0, 12))


def approve_record(s: Scheduler, state: dict[str, Any]) -> Any:
    [reservation] = s.reservations_by_token(state['token'])
    return s._approve_reservation_record(reservation)


WRITE_CASES = [
    WriteCase('allocate', nothing, lambda s, st: s.allocate(span(0, 10, 12)), allocations_are(1)),
    WriteCase('allocate_batch', nothing,
              lambda s, st: s.allocate([span(day, hour, hour + 1) for day in range(5) for hour in range(8, 18)]),
              allocations_are(50)),
    WriteCase('allocate_skip_overlapping', one_allocation,
              lambda s, st: s.allocate([span(day, 10, 12) for day in range(7)], skip_overlapping=True),
              allocations_are(7)),
    WriteCase('allocate_with_data', nothing,
              lambda s, st: s.allocate(span(0, 10, 12), data={'rule': 'weekly'}),
              allocations_are(1, "data->>'rule' = 'weekly'")),
    WriteCase('allocate_grouped', nothing,
              lambda s, st: s.allocate([span(day, 10, 12) for day in range(3)], grouped=True),
              allocations_are(3)),
    WriteCase('allocate_whole_day_quota', nothing,
              lambda s, st: s.allocate(span(0, 0, 0), whole_day=True, quota=4),
              allocations_are(1, 'quota = 4')),
    WriteCase('reserve', one_allocation,
              lambda s, st: st.update(token=s.reserve('guest@example.org', span(0, 10, 12))),
              check_reserved),
    WriteCase('approve_reservations', pending,
              lambda s, st: s.approve_reservations(st['token']), check_approved(1)),
    WriteCase('approve_reservations_partly', lambda s: pending(s, partly_available=True, raster=30),
              lambda s, st: s.approve_reservations(st['token']), check_approved(4)),
    WriteCase('approve_reservations_quota', pending_quota,
              lambda s, st: s.approve_reservations(st['token']), check_quota_approved),
    WriteCase('approve_reservations_group', pending_group,
              lambda s, st: s.approve_reservations(st['token']), check_approved(2)),
    WriteCase('approve_reservation_record', pending, approve_record, check_record_approved),
    WriteCase('deny_reservation', pending,
              lambda s, st: s.deny_reservation(st['token']), check_no_reservation, bulk_in_1_4_0=True),
    WriteCase('remove_reservation', approved,
              lambda s, st: s.remove_reservation(st['token']), check_no_reservation),
    WriteCase('remove_reservation_by_id', two_dates_one_token,
              lambda s, st: s.remove_reservation(st['token'], st['ids'][0]), check_removed_one_of_two),
    WriteCase('remove_pending_reservation', pending,
              lambda s, st: s.remove_reservation(st['token']), check_no_reservation),
    WriteCase('change_reservation', approved_part,
              lambda s, st: s.change_reservation(st['token'], st['rid'], at(0, 11), at(0, 12)),
              check_moved_reservation),
    WriteCase('change_reservation_time', approved_part, change_reservation_time, check_moved_reservation),
    WriteCase('change_email', approved,
              lambda s, st: s.change_email(st['token'], 'new@example.org'),
              check_column('reservations', 'email', 'new@example.org')),
    WriteCase('change_reservation_data', approved,
              lambda s, st: s.change_reservation_data(st['token'], {'seats': 3}),
              check_column('reservations', "data->>'seats'", '3')),
    WriteCase('add_blocker', lambda s: one_allocation(s, quota=2),
              lambda s, st: st.update(token=s.add_blocker(span(0, 10, 12))[0].token), check_blocked(2)),
    WriteCase('add_blocker_group', pending_group,
              lambda s, st: st.update(token=s.add_blocker(group=st['group'])[0].token), check_blocked(2)),
    WriteCase('remove_blocker', blocked,
              lambda s, st: s.remove_blocker(st['token']), check_blocker_gone),
    WriteCase('change_blocker', blocked_part,
              lambda s, st: s.change_blocker(st['token'], st['bid'], at(0, 11), at(0, 12)),
              check_moved_blocker),
    WriteCase('change_blocker_reason', blocked,
              lambda s, st: s.change_blocker_reason(st['token'], 'painting'),
              check_column('reservation_blockers', 'reason', 'painting')),
    WriteCase('change_quota_grow', lambda s: one_allocation(s, quota=2),
              lambda s, st: s.change_quota(s.allocation_by_id(st['id']), 4), check_quota(4)),
    WriteCase('change_quota_shrink', quota_three_fully_booked_then_first_freed,
              lambda s, st: s.change_quota(s.allocation_by_id(st['id']), 2), check_shrunk,
              bulk_in_1_4_0=True),
    WriteCase('move_allocation', one_allocation,
              lambda s, st: s.move_allocation(st['id'], at(0, 13), at(0, 15)), check_moved_allocation),
    WriteCase('move_allocation_quota', lambda s: one_allocation(s, quota=2),
              lambda s, st: s.move_allocation(st['id'], None, None, None, 5), check_quota(5)),
    WriteCase('remove_allocation', one_allocation,
              lambda s, st: s.remove_allocation(st['id']), allocations_are(0)),
    WriteCase('remove_allocation_groups', grouped_pair,
              lambda s, st: s.remove_allocation(groups=[st['group']]), allocations_are(0)),
    WriteCase('remove_allocation_with_mirror_row', quota_two_with_mirror_row,
              lambda s, st: s.remove_allocation(st['id']), allocations_are(0)),
    WriteCase('remove_unused_allocations', unused_and_used,
              lambda s, st: s.remove_unused_allocations(at(0, 0), at(7, 0)), allocations_are(1),
              bulk_in_1_4_0=True),
    WriteCase('remove_unused_allocations_by_weekday', unused_and_used,
              lambda s, st: s.remove_unused_allocations(at(0, 0), at(7, 0), days=['mo', 'we']),
              allocations_are(1)),
    WriteCase('extinguish_managed_records', everything,
              lambda s, st: s.extinguish_managed_records(), check_extinguished, bulk_in_1_4_0=True),
    WriteCase('confirm_reservations_for_session', cart,
              lambda s, st: s.queries.confirm_reservations_for_session(st['session_id']),
              check_session_confirmed),
    WriteCase('remove_reservation_from_session', cart,
              lambda s, st: s.queries.remove_reservation_from_session(st['session_id'], st['token']),
              check_removed_from_cart, bulk_in_1_4_0=True),
    WriteCase('remove_expired_reservation_sessions', lambda s: cart(s, old=True),
              lambda s, st: s.queries.remove_expired_reservation_sessions(), check_cart_expired,
              bulk_in_1_4_0=True),
]
