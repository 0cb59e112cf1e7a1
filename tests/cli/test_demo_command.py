"""``libres demo``: the printed tour and the web app, started as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

from click.testing import CliRunner

from libres.cli import main


def test_demo_prints_the_use_cases(clean_database: str) -> None:
    result = CliRunner().invoke(main, ['demo', '--dsn', clean_database, '--today', '2031-03-19'])
    assert result.exit_code == 0, result.output
    assert '✓ alice@example.org books 09:00–10:30' in result.output
    assert 'Rule: weekdays 08:00–12:00, 10 allocations made' in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


def test_demo_web_serves_the_calendar(clean_database: str) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, '-m', 'libres.cli', 'demo', '--web', '--port', str(port),
         '--dsn', clean_database, '--today', '2031-03-19'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ},
    )
    try:
        page = ''
        for _ in range(120):  # the seeding takes a moment; give up after a minute
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=5) as response:
                    page = response.read().decode()
                break
            except OSError:
                if server.poll() is not None:
                    break
                time.sleep(0.5)
        assert 'meeting-room' in page or 'Meeting room' in page, server.stdout and server.stdout.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
