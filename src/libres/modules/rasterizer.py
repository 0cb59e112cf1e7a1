"""Rounding datetimes onto a raster of minutes, and walking its slots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Literal

from libres.modules import errors

Raster = Literal[5, 10, 15, 30, 60]
VALID_RASTER: tuple[Raster, ...] = (5, 10, 15, 30, 60)
MIN_RASTER: Raster = 5
MAX_RASTER: Raster = 60

_ONE_MICROSECOND = timedelta(microseconds=1)


def is_valid_raster(raster: object) -> bool:
    return raster in VALID_RASTER


def _require_valid(raster: int) -> None:
    if not is_valid_raster(raster):
        raise errors.LibresAssertionError(f'invalid raster {raster!r}: use one of {VALID_RASTER}')


def rasterize_start(start: datetime, raster: int) -> datetime:
    """Round down to the raster, on the wall clock of the value's own zone."""
    _require_valid(raster)
    return start - timedelta(
        minutes=start.minute % raster, seconds=start.second, microseconds=start.microsecond
    )


def rasterize_end(end: datetime, raster: int) -> datetime:
    """Round up to the next raster boundary, minus one microsecond.

    An end whose minute is on the grid only loses a microsecond, its seconds
    stay (15:00:30 → 15:00:29.999999), as in the original.
    """
    if end.minute % raster:
        return rasterize_start(end, raster) + timedelta(minutes=raster) - _ONE_MICROSECOND
    return end - _ONE_MICROSECOND


def rasterize_span(start: datetime, end: datetime, raster: int) -> tuple[datetime, datetime]:
    return rasterize_start(start, raster), rasterize_end(end, raster)


def iterate_span(start: datetime, end: datetime, raster: int) -> Iterator[tuple[datetime, datetime]]:
    """Every raster slot of the span as (start, end − 1 µs)."""
    start, end = rasterize_span(start, end, raster)
    step = timedelta(minutes=raster)
    current = start
    while current <= end:
        yield current, current + step - _ONE_MICROSECOND
        current += step
