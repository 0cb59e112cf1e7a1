"""The schema of the published libres 1.4.0.

A database made by libres 1.4.0 is recognised and stamped at this revision
instead of running it (see ``libres.db.migrate``).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

TABLES = """
CREATE TYPE reservation_blocker_target_type AS ENUM ('group', 'allocation');
CREATE TYPE reservation_status AS ENUM ('pending', 'approved');
CREATE TYPE reservation_target_type AS ENUM ('group', 'allocation');
CREATE TYPE reserved_slot_source_type AS ENUM ('reservation', 'blocker');

CREATE TABLE allocations (
    id serial NOT NULL,
    resource uuid NOT NULL,
    type text NOT NULL,
    mirror_of uuid NOT NULL,
    "group" uuid NOT NULL,
    quota integer NOT NULL,
    quota_limit integer NOT NULL,
    partly_available boolean NOT NULL,
    approve_manually boolean NOT NULL,
    timezone character varying,
    data jsonb,
    _start timestamp without time zone NOT NULL,
    _end timestamp without time zone NOT NULL,
    _raster integer NOT NULL,
    created timestamp without time zone NOT NULL,
    modified timestamp without time zone,
    CONSTRAINT allocations_pkey PRIMARY KEY (id),
    CONSTRAINT resource_start_ix UNIQUE (resource, _start)
);

CREATE TABLE reservation_blockers (
    id serial NOT NULL,
    token uuid NOT NULL,
    target uuid NOT NULL,
    target_type reservation_blocker_target_type NOT NULL,
    resource uuid NOT NULL,
    start timestamp without time zone,
    "end" timestamp without time zone,
    timezone character varying,
    reason character varying,
    created timestamp without time zone NOT NULL,
    modified timestamp without time zone,
    CONSTRAINT reservation_blockers_pkey PRIMARY KEY (id)
);

CREATE TABLE reservations (
    id serial NOT NULL,
    token uuid NOT NULL,
    target uuid NOT NULL,
    target_type reservation_target_type NOT NULL,
    type text NOT NULL,
    resource uuid NOT NULL,
    start timestamp without time zone,
    "end" timestamp without time zone,
    timezone character varying,
    status reservation_status NOT NULL,
    data jsonb,
    email character varying(254) NOT NULL,
    session_id uuid,
    quota integer NOT NULL,
    created timestamp without time zone NOT NULL,
    modified timestamp without time zone,
    CONSTRAINT reservations_pkey PRIMARY KEY (id)
);

CREATE TABLE reserved_slots (
    resource uuid NOT NULL,
    start timestamp without time zone NOT NULL,
    "end" timestamp without time zone NOT NULL,
    allocation_id integer NOT NULL,
    source_type reserved_slot_source_type NOT NULL,
    reservation_token uuid NOT NULL,
    source_id integer NOT NULL,
    created timestamp without time zone NOT NULL,
    modified timestamp without time zone,
    CONSTRAINT reserved_slots_pkey PRIMARY KEY (resource, start),
    CONSTRAINT reserved_slots_allocation_id_fkey FOREIGN KEY (allocation_id) REFERENCES allocations (id)
);
"""

INDEXES = {
    'allocations': [
        ('ix_allocations_end', '_end'), ('ix_allocations_group', '"group"'),
        ('ix_allocations_mirror_of', 'mirror_of'), ('ix_allocations_resource', 'resource'),
        ('ix_allocations_start', '_start'), ('ix_allocations_type', 'type'),
        ('mirror_resource_ix', 'mirror_of, resource'),
    ],
    'reservation_blockers': [
        ('blocker_target_ix', 'target, id'), ('ix_reservation_blockers_end', '"end"'),
        ('ix_reservation_blockers_resource', 'resource'), ('ix_reservation_blockers_start', 'start'),
        ('ix_reservation_blockers_target', 'target'),
        ('ix_reservation_blockers_target_type', 'target_type'),
        ('ix_reservation_blockers_token', 'token'),
    ],
    'reservations': [
        ('ix_reservations_email', 'email'), ('ix_reservations_end', '"end"'),
        ('ix_reservations_resource', 'resource'), ('ix_reservations_session_id', 'session_id'),
        ('ix_reservations_start', 'start'), ('ix_reservations_status', 'status'),
        ('ix_reservations_target', 'target'), ('ix_reservations_target_type', 'target_type'),
        ('ix_reservations_token', 'token'), ('ix_reservations_type', 'type'),
        ('target_status_ix', 'status, target, id'),
    ],
    'reserved_slots': [
        ('ix_reserved_slots_allocation_id', 'allocation_id'), ('ix_reserved_slots_end', '"end"'),
        ('ix_reserved_slots_source_id', 'source_id'), ('ix_reserved_slots_source_type', 'source_type'),
        ('reservation_resource_ix', 'reservation_token, resource'),
    ],
}


def upgrade() -> None:
    op.execute(TABLES)
    for table, indexes in INDEXES.items():
        for name, columns in indexes:
            op.execute(f'CREATE INDEX {name} ON {table} ({columns})')
    op.execute('CREATE INDEX start_end_tsrange_ix ON reserved_slots USING gist (tsrange(start, "end"))')


def downgrade() -> None:
    op.execute(
        'DROP TABLE reserved_slots, reservations, reservation_blockers, allocations;'
        'DROP TYPE reserved_slot_source_type, reservation_target_type, reservation_status,'
        ' reservation_blocker_target_type'
    )
