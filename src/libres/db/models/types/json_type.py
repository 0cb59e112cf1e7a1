"""JSONB column that always reads and writes a dict."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
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


class _Parents:
    """The owners of one tracked dict, held weakly: usually one.

    SQLAlchemy keeps them in a ``WeakKeyDictionary`` per value, which costs
    more to create than loading the rest of an allocation (about half of a
    search over a year). This keeps a weak reference per owner instead and
    offers what ``sqlalchemy.ext.mutable`` asks of the collection.
    """

    __slots__ = ('_owners',)

    def __init__(self) -> None:
        self._owners: dict[int, tuple[weakref.ref[Any], str]] = {}

    def __setitem__(self, state: Any, key: str) -> None:
        self._owners[id(state)] = (weakref.ref(state), key)

    def pop(self, state: Any, default: Any = None) -> Any:
        entry = self._owners.pop(id(state), None)
        return default if entry is None or entry[0]() is not state else entry[1]

    def items(self) -> Iterator[tuple[Any, str]]:
        for ref, key in list(self._owners.values()):
            state = ref()
            if state is not None:
                yield state, key

    def __len__(self) -> int:
        return sum(1 for _ in self.items())


class TrackedDict(MutableDict[str, Any]):
    """``MutableDict`` with a cheaper collection of owners (``_Parents``)."""

    @property
    def _parents(self) -> Any:
        parents = self.__dict__.get('_parents')
        if parents is None:
            parents = self.__dict__['_parents'] = _Parents()
        return parents


# In-place changes of the top-level dict mark the attribute dirty.
TrackedDict.associate_with(JSON)
