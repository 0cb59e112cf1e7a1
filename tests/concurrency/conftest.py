"""Fixtures of the concurrency suite."""

from __future__ import annotations

import pytest

from libres.context.core import Context
from libres.context.registry import create_default_registry
from libres.db.scheduler import Scheduler


@pytest.fixture
def racing(context: Context) -> Scheduler:
    """A scheduler of the resource the workers book: their context is called
    'race', and so is this one."""
    registry = create_default_registry()
    race_context = registry.register_context('race')
    race_context.set_setting('dsn', context.get_setting('dsn'))
    race_context.set_service('session_provider', lambda _: context.get_service('session_provider'))
    return Scheduler(race_context, 'hall', 'UTC')
