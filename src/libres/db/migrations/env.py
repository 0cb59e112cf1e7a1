"""Alembic environment: runs on the connection libres hands over."""

from __future__ import annotations

from alembic import context

from libres.db.models import ORMBase

connection = context.config.attributes.get('connection')
if connection is None:  # pragma: no cover - libres always passes one
    raise RuntimeError('run migrations through libres.db.migrate, which provides a connection')

context.configure(
    connection=connection,
    target_metadata=ORMBase.metadata,
    version_table=context.config.get_main_option('version_table') or 'libres_alembic_version',
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
