"""What in a database would stop ``db upgrade``, found before it starts.

Revision 0002 adds CHECK constraints and an exclusion constraint against
overlapping allocations; a database written by libres 1.4.0 may hold rows
that violate them. Rather than let the migration die on the first one,
``db upgrade`` asks here first and names them all. The constraints are
read from the models, so a constraint added later is checked too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from libres import integrity
from libres.cli.report import span
from libres.db.models import ORMBase

NO_OVERLAP = 'allocations_no_overlap'
_SHOWN = 3  # records named in the one-line error; `libres check` lists them all


@dataclass
class Blocker:
    """Rows that violate one constraint the upgrade would add."""

    constraint: str
    table: str
    description: str
    rows: list[dict[str, Any]] = field(default_factory=list)


def _existing_constraints(connection: sa.Connection) -> set[str]:
    return set(connection.execute(sa.text('SELECT conname FROM pg_constraint')).scalars())


def _check_violations(
    connection: sa.Connection, existing: set[str], tables: set[str]
) -> list[Blocker]:
    found = []
    for table in ORMBase.metadata.sorted_tables:
        if table.name not in tables:
            continue  # a table a later revision creates holds no rows yet
        columns = {column['name'] for column in sa.inspect(connection).get_columns(table.name)}
        for constraint in table.constraints:
            if not isinstance(constraint, sa.CheckConstraint) or constraint.name in existing:
                continue
            if not _names_only(str(constraint.sqltext), columns, table):
                continue  # its columns come with a later revision: no row holds them yet
            condition = str(constraint.sqltext)
            key = ', '.join(f'"{column.name}"' for column in table.primary_key.columns)
            rows = [dict(row) for row in connection.execute(sa.text(
                f'SELECT {key} FROM {table.name} WHERE NOT ({condition}) ORDER BY {key}')).mappings()]
            if rows:
                found.append(Blocker(str(constraint.name), table.name, f'rows where not {condition}', rows))
    return found


def _names_only(condition: str, columns: set[str], table: sa.Table) -> bool:
    """Whether every column of the table the condition names exists already."""
    named = {column.name for column in table.columns if column.name in condition}
    return named <= columns


def blockers(engine: sa.Engine) -> list[Blocker]:
    """The constraints the upgrade would add that existing rows violate."""
    with engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        if 'allocations' not in tables:
            return []  # empty: the upgrade creates the schema
        existing = _existing_constraints(connection)
        found = _check_violations(connection, existing, tables)
    if NO_OVERLAP not in existing:
        with Session(engine) as session:
            # Only this check: the schema is older than the one the others read.
            report = integrity.check(session, kinds=('overlapping_allocations',))
        overlaps = [row for kinds in report.details.values()
                    for row in kinds.get('overlapping_allocations', [])]
        if overlaps:
            found.append(Blocker(NO_OVERLAP, 'allocations', integrity.KINDS['overlapping_allocations'],
                                 overlaps))
    return found


def _describe_overlap(row: dict[str, Any]) -> str:
    return (f'{row["allocation_id"]} ({span(row["start"], row["end"], UTC)} UTC) and '
            f'{row["other_allocation_id"]} ({span(row["other_start"], row["other_end"], UTC)} UTC)')


def summary(found: list[Blocker]) -> str:
    """One line naming the blocking records (the first few of each kind)."""
    parts = []
    for blocker in found:
        count = len(blocker.rows)
        if blocker.constraint == NO_OVERLAP:
            named = '; '.join(_describe_overlap(row) for row in blocker.rows[:_SHOWN])
            noun = 'pair of allocations overlaps' if count == 1 else 'pairs of allocations overlap'
            text = f'{count} {noun} ({blocker.constraint}): allocations {named}'
        else:
            named = ', '.join(' '.join(str(value) for value in row.values()) for row in blocker.rows[:_SHOWN])
            noun = 'row breaks' if count == 1 else 'rows break'
            text = f'{count} {blocker.table} {noun} {blocker.constraint}: {"/".join(blocker.rows[0])} {named}'
        if count > _SHOWN:
            text += f' and {count - _SHOWN} more'
        parts.append(text)
    return '; '.join(parts)
