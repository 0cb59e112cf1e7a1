"""Invariants PostgreSQL enforces beyond columns: triggers for what CHECK
constraints cannot say.

* every reserved slot lies inside the allocation it points to, on the same
  resource, also after the allocation moves;
* every reserved slot has a live owner: an approved reservation or a
  blocker with the slot's token and id, or, for the slots of a hold, a
  pending reservation held until the same time;
* an owner deleted takes its slots with it (what libres 1.4.0 left behind
  as orphans); an owner changed so that it no longer owns its slots is
  refused.

The triggers run once per statement, at its end, over the rows it wrote
(transition tables): nothing waits for the commit, so a host application
may write slots and then ``ALTER TABLE`` in the same transaction. A
statement that writes slots must therefore come after the one that
approves their owner; the unit of work saves reservations and blockers
before reserved slots (its order of mappers), and the library flushes in
that order too. ``create_all`` runs this SQL through the DDL events below;
the migrations keep their own frozen copies (0002 made deferred row
triggers, 0003 made the slot check one query, 0004 made these, 0006 taught
them holds; a migration
must never change once released), and the drift test proves both agree.
"""

from __future__ import annotations

from sqlalchemy import DDL, MetaData, event

EXTENSIONS = 'CREATE EXTENSION IF NOT EXISTS btree_gist'

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


def attach(metadata: MetaData) -> None:
    """Create the extension before the tables, the triggers after all of them."""
    event.listen(metadata, 'before_create', DDL(EXTENSIONS))  # type: ignore[no-untyped-call]
    # Dropped first: create_all may run again on a database that has them.
    event.listen(metadata, 'after_create', DDL(DROP))  # type: ignore[no-untyped-call]
    event.listen(metadata, 'after_create', DDL(FUNCTIONS))  # type: ignore[no-untyped-call]
    event.listen(metadata, 'after_create', DDL(TRIGGERS))  # type: ignore[no-untyped-call]
