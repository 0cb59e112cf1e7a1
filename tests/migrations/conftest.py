from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url


@pytest.fixture
def fresh_database(server_dsn: str) -> Iterator[Callable[[], str]]:
    """Makes empty databases on the test server; drops them afterwards."""
    url = make_url(server_dsn)
    if url.drivername == 'postgresql':
        url = url.set(drivername='postgresql+psycopg')
    admin = sa.create_engine(url, isolation_level='AUTOCOMMIT', poolclass=sa.pool.NullPool)
    made: list[str] = []

    def make() -> str:
        name = f'libres_mig_{uuid.uuid4().hex[:10]}'
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return url.set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as connection:
        for name in made:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
