"""Every error libres raises; all derive from :class:`LibresError`.

Where libres 1.4.0 raised a built-in or SQLAlchemy exception that callers
may catch (``AssertionError``, ``ValueError``, ``TypeError``,
``NoResultFound``, ``IntegrityError``, ...), the class raised now derives
from :class:`LibresError` *and* that exception, so both ``except`` clauses
work. Messages name the records and times concerned (local times in the
scheduler's zone, with the end as people say it: 10:00, not 09:59:59) and
what to do about it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    MultipleResultsFound,
    NoResultFound,
    ProgrammingError,
    StatementError,
)


def _zone(name: str | None) -> tzinfo:
    if not name or name.upper() == 'UTC':
        return UTC
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return UTC


def describe_span(start: datetime | None, end: datetime | None, zone: str | None = None) -> str:
    """``2030-05-01 08:00–10:00 (Europe/Zurich)``: a stored span in local time,
    its end as people say it (stored ends lie 1 µs before the full minute)."""
    if start is None or end is None:
        return 'a whole group'
    tz = _zone(zone)
    if end.microsecond == 999999:
        end += timedelta(microseconds=1)
    local_start = (start if start.tzinfo else start.replace(tzinfo=UTC)).astimezone(tz)
    local_end = (end if end.tzinfo else end.replace(tzinfo=UTC)).astimezone(tz)
    end_format = '%H:%M' if local_end.date() == local_start.date() else '%Y-%m-%d %H:%M'
    return f'{local_start:%Y-%m-%d %H:%M}–{local_end.strftime(end_format)} ({zone or "UTC"})'


def describe_moment(moment: datetime, zone: str | None = None) -> str:
    """``2030-05-01 08:00 (Europe/Zurich)``: a moment in local time."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f'{aware.astimezone(_zone(zone)):%Y-%m-%d %H:%M} ({zone or "UTC"})'


class LibresError(Exception):
    """Base of every libres error.

    ``reservation`` names the reservation whose approval failed, when known.
    """

    reservation: Any = None

    def __str__(self) -> str:
        # Without arguments, say what the error means rather than nothing.
        return super().__str__() or (type(self).__doc__ or '').strip().split('\n')[0]


class ModifiedReadOnlySession(LibresError):
    """Parameters that do not go together (e.g. a feed or free-time window that ends before it starts)."""


class DirtyReadOnlySession(LibresError):
    """Parameters that do not go together (e.g. a feed or free-time window that ends before it starts)."""


class ContextAlreadyExists(LibresError):
    """A context with this name is registered already."""


class UnknownContext(LibresError):
    """No context with this name is registered."""


class ContextIsLocked(LibresError):
    """The context is locked and cannot be changed."""


class UnknownService(LibresError):
    """No factory is registered for this service."""


class UnknownUtility(LibresError):
    """Parameters that do not go together (e.g. a feed or free-time window that ends before it starts)."""


class InvalidAllocationError(LibresError):
    """The allocation's dates or options are not valid."""


class InvalidEmailAddress(LibresError):
    """The e-mail validator refused the address."""


class ReservationTooLong(LibresError):
    """A reservation may last at most a day (a whole local day on DST days)."""


class ReservationTooShort(LibresError):
    """A reservation must last at least five minutes and end after it starts."""


class ReservationParametersInvalid(LibresError):
    """Parameters that do not go together (e.g. a feed or free-time window that ends before it starts)."""


class AlreadyReservedError(LibresError):
    """No free spot is left for the requested time."""


class QuotaOverLimit(LibresError):
    """More spots requested than one reservation may take."""


class QuotaImpossible(LibresError):
    """More spots requested than the allocation has."""


class InvalidQuota(LibresError):
    """A reservation must request at least one spot."""


class InvalidReservationError(LibresError):
    """No reservation could be made for the given dates or group."""


class NotReservableError(LibresError):
    """The reservation produced no reserved slot."""


class NoReservationsToConfirm(LibresError):
    """The browser session has no reservations to confirm."""


class InvalidReservationToken(LibresError):
    """Kept for compatibility; unknown tokens give empty results instead."""


class OverlappingAllocationError(LibresError):
    """The new allocation overlaps an existing one of the same resource."""

    def __init__(
        self, start: datetime, end: datetime, existing: Any, *, timezone: str | None = None
    ) -> None:
        super().__init__(start, end, existing)
        self.start = start
        self.end = end
        self.existing = existing
        self.timezone = timezone or getattr(existing, 'timezone', None)

    def __str__(self) -> str:
        existing = self.existing
        if existing is None:
            other = 'an existing allocation'
        else:
            other = (
                f'allocation {getattr(existing, "id", "?")} '
                f'({describe_span(existing.start, existing.end, self.timezone)})'
            )
        return (
            f'{describe_span(self.start, self.end, self.timezone)} overlaps {other}: choose '
            f'other dates, move or remove the existing allocation first, or pass '
            f'skip_overlapping=True to allocate() to skip such dates'
        )


class OverlappingReservationError(LibresError):
    """The same target and start is already in this browser session."""


class AffectedReservationError(LibresError):
    """The change would affect an existing reservation (``existing``)."""

    def __init__(
        self, existing: Any, *, timezone: str | None = None, detail: str | None = None
    ) -> None:
        super().__init__(existing)
        self.existing = existing
        self.timezone = timezone
        self.detail = detail

    def _booking(self) -> str:
        existing = self.existing
        source_type = getattr(existing, 'source_type', None)
        if source_type is not None:  # a reserved slot
            kind = 'blocker' if source_type == 'blocker' else 'reservation'
            return (
                f'{kind} {existing.source_id} (token {existing.reservation_token}), which holds '
                f'{describe_span(existing.start, existing.end, self.timezone)}'
            )
        span = describe_span(getattr(existing, 'start', None), getattr(existing, 'end', None), self.timezone)
        return f'pending reservation {getattr(existing, "id", "?")} for {span}'

    def __str__(self) -> str:
        if self.existing is None:
            return self.detail or 'too few free spots are left for this change of the quota'
        return (
            f'the change would affect {self._booking()}: remove or move that booking first'
            + (f' ({self.detail})' if self.detail else '')
        )


class AffectedPendingReservationError(AffectedReservationError):
    """The change would affect a pending reservation (``existing``)."""


class DatesMayNotBeEqualError(LibresError):
    """Parameters that do not go together (e.g. a feed or free-time window that ends before it starts)."""


class TimerangeTooLong(LibresError):
    """The range is not contained in the allocation."""


class OutsideBookingWindow(LibresError):
    """The booking starts too soon (``min_notice``) or too far ahead
    (``max_advance``) for its allocation; ``earliest`` and ``latest`` are the
    window's bounds (aware UTC, either may be None), the message names them
    in local time. ``reserve(..., ignore_booking_window=True)`` skips the check."""

    def __init__(
        self, message: str, earliest: datetime | None = None, latest: datetime | None = None
    ) -> None:
        super().__init__(message)
        self.earliest = earliest
        self.latest = latest


class NotTimezoneAware(LibresError):
    """A timezone-aware datetime is required here."""


class InvalidRuleError(InvalidAllocationError):
    """The recurring availability rule is not valid: its RRULE, its first
    occurrence, its horizon, or it yields no occurrence at all."""


class UnknownRuleError(LibresError):
    """No rule with this id belongs to this scheduler's resource."""

    def __init__(self, rule_id: object) -> None:
        super().__init__(rule_id)
        self.rule_id = rule_id

    def __str__(self) -> str:
        return f'no rule {self.rule_id} on this resource'


# --- library classes that also are the built-ins 1.4.0 raised ------------------


class LibresAssertionError(LibresError, AssertionError):
    """A precondition of the API is not met (an ``AssertionError`` in 1.4.0)."""


class InvalidArgument(LibresError, ValueError):
    """An argument has the right type but a value that cannot be used."""


class InvalidArgumentType(LibresError, TypeError):
    """An argument has a type the method does not accept."""


class InvalidUUID(InvalidArgument):
    """A token, group, session id or resource is not a UUID."""


class InvalidData(InvalidArgument):
    """The data cannot be stored: NaN or infinity, a NUL character, or too big."""


class DataNotSerializable(LibresError, TypeError):
    """The data holds values the JSON serializer cannot write."""


class UnknownTimezone(InvalidArgument):
    """The time zone name is not known (use an IANA name like Europe/Zurich)."""


class NonExistentTimeError(InvalidArgument):
    """The local time falls into a gap (spring DST change)."""


class AmbiguousTimeError(InvalidArgument):
    """The local time occurs twice (autumn DST change)."""


class RecordNotFound(LibresError, NoResultFound):
    """No record matches (SQLAlchemy's ``NoResultFound`` in 1.4.0)."""


class SeveralRecordsFound(LibresError, MultipleResultsFound):
    """More than one record matches where one is required."""


class NotSupported(LibresError, NotImplementedError):
    """libres does not support this combination of arguments."""


class DatabaseNotConfigured(LibresError, TypeError):
    """The context has no database: set its ``dsn`` setting."""


class UnsupportedDatabase(LibresError, RuntimeError):
    """The PostgreSQL server is too old for libres."""


# --- database errors translated (the database error is the ``__cause__``) ------


class _FromDatabase(LibresError):
    """A database error told in the library's words.

    It carries the attributes of the database error (``orig``,
    ``statement``, ``params``) so that code inspecting SQLAlchemy errors
    (a retry helper reading the SQLSTATE) keeps working.
    """

    text = ''

    def _adopt(self, text: str, error: DBAPIError | None) -> None:
        self.text = text
        orig: BaseException = error.orig if error is not None and error.orig is not None else Exception(text)
        DBAPIError.__init__(
            self,  # type: ignore[arg-type]
            error.statement if error is not None else None,
            error.params if error is not None else None,
            orig,
            hide_parameters=error.hide_parameters if error is not None else False,
            connection_invalidated=error.connection_invalidated if error is not None else False,
            ismulti=error.ismulti if error is not None else None,
        )

    def __str__(self) -> str:
        return self.text

    def __reduce__(self) -> Any:
        return (_rebuilt, (type(self), self.text))


def _rebuilt(cls: type[_FromDatabase], text: str) -> _FromDatabase:
    error = cls.__new__(cls)
    Exception.__init__(error, text)
    error.text = text
    return error


class ConstraintViolation(_FromDatabase, IntegrityError):
    """The database refused a write that breaks one of libres' invariants.

    ``constraint`` names the constraint or trigger; the database error is
    the ``__cause__``. An ``IntegrityError`` as in 1.4.0."""

    def __init__(self, text: str, error: DBAPIError | None = None, constraint: str | None = None) -> None:
        self._adopt(text, error)
        self.constraint = constraint


class ReservedSlotTaken(AlreadyReservedError, ConstraintViolation):
    """Another booking took the same slot first (the primary key of
    ``reserved_slots``); run the unit of work again (``libres.retry``)."""


class AllocationsOverlap(OverlappingAllocationError, ConstraintViolation):
    """The database refused overlapping allocations of one resource."""

    def __init__(self, text: str, error: DBAPIError | None = None, constraint: str | None = None) -> None:
        ConstraintViolation.__init__(self, text, error, constraint)
        # The database names the clash only in its message (``text``).
        self.start = self.end = None  # type: ignore[assignment]
        self.existing = self.timezone = None

    def __str__(self) -> str:
        return self.text


class SchemaMissing(_FromDatabase, ProgrammingError):
    """The database lacks the libres tables or columns.

    Run ``scheduler.setup_database()`` (a new database) or ``libres db
    upgrade`` (one made by an older libres)."""

    def __init__(self, text: str, error: DBAPIError | None = None) -> None:
        self._adopt(text, error)


class NaiveDatetimeRefused(NotTimezoneAware, _FromDatabase, StatementError):
    """A naive datetime reached a query that needs aware ones (``Queries``
    has no zone to read it in); a ``StatementError`` as in 1.4.0."""

    def __init__(self, text: str, error: DBAPIError | StatementError | None = None) -> None:
        self.text = text
        StatementError.__init__(
            self, text, getattr(error, 'statement', None), getattr(error, 'params', None),
            getattr(error, 'orig', None),
        )
