"""Time zone helpers on ``zoneinfo`` that reproduce pytz's localisation.

Naive wall times are localised like pytz's ``localize(dt, is_dst=False)``:
a time in the spring gap takes the standard-time offset (Zurich 02:30 on
the spring day is 01:30 UTC) and a time in the autumn overlap is the
second, standard-time occurrence. Any ``tzinfo`` is accepted as input.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The two DST errors live with every other error; re-exported here, where they were.
from libres.modules.errors import AmbiguousTimeError as AmbiguousTimeError
from libres.modules.errors import InvalidArgument, UnknownTimezone
from libres.modules.errors import NonExistentTimeError as NonExistentTimeError

UTC = UTC


@lru_cache(maxsize=256)
def _zone_by_name(name: str) -> tzinfo:
    if name.upper() == 'UTC':
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise UnknownTimezone(
            f'unknown time zone {name!r}: use an IANA name such as "Europe/Zurich" or "UTC"'
        ) from error


def get_timezone(zone: str | tzinfo) -> tzinfo:
    if isinstance(zone, str):
        return _zone_by_name(zone)
    return zone


def utcnow() -> datetime:
    return datetime.now(UTC)


def localize(
    naive: datetime,
    zone: str | tzinfo,
    is_dst: bool | None = False,
    raise_non_existent: bool = False,
    raise_ambiguous: bool = False,
) -> datetime:
    """Attach ``zone`` to a naive wall time with pytz's rules (see module doc)."""
    tz = get_timezone(zone)
    pytz_localize = getattr(tz, 'localize', None)
    if pytz_localize is not None:  # a pytz zone: let it decide
        return pytz_localize(naive, is_dst=is_dst)  # type: ignore[no-any-return]

    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    offset_first, offset_second = first.utcoffset(), second.utcoffset()
    if offset_first == offset_second:
        return first

    # The two folds differ: the time is either skipped or repeated. A time
    # that survives a round trip through UTC exists; then it is repeated.
    exists = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive
    if not exists:
        if raise_non_existent:
            raise NonExistentTimeError(f'{naive} does not exist in {zone}')
    elif raise_ambiguous:
        raise AmbiguousTimeError(f'{naive} is ambiguous in {zone}')

    # Pick the fold whose offset is the standard (is_dst=False) or the
    # daylight-saving one (is_dst=True).
    dst_first = first.dst() or timedelta()
    dst_second = second.dst() or timedelta()
    if dst_first == dst_second:
        # No dst() information: the standard offset is the smaller one.
        standard = first if (offset_first or timedelta()) < (offset_second or timedelta()) else second
        daylight = second if standard is first else first
    else:
        standard = first if dst_first < dst_second else second
        daylight = second if standard is first else first
    chosen = daylight if is_dst else standard
    if not exists:
        # Normalise a gap time onto a real wall time with the chosen offset.
        return chosen.astimezone(UTC).astimezone(tz)
    return chosen


def standardize_date(value: datetime, zone: str | tzinfo) -> datetime:
    """Aware UTC; a naive value is read in ``zone``."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = localize(value.replace(tzinfo=None), zone)
    return value.astimezone(UTC)


def to_timezone(value: datetime, zone: str | tzinfo) -> datetime:
    """An aware datetime shown in ``zone`` (same instant)."""
    return value.astimezone(get_timezone(zone))


def _local(value: datetime, zone: str | tzinfo) -> datetime:
    if value.tzinfo is None:
        return localize(value, zone)
    return to_timezone(value, zone)


def is_whole_day(start: datetime, end: datetime, zone: str | tzinfo) -> bool:
    """Local midnight to local midnight (or 23:59:59), at least a day long."""
    start, end = _local(start, zone), _local(end, zone)
    naive_start, naive_end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    if naive_end < naive_start:
        raise InvalidArgument('the end must be equal or greater than the start')
    if (start.hour, start.minute, start.second) != (0, 0, 0):
        return False
    if (end.hour, end.minute, end.second) not in ((0, 0, 0), (23, 59, 59)):
        return False
    return (naive_end - naive_start).total_seconds() >= 86399


def align_date_to_day(
    value: datetime, zone: str | tzinfo, direction: Literal['down', 'up']
) -> datetime:
    """Local 00:00 (down) or 23:59:59.999999 (up) of the value's local day, as UTC."""
    day = _local(value, zone).date()
    at = time(0) if direction == 'down' else time(23, 59, 59, 999999)
    return standardize_date(datetime.combine(day, at), zone)


def overlaps(start: datetime, end: datetime, other_start: datetime, other_end: datetime) -> bool:
    """Inclusive overlap of two ranges."""
    return start <= other_start <= end or other_start <= start <= other_end
