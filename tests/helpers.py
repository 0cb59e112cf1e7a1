"""Helpers shared by the test modules: types of the fixtures, local times."""

from __future__ import annotations

from collections.abc import Callable

#: The ``count_rows`` fixture: row counts of the four tables, read outside
#: the test's transaction.
CountRows = Callable[[], dict[str, int]]
