"""Recurring availability: the allocation_rules table.

Revision ID: 0005
Revises: 0004

One row per rule: its RRULE, first occurrence (naive local time), zone,
the options every allocation gets, the excepted days, the horizon and how
far allocations have been made. Allocations point to their rule through
``data['rule']`` (the rule id as hex), as applications did before.
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# Frozen here, not derived from the model, so this revision never changes.
TABLE = """
CREATE TABLE allocation_rules (
    id UUID NOT NULL,
    resource UUID NOT NULL,
    context TEXT NOT NULL,
    scheduler TEXT NOT NULL,
    timezone TEXT NOT NULL,
    rrule TEXT NOT NULL,
    start TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    "end" TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    whole_day BOOLEAN NOT NULL,
    quota INTEGER NOT NULL,
    quota_limit INTEGER NOT NULL,
    partly_available BOOLEAN NOT NULL,
    raster INTEGER NOT NULL,
    approve_manually BOOLEAN NOT NULL,
    data JSONB,
    exceptions DATE[] NOT NULL,
    horizon INTERVAL NOT NULL,
    generated_until TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    stopped BOOLEAN NOT NULL,
    created TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    modified TIMESTAMP WITHOUT TIME ZONE,
    PRIMARY KEY (id),
    CONSTRAINT allocation_rules_start_before_end CHECK (start < "end"),
    CONSTRAINT allocation_rules_quota_positive CHECK (quota >= 1),
    CONSTRAINT allocation_rules_quota_limit_not_negative CHECK (quota_limit >= 0),
    CONSTRAINT allocation_rules_valid_raster CHECK (raster IN (5, 10, 15, 30, 60)),
    CONSTRAINT allocation_rules_horizon_range
        CHECK (horizon > interval '0' AND horizon <= interval '3653 days')
)
"""


def upgrade() -> None:
    op.execute(TABLE)
    op.execute('CREATE INDEX allocation_rules_resource_ix ON allocation_rules (resource)')


def downgrade() -> None:
    op.execute('DROP TABLE allocation_rules')
