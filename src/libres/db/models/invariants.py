"""Invariants PostgreSQL enforces beyond columns: triggers for what CHECK
constraints cannot say.

* every reserved slot lies inside the allocation it points to, on the same
  resource, also after the allocation moves;
* every reserved slot has a live owner: an approved reservation or a
  blocker with the slot's token and id; an owner cannot go while its slots
  stay.

The triggers are constraint triggers, deferred to commit: the library
writes slots before it marks their reservation approved, and removes slots
and owners in separate statements. ``create_all`` runs this SQL through the
DDL events below; the migrations keep their own frozen copies (0002 made
them, 0003 made the slot check one query; a migration must never change
once released), and the drift test proves both agree.
"""

from __future__ import annotations

from sqlalchemy import DDL, MetaData, event

EXTENSIONS = 'CREATE EXTENSION IF NOT EXISTS btree_gist'

FUNCTIONS = r"""
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
"""

TRIGGERS = """
DROP TRIGGER IF EXISTS reserved_slot_checked ON reserved_slots;
DROP TRIGGER IF EXISTS allocation_keeps_slots ON allocations;
DROP TRIGGER IF EXISTS reservation_keeps_slots ON reservations;
DROP TRIGGER IF EXISTS blocker_keeps_slots ON reservation_blockers;
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

DROP = """
DROP TRIGGER IF EXISTS reserved_slot_checked ON reserved_slots;
DROP TRIGGER IF EXISTS allocation_keeps_slots ON allocations;
DROP TRIGGER IF EXISTS reservation_keeps_slots ON reservations;
DROP TRIGGER IF EXISTS blocker_keeps_slots ON reservation_blockers;
DROP FUNCTION IF EXISTS libres_check_reserved_slot();
DROP FUNCTION IF EXISTS libres_check_allocation_slots();
DROP FUNCTION IF EXISTS libres_check_slot_owner_kept();
"""


def attach(metadata: MetaData) -> None:
    """Create the extension before the tables, the triggers after all of them."""
    event.listen(metadata, 'before_create', DDL(EXTENSIONS))  # type: ignore[no-untyped-call]
    event.listen(metadata, 'after_create', DDL(FUNCTIONS))  # type: ignore[no-untyped-call]
    event.listen(metadata, 'after_create', DDL(TRIGGERS))  # type: ignore[no-untyped-call]
