"""The integrity checks of ``libres check`` and the statements of its repairs.

Each check returns ``resource`` and ``item`` (a short text naming the
record) and may return more columns, kept as the finding's details.
"""

from __future__ import annotations

# Who owns a slot: since revision 0006 a pending reservation owns its hold's
# slots; a schema taken over from 1.4.0 and not yet upgraded has no holds.
_OWNER = """(
            r.status = 'approved' AND s.held_until IS NULL
            OR r.status = 'pending' AND s.held_until = r.held_until)"""
_OWNER_BEFORE_HOLDS = "r.status = 'approved'"

_ORPHANED = """
    s.source_type = 'reservation' AND NOT EXISTS (
        SELECT 1 FROM reservations r WHERE r.id = s.source_id
        AND r.token = s.reservation_token AND {owner})
    OR s.source_type = 'blocker' AND NOT EXISTS (
        SELECT 1 FROM reservation_blockers b WHERE b.id = s.source_id
        AND b.token = s.reservation_token)
"""

_CHECKS = {
    'orphaned_slots': f"""
        SELECT coalesce(a.mirror_of, s.resource) AS resource,
               s.resource::text || ' ' || s.start::text AS item,
               s.source_type::text AS source_type, s.source_id, s.allocation_id,
               s.start, s."end", a.timezone, s.resource AS slot_resource
        FROM reserved_slots s LEFT JOIN allocations a ON a.id = s.allocation_id
        WHERE {_ORPHANED}
    """,
    'missing_slots': """
        SELECT r.resource, r.id::text AS item, r.id AS reservation_id,
               r.start, r."end", r.timezone, r.email
        FROM reservations r
        WHERE r.status = 'approved' AND NOT EXISTS (
            SELECT 1 FROM reserved_slots s WHERE s.source_type = 'reservation'
            AND s.source_id = r.id AND s.reservation_token = r.token)
    """,
    'slots_outside_allocation': """
        SELECT coalesce(a.mirror_of, s.resource) AS resource,
               s.resource::text || ' ' || s.start::text AS item,
               s.source_type::text AS source_type, s.source_id, s.allocation_id,
               s.start, s."end", a.timezone, s.resource AS slot_resource
        FROM reserved_slots s LEFT JOIN allocations a ON a.id = s.allocation_id
        WHERE a.id IS NULL OR a.resource <> s.resource OR s.start < a._start OR s."end" > a._end
    """,
    'overlapping_allocations': """
        SELECT a.mirror_of AS resource, a.id::text || ' and ' || b.id::text AS item,
               a.id AS allocation_id, b.id AS other_allocation_id, a._start AS start, a._end AS "end",
               b._start AS other_start, b._end AS other_end, coalesce(a.timezone, b.timezone) AS timezone
        FROM allocations a JOIN allocations b
          ON a.resource = b.resource AND a.id < b.id
         AND a._start <= b._end AND b._start <= a._end
    """,
    'mirrors_without_master': """
        SELECT m.mirror_of AS resource, m.id::text AS item, m.id AS allocation_id,
               m._start AS start, m._end AS "end", m.timezone
        FROM allocations m
        WHERE m.resource <> m.mirror_of AND NOT EXISTS (
            SELECT 1 FROM allocations a WHERE a.resource = m.mirror_of AND a._start = m._start)
    """,
    'expired_holds': """
        SELECT coalesce(a.mirror_of, s.resource) AS resource,
               s.resource::text || ' ' || s.start::text AS item,
               s.source_id AS reservation_id, s.start, s."end", s.held_until, a.timezone
        FROM reserved_slots s LEFT JOIN allocations a ON a.id = s.allocation_id
        WHERE s.held_until <= :now
    """,
    'expired_cart_reservations': """
        SELECT r.resource, r.id::text AS item, r.id AS reservation_id,
               r.start, r."end", r.timezone, r.email, r.session_id
        FROM reservations r
        WHERE r.status = 'pending' AND r.session_id IN (
            SELECT session_id FROM reservations
            WHERE session_id IS NOT NULL AND status = 'pending'
            GROUP BY session_id
            HAVING greatest(max(created), coalesce(max(modified), max(created))) < :expired)
    """,
}

_DELETE_ORPHANED_SLOTS = f'DELETE FROM reserved_slots s WHERE {_ORPHANED}'
NEEDS_HOLDS = ('expired_holds',)


def checks(holds: bool) -> dict[str, str]:
    """The checks for a schema with holds (revision 0006 on) or without."""
    owner = _OWNER if holds else _OWNER_BEFORE_HOLDS
    return {
        kind: query.replace('{owner}', owner) for kind, query in _CHECKS.items()
        if holds or kind not in NEEDS_HOLDS
    }


def delete_orphaned_slots(holds: bool) -> str:
    return _DELETE_ORPHANED_SLOTS.replace('{owner}', _OWNER if holds else _OWNER_BEFORE_HOLDS)


EXPIRED_CART_SESSIONS = """
    SELECT session_id FROM reservations
    WHERE session_id IS NOT NULL AND status = 'pending' GROUP BY session_id
    HAVING greatest(max(created), coalesce(max(modified), max(created))) < :expired
"""

DELETE_CART_SLOTS = """
    DELETE FROM reserved_slots WHERE source_type = 'reservation' AND reservation_token IN (
        SELECT token FROM reservations WHERE session_id = ANY(:sessions))
"""

DELETE_CART_RESERVATIONS = 'DELETE FROM reservations WHERE session_id = ANY(:sessions)'
