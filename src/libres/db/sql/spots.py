"""Which spots of a master are free: the SQL form of the free-spot rule.

``libres.db.booking.spots`` holds the rule and its Python form; a test
(``tests/integration/test_free_spot_rule.py``) proves the two agree.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, column, text

from libres.db.models.types.uuid_type import UUID as UUIDType

# :spots the master's resource and its mirrors' in order, :first and :last
# the first and last slot start of the range, :start the master's start
# (a mirror row shares it). A spot is taken if any of its slots starts in
# [first, last]; the free ones are counted and the first is named, with
# whether expired holds lie in its way.
SPOT_USAGE = text("""
SELECT count(*) FILTER (WHERE NOT spot.taken),
       (array_agg(spot.resource ORDER BY spot.n) FILTER (WHERE NOT spot.taken))[1],
       (array_agg(spot.id ORDER BY spot.n) FILTER (WHERE NOT spot.taken))[1],
       (array_agg(spot.expired ORDER BY spot.n) FILTER (WHERE NOT spot.taken))[1]
FROM (
    SELECT candidate.resource, candidate.n, a.id, EXISTS (
        SELECT 1 FROM reserved_slots r
        WHERE r.resource = candidate.resource AND r.start BETWEEN :first AND :last
          -- ReservedSlot.blocks: an expired hold leaves its time free ...
          AND (r.held_until IS NULL OR r.held_until > :now)
    ) AS taken, EXISTS (
        -- ... to be removed by whoever books over it.
        SELECT 1 FROM reserved_slots r
        WHERE r.resource = candidate.resource AND r.start BETWEEN :first AND :last
          AND r.held_until <= :now
    ) AS expired
    FROM unnest(CAST(:spots AS uuid[])) WITH ORDINALITY AS candidate(resource, n)
    LEFT JOIN allocations a ON a.resource = candidate.resource AND a._start = :start
) AS spot
""").columns(
    column('free', Integer), column('resource', UUIDType()), column('row_id', Integer),
    column('expired', Boolean),
)
