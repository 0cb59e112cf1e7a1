"""The reserved-slot check reads the slot and both conditions in one query.

Revision ID: 0003
Revises: 0002

The check runs for every slot at commit; three queries per slot were a
measurable share of every booking. Same conditions, same errors.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Frozen here, not imported from the models, so this revision never changes.
SLOT_CHECK = r"""
CREATE OR REPLACE FUNCTION libres_check_reserved_slot() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    slot record;
BEGIN
    -- The row may have changed or gone since the deferred event was queued.
    -- One query for the row and both checks: this runs for every slot at commit.
    SELECT s.resource, s.start, s.allocation_id, s.source_type, s.source_id, s.reservation_token,
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
    INTO slot
    FROM reserved_slots s WHERE s.resource = NEW.resource AND s.start = NEW.start;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT slot.inside THEN
        RAISE EXCEPTION USING
            MESSAGE = 'reserved slot (' || slot.resource || ', ' || slot.start
                || ') lies outside its allocation ' || slot.allocation_id,
            ERRCODE = 'check_violation', CONSTRAINT = 'reserved_slot_inside_allocation';
    END IF;
    IF NOT slot.owned THEN
        RAISE EXCEPTION USING
            MESSAGE = 'reserved slot (' || slot.resource || ', ' || slot.start || ') has no owner: '
                || slot.source_type || ' ' || slot.source_id || ' ' || slot.reservation_token,
            ERRCODE = 'foreign_key_violation', CONSTRAINT = 'reserved_slot_has_owner';
    END IF;
    RETURN NULL;
END $$;
"""


def _slot_check_of_0002() -> str:
    """The three-query check, as revision 0002 (which never changes) made it."""
    path = Path(__file__).with_name('0002_invariants.py')
    spec = importlib.util.spec_from_file_location('libres_revision_0002', path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    functions: str = module.FUNCTIONS
    return functions[:functions.index('CREATE OR REPLACE FUNCTION libres_check_allocation_slots()')]


def upgrade() -> None:
    op.execute(SLOT_CHECK)


def downgrade() -> None:
    op.execute(_slot_check_of_0002())
