"""The declarative base every libres table is defined on."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import DeclarativeBase

from libres.db.models.types import JSON, UUID, UTCDateTime
from libres.modules import errors


class ORMBase(DeclarativeBase):
    """Base of the four libres tables; consumers subclass models on it."""

    type_annotation_map = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        uuid.UUID: UUID,
    }


def assign_keywords(instance: object, values: dict[str, Any]) -> None:
    """Set mapped attributes from keywords, refusing names that are not mapped.

    An unknown keyword is almost always a typo; silently ignoring it would
    store a record without the value the caller meant to give it.
    """
    cls = type(instance)
    for key, value in values.items():
        if not hasattr(cls, key):
            raise errors.InvalidArgumentType(f'{key!r} is an invalid keyword argument for {cls.__name__}')
        setattr(instance, key, value)
