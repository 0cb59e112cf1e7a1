"""Access to sibling model classes without import cycles."""

from __future__ import annotations

from types import ModuleType


class OtherModels:
    """Gives every model a ``models`` property: the ``libres.db.models`` module."""

    @property
    def models(self) -> ModuleType:
        from libres.db import models

        return models
