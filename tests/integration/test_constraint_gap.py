"""The constraints that stand between our schema and Citus distribution by
``resource``: every primary key, unique, exclusion and foreign-key
constraint of our tables that does not include a ``resource`` column, read
from the catalog. docs/scaling.md gives this list; a change must update both.
"""

from __future__ import annotations

import sqlalchemy as sa

OUR_TABLES = ('allocations', 'reserved_slots', 'reservations', 'reservation_blockers')

CONSTRAINTS = sa.text("""
SELECT t.relname, c.conname, c.contype,
       array(SELECT a.attname FROM unnest(c.conkey) AS k(attnum)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
             ORDER BY a.attname)::text[]
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
WHERE t.relnamespace = to_regnamespace(current_schema())
  AND t.relname = ANY(:tables)
  AND c.contype IN ('p', 'u', 'x', 'f')
ORDER BY t.relname, c.conname
""")

#: (table, constraint, kind, columns); p primary key, f foreign key.
WITHOUT_RESOURCE = [
    ('allocations', 'allocations_pkey', 'p', ['id']),
    ('reservation_blockers', 'reservation_blockers_pkey', 'p', ['id']),
    ('reservations', 'reservations_pkey', 'p', ['id']),
    ('reserved_slots', 'reserved_slots_allocation_id_fkey', 'f', ['allocation_id']),
]


def _constraints(admin_engine: sa.Engine) -> list[tuple[str, str, str, list[str]]]:
    with admin_engine.connect() as connection:
        rows = connection.execute(CONSTRAINTS, {'tables': list(OUR_TABLES)}).all()
    return [(table, name, kind, list(columns)) for table, name, kind, columns in rows]


def test_the_constraints_without_resource_are_the_documented_four(admin_engine: sa.Engine) -> None:
    gap = [row for row in _constraints(admin_engine) if 'resource' not in row[3]]
    assert gap == WITHOUT_RESOURCE
    assert len(gap) == 4


def test_the_constraints_with_resource_are_the_slot_and_overlap_guards(admin_engine: sa.Engine) -> None:
    # What already includes resource: the guards against double booking.
    covered = [row[:3] for row in _constraints(admin_engine) if 'resource' in row[3]]
    assert covered == [
        ('allocations', 'allocations_no_overlap', 'x'),
        ('allocations', 'resource_start_ix', 'u'),
        ('reserved_slots', 'reserved_slots_pkey', 'p'),
    ]
