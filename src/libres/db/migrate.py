"""Schema migrations (Alembic, shipped in the package).

A database made by the published libres 1.4.0 has the tables but no
version: it is recognised and stamped at revision ``0001`` (the 1.4.0
schema), then upgraded like any other. The version is kept in a table of
its own, ``libres_alembic_version``, so an application's own Alembic
history in the same database is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, inspect, pool, text
from sqlalchemy.engine import make_url

from libres.db.models import ORMBase

VERSION_TABLE = 'libres_alembic_version'
LEGACY_REVISION = '0001'
INVARIANTS_REVISION = '0002'  # the first revision with the invariants create_all also makes
RULES_REVISION = '0005'  # the revision that made allocation_rules
POLICIES_REVISION = '0006'  # the revision that added holds, buffers and booking windows
# Serialises concurrent set-ups of one database (any constant will do).
_LOCK_KEY = 0x6C69627265

__all__ = ('current', 'downgrade', 'ensure_schema', 'history', 'upgrade')


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option('script_location', 'libres.db:migrations')
    config.set_main_option('version_table', VERSION_TABLE)
    config.attributes['connection'] = connection
    return config


def engine_for(dsn: str, connect_timeout: int | None = None) -> Engine:
    """An engine without a pool; ``connect_timeout`` (seconds) reaches the
    driver (psycopg or psycopg2) so a server that does not answer fails fast."""
    url = make_url(dsn)
    if url.drivername == 'postgresql':
        url = url.set(drivername='postgresql+psycopg')
    connect_args = {'connect_timeout': connect_timeout} if connect_timeout is not None else {}
    return create_engine(url, poolclass=pool.NullPool, connect_args=connect_args)


@contextmanager
def _locked(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        bind.execute(text('SELECT pg_advisory_xact_lock(:key)'), {'key': _LOCK_KEY})
        yield bind
        return
    with bind.begin() as connection:
        connection.execute(text('SELECT pg_advisory_xact_lock(:key)'), {'key': _LOCK_KEY})
        yield connection


def _revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={'version_table': VERSION_TABLE})
    return context.get_current_revision()


def _unversioned_revision(connection: Connection) -> str | None:
    """The revision an unversioned database with libres tables matches.

    Made by libres 1.4.0: ``0001``. Made by ``ORMBase.metadata.create_all``
    (which consumers may call themselves): it has the invariants, so at
    least ``0002``; the later revisions up to the rules table only replace
    functions and are safe to run again on a schema that has them already.
    With the rules table it was made at ``0005`` or later (tables are not
    made twice); with the columns of holds at ``0006`` or later.
    """
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables or 'allocations' not in tables:
        return None
    if 'allocation_rules' in tables:
        slot_columns = {column['name'] for column in inspect(connection).get_columns('reserved_slots')}
        return POLICIES_REVISION if 'held_until' in slot_columns else RULES_REVISION
    has_invariants = connection.execute(
        text("SELECT 1 FROM pg_constraint WHERE conname = 'allocations_no_overlap'")
    ).first()
    return INVARIANTS_REVISION if has_invariants else LEGACY_REVISION


def _run(connection: Connection, action: Any, *args: Any) -> None:
    action(_config(connection), *args)


def upgrade(bind: Engine | Connection, revision: str = 'head') -> str | None:
    """Bring the database to ``revision``; return the revision it had before."""
    with _locked(bind) as connection:
        found = _unversioned_revision(connection)
        if found is not None:
            _run(connection, command.stamp, found)
            before: str | None = 'libres 1.4.0' if found == LEGACY_REVISION else 'unversioned'
        else:
            before = _revision(connection)
        _run(connection, command.upgrade, revision)
        return before


def downgrade(bind: Engine | Connection, revision: str) -> None:
    with _locked(bind) as connection:
        _run(connection, command.downgrade, revision)


def current(bind: Engine | Connection) -> str | None:
    """The revision the database is at (None: empty or made by 1.4.0)."""
    if isinstance(bind, Connection):
        return _revision(bind)
    with bind.connect() as connection:
        return _revision(connection)


def head() -> str:
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def history() -> list[tuple[str, str | None, str]]:
    """(revision, down revision, description) from the oldest to the newest."""
    script = ScriptDirectory.from_config(_config())
    revisions = list(script.walk_revisions())
    return [
        (str(r.revision), r.down_revision if isinstance(r.down_revision, str) else None,
         (r.doc or '').strip())
        for r in reversed(revisions)
    ]


def ensure_schema(bind: Engine | Connection) -> None:
    """Create the newest schema in an empty database, or migrate an existing one."""
    with _locked(bind) as connection:
        tables = set(inspect(connection).get_table_names())
        if not tables & set(ORMBase.metadata.tables):
            ORMBase.metadata.create_all(connection)
            _run(connection, command.stamp, 'head')
            return
    upgrade(bind)
