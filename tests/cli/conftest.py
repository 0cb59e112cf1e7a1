"""Fixtures for the ``libres`` command: real databases, and the command run
as a user runs it (a subprocess) where its whole output matters."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.migrations.conftest import fresh_database

__all__ = ('Ran', 'fresh_database', 'libres', 'mute_port')


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return (self.stdout + self.stderr).strip().splitlines()


def libres(*args: str, env: dict[str, str] | None = None) -> Ran:
    """Run ``libres ARGS`` in a new process, without $LIBRES_DSN unless given."""
    environment = {k: v for k, v in os.environ.items() if k != 'LIBRES_DSN'}
    environment.update(env or {})
    # The guard against a hang: a test fails, it does not wait for 130 s.
    done = subprocess.run([sys.executable, '-m', 'libres.cli', *args], capture_output=True, text=True,
                          env=environment, stdin=subprocess.DEVNULL, timeout=30)
    return Ran(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def mute_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()
    for connection in accepted:
        connection.close()
