"""Slot invariants checked per statement; deleting an owner removes its slots.

Revision ID: 0004
Revises: 0003

The deferred row triggers of 0002/0003 queued an event per slot until the
commit. PostgreSQL refuses ``ALTER TABLE`` on a table with queued events,
so a host application could not write slots and alter ``reserved_slots``
in one transaction (libres 1.4.0 let it), and deleting a reservation or a
blocker that still had slots was refused. Now every check runs once at the
end of the statement that wrote, over its rows (transition tables), and
deleting an owner deletes its slots. Same conditions, same error codes and
constraint names.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# Frozen here, not imported from the models, so this revision never changes.
FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION libres_check_written_slots() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    slot record;
BEGIN
    -- One query over every slot the statement wrote: the first that lies
    -- outside its allocation or has no owner.
    SELECT s.resource, s.start, s.allocation_id, s.source_type, s.source_id, s.reservation_token,
        checked.inside
    INTO slot
    FROM written_slots s
    CROSS JOIN LATERAL (SELECT
        EXISTS (
            SELECT 1 FROM allocations a
            WHERE a.id = s.allocation_id AND a.resource = s.resource
              AND a._start <= s.start AND s."end" <= a._end
        ) AS inside,
        CASE s.source_type
            WHEN 'reservation' THEN EXISTS (
                SELECT 1 FROM reservations r
                WHERE r.id = s.source_id AND r.token = s.reservation_token AND r.status = 'approved')
            ELSE EXISTS (
                SELECT 1 FROM reservation_blockers b
                WHERE b.id = s.source_id AND b.token = s.reservation_token)
        END AS owned
    ) AS checked
    WHERE NOT (checked.inside AND checked.owned)
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT slot.inside THEN
        RAISE EXCEPTION USING
            MESSAGE = 'reserved slot (' || slot.resource || ', ' || slot.start
                || ') lies outside its allocation ' || slot.allocation_id,
            ERRCODE = 'check_violation', CONSTRAINT = 'reserved_slot_inside_allocation';
    END IF;
    RAISE EXCEPTION USING
        MESSAGE = 'reserved slot (' || slot.resource || ', ' || slot.start || ') has no owner: '
            || slot.source_type || ' ' || slot.source_id || ' ' || slot.reservation_token,
        ERRCODE = 'foreign_key_violation', CONSTRAINT = 'reserved_slot_has_owner';
END $$;

CREATE OR REPLACE FUNCTION libres_check_allocations_keep_slots() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    moved bigint;
BEGIN
    SELECT a.id INTO moved
    FROM changed_allocations a JOIN reserved_slots s ON s.allocation_id = a.id
    WHERE s.resource <> a.resource OR s.start < a._start OR s."end" > a._end
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = 'allocation ' || moved || ' no longer contains its reserved slots',
            ERRCODE = 'check_violation', CONSTRAINT = 'reserved_slot_inside_allocation';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION libres_remove_slots_of_owners() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM reserved_slots s USING removed_owners o
    WHERE s.source_type = CASE TG_TABLE_NAME
            WHEN 'reservations' THEN 'reservation' ELSE 'blocker' END::reserved_slot_source_type
      AND s.source_id = o.id AND s.reservation_token = o.token;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION libres_check_owners_keep_slots() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    kind text := CASE TG_TABLE_NAME WHEN 'reservations' THEN 'reservation' ELSE 'blocker' END;
    owner bigint;
BEGIN
    SELECT o.id INTO owner
    FROM changed_owners o
    WHERE EXISTS (
        SELECT 1 FROM reserved_slots s
        WHERE s.source_type::text = kind AND s.source_id = o.id AND s.reservation_token = o.token
    ) AND NOT EXISTS (
        SELECT 1 FROM reservations r
        WHERE kind = 'reservation' AND r.id = o.id AND r.token = o.token AND r.status = 'approved'
        UNION ALL
        SELECT 1 FROM reservation_blockers b
        WHERE kind = 'blocker' AND b.id = o.id AND b.token = o.token
    )
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = kind || ' ' || owner || ' still owns reserved slots',
            ERRCODE = 'foreign_key_violation', CONSTRAINT = 'reserved_slot_has_owner';
    END IF;
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE TRIGGER reserved_slots_inserted_checked
    AFTER INSERT ON reserved_slots REFERENCING NEW TABLE AS written_slots
    FOR EACH STATEMENT EXECUTE FUNCTION libres_check_written_slots();
CREATE TRIGGER reserved_slots_updated_checked
    AFTER UPDATE ON reserved_slots REFERENCING NEW TABLE AS written_slots
    FOR EACH STATEMENT EXECUTE FUNCTION libres_check_written_slots();
CREATE TRIGGER allocations_keep_slots
    AFTER UPDATE ON allocations REFERENCING NEW TABLE AS changed_allocations
    FOR EACH STATEMENT EXECUTE FUNCTION libres_check_allocations_keep_slots();
CREATE TRIGGER reservations_remove_slots
    AFTER DELETE ON reservations REFERENCING OLD TABLE AS removed_owners
    FOR EACH STATEMENT EXECUTE FUNCTION libres_remove_slots_of_owners();
CREATE TRIGGER blockers_remove_slots
    AFTER DELETE ON reservation_blockers REFERENCING OLD TABLE AS removed_owners
    FOR EACH STATEMENT EXECUTE FUNCTION libres_remove_slots_of_owners();
CREATE TRIGGER reservations_keep_slots
    AFTER UPDATE ON reservations REFERENCING OLD TABLE AS changed_owners
    FOR EACH STATEMENT EXECUTE FUNCTION libres_check_owners_keep_slots();
CREATE TRIGGER blockers_keep_slots
    AFTER UPDATE ON reservation_blockers REFERENCING OLD TABLE AS changed_owners
    FOR EACH STATEMENT EXECUTE FUNCTION libres_check_owners_keep_slots();
"""

DROP = """
DROP TRIGGER IF EXISTS reserved_slots_inserted_checked ON reserved_slots;
DROP TRIGGER IF EXISTS reserved_slots_updated_checked ON reserved_slots;
DROP TRIGGER IF EXISTS allocations_keep_slots ON allocations;
DROP TRIGGER IF EXISTS reservations_remove_slots ON reservations;
DROP TRIGGER IF EXISTS blockers_remove_slots ON reservation_blockers;
DROP TRIGGER IF EXISTS reservations_keep_slots ON reservations;
DROP TRIGGER IF EXISTS blockers_keep_slots ON reservation_blockers;
DROP FUNCTION IF EXISTS libres_check_written_slots();
DROP FUNCTION IF EXISTS libres_check_allocations_keep_slots();
DROP FUNCTION IF EXISTS libres_remove_slots_of_owners();
DROP FUNCTION IF EXISTS libres_check_owners_keep_slots();
"""

# IF EXISTS: a schema made by ``create_all`` is stamped 0002 and upgraded
# from there, although it has these triggers already.
DROP_0003 = """
DROP TRIGGER IF EXISTS reserved_slot_checked ON reserved_slots;
DROP TRIGGER IF EXISTS allocation_keeps_slots ON allocations;
DROP TRIGGER IF EXISTS reservation_keeps_slots ON reservations;
DROP TRIGGER IF EXISTS blocker_keeps_slots ON reservation_blockers;
DROP FUNCTION IF EXISTS libres_check_reserved_slot();
DROP FUNCTION IF EXISTS libres_check_allocation_slots();
DROP FUNCTION IF EXISTS libres_check_slot_owner_kept();
"""


def _revision(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f'libres_revision_{path.stem}', path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.execute(DROP_0003)
    op.execute(DROP)
    op.execute(FUNCTIONS)
    op.execute(TRIGGERS)


def downgrade() -> None:
    op.execute(DROP)
    # 0002 made the functions and the deferred triggers, 0003 replaced one function.
    op.execute(_revision('0002_invariants.py').FUNCTIONS)
    op.execute(_revision('0003_one_query_slot_check.py').SLOT_CHECK)
