"""Small helpers: mirror UUIDs, flattening date pairs, reservation length."""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, tzinfo
from typing import Any

from libres.modules.dates import is_whole_day, standardize_date


def generate_uuids(uuid: _uuid.UUID, quota: int) -> list[_uuid.UUID]:
    """The resources of mirrors 1 … quota − 1 of a master resource."""
    return [_uuid.uuid5(uuid, str(n)) for n in range(1, quota)]


def flatten(nested: Any) -> Iterator[Any]:
    """Yield the leaves of arbitrarily nested iterables; strings are leaves."""
    for item in nested:
        if isinstance(item, (str, bytes, datetime)) or not isinstance(item, Iterable):
            yield item
        else:
            yield from flatten(item)


def pairs(nested: Any) -> Iterator[tuple[Any, Any]]:
    """((a, b), (c, d)) and (a, b, c, d) both give (a, b), (c, d)."""
    items = iter(flatten(nested))
    return zip(items, items)


def is_valid_reservation_length(start: datetime, end: datetime, timezone: str | tzinfo) -> bool:
    """Less than 24 real hours, or a whole local day of up to 25 hours."""
    start = standardize_date(start, timezone)
    end = standardize_date(end, timezone)
    hours = (end - start).total_seconds() // 3600
    if hours < 24:
        return True
    return is_whole_day(start, end, timezone) and hours <= 25
