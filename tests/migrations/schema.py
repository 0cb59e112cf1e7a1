"""A comparable description of a database schema, read from the catalogs."""

from __future__ import annotations

import re

import sqlalchemy as sa

QUERIES = {
    'columns': """
        SELECT table_name, column_name, data_type, udt_name, is_nullable,
               character_maximum_length, column_default
        FROM information_schema.columns WHERE table_schema = 'public'
    """,
    'constraints': """
        SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid),
               c.condeferrable, c.condeferred
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = 'public' AND c.contype NOT IN ('t', 'n')  -- 'n': NOT NULL rows since PG 18
    """,
    'indexes': "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    'triggers': """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
        FROM pg_trigger WHERE NOT tgisinternal
    """,
    'functions': """
        SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proname LIKE 'libres%'
    """,
    'enums': """
        SELECT t.typname, e.enumlabel, e.enumsortorder FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
    """,
    'extensions': "SELECT extname FROM pg_extension",
}

IGNORED_TABLES = {'libres_alembic_version', 'libres_alembic_version_pkc'}


def snapshot(engine: sa.Engine) -> dict[str, set[tuple[object, ...]]]:
    result: dict[str, set[tuple[object, ...]]] = {}
    with engine.connect() as connection:
        for name, query in QUERIES.items():
            rows = set()
            for row in connection.execute(sa.text(query)):
                values = tuple(
                    re.sub(r'\s+', ' ', v).strip() if isinstance(v, str) else v for v in row
                )
                if values and values[0] in IGNORED_TABLES:
                    continue
                rows.add(values)
            result[name] = rows
    return result
