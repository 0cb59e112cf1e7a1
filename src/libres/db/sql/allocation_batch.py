"""The rows of an ``allocate`` batch, guarded against overlaps, in one statement."""

from __future__ import annotations

from sqlalchemy import text

# The rows of a batch, for an ORM-enabled INSERT ... SELECT (so the session,
# and a transaction manager listening to it, sees an insert).
BATCH_COLUMNS = (
    'resource', 'type', 'mirror_of', 'group', 'quota', 'quota_limit', 'partly_available',
    'approve_manually', 'timezone', 'data', '_start', '_end', '_raster', 'created',
    'buffer_before', 'buffer_after', 'min_notice', 'max_advance',
)
BATCH_ROWS = text("""
WITH batch AS (
    SELECT start_at AT TIME ZONE 'UTC' AS start_at, end_at AT TIME ZONE 'UTC' AS end_at
    FROM unnest(CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[])) AS spans(start_at, end_at)
), clash AS (
    -- Any row of the resource overlapping a span; one index probe for the hull.
    SELECT 1 FROM allocations a JOIN batch ON a._start <= batch.end_at AND batch.start_at <= a._end
    WHERE :guarded AND a.resource = CAST(:resource AS uuid)
      AND tsrange(a._start, a._end, '[]')
          && tsrange(CAST(:first AS timestamp), CAST(:last AS timestamp), '[]')
    LIMIT 1
)
SELECT CAST(:resource AS uuid), :type, CAST(:resource AS uuid),
    coalesce(CAST(:group AS uuid), gen_random_uuid()), :quota, :quota_limit,
    :partly_available, :approve_manually, :timezone, '{}'::jsonb, batch.start_at, batch.end_at,
    :_raster, :created, CAST(:buffer_before AS interval), CAST(:buffer_after AS interval),
    CAST(:min_notice AS interval), CAST(:max_advance AS interval)
FROM batch
WHERE NOT EXISTS (SELECT 1 FROM clash)
""").columns()
