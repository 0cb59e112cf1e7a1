"""The free intervals of a calendar (``Scheduler.free_intervals``), in one query.

``libres.db.free_intervals`` runs them and builds the intervals;
``tests/integration/test_query_plans_fresh.py`` checks their plans on
tables without statistics.
"""

from __future__ import annotations

# Window [:start, :end) in naive UTC; :resource the scheduler's resource.
# Every free slot: the raster slots of the own masters, joined by allocation
# with the slots taken on their spots (the master and its mirror rows).
_OWN_FREE = """
WITH own AS MATERIALIZED (
    SELECT a.id, a.mirror_of, a._start, a._end, a._raster, a.quota, a.partly_available
    FROM allocations a
    WHERE a.mirror_of = CAST(:resource AS uuid) AND a.resource = CAST(:resource AS uuid)
      AND tsrange(a._start, a._end, '[]') && tsrange(CAST(:start AS timestamp), CAST(:end AS timestamp), '[)')
),
slot AS (
    SELECT own.id, own.quota, s.slot_start,
           CASE WHEN own.partly_available
                THEN s.slot_start + make_interval(mins => own._raster)
                ELSE own._end + interval '1 microsecond' END AS slot_end
    FROM own, LATERAL (
        SELECT own._start WHERE NOT own.partly_available
        UNION ALL
        SELECT generate_series(
            date_bin(make_interval(mins => own._raster), greatest(CAST(:start AS timestamp), own._start),
                     own._start),
            least(own._end, CAST(:end AS timestamp) - interval '1 microsecond'),
            make_interval(mins => own._raster))
        WHERE own.partly_available
    ) AS s(slot_start)
),
spot AS MATERIALIZED (
    -- Every spot resource of the scheduler (masters and mirrors), read once.
    SELECT DISTINCT a.resource FROM allocations a WHERE a.mirror_of = CAST(:resource AS uuid)
),
taken AS (
    -- A slot of a spot within an own master's span belongs to that master's
    -- spot: a resource's allocations never overlap, mirrors share their
    -- master's span, and every slot lies inside its allocation (database
    -- constraints). So the slots come by their primary key, per master.
    SELECT own.id, r.start, r.allocation_id AS spot_id
    FROM own
    JOIN reserved_slots r ON r.resource = ANY(ARRAY(SELECT spot.resource FROM spot))
      AND r.start >= own._start AND r.start <= own._end
      -- ReservedSlot.blocks: an expired hold leaves its time free.
      AND (r.held_until IS NULL OR r.held_until > :now)
),
free AS (
    SELECT slot.id, slot.quota, slot.slot_start, slot.slot_end,
           coalesce(array_agg(DISTINCT taken.spot_id) FILTER (WHERE taken.spot_id IS NOT NULL), '{}')
               AS taken
    FROM slot LEFT JOIN taken
      ON taken.id = slot.id AND taken.start >= slot.slot_start AND taken.start < slot.slot_end
    GROUP BY slot.id, slot.quota, slot.slot_start, slot.slot_end
    HAVING count(DISTINCT taken.spot_id) < slot.quota
)
"""

WITHOUT_BLOCKING = _OWN_FREE + """
SELECT id, slot_start, slot_end, quota, taken, CAST(NULL AS jsonb) AS blocking
FROM free
ORDER BY id, slot_start
"""

# With blocking resources (:blocking): per free slot, each overlapping master
# of theirs with the spots taken over that time (Allocation.overlaps and
# all_slots on its own raster).
WITH_BLOCKING = _OWN_FREE + """,
blocker AS MATERIALIZED (
    -- Near the own allocations only (an hour covers any raster's rounding).
    SELECT b.id, b.mirror_of, b._start, b._end, b._raster, b.quota, b.partly_available
    FROM allocations b
    WHERE b.mirror_of = ANY(CAST(:blocking AS uuid[])) AND b.resource = b.mirror_of
      AND b._start <= (SELECT max(own._end) FROM own) + interval '1 hour'
      AND b._end >= (SELECT min(own._start) FROM own) - interval '1 hour'
)
SELECT free.id, free.slot_start, free.slot_end, free.quota, free.taken, checked.blocking
FROM free CROSS JOIN LATERAL (
    SELECT coalesce(jsonb_agg(jsonb_build_array(b.id, b.quota, b.taken)), '[]') AS blocking
    FROM (
        SELECT b.id, b.quota, (
            SELECT coalesce(jsonb_agg(DISTINCT m.id), '[]')
            FROM allocations m JOIN reserved_slots r ON r.resource = m.resource
            WHERE m.mirror_of = b.mirror_of AND m._start = b._start
              AND (r.held_until IS NULL OR r.held_until > :now)
              AND r.start BETWEEN
                  CASE WHEN b.partly_available THEN date_bin(make_interval(mins => b._raster),
                       greatest(free.slot_start, b._start), TIMESTAMP '2000-01-01') ELSE b._start END
              AND CASE WHEN b.partly_available THEN date_bin(make_interval(mins => b._raster),
                       least(free.slot_end - interval '1 microsecond', b._end),
                       TIMESTAMP '2000-01-01') ELSE b._start END
        ) AS taken
        FROM blocker b
        WHERE b._start <= date_bin(make_interval(mins => b._raster),
                                   free.slot_end - interval '1 microsecond', TIMESTAMP '2000-01-01')
                          + make_interval(mins => b._raster) - interval '1 microsecond'
          AND b._end >= date_bin(make_interval(mins => b._raster), free.slot_start, TIMESTAMP '2000-01-01')
    ) AS b
) AS checked
WHERE NOT EXISTS (
    SELECT 1 FROM jsonb_array_elements(checked.blocking) AS b(entry)
    WHERE jsonb_array_length(b.entry -> 2) >= (b.entry ->> 1)::int
)
ORDER BY free.id, free.slot_start
"""
