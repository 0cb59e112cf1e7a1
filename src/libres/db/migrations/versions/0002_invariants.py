"""Invariants enforced by PostgreSQL: checks, no overlaps, owned slots.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# The SQL is kept here, not imported, so this revision never changes.
CHECKS = [
    ('allocations', 'allocations_start_before_end', '_start <= _end'),
    ('allocations', 'allocations_quota_positive', 'quota >= 1'),
    ('allocations', 'allocations_quota_limit_not_negative', 'quota_limit >= 0'),
    ('allocations', 'allocations_valid_raster', '_raster IN (5, 10, 15, 30, 60)'),
    ('reserved_slots', 'reserved_slots_start_before_end', 'start <= "end"'),
    ('reservations', 'reservations_quota_positive', 'quota >= 1'),
    ('reservations', 'reservations_start_before_end', 'start <= "end"'),
    ('reservations', 'reservations_span_matches_target',
     "target_type = 'group' AND start IS NULL AND \"end\" IS NULL"
     " OR target_type = 'allocation' AND start IS NOT NULL AND \"end\" IS NOT NULL"),
    ('reservation_blockers', 'reservation_blockers_start_before_end', 'start <= "end"'),
    ('reservation_blockers', 'reservation_blockers_span_matches_target',
     "target_type = 'group' AND start IS NULL AND \"end\" IS NULL"
     " OR target_type = 'allocation' AND start IS NOT NULL AND \"end\" IS NOT NULL"),
]

EXCLUSION = """
ALTER TABLE allocations ADD CONSTRAINT allocations_no_overlap
    EXCLUDE USING gist (resource WITH =, tsrange(_start, _end, '[]') WITH &&)
    DEFERRABLE INITIALLY IMMEDIATE
"""

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION libres_check_reserved_slot() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    slot record;
BEGIN
    -- The row may have changed or gone since the deferred event was queued.
    SELECT * INTO slot FROM reserved_slots WHERE resource = NEW.resource AND start = NEW.start;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM allocations a
        WHERE a.id = slot.allocation_id AND a.resource = slot.resource
          AND a._start <= slot.start AND slot."end" <= a._end
    ) THEN
        RAISE EXCEPTION USING
            MESSAGE = 'reserved slot (' || slot.resource || ', ' || slot.start
                || ') lies outside its allocation ' || slot.allocation_id,
            ERRCODE = 'check_violation', CONSTRAINT = 'reserved_slot_inside_allocation';
    END IF;
    IF slot.source_type = 'reservation' AND NOT EXISTS (
        SELECT 1 FROM reservations r
        WHERE r.id = slot.source_id AND r.token = slot.reservation_token AND r.status = 'approved'
    ) OR slot.source_type = 'blocker' AND NOT EXISTS (
        SELECT 1 FROM reservation_blockers b
        WHERE b.id = slot.source_id AND b.token = slot.reservation_token
    ) THEN
        RAISE EXCEPTION USING
            MESSAGE = 'reserved slot (' || slot.resource || ', ' || slot.start || ') has no owner: '
                || slot.source_type || ' ' || slot.source_id || ' ' || slot.reservation_token,
            ERRCODE = 'foreign_key_violation', CONSTRAINT = 'reserved_slot_has_owner';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION libres_check_allocation_slots() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM reserved_slots s JOIN allocations a ON a.id = s.allocation_id
        WHERE a.id = NEW.id
          AND (s.resource <> a.resource OR s.start < a._start OR s."end" > a._end)
    ) THEN
        RAISE EXCEPTION USING
            MESSAGE = 'allocation ' || NEW.id || ' no longer contains its reserved slots',
            ERRCODE = 'check_violation', CONSTRAINT = 'reserved_slot_inside_allocation';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION libres_check_slot_owner_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    kind text := CASE TG_TABLE_NAME WHEN 'reservations' THEN 'reservation' ELSE 'blocker' END;
BEGIN
    IF EXISTS (
        SELECT 1 FROM reserved_slots s
        WHERE s.source_type::text = kind AND s.source_id = OLD.id AND s.reservation_token = OLD.token
    ) AND NOT EXISTS (
        SELECT 1 FROM reservations r
        WHERE kind = 'reservation' AND r.id = OLD.id AND r.token = OLD.token AND r.status = 'approved'
        UNION ALL
        SELECT 1 FROM reservation_blockers b
        WHERE kind = 'blocker' AND b.id = OLD.id AND b.token = OLD.token
    ) THEN
        RAISE EXCEPTION USING
            MESSAGE = kind || ' ' || OLD.id || ' still owns reserved slots',
            ERRCODE = 'foreign_key_violation', CONSTRAINT = 'reserved_slot_has_owner';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER reserved_slot_checked
    AFTER INSERT OR UPDATE ON reserved_slots DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION libres_check_reserved_slot();
CREATE CONSTRAINT TRIGGER allocation_keeps_slots
    AFTER UPDATE OF _start, _end, resource ON allocations DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION libres_check_allocation_slots();
CREATE CONSTRAINT TRIGGER reservation_keeps_slots
    AFTER UPDATE OR DELETE ON reservations DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION libres_check_slot_owner_kept();
CREATE CONSTRAINT TRIGGER blocker_keeps_slots
    AFTER UPDATE OR DELETE ON reservation_blockers DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION libres_check_slot_owner_kept();
"""


def upgrade() -> None:
    op.execute('CREATE EXTENSION IF NOT EXISTS btree_gist')
    for table, name, condition in CHECKS:
        op.execute(f'ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition})')
    op.execute(EXCLUSION)
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute("""
        DROP TRIGGER reserved_slot_checked ON reserved_slots;
        DROP TRIGGER allocation_keeps_slots ON allocations;
        DROP TRIGGER reservation_keeps_slots ON reservations;
        DROP TRIGGER blocker_keeps_slots ON reservation_blockers;
        DROP FUNCTION libres_check_reserved_slot();
        DROP FUNCTION libres_check_allocation_slots();
        DROP FUNCTION libres_check_slot_owner_kept();
        ALTER TABLE allocations DROP CONSTRAINT allocations_no_overlap;
    """)
    for table, name, _ in reversed(CHECKS):
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT {name}')
