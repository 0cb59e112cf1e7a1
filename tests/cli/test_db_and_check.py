"""``libres db`` and ``libres check`` on real databases: what they say when
things are fine, what blocks an upgrade, what a downgrade drops."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from libres.cli import main as cli
from libres.cli.names import resource_of
from libres.context.settings import DEFAULT_UUID_NAMESPACE
from libres.db import migrate

WIDE = {'COLUMNS': '200'}  # table rows on one line each, to search them


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner(env=WIDE).invoke(cli, list(args))
    return result.exit_code, result.output


def insert_allocation(connection: sa.Connection, resource: uuid.UUID, start: str, end: str,
                      timezone: str | None = 'Europe/Zurich') -> int:
    return int(connection.execute(sa.text("""
        INSERT INTO allocations (resource, type, mirror_of, "group", quota, quota_limit, partly_available,
                                 approve_manually, _start, _end, _raster, timezone, created)
        VALUES (:r, 'generic', :r, gen_random_uuid(), 1, 0, false, false,
                CAST(:s AS timestamp), CAST(:e AS timestamp), 60, :tz, now())
        RETURNING id"""), {'r': resource, 's': start, 'e': end, 'tz': timezone}).scalar_one())


def test_current_names_the_revision_head_and_database(fresh_database: Callable[[], str]) -> None:
    dsn = fresh_database()
    with_password = sa.engine.make_url(dsn)._replace(password='s3cret').render_as_string(hide_password=False)
    code, output = invoke('db', 'upgrade', 'head', '--dsn', dsn)
    head = migrate.head()
    assert code == 0 and f'upgraded from an empty database to {head} (head)' in output
    code, output = invoke('db', 'current', '--dsn', dsn)
    database = sa.engine.make_url(dsn).database
    assert code == 0 and output.startswith(f'{head} (head)  ') and f'/{database}' in output
    code, output = invoke('db', 'downgrade', '0002', '--dsn', dsn)  # not below 0002: no question
    assert code == 0 and 'now at 0002' in output
    code, output = invoke('db', 'current', '--json', '--dsn', dsn)
    current = json.loads(output)
    assert current['revision'] == '0002' and current['head'] == head and current['at_head'] is False
    assert 's3cret' not in invoke('db', 'current', '--dsn', with_password)[1]


def test_history_as_json() -> None:
    code, output = invoke('db', 'history', '--json')
    rows = json.loads(output)
    revisions = [revision for revision, _, _ in migrate.history()]
    assert code == 0 and [row['revision'] for row in rows] == revisions
    assert [row['head'] for row in rows] == [r == migrate.head() for r in revisions]
    assert rows[1]['down_revision'] == '0001'


def test_upgrade_names_the_overlapping_allocations_and_changes_nothing(
        fresh_database: Callable[[], str]) -> None:
    dsn = fresh_database()
    engine = migrate.engine_for(dsn)
    migrate.upgrade(engine, '0001')
    resource = uuid.uuid4()
    with engine.begin() as connection:
        first = insert_allocation(connection, resource, '2031-06-01 08:00', '2031-06-01 09:59:59.999999')
        second = insert_allocation(connection, resource, '2031-06-01 09:00', '2031-06-01 10:59:59.999999')
        connection.execute(sa.text('DELETE FROM libres_alembic_version'))  # as libres 1.4.0 left it
    code, output = invoke('db', 'upgrade', '--dsn', dsn)
    assert code == 1, output
    lines = output.strip().splitlines()
    assert len(lines) == 2
    assert f'allocations {first} (2031-06-01 08:00–10:00 UTC) and {second} (2031-06-01 09:00–11:00 UTC)' in lines[0]
    assert 'nothing was changed' in lines[0] and 'libres check' in lines[1]
    assert migrate.current(engine) is None
    code, output = invoke('db', 'upgrade', '--json', '--dsn', dsn)
    blocked = json.loads(output)
    assert blocked['exit_code'] == 1
    [overlap] = blocked['blocking']
    assert overlap['constraint'] == 'allocations_no_overlap'
    assert overlap['rows'][0]['allocation_id'] == first and overlap['rows'][0]['other_allocation_id'] == second
    # check shows the same pair, in the allocations' own zone.
    code, output = invoke('check', '--dsn', dsn)
    assert code == 1
    assert f'allocations {first} and {second}' in output
    assert '2031-06-01 10:00–12:00 and 2031-06-01 11:00–13:00 Europe/Zurich' in output
    assert 'needs a decision by a person' in output or 'need a decision by a person' in output


def test_upgrade_names_rows_that_break_a_check_constraint(fresh_database: Callable[[], str]) -> None:
    dsn = fresh_database()
    engine = migrate.engine_for(dsn)
    migrate.upgrade(engine, '0001')
    with engine.begin() as connection:
        bad = insert_allocation(connection, uuid.uuid4(), '2031-06-01 08:00', '2031-06-01 08:59:59.999999')
        connection.execute(sa.text('UPDATE allocations SET quota = 0 WHERE id = :id'), {'id': bad})
    code, output = invoke('db', 'upgrade', '--dsn', dsn)
    assert code == 1 and 'allocations_quota_positive' in output and f'id {bad}' in output
    assert migrate.current(engine) == '0001'


def test_downgrade_below_0002_asks_and_says_what_it_drops(fresh_database: Callable[[], str]) -> None:
    dsn = fresh_database()
    engine = migrate.engine_for(dsn)
    migrate.upgrade(engine)
    with engine.begin() as connection:
        insert_allocation(connection, uuid.uuid4(), '2031-06-01 08:00', '2031-06-01 08:59:59.999999')
    code, output = invoke('db', 'downgrade', 'base', '--dsn', dsn)  # no terminal to ask on
    assert code == 2
    assert 'not confirmed' in output and 'allocations (1 row), reserved_slots (0 rows)' in output and '--yes' in output
    assert migrate.current(engine) == migrate.head()
    to_0001 = f'-{len(migrate.history()) - 1}'  # relative: every revision after 0001
    code, output = invoke('db', 'downgrade', to_0001, '--dsn', dsn)
    assert code == 2 and f'undoes {migrate.head()}' in output and '0002 (Invariants' in output
    code, output = invoke('db', 'downgrade', to_0001, '--yes', '--dsn', dsn)
    assert code == 0 and 'now at 0001' in output
    code, output = invoke('db', 'downgrade', '0003', '--yes', '--dsn', dsn)
    assert code == 2 and 'not below the current revision 0001' in output
    code, output = invoke('db', 'downgrade', 'base', '--yes', '--json', '--dsn', dsn)
    assert code == 0 and json.loads(output)['after'] is None
    with engine.connect() as connection:
        assert 'allocations' not in sa.inspect(connection).get_table_names()


@pytest.fixture
def cart_database(fresh_database: Callable[[], str]) -> tuple[str, uuid.UUID, int]:
    """A database with one pending reservation of a cart idle since 2020."""
    dsn = fresh_database()
    engine = migrate.engine_for(dsn)
    migrate.upgrade(engine)
    resource = resource_of('my_app', 'room')
    with engine.begin() as connection:
        insert_allocation(connection, resource, '2031-06-01 08:00', '2031-06-01 09:59:59.999999')
        reservation = connection.execute(sa.text("""
            INSERT INTO reservations (token, target, target_type, type, resource, start, "end", timezone,
                                      status, email, session_id, quota, created)
            VALUES (gen_random_uuid(), gen_random_uuid(), 'allocation', 'generic', :r,
                    '2031-06-01 08:00', '2031-06-01 08:59:59.999999', 'Europe/Zurich', 'pending',
                    'cart@example.org', gen_random_uuid(), 1, '2020-01-01')
            RETURNING id"""), {'r': resource}).scalar_one()
    return dsn, resource, int(reservation)


def test_check_tables_name_resources_and_read_right(cart_database: tuple[str, uuid.UUID, int]) -> None:
    dsn, resource, reservation = cart_database
    code, output = invoke('check', '--dsn', dsn)
    assert code == 1
    assert f'resource {resource}  (name unknown' in output
    assert '1 pending reservation of an expired shopping cart' in output
    assert '1 pending reservations' not in output
    assert f'reservation {reservation}' in output and 'cart@example.org' in output
    assert '2031-06-01 10:00–11:00 Europe/Zurich' in output
    assert 'Hint: libres check --repair' in output
    code, output = invoke('check', '--dsn', dsn, '--name', 'my_app/room', '--timezone', 'UTC')
    assert f'my_app/room  (resource {resource})' in output and '2031-06-01 08:00–09:00 UTC' in output


def test_check_json_has_typed_ids(cart_database: tuple[str, uuid.UUID, int]) -> None:
    dsn, resource, reservation = cart_database
    code, output = invoke('check', '--json', '--dsn', dsn, '--name', 'my_app/room')
    report = json.loads(output)
    [item] = report['findings'][str(resource)]['expired_cart_reservations']
    assert code == 1 and item['reservation_id'] == reservation and isinstance(item['reservation_id'], int)
    assert item['start'] == '2031-06-01T08:00:00+00:00' and uuid.UUID(item['session_id'])
    assert report['names'] == {str(resource): 'my_app/room'} and report['counts'] == {'expired_cart_reservations': 1}
    assert report['repairable'] == ['expired_cart_reservations']


def test_expired_before_takes_dates_and_offsets(cart_database: tuple[str, uuid.UUID, int]) -> None:
    dsn, _, _ = cart_database
    # The cart was last touched 2020-01-01 00:00 UTC = 01:00 in Zurich.
    assert invoke('check', '--dsn', dsn, '--expired-before', '2020-01-01T00:30:00+01:00')[0] == 0
    assert invoke('check', '--dsn', dsn, '--expired-before', '2020-01-01T01:30:00+01:00')[0] == 1
    assert invoke('check', '--dsn', dsn, '--expired-before', '2019-12-31')[0] == 0
    assert invoke('check', '--dsn', dsn, '--expired-before', '2020-01-01T00:00:01Z')[0] == 1


def test_repair_then_clean(cart_database: tuple[str, uuid.UUID, int]) -> None:
    dsn, _, _ = cart_database
    code, output = invoke('check', '--repair', '--dsn', dsn)
    assert code == 0 and 'Repaired: 1 pending reservation of an expired shopping cart.' in output
    assert invoke('check', '--dsn', dsn) == (0, 'No problems found.\n')


def test_names_follow_the_library() -> None:
    import libres
    from libres.db.scheduler import Scheduler

    context = libres.registry.register_context(f'cli-{uuid.uuid4().hex[:6]}')
    assert resource_of(context.name, 'hall') == Scheduler(context, 'hall', 'UTC').resource
    other = uuid.uuid4()
    context.set_setting('uuid_namespace', other)
    assert resource_of(context.name, 'hall', other) == Scheduler(context, 'hall', 'UTC').resource
    assert resource_of(context.name, 'hall') == uuid.uuid5(DEFAULT_UUID_NAMESPACE, f'{context.name}/hall')


def test_a_progress_bar_on_a_large_database_in_a_terminal(
        cart_database: tuple[str, uuid.UUID, int], monkeypatch: pytest.MonkeyPatch) -> None:
    from libres.cli import check

    dsn, _, _ = cart_database
    monkeypatch.setattr(check, 'LARGE', 0)  # every database counts as large
    in_terminal = CliRunner(env={'TTY_COMPATIBLE': '1', **WIDE}).invoke(cli, ['check', '--json', '--dsn', dsn])
    assert in_terminal.exit_code == 1 and 'checked' in in_terminal.stderr
    assert json.loads(in_terminal.stdout)['counts'] == {'expired_cart_reservations': 1}
    piped = CliRunner(env={'TTY_COMPATIBLE': '0'}).invoke(cli, ['check', '--json', '--dsn', dsn])
    assert piped.exit_code == 1 and piped.stderr == ''


def test_the_check_reports_its_progress(cart_database: tuple[str, uuid.UUID, int]) -> None:
    from sqlalchemy.orm import Session

    from libres import integrity

    dsn, _, _ = cart_database
    seen: list[str] = []
    with Session(migrate.engine_for(dsn)) as session:
        integrity.check(session, progress=seen.append)
    assert seen == list(integrity.KINDS)
