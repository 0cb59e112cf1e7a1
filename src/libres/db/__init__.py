"""Database layer: models, queries and the scheduler."""

from __future__ import annotations

from libres.db.scheduler import Scheduler as new_scheduler

__all__ = ('new_scheduler',)
