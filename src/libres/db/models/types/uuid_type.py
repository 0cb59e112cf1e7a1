"""UUID column type whose values also compare equal to their string forms."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class SoftUUID(uuid.UUID):
    """A UUID that is also equal to its hex or dashed string.

    Consumers compare resources with strings (``allocation.resource ==
    '3b94…'``), so equality is relaxed; the hash stays the integer hash so a
    SoftUUID and the plain UUID it wraps are interchangeable as dict keys.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, uuid.UUID):
            return self.int == other.int
        if isinstance(other, str):
            return self.hex == other.strip().replace('-', '')
        return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self.int)


def soft(value: uuid.UUID) -> SoftUUID:
    """Wrap a UUID without parsing it again: this runs for every loaded row."""
    wrapped = object.__new__(SoftUUID)
    object.__setattr__(wrapped, 'int', value.int)
    object.__setattr__(wrapped, 'is_safe', value.is_safe)
    return wrapped


@lru_cache(maxsize=1024)
def to_soft_uuid(value: uuid.UUID | str) -> SoftUUID:
    """What the database returns as a SoftUUID: psycopg gives uuid.UUID,
    psycopg2 a string. Remembered: a calendar's rows repeat the same few
    resources, and a SoftUUID is immutable, so one may serve them all."""
    if isinstance(value, uuid.UUID):
        return soft(value)
    return SoftUUID(str(value))


def _loaded(value: Any) -> SoftUUID | None:
    return None if value is None else to_soft_uuid(value)


class UUID(TypeDecorator[uuid.UUID]):
    """PostgreSQL ``uuid`` that returns :class:`SoftUUID` instances."""

    impl = PG_UUID(as_uuid=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> uuid.UUID | None:
        if value is None or isinstance(value, uuid.UUID):
            return value
        return uuid.UUID(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> SoftUUID | None:
        return _loaded(value)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        # One plain function per value instead of the decorator's two layers.
        return _loaded
