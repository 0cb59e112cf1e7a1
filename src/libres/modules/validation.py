"""Checks of what callers pass in, made before any SQL is sent.

A bad value is refused with a :class:`~libres.modules.errors.LibresError`
that names the argument and says what is accepted, instead of surfacing
later as a driver error (``StatementError``, ``DataError``) or, worse, being
stored. Every check here is pure Python: nothing reads the database.

Local times (the DST rule, checked by :mod:`libres.db.local_time_rules`):
a naive datetime is read in the scheduler's zone. Twice a year that reading
is not clear: in spring an hour of wall-clock time does not exist (the gap),
in autumn an hour occurs twice. :func:`unclear_local_times` finds such
values; which of them are refused is decided where bookings are made.
"""

from __future__ import annotations

import json
import math
import numbers
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from email_validator import EmailNotValidError, validate_email

from libres.modules import errors
from libres.modules.dates import get_timezone
from libres.modules.utils import flatten

MAX_DATA_BYTES = 1024 * 1024

T = TypeVar('T')


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + '...'


def check_uuid(value: Any, name: str) -> None:
    """A UUID, or a string holding one (hex or dashed)."""
    if isinstance(value, uuid.UUID):
        return
    if isinstance(value, str):
        try:
            uuid.UUID(value)
        except ValueError:
            pass
        else:
            return
    raise errors.InvalidUUID(f'the {name} must be a UUID, got {_shown(value)}')


def check_optional_uuid(value: Any, name: str) -> None:
    """None, or what :func:`check_uuid` accepts."""
    if value is not None:
        check_uuid(value, name)


def check_uuids(values: Any, name: str) -> None:
    """An iterable (not a string) of UUIDs."""
    if isinstance(values, (str, bytes, uuid.UUID)) or not isinstance(values, Iterable):
        raise errors.InvalidArgumentType(f'the {name} must be a list of UUIDs, got {_shown(values)}')
    for value in values:
        check_uuid(value, name)


def check_id(value: Any, name: str = 'id') -> None:
    """A whole number (database ids are integers)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise errors.InvalidArgumentType(f'the {name} must be a whole number, got {_shown(value)}')


def check_optional_id(value: Any, name: str = 'id') -> None:
    if value is not None:
        check_id(value, name)


def check_ids(values: Any, name: str = 'ids') -> None:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise errors.InvalidArgumentType(f'the {name} must be a list of whole numbers, got {_shown(values)}')
    for value in values:
        check_id(value, name)


def check_whole_number(value: Any, name: str) -> None:
    """An int that is not a bool (``True`` is not a quota)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.InvalidArgumentType(f'the {name} must be a whole number, got {_shown(value)}')


def date_values(dates: Any) -> list[Any]:
    """The leaves of ``dates`` (a pair, pairs, nested, a generator) as a list,
    so that they can be checked and then prepared."""
    if isinstance(dates, (str, bytes, datetime)):
        raise errors.InvalidArgumentType(f'dates must be (start, end) pairs, got {_shown(dates)}')
    try:
        return list(flatten(dates))
    except TypeError as error:
        raise errors.InvalidArgumentType(f'dates must be (start, end) pairs, got {_shown(dates)}') from error


def check_flag(value: Any, name: str) -> None:
    """True or False (1 and 0 pass too): a string like ``'no'`` is truthy."""
    if not (isinstance(value, bool) or (isinstance(value, int) and value in (0, 1))):
        raise errors.InvalidArgumentType(f'{name} must be True or False, got {_shown(value)}')


def check_names(values: Any, name: str) -> None:
    """An iterable (not a string) of strings or UUIDs."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise errors.InvalidArgumentType(f'{name} must be a list of names, got {_shown(values)}')
    for value in values:
        if not isinstance(value, (str, uuid.UUID)):
            raise errors.InvalidArgumentType(f'{name} must hold names, got {_shown(value)}')


def check_date_pairs(dates: Any) -> None:
    """A list of (start, end) datetime pairs."""
    if isinstance(dates, (str, bytes)) or not isinstance(dates, Iterable):
        raise errors.InvalidArgumentType(f'dates must be (start, end) pairs, got {_shown(dates)}')
    for pair in dates:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise errors.InvalidArgumentType(f'dates must be (start, end) pairs, got {_shown(pair)}')
        for value in pair:
            check_datetime(value, 'date')


def check_datetime(value: Any, name: str) -> None:
    if not isinstance(value, datetime):
        raise errors.InvalidArgumentType(f'the {name} must be a datetime, got {_shown(value)}')


def check_optional_text(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise errors.InvalidArgumentType(f'the {name} must be text, got {_shown(value)}')
    if value is not None and '\x00' in value:
        raise errors.InvalidData(f'the {name} contains a NUL character, which PostgreSQL cannot store')


def _check_json_value(value: Any, path: str) -> None:
    if isinstance(value, str):
        if '\x00' in value:
            raise errors.InvalidData(f'data{path} contains a NUL character, which PostgreSQL cannot store')
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise errors.InvalidData(f'data{path} is {value}: JSON has no NaN or infinity')
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and '\x00' in key:
                raise errors.InvalidData(f'a key of data{path} contains a NUL character')
            _check_json_value(item, f'{path}[{key!r}]')
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json_value(item, f'{path}[{index}]')


def check_data(data: Any) -> None:
    """None or a dict whose keys and values JSON and PostgreSQL can hold:
    no NaN or infinity, no NUL character in a key or a string, at any depth,
    and at most ``MAX_DATA_BYTES`` of JSON.

    Other values (dates, say) are left to the engine's JSON serializer, which
    a host application may extend."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise errors.InvalidArgumentType(f'data must be a dict, got {type(data).__name__}')
    _check_json_value(data, '')
    # default=str: a custom JSON serializer may handle more types.
    size = len(json.dumps(data, default=str))
    if size > MAX_DATA_BYTES:
        raise errors.InvalidData(f'data is {size} bytes of JSON, at most {MAX_DATA_BYTES} are stored')


def checked_data(data: T) -> T:
    """``data``, after ``check_data`` has accepted it."""
    check_data(data)
    return data


def is_email_address(address: str) -> bool:
    """Whether ``address`` is an e-mail address (the default ``email_validator``
    service): the syntax rules of the ``email-validator`` package, without
    any DNS lookup. Trailing text after an address is not an address."""
    if not isinstance(address, str):
        return False
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def check_timezone(name: Any) -> None:
    """A zone name ``zoneinfo`` knows (libres 1.4.0 accepted only names)."""
    if not isinstance(name, str):
        raise errors.LibresAssertionError(
            f'the timezone must be a name like "Europe/Zurich", got {_shown(name)}'
        )
    get_timezone(name)  # raises UnknownTimezone


@dataclass(frozen=True)
class UnclearLocalTime:
    """A naive wall time whose reading in the zone is not clear."""

    naive: datetime
    #: the instants it may mean: one for a time in the gap (where libres
    #: would put it), two for a repeated time (the first and the second).
    readings: tuple[datetime, ...]

    @property
    def exists(self) -> bool:
        return len(self.readings) == 2


def unclear_local_times(dates: Any, zone: str) -> list[UnclearLocalTime]:
    """The naive datetimes among ``dates`` that fall into a DST gap or
    repeated hour of ``zone``. Aware values are clear: they carry an offset."""
    tz = get_timezone(zone)
    found: list[UnclearLocalTime] = []
    values = [dates] if isinstance(dates, datetime) else flatten(dates or ())
    for value in values:
        if not isinstance(value, datetime) or value.tzinfo is not None:
            continue
        first = value.replace(tzinfo=tz)
        second = value.replace(tzinfo=tz, fold=1)
        if first.utcoffset() == second.utcoffset():
            continue
        in_utc = first.astimezone(UTC), second.astimezone(UTC)
        if in_utc[0].astimezone(tz).replace(tzinfo=None) == value:
            found.append(UnclearLocalTime(value, (min(in_utc), max(in_utc))))
        else:
            found.append(UnclearLocalTime(value, (max(in_utc),)))
    return found


def describe_local_time(unclear: UnclearLocalTime, zone: str) -> str:
    """Why the time is unclear, and what to give instead."""
    when = f'{unclear.naive:%Y-%m-%d %H:%M}'
    if not unclear.exists:
        return (
            f'{when} does not exist in {zone}: the clocks skip that hour (DST); '
            f'give a time outside the gap or an aware datetime'
        )
    first, second = unclear.readings
    return (
        f'{when} occurs twice in {zone} (at {first:%H:%M} and {second:%H:%M} UTC, DST ends); '
        f'give an aware datetime to say which'
    )


__all__ = (
    'MAX_DATA_BYTES', 'UnclearLocalTime', 'check_data', 'checked_data', 'check_date_pairs', 'check_datetime',
    'check_flag', 'check_id', 'check_ids', 'check_names', 'check_optional_id',
    'check_optional_text', 'check_optional_uuid', 'check_timezone', 'check_uuid', 'check_uuids',
    'check_whole_number', 'date_values', 'describe_local_time', 'is_email_address',
    'unclear_local_times',
)
