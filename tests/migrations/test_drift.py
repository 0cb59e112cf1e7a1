"""Migrations and the models describe one and the same schema."""

from __future__ import annotations

from collections.abc import Callable

from libres.db import migrate
from libres.db.models import ORMBase
from tests.migrations.schema import snapshot


def test_migrations_equal_create_all(fresh_database: Callable[[], str]) -> None:
    migrated = migrate.engine_for(fresh_database())
    created = migrate.engine_for(fresh_database())
    migrate.upgrade(migrated)
    with created.begin() as connection:
        ORMBase.metadata.create_all(connection)
    a, b = snapshot(migrated), snapshot(created)
    for kind in a:
        assert a[kind] - b[kind] == set(), f'{kind} only after the migrations'
        assert b[kind] - a[kind] == set(), f'{kind} only after create_all'
    # 12 checks, the exclusion, 4 primary keys, 1 unique, 1 foreign key;
    # allocation_rules: 5 checks, 1 primary key
    assert len(a['constraints']) == 25 and len(a['triggers']) == 7
    columns = {(row[0], row[1]) for row in a['columns']}
    assert {('reserved_slots', 'held_until'), ('reserved_slots', 'buffer'),
            ('reservations', 'held_until'), ('allocations', 'min_notice'),
            ('allocation_rules', 'buffer_after')} <= columns
    assert any(row[0] == 'allocation_rules' for row in a['columns'])


def test_setup_stamps_the_newest_revision(fresh_database: Callable[[], str]) -> None:
    engine = migrate.engine_for(fresh_database())
    migrate.ensure_schema(engine)
    assert migrate.current(engine) == migrate.head()
    before = snapshot(engine)
    migrate.ensure_schema(engine)
    migrate.upgrade(engine)
    assert snapshot(engine) == before


def test_downgrade_and_upgrade_again(fresh_database: Callable[[], str]) -> None:
    engine = migrate.engine_for(fresh_database())
    migrate.upgrade(engine)
    full = snapshot(engine)
    migrate.downgrade(engine, '0001')
    assert migrate.current(engine) == '0001'
    assert snapshot(engine)['triggers'] == set()
    migrate.downgrade(engine, 'base')
    assert migrate.current(engine) is None
    migrate.upgrade(engine)
    assert snapshot(engine) == full
    assert [r for r, _, _ in migrate.history()] == ['0001', '0002', '0003', '0004', '0005', '0006']


def test_a_schema_made_by_create_all_is_recognised(fresh_database: Callable[[], str]) -> None:
    engine = migrate.engine_for(fresh_database())
    with engine.begin() as connection:
        ORMBase.metadata.create_all(connection)
    assert migrate.upgrade(engine) == 'unversioned'
    assert migrate.current(engine) == migrate.head()


def test_0003_replaces_the_slot_check_only_and_goes_back(fresh_database: Callable[[], str]) -> None:
    at_0002 = migrate.engine_for(fresh_database())
    migrate.upgrade(at_0002, '0002')
    engine = migrate.engine_for(fresh_database())
    migrate.upgrade(engine, '0003')
    before, after = snapshot(at_0002), snapshot(engine)
    changed = before['functions'] ^ after['functions']
    assert {name for name, _ in changed} == {'libres_check_reserved_slot'}
    assert all(before[kind] == after[kind] for kind in before if kind != 'functions')
    migrate.downgrade(engine, '0002')
    assert snapshot(engine) == before


def test_0004_replaces_the_triggers_only_and_goes_back(fresh_database: Callable[[], str]) -> None:
    at_0003 = migrate.engine_for(fresh_database())
    migrate.upgrade(at_0003, '0003')
    engine = migrate.engine_for(fresh_database())
    migrate.upgrade(engine, '0004')
    before, after = snapshot(at_0003), snapshot(engine)
    assert {kind for kind in before if before[kind] != after[kind]} == {'functions', 'triggers'}
    assert not any('DEFERRABLE' in str(definition) for _, _, definition in after['triggers'])
    migrate.downgrade(engine, '0003')
    assert snapshot(engine) == before


def test_0005_adds_the_rules_table_only_and_goes_back(fresh_database: Callable[[], str]) -> None:
    at_0004 = migrate.engine_for(fresh_database())
    migrate.upgrade(at_0004, '0004')
    engine = migrate.engine_for(fresh_database())
    migrate.upgrade(engine, '0005')
    before, after = snapshot(at_0004), snapshot(engine)
    added = {row[0] for kind in after for row in after[kind] - before[kind]}
    assert added == {'allocation_rules'}
    assert all(before[kind] <= after[kind] for kind in before)
    migrate.downgrade(engine, '0004')
    assert snapshot(engine) == before


def test_a_create_all_schema_with_rules_is_stamped_at_the_rules_revision(
    fresh_database: Callable[[], str],
) -> None:
    engine = migrate.engine_for(fresh_database())
    with engine.begin() as connection:
        ORMBase.metadata.create_all(connection)
    before = snapshot(engine)
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
    assert snapshot(engine) == before


def test_0006_adds_the_policies_and_goes_back(fresh_database: Callable[[], str]) -> None:
    at_0005 = migrate.engine_for(fresh_database())
    migrate.upgrade(at_0005, '0005')
    engine = migrate.engine_for(fresh_database())
    migrate.upgrade(engine, '0006')
    before, after = snapshot(at_0005), snapshot(engine)
    assert {kind for kind in before if before[kind] != after[kind]} == {
        'columns', 'constraints', 'functions'
    }
    added = {(row[0], row[1]) for row in after['columns'] - before['columns']}
    assert len(added) == 11
    migrate.downgrade(engine, '0005')
    assert snapshot(engine) == before
