"""Every error libres raises; all derive from :class:`LibresError`."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class LibresError(Exception):
    """Base of every libres error.

    ``reservation`` names the reservation whose approval failed, when known.
    """

    reservation: Any = None

    def __str__(self) -> str:
        # Without arguments, say what the error means rather than nothing.
        return super().__str__() or (type(self).__doc__ or '').strip().split('\n')[0]


class ModifiedReadOnlySession(LibresError):
    """Legacy; never raised."""


class DirtyReadOnlySession(LibresError):
    """Legacy; never raised."""


class ContextAlreadyExists(LibresError):
    """A context with this name is registered already."""


class UnknownContext(LibresError):
    """No context with this name is registered."""


class ContextIsLocked(LibresError):
    """The context is locked and cannot be changed."""


class UnknownService(LibresError):
    """No factory is registered for this service."""


class UnknownUtility(LibresError):
    """Legacy; never raised."""


class InvalidAllocationError(LibresError):
    """The allocation's dates or options are not valid."""


class InvalidEmailAddress(LibresError):
    """The e-mail validator refused the address."""


class ReservationTooLong(LibresError):
    """A reservation may last at most a day (a whole local day on DST days)."""


class ReservationTooShort(LibresError):
    """A reservation must last at least five minutes and end after it starts."""


class ReservationParametersInvalid(LibresError):
    """Legacy; never raised."""


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

    def __init__(self, start: datetime, end: datetime, existing: Any) -> None:
        super().__init__(start, end, existing)
        self.start = start
        self.end = end
        self.existing = existing

    def __str__(self) -> str:
        return (
            f'{self.start:%Y-%m-%d %H:%M}–{self.end:%H:%M} UTC overlaps '
            f'an existing allocation'
        )


class OverlappingReservationError(LibresError):
    """The same target and start is already in this browser session."""


class AffectedReservationError(LibresError):
    """The change would affect an existing reservation (``existing``)."""

    def __init__(self, existing: Any) -> None:
        super().__init__(existing)
        self.existing = existing

    def __str__(self) -> str:
        if self.existing is None:
            return 'the quota is exhausted: too few free spots for this change'
        return f'the change would affect an existing booking: {self.existing!r}'


class AffectedPendingReservationError(AffectedReservationError):
    """The change would affect a pending reservation (``existing``)."""


class DatesMayNotBeEqualError(LibresError):
    """Legacy; never raised."""


class TimerangeTooLong(LibresError):
    """The range is not contained in the allocation."""


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
