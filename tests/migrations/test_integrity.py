"""``libres check`` finds corrupt records per resource and repairs what it can."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner

import libres
from libres.cli import main as cli
from libres.db import migrate
from libres.db.models import Reservation, invariants
from libres.db.scheduler import Scheduler

DAY = datetime(2031, 5, 5)


def corrupted_database(make: Callable[[], str]) -> tuple[str, dict[str, object]]:
    """A database with one of everything wrong: made at the newest schema,
    then corrupted with its invariants removed (as a 1.4.0 schema had none)."""
    dsn = make()
    engine = migrate.engine_for(dsn)
    migrate.upgrade(engine)
    context = libres.registry.register_context(f'corrupt-{uuid.uuid4().hex[:6]}')
    context.set_setting('dsn', dsn)
    room = Scheduler(context, 'room', 'UTC')
    room.allocate((DAY.replace(hour=8), DAY.replace(hour=18)), partly_available=True, raster=15)
    [other] = room.allocate((DAY.replace(day=6, hour=8), DAY.replace(day=6, hour=10)))
    tokens = {}
    for name, hours in (('orphan', (8, 9)), ('missing', (10, 11)), ('lost', (12, 13)), ('moved', (14, 15))):
        tokens[name] = room.reserve(f'{name}@example.org', (DAY.replace(hour=hours[0]), DAY.replace(hour=hours[1])))
        room.approve_reservations(tokens[name])
    room.reserve('cart@example.org', (DAY.replace(hour=16), DAY.replace(hour=17)), session_id=uuid.uuid4())
    room.commit()
    ids = {name: room.reservations_by_token(token).one().id for name, token in tokens.items()}
    allocation_id, resource = other.id, str(room.resource)
    room.commit()  # a new snapshot afterwards: the corruption below happens elsewhere
    with engine.begin() as connection:
        def run(sql: str, **params: Any) -> Any:
            return connection.execute(sa.text(sql), params)

        run(invariants.DROP)
        run('ALTER TABLE allocations DROP CONSTRAINT allocations_no_overlap')

        run('DELETE FROM reservations WHERE id = :id', id=ids['orphan'])
        run("DELETE FROM reserved_slots WHERE source_id IN (:a, :b) AND source_type = 'reservation'",
            a=ids['missing'], b=ids['lost'])
        run("UPDATE reserved_slots SET start = start - interval '1 day', \"end\" = \"end\" - interval '1 day' "
            "WHERE source_id = :id", id=ids['moved'])
        run("""INSERT INTO allocations (resource, type, mirror_of, "group", quota, quota_limit, partly_available,
               approve_manually, _start, _end, _raster, created)
               SELECT resource, type, mirror_of, gen_random_uuid(), 1, 0, false, false,
                      _start + interval '1 hour', _end + interval '1 hour', _raster, now()
               FROM allocations WHERE id = :id""", id=allocation_id)
        run("""INSERT INTO allocations (resource, type, mirror_of, "group", quota, quota_limit, partly_available,
               approve_manually, _start, _end, _raster, created)
               VALUES (gen_random_uuid(), 'generic', :master, gen_random_uuid(), 2, 0, false, false,
                       '2031-06-01 10:00', '2031-06-01 10:59:59.999999', 60, now())""",
            master=resource)
    # Someone else took the 'lost' reservation's time meanwhile.
    room.add_blocker((DAY.replace(hour=12), DAY.replace(hour=13)))
    room.commit()
    room.session_provider.stop_service()
    return dsn, {'resource': resource}


def test_check_reports_every_kind(fresh_database: Callable[[], str]) -> None:
    dsn, info = corrupted_database(fresh_database)
    runner = CliRunner()
    result = runner.invoke(cli, ['check', '--dsn', dsn, '--json', '--expired-before', '2100-01-01'])
    assert result.exit_code == 1
    report = json.loads(result.output)
    found = report['findings'][info['resource']]
    assert {kind: len(items) for kind, items in found.items()} == {
        'orphaned_slots': 4, 'missing_slots': 2, 'slots_outside_allocation': 4,
        'overlapping_allocations': 1, 'mirrors_without_master': 1, 'expired_cart_reservations': 1,
    }
    readable = runner.invoke(cli, ['check', '--dsn', dsn, '--expired-before', '2100-01-01'])
    assert readable.exit_code == 1
    assert f'resource {info["resource"]}  (name unknown' in readable.output
    assert '4 reserved slots without an owner' in readable.output


def test_repair_fixes_what_needs_no_guessing(fresh_database: Callable[[], str]) -> None:
    dsn, info = corrupted_database(fresh_database)
    runner = CliRunner()
    result = runner.invoke(cli, ['check', '--dsn', dsn, '--repair', '--json', '--expired-before', '2100-01-01'])
    assert result.exit_code == 1  # overlaps and lost mirrors need a person
    report = json.loads(result.output)
    assert report['repaired'] == {'orphaned_slots': 4, 'missing_slots': 1, 'expired_cart_reservations': 1}
    assert any('lost@example.org' in line and 'AlreadyReservedError' in line for line in report['not_repaired'])
    assert any('allocations of one resource that overlap' in line for line in report['not_repaired'])
    left = report['findings'][info['resource']]
    assert set(left) == {'missing_slots', 'slots_outside_allocation', 'overlapping_allocations',
                         'mirrors_without_master'}
    engine = migrate.engine_for(dsn)
    with engine.connect() as connection:
        restored = connection.execute(sa.text(
            "SELECT count(*) FROM reserved_slots s JOIN reservations r ON r.id = s.source_id "
            "WHERE r.email = 'missing@example.org'")).scalar()
        carts = connection.execute(sa.text(
            "SELECT count(*) FROM reservations WHERE session_id IS NOT NULL")).scalar()
    assert restored == 4 and carts == 0


def test_a_clean_database_exits_zero(fresh_database: Callable[[], str]) -> None:
    dsn = fresh_database()
    migrate.upgrade(migrate.engine_for(dsn))
    result = CliRunner().invoke(cli, ['check', '--dsn', dsn])
    assert result.exit_code == 0 and result.output.strip() == 'No problems found.'
    assert Reservation.__tablename__ == 'reservations'


def test_cli_db_commands(fresh_database: Callable[[], str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    dsn = fresh_database()
    monkeypatch.setenv('LIBRES_DSN', dsn)
    runner = CliRunner()
    assert runner.invoke(cli, ['db', 'current']).output.startswith('none (no libres tables)')
    head = migrate.head()
    assert f'upgraded from an empty database to {head}' in runner.invoke(cli, ['db', 'upgrade']).output
    assert runner.invoke(cli, ['db', 'current']).output.startswith(f'{head} (head)')
    assert f'{head} (head)' in runner.invoke(cli, ['db', 'history']).output
    # Below 0002 the command asks first (issue 18); --yes answers for a script.
    assert 'now at 0001' in runner.invoke(cli, ['db', 'downgrade', '0001', '--yes']).output
    assert 'now at base' in runner.invoke(cli, ['db', 'downgrade', 'base', '--yes']).output
