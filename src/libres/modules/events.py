"""Events fired by the scheduler; subscribe with ``append``.

Handlers run synchronously inside the library call, before the caller
commits; an exception in a handler propagates (roll back then). Each event
is typed with the arguments its handlers receive, so a handler with the
wrong signature is a type error::

    def notify(context: Context, reservations: list[Reservation]) -> None: ...

    events.on_reservations_approved.append(notify)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec

if TYPE_CHECKING:
    from libres.context.core import Context
    from libres.db.models import Allocation, Reservation

Arguments = ParamSpec('Arguments')


class Event(list[Callable[Arguments, object]], Generic[Arguments]):
    """A list of callables; calling the event calls each in order."""

    def __init__(self, _signature: Any = None) -> None:
        # The optional argument only documents the callback signature.
        super().__init__()

    def __call__(self, *args: Arguments.args, **kwargs: Arguments.kwargs) -> None:
        for handler in list(self):
            handler(*args, **kwargs)

    def __repr__(self) -> str:
        return f'Event({list.__repr__(self)})'


#: (context, allocations) — after ``allocate`` flushed the new masters.
on_allocations_added: Event[[Context, list[Allocation]]] = Event()
#: (context, reservations) — after ``reserve`` created pending rows.
on_reservations_made: Event[[Context, list[Reservation]]] = Event()
#: (context, reservations, session_id) — after a cart was confirmed.
on_reservations_confirmed: Event[[Context, list[Reservation], uuid.UUID]] = Event()
#: (context, reservations) — after ``approve_reservations`` wrote the slots.
on_reservations_approved: Event[[Context, list[Reservation]]] = Event()
#: (context, reservations) — after ``deny_reservation`` deleted pending rows.
on_reservations_denied: Event[[Context, list[Reservation]]] = Event()
#: (context, reservations) — after ``remove_reservation``.
on_reservations_removed: Event[[Context, list[Reservation]]] = Event()
#: (context, reservation, old_time=(start, end), new_time=(start, end)) — the
#: times keyword arguments, local aware datetimes (a ParamSpec cannot spell
#: keyword-only parameters in a list, hence the open signature).
on_reservation_time_changed: Event[...] = Event()
