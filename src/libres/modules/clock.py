"""The current time, as the booking policies see it.

Holds expire and booking windows open and close against this clock. It is
process-wide and replaceable, so that tests (and a host that keeps its own
notion of "now") can move time without waiting for it::

    from libres.modules import clock

    with clock.using(lambda: datetime(2031, 3, 17, 9, tzinfo=UTC)):
        scheduler.reserve(...)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from libres.modules import errors

Clock = Callable[[], datetime]


def _system_clock() -> datetime:
    return datetime.now(UTC)


_current: Clock = _system_clock


def now() -> datetime:
    """The current time, aware (UTC)."""
    value = _current()
    if value.tzinfo is None or value.utcoffset() is None:
        raise errors.NotTimezoneAware(f'the clock gave {value!r}, which has no time zone')
    return value.astimezone(UTC)


def set_clock(clock: Clock | None) -> None:
    """Use ``clock`` from now on (``None``: the system clock again)."""
    global _current
    if clock is not None and not callable(clock):
        raise errors.InvalidArgumentType(f'a clock must be callable, got {clock!r}')
    _current = clock or _system_clock


@contextmanager
def using(clock: Clock) -> Iterator[None]:
    """Use ``clock`` inside the block, then the previous one again."""
    previous = _current
    set_clock(clock)
    try:
        yield
    finally:
        set_clock(previous)
