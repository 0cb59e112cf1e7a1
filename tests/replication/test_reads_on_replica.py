"""Reads on a real streaming standby, writes on the primary."""

from __future__ import annotations

import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event, text
from sqlalchemy.orm import object_session

from libres.context.core import Context
from libres.context.replicas import (
    READ_SESSION,
    InvalidReadSettings,
    ReplicaUnavailable,
    ReplicaUnavailableWarning,
    _on_primary_flush,
    replica_read,
)
from libres.context.session import SessionProvider, provider_for
from libres.db.models import Allocation
from libres.db.scheduler import Scheduler
from libres.modules import errors
from libres.retry import run_with_retries
from tests.replication.conftest import RETRY_AFTER, Cluster

pytestmark = pytest.mark.replication

DAY = datetime(2031, 3, 3)


class ProbingScheduler(Scheduler):
    """A scheduler with one more read method, opted in with the one line."""

    @replica_read
    def server_state(self) -> tuple[bool, str, str]:
        row = self.session.execute(text(
            "SELECT pg_is_in_recovery(), current_setting('transaction_isolation'), "
            "current_setting('transaction_read_only')"
        )).one()
        return bool(row[0]), str(row[1]), str(row[2])

    def primary_state(self) -> bool:
        return bool(self.session.execute(text('SELECT pg_is_in_recovery()')).scalar_one())


@contextmanager
def sent_to(provider: SessionProvider) -> Iterator[dict[str, list[str]]]:
    """The statements each server got, by 'primary' and 'replica'."""
    assert provider.reads is not None
    engines = {'primary': provider.engine, 'replica': provider.reads.replicas[0].engine}
    sent: dict[str, list[str]] = {name: [] for name in engines}
    listeners = []
    for name, engine in engines.items():
        def record(conn: Any, cursor: Any, sql: str, *args: Any, name: str = name) -> None:
            sent[name].append(sql.split()[0].upper())
        event.listen(engine, 'before_cursor_execute', record)
        listeners.append((engine, record))
    try:
        yield sent
    finally:
        for engine, record in listeners:
            event.remove(engine, 'before_cursor_execute', record)


def calendar(scheduler: Scheduler) -> None:
    """Two days of hourly allocations, committed on the primary."""
    scheduler.allocate([(DAY + timedelta(days=d, hours=h), DAY + timedelta(days=d, hours=h + 1))
                        for d in range(2) for h in range(8, 12)])
    scheduler.commit()


def book(scheduler: Scheduler, hour: int) -> str:
    start = DAY + timedelta(hours=hour)
    token = scheduler.reserve('guest@example.org', (start, start + timedelta(hours=1)))
    scheduler.approve_reservations(token)
    scheduler.commit()
    return str(token)


def all_reads(scheduler: Scheduler) -> list[Any]:
    start, end = DAY, DAY + timedelta(days=1, hours=23, minutes=59)
    resources = [scheduler.resource]
    aware = scheduler._prepare_range(start, end)
    return [
        scheduler.availability(start, end),
        scheduler.search_allocations(start, end),
        scheduler.search_allocations(start, end, minspots=1),
        scheduler.reserved_slots_by_range(start, end),
        list(scheduler.allocations_with_availability_by_range(start, end)),
        scheduler.queries.availability_by_range(*aware, resources),
        scheduler.queries.availability_by_day(*aware, resources),
        list(scheduler.queries.allocations_with_availability_by_range(*aware, scheduler.resource, [])),
        scheduler.queries.reserved_slots_by_range(*aware, scheduler.resource, []),
    ]


def plain(results: list[Any]) -> list[Any]:
    """The reads' results without ORM objects (by id), to compare."""
    def value(item: Any) -> Any:
        if isinstance(item, Allocation):
            return ('allocation', item.id)
        if isinstance(item, (list, tuple)):
            return [value(i) for i in item]
        if isinstance(item, dict):
            return {k: value(v) for k, v in item.items()}
        return item
    return [value(r) for r in results]


def test_reads_run_on_the_standby_in_repeatable_read_read_only(routed: Context, caught_up: Any) -> None:
    scheduler = ProbingScheduler(routed, 'hall', 'Europe/Zurich')
    calendar(scheduler)
    caught_up()
    assert scheduler.server_state() == (True, 'repeatable read', 'on')
    with sent_to(scheduler.session_provider) as sent:
        results = all_reads(scheduler)
    assert results[0] == 100.0
    assert len(results[1]) == 8
    assert sent['primary'] == []
    assert sent['replica'] and set(sent['replica']) <= {'SELECT', 'WITH', 'BEGIN', 'COMMIT'}


def test_writes_and_reads_after_a_write_stay_on_the_primary(routed: Context, caught_up: Any) -> None:
    scheduler = ProbingScheduler(routed, 'room', 'Europe/Zurich')
    calendar(scheduler)
    caught_up()
    start = DAY + timedelta(hours=8)
    with sent_to(scheduler.session_provider) as sent:
        token = scheduler.reserve('guest@example.org', (start, start + timedelta(hours=1)))
        scheduler.approve_reservations(token)
        # Not committed: only the primary's transaction can see it.
        assert scheduler.server_state()[0] is False
        assert scheduler.availability(start, start + timedelta(minutes=59)) == 0.0
    assert sent['replica'] == []
    assert 'INSERT' in sent['primary']
    scheduler.rollback()
    # The transaction ended: reads go back to the standby.
    assert scheduler.server_state()[0] is True
    assert scheduler.availability(start, start + timedelta(minutes=59)) == 100.0


def test_a_booking_shows_on_the_standby_once_replayed_and_at_once_with_fresh_reads(
    routed: Context, caught_up: Any, standby_engine: sa.Engine
) -> None:
    scheduler = ProbingScheduler(routed, 'pitch', 'Europe/Zurich')
    calendar(scheduler)
    caught_up()
    hour = (DAY + timedelta(hours=9), DAY + timedelta(hours=9, minutes=59))
    with standby_engine.connect() as connection:
        connection.execute(text('SELECT pg_wal_replay_pause()'))
    try:
        book(scheduler, 9)
        # Replay is paused: the standby still shows the hour free ...
        assert scheduler.availability(*hour) == 100.0
        # ... the primary shows it booked.
        with scheduler.fresh_reads():
            assert scheduler.server_state()[0] is False
            assert scheduler.availability(*hour) == 0.0
            assert len(scheduler.reserved_slots_by_range(*hour)[0]) == 12
    finally:
        with standby_engine.connect() as connection:
            connection.execute(text('SELECT pg_wal_replay_resume()'))
    caught_up()
    assert scheduler.server_state()[0] is True
    assert scheduler.availability(*hour) == 0.0


def test_objects_from_the_standby_are_changed_on_the_primary_only(
    routed: Context, caught_up: Any, primary_engine: sa.Engine
) -> None:
    scheduler = ProbingScheduler(routed, 'tickets', 'Europe/Zurich')
    scheduler.allocate((DAY.replace(hour=19), DAY.replace(hour=22)), quota=4)
    scheduler.commit()
    caught_up()
    [found] = scheduler.search_allocations(DAY, DAY.replace(hour=23))
    read_session = object_session(found)
    assert read_session is not None and read_session.info.get(READ_SESSION) is True
    # Usable after the read: attributes and lazy loads (on the standby).
    assert found.quota == 4 and found.reserved_slots == [] and found.availability == 100.0

    with sent_to(scheduler.session_provider) as sent:
        scheduler.change_quota(found, 2)
        scheduler.commit()
    assert 'UPDATE' in sent['primary']
    assert sent['replica'] == []
    with primary_engine.connect() as connection:
        assert connection.execute(
            sa.select(Allocation.quota).where(Allocation.id == found.id)
        ).scalar_one() == 2

    # Changed by hand, an object from the standby is refused, not written.
    found.data = {'note': 'edited'}
    with pytest.raises(errors.ModifiedReadOnlySession):
        scheduler.search_allocations(DAY, DAY.replace(hour=23))
    caught_up()
    [again] = scheduler.search_allocations(DAY, DAY.replace(hour=23))
    assert again.quota == 2 and 'note' not in (again.data or {})


def test_a_stopped_standby_falls_back_with_a_warning_and_recovers(
    routed: Context, cluster: Cluster, caught_up: Any
) -> None:
    scheduler = ProbingScheduler(routed, 'court', 'Europe/Zurich')
    calendar(scheduler)
    book(scheduler, 10)
    caught_up()
    expected = plain(all_reads(scheduler))
    cluster.stop_standby()
    try:
        with pytest.warns(ReplicaUnavailableWarning):
            assert scheduler.server_state()[0] is False
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter('always')
            with sent_to(scheduler.session_provider) as sent:
                fallen_back = plain(all_reads(scheduler))
        assert {type(w.message) for w in seen} == {ReplicaUnavailableWarning}
        assert sent['replica'] == [] and sent['primary']
        assert fallen_back == expected
    finally:
        cluster.start_standby()
    caught_up()
    time.sleep(RETRY_AFTER)  # the back-off, so the standby is tried again
    assert scheduler.server_state()[0] is True


def test_fallback_raise_refuses_the_read(cluster: Cluster, caught_up: Any) -> None:
    provider = SessionProvider(cluster.primary_dsn)
    provider.use_replicas([cluster.dsn(cluster.standby_port), cluster.standby_dsn],
                          fallback='raise', retry_after=RETRY_AFTER)
    from tests.replication.conftest import _context

    contexts = _context(provider)
    scheduler = ProbingScheduler(next(contexts), 'desk', 'Europe/Zurich')
    try:
        assert scheduler.server_state()[0] is True
        cluster.stop_standby()
        try:
            with pytest.raises(ReplicaUnavailable):
                scheduler.server_state()
            # Both URLs name the stopped standby: both are now skipped.
            assert all(not r.is_up(time.monotonic()) for r in provider.reads.replicas)  # type: ignore[union-attr]
            # Writes never needed the standby.
            calendar(scheduler)
        finally:
            cluster.start_standby()
        caught_up()
        time.sleep(RETRY_AFTER)
        assert scheduler.server_state()[0] is True
    finally:
        next(contexts, None)
        provider.stop_service()


def test_bookings_under_load_survive_a_standby_restart(
    routed: Context, cluster: Cluster, caught_up: Any, primary_engine: sa.Engine, standby_engine: sa.Engine
) -> None:
    scheduler = ProbingScheduler(routed, 'lanes', 'Europe/Zurich')
    days = 6
    scheduler.allocate([(DAY + timedelta(days=d, hours=h), DAY + timedelta(days=d, hours=h + 1))
                        for d in range(days) for h in range(8, 18)])
    scheduler.commit()
    caught_up()
    hours = [DAY + timedelta(days=d, hours=h) for d in range(days) for h in range(8, 18)]
    booked: list[str] = []
    failures: list[BaseException] = []
    # The booker waits for the standby to be down before its second quarter
    # and for it to be back before its last: half the bookings, and the
    # reads between them, run while it is stopped or starting.
    quarter = len(hours) // 4
    stopped, restarted = threading.Event(), threading.Event()

    def booker() -> None:
        own = scheduler.clone()
        try:
            for index, start in enumerate(hours):
                if index == quarter:
                    assert stopped.wait(60)
                if index == 3 * quarter:
                    assert restarted.wait(60)
                def unit(start: datetime = start) -> str:
                    token = own.reserve('load@example.org', (start, start + timedelta(hours=1)))
                    own.approve_reservations(token)
                    own.commit()
                    return str(token)
                booked.append(run_with_retries(own, unit))
                # A calendar read between bookings, as a booking page does.
                own.availability(DAY, DAY + timedelta(days=days))
        except BaseException as error:  # reported below
            failures.append(error)
        finally:
            own.session.rollback()
            own.session_provider.session.remove()

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ReplicaUnavailableWarning)
        thread = threading.Thread(target=booker)
        thread.start()
        while len(booked) < quarter and thread.is_alive():
            time.sleep(0.01)
        cluster.stop_standby()
        assert scheduler.server_state()[0] is False  # fell back
        scheduler.rollback()
        stopped.set()
        while len(booked) < 2 * quarter and thread.is_alive():
            scheduler.availability(DAY, DAY + timedelta(days=days))  # on the primary meanwhile
            scheduler.rollback()
            time.sleep(0.01)
        cluster.start_standby()
        restarted.set()
        thread.join(timeout=120)
    assert not thread.is_alive()
    assert failures == []
    assert len(booked) == len(hours) == len(set(booked))
    caught_up()
    count = sa.text('SELECT count(*) FROM reserved_slots r JOIN allocations a ON a.id = r.allocation_id '
                    'WHERE a.mirror_of = :resource')
    for engine in (primary_engine, standby_engine):
        with engine.connect() as connection:
            assert connection.execute(count, {'resource': scheduler.resource}).scalar_one() == len(hours)
    time.sleep(RETRY_AFTER)
    assert scheduler.server_state()[0] is True
    assert scheduler.availability(DAY, DAY + timedelta(days=days)) == 0.0


def test_the_settings_give_the_default_provider_its_replicas(cluster: Cluster, caught_up: Any) -> None:
    import libres

    context = libres.registry.register_context(f'settings-{uuid.uuid4().hex[:8]}')
    context.set_setting('dsn', cluster.primary_dsn)
    context.set_setting('read_dsn', [cluster.standby_dsn])
    context.set_setting('read_retry_after', 0.25)
    scheduler = ProbingScheduler(context, 'gym', 'Europe/Zurich')
    try:
        provider = scheduler.session_provider
        assert provider.reads is not None and provider.reads.retry_after == 0.25
        assert scheduler.server_state()[0] is True
        assert scheduler.primary_state() is False
    finally:
        provider.stop_service()

    context.set_setting('read_fallback', 'sometimes')
    with pytest.raises(InvalidReadSettings, match='read_fallback'):
        provider_for(context)


def test_without_read_dsn_the_provider_has_no_read_side(cluster: Cluster) -> None:
    provider = SessionProvider(cluster.primary_dsn)
    try:
        assert provider.reads is None
        session = provider.session()
        # No listener of the read side on the primary's sessions.
        assert not event.contains(type(session), 'after_flush', _on_primary_flush)
    finally:
        provider.stop_service()


def test_changed_objects_and_textual_writes_keep_reads_on_the_primary(
    routed: Context, caught_up: Any
) -> None:
    scheduler = ProbingScheduler(routed, 'studio', 'Europe/Zurich')
    calendar(scheduler)
    caught_up()
    first = scheduler.allocations_in_range(DAY, DAY + timedelta(days=1)).first()
    assert first is not None and object_session(first) is scheduler.session_provider.session()
    assert scheduler.server_state()[0] is True
    first.data = {'changed': True}  # not flushed yet: the next read must see it
    assert scheduler.server_state()[0] is False
    scheduler.rollback()
    assert scheduler.server_state()[0] is True
    scheduler.session.execute(text('SET LOCAL statement_timeout = 10000'))
    assert scheduler.server_state()[0] is False  # textual SQL counts as a write
    scheduler.rollback()
    scheduler.session.execute(text('SELECT 1'))
    assert scheduler.server_state()[0] is True


def test_a_dead_first_replica_hands_the_reads_to_the_next(cluster: Cluster, caught_up: Any) -> None:
    from tests.replication.conftest import _context, _free_port

    nobody = cluster.dsn(_free_port())  # nothing listens there
    provider = SessionProvider(cluster.primary_dsn)
    provider.use_replicas([nobody, cluster.standby_dsn], retry_after=60)
    contexts = _context(provider)
    scheduler = ProbingScheduler(next(contexts), 'bay', 'Europe/Zurich')
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error', ReplicaUnavailableWarning)  # no fallback to the primary
            assert scheduler.server_state()[0] is True
            assert scheduler.server_state()[0] is True
        first, second = provider.reads.replicas  # type: ignore[union-attr]
        assert not first.is_up(time.monotonic()) and second.is_up(time.monotonic())
    finally:
        next(contexts, None)
        provider.stop_service()


def test_free_intervals_and_the_ical_feed_read_on_the_standby(routed: Context, caught_up: Any) -> None:
    from libres.ical import to_ical

    scheduler = ProbingScheduler(routed, 'feeds', 'Europe/Zurich')
    calendar(scheduler)
    book(scheduler, 9)
    caught_up()
    start, end = DAY, DAY + timedelta(days=2)
    with sent_to(scheduler.session_provider) as sent:
        free = scheduler.free_intervals(start, end)
        feed = to_ical(scheduler, start, end, include=('reservations', 'allocations'))
    assert free and b'BEGIN:VEVENT' in feed
    assert sent['primary'] == []
    assert sent['replica'] and set(sent['replica']) <= {'SELECT', 'WITH', 'BEGIN', 'COMMIT'}
