"""A start and an end, as returned by ``Reservation.timespans()``."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class Timespan(NamedTuple):
    start: datetime
    end: datetime
