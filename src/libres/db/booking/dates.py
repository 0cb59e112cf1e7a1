"""The dates a call gives, as the engine works with them: aware UTC pairs.

Naive values are read in the scope's zone (``standardize_date``); where a
booking is made, naive values in a DST gap or in a repeated hour that
matters are refused first (``libres.db.local_time_rules``). A booking lasts
from ``MIN_RASTER`` minutes to a day.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from libres.db.booking.scope import BookingScope
from libres.db.local_time_rules import refuse_unclear_local_times
from libres.db.records import Records
from libres.modules import errors, validation
from libres.modules.dates import standardize_date
from libres.modules.rasterizer import MIN_RASTER
from libres.modules.utils import flatten, is_valid_reservation_length, pairs

DatePair = tuple[datetime, datetime]
#: What the date arguments accept: one (start, end) pair, a sequence of
#: pairs, or the starts and ends in one flat sequence.
Dates = DatePair | Sequence[DatePair] | Sequence[Sequence[datetime]] | Sequence[datetime] | Iterable[DatePair]
MIN_RESERVATION_LENGTH = timedelta(minutes=MIN_RASTER)


class BookingDates:
    """Reads and checks the dates of one scope's calls."""

    def __init__(self, scope: BookingScope, records: Records) -> None:
        self.scope = scope
        self.records = records

    def date(self, value: datetime) -> datetime:
        """Naive values are in the scope's zone; the result is aware UTC."""
        if not isinstance(value, datetime):
            raise errors.InvalidArgumentType(f'expected a datetime, got {value!r}')
        return standardize_date(value, self.scope.timezone)

    def pairs(self, dates: Any) -> list[DatePair]:
        """Any accepted shape of ``Dates`` as a list of aware UTC pairs."""
        if isinstance(dates, (str, bytes, datetime)):
            raise errors.InvalidArgumentType(f'dates must be (start, end) pairs, got {dates!r}')
        try:
            values = list(flatten(dates))
        except TypeError as error:
            raise errors.InvalidArgumentType(f'dates must be (start, end) pairs, got {dates!r}') from error
        if len(values) % 2:
            raise errors.InvalidArgument(f'dates must come in (start, end) pairs, got {len(values)} values')
        return [(self.date(start), self.date(end)) for start, end in pairs(values)]

    def refuse_unclear(self, dates: Any, allocating: bool = False) -> None:
        """The DST rule of ``libres.db.local_time_rules`` for these dates."""
        refuse_unclear_local_times(self.records, dates, allocating)

    def booking(
        self, dates: Dates | None, group: uuid.UUID | None, refuse_empty_group: bool = False
    ) -> list[DatePair]:
        """The dates a reservation or blocker asks for, aware UTC: the given
        ones (naive ones that do not exist, or are ambiguous where it
        matters, refused) or the group's."""
        validation.check_optional_uuid(group, 'group')
        if group:
            group_dates = self.records.allocation_dates_by_group(group)
            if not group_dates and refuse_empty_group:
                raise errors.InvalidReservationError(f'the group {group} has no allocations')
            return self.pairs(group_dates)
        values = validation.date_values(dates)
        self.refuse_unclear(values)
        return self.pairs(values)

    def check_length(self, start: datetime, end: datetime) -> None:
        """A booking lasts at least ``MIN_RASTER`` minutes and at most a (local) day."""
        zone = self.scope.timezone
        if not is_valid_reservation_length(start, end, zone):
            raise errors.ReservationTooLong(
                f'{errors.describe_span(start, end, zone)} is longer than a day: '
                f'a reservation lasts at most a day (a whole local day on DST days)'
            )
        # The whole duration, not only its seconds-within-a-day part: an exact
        # midnight-to-midnight day is long enough.
        if start > end or end - start < MIN_RESERVATION_LENGTH:
            raise errors.ReservationTooShort(
                f'{errors.describe_span(start, end, zone)}: a reservation must end after it '
                f'starts and last at least {MIN_RASTER} minutes'
            )
