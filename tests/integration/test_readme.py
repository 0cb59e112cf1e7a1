"""The example that opens the README runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import libres
from libres import embedded
from libres.context.registry import create_default_registry

README = Path(__file__).parents[2] / 'README.md'


def test_readme_example_runs_twice(dsn: str, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    match = re.search(r'```python\n(.*?)```', README.read_text(), re.S)
    assert match is not None
    # The test database stands in for the embedded server the example starts.
    monkeypatch.setattr(embedded, 'start', lambda *args, **kwargs: dsn)
    for _ in range(2):
        # As in a new process: a registry without the example's context.
        monkeypatch.setattr(libres, 'registry', create_default_registry())
        exec(compile(match.group(1), str(README), 'exec'), {})
        assert capsys.readouterr().out == '4 90.0\n'
