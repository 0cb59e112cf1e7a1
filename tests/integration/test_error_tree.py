"""One tree of errors (issue 13): what a new user runs into, told by the library.

Each case was a raw Python, SQLAlchemy or driver error before; now it is a
``LibresError`` that still is the built-in 1.4.0 raised, with a message
that names the facts and what to do.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, NoResultFound, ProgrammingError, StatementError
from tests.helpers import at

import libres
from libres.context.core import Context
from libres.context.session import SessionProvider
from libres.db.models import Allocation, ReservedSlot
from libres.db.scheduler import Scheduler
from libres.modules import errors
from libres.retry import is_retryable, run_with_retries

ZURICH = ZoneInfo('Europe/Zurich')
US = timedelta(microseconds=1)


def chained(error: BaseException) -> bool:
    """The database error is the cause: the driver's (raised in a statement)
    or SQLAlchemy's (raised at commit)."""
    cause = error.__cause__
    return cause is not None and (cause is getattr(error, 'orig', None) or isinstance(cause, sa.exc.DBAPIError))




def test_a_context_without_a_database(clean_database: str) -> None:
    context = libres.registry.register_context(f'no-dsn-{uuid.uuid4().hex[:6]}')
    scheduler = Scheduler(context, 'room', 'Europe/Zurich')
    with pytest.raises(errors.DatabaseNotConfigured, match="set_setting\\('dsn'") as info:
        scheduler.allocate((at(8), at(9)))
    assert isinstance(info.value, TypeError)  # what 1.4.0 callers saw


def test_a_database_without_the_schema(server_dsn: str, dsn: str, admin_engine: sa.Engine) -> None:
    name = f'libres_empty_{uuid.uuid4().hex[:8]}'
    with admin_engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    empty_dsn = sa.engine.make_url(dsn).set(database=name).render_as_string(hide_password=False)
    provider = SessionProvider(empty_dsn)
    context = libres.registry.register_context(f'empty-{name}')
    context.set_service('session_provider', lambda _: provider)
    scheduler = Scheduler(context, 'room', 'Europe/Zurich')
    try:
        with pytest.raises(errors.SchemaMissing, match=r'setup_database\(\).*libres db upgrade') as info:
            scheduler.allocate((at(8), at(9)))
        assert isinstance(info.value, ProgrammingError)
        assert chained(info.value)
        scheduler.rollback()
        scheduler.setup_database()  # what the message says to do
        scheduler.commit()
        assert len(scheduler.allocate((at(8), at(9)))) == 1
        scheduler.rollback()
    finally:
        provider.stop_service()
        with admin_engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_an_unknown_zone_is_refused_at_construction(context: Context) -> None:
    with pytest.raises(errors.UnknownTimezone, match='Europe/Zurich') as info:
        libres.new_scheduler(context, 'x', 'Zurich')
    assert isinstance(info.value, ValueError)
    with pytest.raises(errors.LibresAssertionError):
        Scheduler(context, 'x', ZURICH)  # type: ignore[arg-type]
    assert Scheduler(context, 'x', 'UTC').timezone == 'UTC'


def test_overlapping_allocation_names_local_times_and_the_way_out(scheduler: Scheduler) -> None:
    [existing] = scheduler.allocate((at(8), at(10)))
    with pytest.raises(errors.OverlappingAllocationError) as info:
        scheduler.allocate((at(9), at(11)))
    text = str(info.value)
    assert '2030-05-01 09:00–11:00 (Europe/Zurich)' in text
    assert f'allocation {existing.id} (2030-05-01 08:00–10:00 (Europe/Zurich))' in text
    assert 'skip_overlapping=True' in text and ':59' not in text
    # The contract of 1.4.0: start, end (UTC) and the existing allocation.
    assert info.value.existing is existing and info.value.start == datetime(2030, 5, 1, 7, tzinfo=UTC)
    assert info.value.args == (info.value.start, info.value.end, existing)


def test_affected_reservation_is_readable(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate((at(8), at(10)), partly_available=True, raster=15)
    token = scheduler.reserve('a@example.org', (at(9), at(10)))
    scheduler.approve_reservations(token)
    scheduler.commit()
    with pytest.raises(errors.AffectedReservationError) as info:
        scheduler.move_allocation(allocation.id, at(8), at(9))
    text = str(info.value)
    assert 'object at 0x' not in text
    assert f'token {token}' in text and '2030-05-01 09:00–09:15 (Europe/Zurich)' in text
    assert isinstance(info.value.existing, ReservedSlot)


def test_quota_exhausted_says_how_many_are_free(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate((at(8), at(10)), quota=3)
    for email in ('a@example.org', 'b@example.org'):
        scheduler.approve_reservations(scheduler.reserve(email, (at(8), at(10))))
    with pytest.raises(errors.AffectedReservationError, match='has 1 of 3 spots free') as info:
        scheduler.change_quota(allocation, 1)
    assert info.value.existing is None


def test_already_reserved_names_requested_and_free_spots(scheduler: Scheduler) -> None:
    [allocation] = scheduler.allocate((at(8), at(10)), quota=3)
    scheduler.approve_reservations(scheduler.reserve('a@example.org', (at(8), at(10)), quota=2))
    with pytest.raises(errors.AlreadyReservedError, match=f'allocation {allocation.id} has 1 of 3 spots free'
                       ' for 2030-05-01 08:00–10:00 \\(Europe/Zurich\\), 2 requested'):
        scheduler.reserve('b@example.org', (at(8), at(10)), quota=2)


def test_a_slot_taken_twice_is_already_reserved_and_still_an_integrity_error(scheduler: Scheduler) -> None:
    [room] = scheduler.allocate((at(8), at(9)))
    token = uuid.uuid4()
    for _ in range(2):
        scheduler.session.add(ReservedSlot(
            resource=scheduler.resource, start=room.start, end=room.start + timedelta(minutes=15) - US,
            allocation_id=room.id, source_type='reservation', reservation_token=token, source_id=1,
        ))
    with pytest.raises(errors.ReservedSlotTaken, match='reserved_slots_pkey') as info:
        scheduler.session.flush()
    error = info.value
    assert isinstance(error, errors.AlreadyReservedError) and isinstance(error, IntegrityError)
    assert chained(error)
    assert 'run the unit of work again' in str(error)
    assert is_retryable(error)  # the retry helper still retries a collision
    scheduler.rollback()


def test_overlap_refused_by_the_database_is_an_overlapping_allocation(scheduler: Scheduler) -> None:
    scheduler.allocate((at(8), at(9)))
    scheduler.session.add(Allocation(
        resource=scheduler.resource, mirror_of=scheduler.resource, group=uuid.uuid4(),
        start=datetime(2030, 5, 1, 6, 30, tzinfo=UTC), end=datetime(2030, 5, 1, 7, 30, tzinfo=UTC),
        raster=15, timezone='Europe/Zurich', quota=1,
    ))
    with pytest.raises(errors.OverlappingAllocationError, match='allocations_no_overlap') as info:
        scheduler.commit()
    assert isinstance(info.value, IntegrityError) and isinstance(info.value, errors.ConstraintViolation)
    assert chained(info.value)
    scheduler.rollback()


def test_other_constraints_are_constraint_violations(scheduler: Scheduler) -> None:
    scheduler.session.add(Allocation(raster=15))  # no resource, no dates
    with pytest.raises(errors.ConstraintViolation) as info:
        scheduler.commit()
    assert isinstance(info.value, IntegrityError) and chained(info.value)
    scheduler.rollback()


def test_a_collision_translated_at_commit_is_still_retried(scheduler: Scheduler) -> None:
    scheduler.allocate((at(8), at(9)))
    scheduler.commit()
    calls: list[int] = []

    def book() -> int:
        calls.append(1)
        if len(calls) == 1:
            # What a racing booking leaves: the same slot, written first.
            [room] = scheduler.managed_allocations().all()
            for _ in range(2):
                scheduler.session.add(ReservedSlot(
                    resource=scheduler.resource, start=room.start, end=room.end,
                    allocation_id=room.id, source_type='reservation', reservation_token=uuid.uuid4(),
                    source_id=1,
                ))
            scheduler.commit()
        slots = scheduler.approve_reservations(scheduler.reserve('a@example.org', (at(8), at(9))))
        scheduler.commit()
        return len(slots)

    assert run_with_retries(scheduler, book, backoff=0) == 1
    assert len(calls) == 2


def test_unknown_ids_are_record_not_found(scheduler: Scheduler) -> None:
    with pytest.raises(errors.RecordNotFound, match='allocation 12345') as info:
        scheduler.allocation_by_id(12345)
    assert isinstance(info.value, NoResultFound)


def test_tokens_that_are_not_uuids_never_reach_the_driver(scheduler: Scheduler) -> None:
    for call in (
        lambda: scheduler.reservations_by_token("1' OR '1'='1"),
        lambda: scheduler.approve_reservations('not-a-token'),  # type: ignore[arg-type]
        lambda: scheduler.remove_blocker(42),  # type: ignore[arg-type]
    ):
        with pytest.raises(errors.InvalidUUID):
            call()
    # A UUID as text still works.
    assert scheduler.reservations_by_token(str(uuid.uuid4())).all() == []


def test_naive_datetimes_in_queries(scheduler: Scheduler) -> None:
    with pytest.raises(errors.NaiveDatetimeRefused) as info:
        scheduler.queries.availability_by_range(at(8), at(9), [scheduler.resource])
    assert isinstance(info.value, StatementError) and isinstance(info.value, errors.NotTimezoneAware)
    # The same through a query the library builds from a naive value.
    with pytest.raises(errors.NaiveDatetimeRefused):
        scheduler.queries.all_allocations_in_range(at(8), at(9)).all()


def test_data_the_serializer_cannot_write(scheduler: Scheduler) -> None:
    with pytest.raises(errors.DataNotSerializable, match='not JSON serializable') as info:
        scheduler.allocate((at(8), at(9)), data={'when': datetime.now()})
    assert isinstance(info.value, TypeError)
    scheduler.rollback()


@pytest.mark.parametrize('data', [
    {'price': float('nan')}, {'price': float('inf')}, {'nested': [{'x': -float('inf')}]},
    {'name': 'a\x00b'}, {'key\x00': 1}, {'deep': {'deeper': ['ok', 'n\x00l']}},
])
def test_data_postgres_cannot_hold_is_refused_before_sql(scheduler: Scheduler, data: dict[str, object]) -> None:
    scheduler.allocate((at(8), at(9)))
    with pytest.raises(errors.InvalidData) as info:
        scheduler.reserve('a@example.org', (at(8), at(9)), data=data)
    assert isinstance(info.value, ValueError)
    with pytest.raises(errors.InvalidData):
        scheduler.allocate((at(10), at(11)), data=data)


def test_the_email_validator_stays_a_service(context: Context, scheduler: Scheduler) -> None:
    scheduler.allocate((at(8), at(9)))
    with pytest.raises(errors.InvalidEmailAddress, match='is not an e-mail address'):
        scheduler.reserve("a@example.org'); DELETE FROM reservations; --", (at(8), at(9)))
    context.set_service('email_validator', lambda _: lambda address: address == 'desk')
    scheduler.clear_cache()
    assert scheduler.reserve('desk', (at(8), at(9)))
    with pytest.raises(errors.InvalidEmailAddress):
        scheduler.reserve('a@example.org', (at(8), at(9)))


# --- the DST rule (libres.db.local_time_rules) -----------------------------------


def test_reservations_in_the_spring_gap_are_refused(scheduler: Scheduler) -> None:
    scheduler.allocate((datetime(2030, 3, 31, 0), datetime(2030, 3, 31, 6)), partly_available=True)
    with pytest.raises(errors.NonExistentTimeError, match='2030-03-31 02:15 does not exist in Europe/Zurich'):
        scheduler.reserve('a@example.org', (datetime(2030, 3, 31, 2, 15), datetime(2030, 3, 31, 3, 30)))
    with pytest.raises(errors.NonExistentTimeError):
        scheduler.add_blocker((datetime(2030, 3, 31, 1), datetime(2030, 3, 31, 2, 30)))
    # Just before and after the gap are fine, and so is aware input.
    assert scheduler.reserve('a@example.org', (datetime(2030, 3, 31, 1), datetime(2030, 3, 31, 3, 30)))
    assert scheduler.reserve('a@example.org', (
        datetime(2030, 3, 31, 4, tzinfo=ZURICH), datetime(2030, 3, 31, 5, tzinfo=ZURICH)))


def test_the_repeated_hour_is_refused_where_it_changes_the_booking(scheduler: Scheduler) -> None:
    autumn = (datetime(2030, 10, 27, 2, 15), datetime(2030, 10, 27, 2, 45))
    # Nothing lies there: both readings book nothing, as before.
    with pytest.raises(errors.InvalidReservationError):
        scheduler.reserve('a@example.org', autumn)
    scheduler.allocate((datetime(2030, 10, 27, 0, tzinfo=ZURICH), datetime(2030, 10, 27, 6, tzinfo=ZURICH)),
                       partly_available=True)
    with pytest.raises(errors.AmbiguousTimeError, match='occurs twice in Europe/Zurich') as info:
        scheduler.reserve('a@example.org', autumn)
    assert 'at 00:15 and 01:15 UTC' in str(info.value)
    with pytest.raises(errors.AmbiguousTimeError):
        scheduler.add_blocker(autumn)
    # An aware time (the first 02:15 has fold=0) is clear.
    first = tuple(value.replace(tzinfo=ZURICH) for value in autumn)
    token = scheduler.reserve('a@example.org', first)
    [row] = scheduler.reservations_by_token(token)
    assert row.start == datetime(2030, 10, 27, 0, 15, tzinfo=UTC)


def test_the_retry_helper_follows_the_cause_of_a_library_error() -> None:
    class Diag:
        constraint_name = 'reserved_slots_pkey'

    class Orig(Exception):
        sqlstate = '23505'
        diag = Diag()

    collision = sa.exc.IntegrityError('INSERT', {}, Orig())
    wrapped = errors.AlreadyReservedError('taken')
    wrapped.__cause__ = collision
    assert is_retryable(wrapped)
    assert not is_retryable(errors.AlreadyReservedError('taken'))
