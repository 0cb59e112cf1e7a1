"""Booking policies: holds, buffers and booking windows.

Revision ID: 0006
Revises: 0005

* ``reservations.held_until``: a pending reservation made with a hold;
* ``reserved_slots.held_until`` (the slots of a hold carry its end) and
  ``reserved_slots.buffer`` (time kept free around a booking);
* ``allocations.buffer_before``, ``buffer_after``, ``min_notice`` and
  ``max_advance``, all nullable: NULL is 1.4.0's behaviour; the same four
  on ``allocation_rules``, which pass them to their allocations.

The slot checks learn that a pending reservation owns the slots of its
hold (same trigger names, same constraint names and error codes).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

COLUMNS = """
ALTER TABLE reservations ADD COLUMN held_until TIMESTAMP WITHOUT TIME ZONE;
ALTER TABLE reserved_slots ADD COLUMN held_until TIMESTAMP WITHOUT TIME ZONE;
ALTER TABLE reserved_slots ADD COLUMN buffer BOOLEAN DEFAULT false NOT NULL;
ALTER TABLE reserved_slots ADD CONSTRAINT reserved_slots_holds_and_buffers_of_reservations
    CHECK (held_until IS NULL AND NOT buffer OR source_type = 'reservation');
ALTER TABLE allocations ADD COLUMN buffer_before INTERVAL;
ALTER TABLE allocations ADD COLUMN buffer_after INTERVAL;
ALTER TABLE allocations ADD COLUMN min_notice INTERVAL;
ALTER TABLE allocations ADD COLUMN max_advance INTERVAL;
ALTER TABLE allocations ADD CONSTRAINT allocations_policies_in_range
    CHECK (buffer_before >= interval '0' AND buffer_after >= interval '0'
        AND min_notice >= interval '0' AND max_advance > interval '0'
        AND min_notice <= max_advance);
ALTER TABLE allocation_rules ADD COLUMN buffer_before INTERVAL;
ALTER TABLE allocation_rules ADD COLUMN buffer_after INTERVAL;
ALTER TABLE allocation_rules ADD COLUMN min_notice INTERVAL;
ALTER TABLE allocation_rules ADD COLUMN max_advance INTERVAL;
"""

DROP_COLUMNS = """
ALTER TABLE allocation_rules DROP COLUMN max_advance;
ALTER TABLE allocation_rules DROP COLUMN min_notice;
ALTER TABLE allocation_rules DROP COLUMN buffer_after;
ALTER TABLE allocation_rules DROP COLUMN buffer_before;
ALTER TABLE allocations DROP CONSTRAINT allocations_policies_in_range;
ALTER TABLE allocations DROP COLUMN max_advance;
ALTER TABLE allocations DROP COLUMN min_notice;
ALTER TABLE allocations DROP COLUMN buffer_after;
ALTER TABLE allocations DROP COLUMN buffer_before;
ALTER TABLE reserved_slots DROP CONSTRAINT reserved_slots_holds_and_buffers_of_reservations;
ALTER TABLE reserved_slots DROP COLUMN buffer;
ALTER TABLE reserved_slots DROP COLUMN held_until;
ALTER TABLE reservations DROP COLUMN held_until;
"""

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
            -- An approved reservation owns bookings and buffers; a pending one
            -- owns the slots of its hold, which carry the hold's end.
            WHEN 'reservation' THEN EXISTS (
                SELECT 1 FROM reservations r
                WHERE r.id = s.source_id AND r.token = s.reservation_token AND (
                    r.status = 'approved' AND s.held_until IS NULL
                    OR r.status = 'pending' AND s.held_until = r.held_until))
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
        WHERE kind = 'reservation' AND r.id = o.id AND r.token = o.token
          AND (r.status = 'approved' OR r.held_until IS NOT NULL)
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


def _revision(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f'libres_revision_{path.stem}', path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.execute(COLUMNS)
    op.execute(FUNCTIONS)


def downgrade() -> None:
    # Holds and buffers have no meaning before this revision: their slots go.
    op.execute('DELETE FROM reserved_slots WHERE held_until IS NOT NULL OR buffer')
    op.execute(_revision('0004_statement_slot_checks.py').FUNCTIONS)
    op.execute(DROP_COLUMNS)
