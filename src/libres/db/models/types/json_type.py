"""JSONB column that always reads and writes a dict."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.types import TypeDecorator


class JSON(TypeDecorator[dict[str, Any]]):
    """JSONB where ``None`` is written as ``{}`` and SQL NULL reads as ``{}``.

    Serialisation goes through the engine's ``json_serializer`` so consumers
    can store datetimes and the like (see ``SessionProvider(engine_config=…)``).
    """

    impl = JSONB
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return {} if value is None else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return {} if value is None else value


# In-place changes of the top-level dict mark the attribute dirty.
MutableDict.associate_with(JSON)
