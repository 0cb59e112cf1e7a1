"""Every Python example in README.md and docs/ runs, so the docs cannot rot.

How to write examples (the convention this test enforces):

* A fence whose language is ``python`` is run: ```` ```python ```` or
  ```` ```python title="app.py" ````. The blocks of one page run in order in
  one namespace, as a reader would paste them one after the other.
* A block that is deliberately not runnable (it needs a web framework,
  a cron job, an API of another branch, ...) uses the language ``py``
  (```` ```py ````), or says so in its info string:
  ```` ```python title="not run" ````. Both are highlighted as Python by
  MkDocs.
* Shell (``sh``, ``console``, ``text``, ...) blocks are never run.
* A ```` ```text title="Output" ```` block right after a run block is what
  that block prints: the test compares it with the captured stdout.

What the examples may assume:

* ``embedded.start()`` returns the test database (nothing else is started),
  and ``$LIBRES_DSN`` names it too, so an example may take its DSN from
  either, as an application would.
* ``libres.registry`` is a fresh registry for each page, so every page may
  register the context names it likes (``'my_app'`` ...).
* The tables are emptied after each page; examples use dates in 2030 and
  later so they never depend on the day they run.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import libres
from libres import embedded
from libres.context.registry import Registry, create_default_registry
from libres.context.session import SessionProvider

ROOT = Path(__file__).parents[2]
README = ROOT / 'README.md'
DOCS = ROOT / 'docs'

# A fenced block, possibly indented (inside an admonition or a list); the
# closing fence has the same indentation as the opening one.
FENCE = re.compile(
    r'^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$',
    re.M | re.S,
)


@dataclass
class Block:
    path: Path
    line: int
    info: str
    code: str

    @property
    def language(self) -> str:
        return self.info.split(maxsplit=1)[0] if self.info.strip() else ''

    @property
    def runs(self) -> bool:
        return self.language == 'python' and 'not run' not in self.info

    @property
    def is_output(self) -> bool:
        return self.language == 'text' and 'title="Output"' in self.info


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding='utf-8')
    found = []
    for match in FENCE.finditer(text):
        indent = len(match['indent'])
        code = ''.join(line[indent:] for line in match['body'].splitlines(keepends=True))
        line = text.count('\n', 0, match.start()) + 2  # the first line of the code
        found.append(Block(path, line, match['info'].strip(), code))
    return found


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob('*.md'))]


def runnable_pages() -> list[Path]:
    return [page for page in pages() if any(block.runs for block in blocks(page))]


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch, clean_database: str) -> Iterator[Registry]:
    """A registry of its own, the test database behind embedded.start() and $LIBRES_DSN."""
    registry = create_default_registry()
    monkeypatch.setattr(libres, 'registry', registry)
    monkeypatch.setattr(embedded, 'start', lambda *args, **kwargs: clean_database)
    monkeypatch.setenv('LIBRES_DSN', clean_database)
    yield registry
    # Release every connection the examples opened, so the tables can be emptied.
    for context in registry.contexts.values():
        provider = context.values.get('service/session_provider/cache')
        if isinstance(provider, SessionProvider):
            provider.stop_service()


def run_page(page: Path) -> list[tuple[Block, str]]:
    """Run the page's blocks in one namespace; return each run block with what it printed."""
    namespace: dict[str, object] = {'__name__': f'docs_example_{page.stem}'}
    printed: list[tuple[Block, str]] = []
    for block in blocks(page):
        if block.is_output and printed:
            expected = block.code
            ran, output = printed[-1]
            assert output == expected, f'{ran.path.name}:{ran.line} printed {output!r}, the page says {expected!r}'
            continue
        if not block.runs:
            continue
        # Pad with blank lines so a traceback points at the line in the page.
        source = '\n' * (block.line - 1) + block.code
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            exec(compile(source, str(block.path), 'exec'), namespace)
        printed.append((block, stdout.getvalue()))
    return printed


@pytest.mark.parametrize('page', runnable_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_page_examples_run(page: Path, fresh_registry: Registry) -> None:
    printed = run_page(page)
    assert printed, f'{page} has no block that runs'


def test_readme_example_runs_twice_and_prints_what_it_says(fresh_registry: Registry) -> None:
    # The opening example says it can run twice (it starts afresh) and what it prints.
    first = run_page(README)
    libres.registry = create_default_registry()  # as a second process would have it
    try:
        second = run_page(README)
    finally:
        for context in libres.registry.contexts.values():
            provider = context.values.get('service/session_provider/cache')
            if isinstance(provider, SessionProvider):
                provider.stop_service()
    assert first[0][1] == second[0][1] == '4 90.0\n'


def test_every_python_example_either_runs_or_is_marked() -> None:
    """A ```python block is run; anything else that looks like Python says so."""
    run = [block for page in pages() for block in blocks(page) if block.runs]
    assert len(run) >= 10
    for page in pages():
        for block in blocks(page):
            if block.language in {'python3', 'pycon', 'Python'}:
                pytest.fail(f'{page.name}:{block.line}: use ```python (run) or ```py (not run)')


def test_extractor_reads_indented_blocks_and_info_strings(tmp_path: Path) -> None:
    page = tmp_path / 'page.md'
    page.write_text(
        '# t\n\n```python\nx = 1\n```\n\n!!! note\n\n    ```python title="not run"\n    y = 2\n    ```\n\n'
        '```py\nz = 3\n```\n\n```sh\nls\n```\n',
        encoding='utf-8',
    )
    found = blocks(page)
    assert [(b.language, b.runs, b.code) for b in found] == [
        ('python', True, 'x = 1\n'),
        ('python', False, 'y = 2\n'),
        ('py', False, 'z = 3\n'),
        ('sh', False, 'ls\n'),
    ]
    assert found[0].line == 4


def test_output_blocks_are_compared(tmp_path: Path) -> None:
    page = tmp_path / 'page.md'
    page.write_text('```python\nprint(6 * 7)\n```\n\n```text title="Output"\n41\n```\n', encoding='utf-8')
    with pytest.raises(AssertionError, match="printed '42\\\\n'"):
        run_page(page)
