"""Events fired by the scheduler; subscribe with ``append``.

Handlers run synchronously inside the library call, before the caller
commits; an exception in a handler propagates (roll back then).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

Callback = TypeVar('Callback')


class Event(list[Any], Generic[Callback]):
    """A list of callables; calling the event calls each in order."""

    def __init__(self, _signature: Any = None) -> None:
        # The optional argument only documents the callback signature.
        super().__init__()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        for handler in list(self):
            handler(*args, **kwargs)

    def __repr__(self) -> str:
        return f'Event({list.__repr__(self)})'


#: (context, allocations) — after ``allocate`` flushed the new masters.
on_allocations_added: Event[Any] = Event()
#: (context, reservations) — after ``reserve`` created pending rows.
on_reservations_made: Event[Any] = Event()
#: (context, reservations, session_id) — after a cart was confirmed.
on_reservations_confirmed: Event[Any] = Event()
#: (context, reservations) — after ``approve_reservations`` wrote the slots.
on_reservations_approved: Event[Any] = Event()
#: (context, reservations) — after ``deny_reservation`` deleted pending rows.
on_reservations_denied: Event[Any] = Event()
#: (context, reservations) — after ``remove_reservation``.
on_reservations_removed: Event[Any] = Event()
#: (context, reservation, old_time=(start, end), new_time=(start, end)).
on_reservation_time_changed: Event[Any] = Event()
