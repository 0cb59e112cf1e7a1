"""PostgreSQL itself refuses corrupt states, whatever bypasses the library."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from libres.db.scheduler import Scheduler


@pytest.fixture
def booked(scheduler: Scheduler) -> dict[str, object]:
    [allocation] = scheduler.allocate(
        (datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 12)), partly_available=True, raster=15
    )
    token = scheduler.reserve('a@example.org', (datetime(2030, 5, 1, 10), datetime(2030, 5, 1, 11)))
    scheduler.approve_reservations(token)
    [blocker] = scheduler.add_blocker((datetime(2030, 5, 1, 11, 30), datetime(2030, 5, 1, 12)))
    scheduler.commit()
    [reservation] = scheduler.reservations_by_token(token)
    return {'allocation': allocation.id, 'resource': str(scheduler.resource), 'token': str(token),
            'reservation': reservation.id, 'blocker': blocker.id, 'blocker_token': str(blocker.token)}


def refused(admin_engine: sa.Engine, sql: str, params: dict[str, object], constraint: str) -> None:
    with pytest.raises(DBAPIError) as info, admin_engine.connect() as connection, connection.begin():
        connection.execute(sa.text(sql), params)
    diagnosed = getattr(getattr(info.value.orig, 'diag', None), 'constraint_name', None)
    assert constraint == diagnosed or constraint in str(info.value)


INSERT_ALLOCATION = """
INSERT INTO allocations (resource, type, mirror_of, "group", quota, quota_limit, partly_available,
    approve_manually, _start, _end, _raster, created)
VALUES (:resource, 'generic', :resource, :group, :quota, :quota_limit, false, false,
    :start, :end, :raster, now())
"""


def allocation_params(**overrides: object) -> dict[str, object]:
    params: dict[str, object] = {
        'resource': str(uuid.uuid4()), 'group': str(uuid.uuid4()), 'quota': 1, 'quota_limit': 0,
        'start': datetime(2030, 6, 1, 10), 'end': datetime(2030, 6, 1, 11), 'raster': 15,
    }
    params.update(overrides)
    return params


@pytest.mark.parametrize(('overrides', 'constraint'), [
    ({'end': datetime(2030, 6, 1, 9)}, 'allocations_start_before_end'),
    ({'quota': 0}, 'allocations_quota_positive'),
    ({'quota_limit': -1}, 'allocations_quota_limit_not_negative'),
    ({'raster': 7}, 'allocations_valid_raster'),
])
def test_allocation_checks(admin_engine: sa.Engine, clean_database: str,
                           overrides: dict[str, object], constraint: str) -> None:
    refused(admin_engine, INSERT_ALLOCATION, allocation_params(**overrides), constraint)


def test_overlapping_allocations_of_one_resource(admin_engine: sa.Engine, booked: dict[str, object]) -> None:
    params = allocation_params(resource=booked['resource'], start=datetime(2030, 5, 1, 9),
                               end=datetime(2030, 5, 1, 8, 30, 59))
    params['start'], params['end'] = datetime(2030, 5, 1, 9), datetime(2030, 5, 1, 8, 30)
    params['end'] = datetime(2030, 5, 1, 9, 30)
    refused(admin_engine, INSERT_ALLOCATION, params, 'allocations_no_overlap')


def test_a_slot_outside_its_allocation(admin_engine: sa.Engine, booked: dict[str, object]) -> None:
    refused(admin_engine, 'UPDATE reserved_slots SET start = start - interval \'1 day\', "end" = "end" - interval \'1 day\'',
            {}, 'reserved_slot_inside_allocation')


def test_moving_an_allocation_away_from_its_slots(admin_engine: sa.Engine, booked: dict[str, object]) -> None:
    refused(admin_engine, 'UPDATE allocations SET _start = _start + interval \'3 hours\', _end = _end + interval \'3 hours\'',
            {}, 'reserved_slot_inside_allocation')


@pytest.mark.parametrize(('table', 'key', 'kind'), [
    ('reservations', 'reservation', 'reservation'),
    ('reservation_blockers', 'blocker', 'blocker'),
])
def test_removing_an_owner_removes_its_slots(admin_engine: sa.Engine, booked: dict[str, object],
                                             table: str, key: str, kind: str) -> None:
    count = "SELECT count(*) FROM reserved_slots WHERE source_type = :kind"
    with admin_engine.begin() as connection:
        assert connection.execute(sa.text(count), {'kind': kind}).scalar_one() > 0
        connection.execute(sa.text(f'DELETE FROM {table} WHERE id = :id'), {'id': booked[key]})
    with admin_engine.begin() as connection:
        assert connection.execute(sa.text(count), {'kind': kind}).scalar_one() == 0
        # The other owner's slots stay.
        assert connection.execute(sa.text('SELECT count(*) FROM reserved_slots')).scalar_one() > 0


def test_no_check_waits_for_the_commit(admin_engine: sa.Engine, booked: dict[str, object]) -> None:
    # A host's upgrade step may write slots and alter the table in one transaction.
    with admin_engine.connect() as connection, connection.begin() as transaction:
        connection.execute(sa.text("UPDATE reserved_slots SET modified = now()"))
        connection.execute(sa.text('ALTER TABLE reserved_slots ADD COLUMN host_note text'))
        transaction.rollback()


def test_a_slot_without_owner(admin_engine: sa.Engine, booked: dict[str, object]) -> None:
    refused(admin_engine, """
        INSERT INTO reserved_slots (resource, start, "end", allocation_id, source_type,
            reservation_token, source_id, created)
        VALUES (:resource, '2030-05-01 09:00', '2030-05-01 09:14:59.999999', :allocation,
            'reservation', :token, 999999, now())
    """, {'resource': booked['resource'], 'allocation': booked['allocation'], 'token': str(uuid.uuid4())},
        'reserved_slot_has_owner')


def test_unapproving_a_reservation_with_slots(admin_engine: sa.Engine, booked: dict[str, object]) -> None:
    refused(admin_engine, "UPDATE reservations SET status = 'pending' WHERE id = :id",
            {'id': booked['reservation']}, 'reserved_slot_has_owner')


def test_a_slot_on_a_missing_allocation(admin_engine: sa.Engine, booked: dict[str, object]) -> None:
    refused(admin_engine, 'UPDATE reserved_slots SET allocation_id = 999999',
            {}, 'reserved_slots_allocation_id_fkey')


def test_a_slot_ending_before_it_starts(admin_engine: sa.Engine, booked: dict[str, object]) -> None:
    refused(admin_engine, 'UPDATE reserved_slots SET "end" = start - interval \'1 minute\'',
            {}, 'reserved_slots_start_before_end')


def test_double_booking_a_slot(admin_engine: sa.Engine, booked: dict[str, object]) -> None:
    refused(admin_engine, """
        INSERT INTO reserved_slots (resource, start, "end", allocation_id, source_type,
            reservation_token, source_id, created)
        SELECT resource, start, "end", allocation_id, source_type, reservation_token, source_id, now()
        FROM reserved_slots LIMIT 1
    """, {}, 'reserved_slots_pkey')


@pytest.mark.parametrize(('sql', 'constraint'), [
    ("UPDATE reservations SET quota = 0", 'reservations_quota_positive'),
    ("UPDATE reservations SET \"end\" = start - interval '1 hour'", 'reservations_start_before_end'),
    ("UPDATE reservations SET start = NULL", 'reservations_span_matches_target'),
    ("UPDATE reservations SET status = 'cancelled'", 'reservation_status'),
    ("UPDATE reservation_blockers SET \"end\" = start - interval '1 hour'", 'reservation_blockers_start_before_end'),
    ("UPDATE reservation_blockers SET target_type = 'group'", 'reservation_blockers_span_matches_target'),
])
def test_reservation_and_blocker_checks(admin_engine: sa.Engine, booked: dict[str, object],
                                        sql: str, constraint: str) -> None:
    refused(admin_engine, sql, {}, constraint)


def test_the_library_itself_passes_every_check(scheduler: Scheduler, booked: dict[str, object],
                                               count_rows: Callable[[], dict[str, int]]) -> None:
    # Removing through the library keeps slots and owners together.
    scheduler.remove_reservation(uuid.UUID(str(booked['token'])))
    scheduler.remove_blocker(uuid.UUID(str(booked['blocker_token'])))
    scheduler.commit()
    assert count_rows()['reserved_slots'] == 0
