"""The example that opens the README runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[2] / 'README.md'


def test_readme_example_runs_twice(clean_database: str) -> None:
    match = re.search(r'```python\n(.*?)```', README.read_text(), re.S)
    assert match is not None
    # The test database stands in for the embedded server the example starts.
    prelude = f'from libres import embedded\nembedded.start = lambda *a, **k: {clean_database!r}\n'
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, '-c', prelude + match.group(1)],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == '4 90.0\n'
