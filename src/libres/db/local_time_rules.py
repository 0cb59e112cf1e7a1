"""The DST rule: which naive local times a booking refuses.

A naive datetime given to the scheduler is read in its zone. Twice a year
that reading is not clear (see :func:`libres.modules.validation.unclear_local_times`).
The rule, where allocations, reservations and blockers are made or moved
(``allocate``, ``move_allocation``, ``reserve``, ``add_blocker``,
``change_reservation``, ``change_blocker``):

* a time in the spring gap (Europe/Zurich: 02:00–02:59 on the last Sunday
  of March) does not exist: it is refused with ``NonExistentTimeError``
  (libres 1.4.0 silently read 02:30 as 03:30);
* a time in the repeated autumn hour (02:00–02:59 on the last Sunday of
  October) is refused with ``AmbiguousTimeError`` where the choice changes
  what is booked: always for an allocation (it would lie an hour apart),
  and for a reservation or blocker when any allocation the scheduler sees
  lies within the hour between the two readings. Elsewhere both readings
  book nothing, and the call fails or succeeds as before;
* with ``whole_day=True`` the times only name a day: nothing is refused;
* aware datetimes are always clear and always accepted.

Reading (availability, search, look-ups) keeps libres 1.4.0's reading:
the standard-time offset (``libres.modules.dates.localize``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from libres.modules import errors
from libres.modules.validation import describe_local_time, unclear_local_times

if TYPE_CHECKING:
    from libres.db.records import Records


def refuse_unclear_local_times(records: Records, dates: Any, allocating: bool = False) -> None:
    """Apply the rule above to ``dates`` (a pair, pairs, or datetimes) of
    the scope of ``records`` (its zone; the allocations it sees)."""
    zone = records.scope.timezone
    unclear = unclear_local_times(dates, zone)
    for item in unclear:
        if not item.exists:
            raise errors.NonExistentTimeError(describe_local_time(item, zone))
    for item in unclear:
        text = describe_local_time(item, zone)
        if allocating:
            raise errors.AmbiguousTimeError(f'{text}: the allocation would lie an hour apart')
        first, second = item.readings
        allocation = records.allocations_in_range(first, second, managed_only=False).first()
        if allocation is not None:
            raise errors.AmbiguousTimeError(
                f'{text}: allocation {allocation.id} lies in that hour, so the two readings book '
                f'different times'
            )
