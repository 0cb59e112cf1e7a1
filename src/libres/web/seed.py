"""The three use cases of the documentation, as data for the web demo."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from libres.context.core import Context
from libres.db.scheduler import Scheduler

ZONE = 'Europe/Zurich'


@dataclass(frozen=True)
class Resource:
    """A resource of the demo: its scheduler name, title and kind of booking."""

    name: str
    title: str
    kind: str  # 'room' (book freely), 'waitinglist' (staff approve), 'tickets' (cart)
    description: str


RESOURCES = (
    Resource('meeting-room', 'Meeting room', 'room',
             'Book a free hour yourself, Monday to Friday, 08:00 to 18:00.'),
    Resource('nursery', 'Nursery places', 'waitinglist',
             'Three places a day; parents join a waiting list, staff approve.'),
    Resource('concert', 'Concert tickets', 'tickets',
             'Fifty seats an evening, at most four per order, bought through a cart.'),
)


def scheduler_for(context: Context, name: str) -> Scheduler:
    """The scheduler of one demo resource."""
    return Scheduler(context, name, ZONE)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute))


def seed(context: Context, start_day: date) -> dict[str, Scheduler]:
    """Replace the demo resources' records with two weeks from ``start_day``
    (moved back to its Monday) and a few bookings; committed."""
    monday = start_day - timedelta(days=start_day.weekday())
    schedulers = {r.name: scheduler_for(context, r.name) for r in RESOURCES}
    for scheduler in schedulers.values():
        scheduler.extinguish_managed_records()
    weekdays = [monday + timedelta(days=n) for n in range(14) if (monday + timedelta(days=n)).weekday() < 5]

    room = schedulers['meeting-room']
    room.allocate([(_at(d, 8), _at(d, 18)) for d in weekdays], partly_available=True, raster=30)
    for day, (start, end), email in (
        (weekdays[0], (9, 11), 'alice@example.org'),
        (weekdays[1], (14, 15), 'bob@example.org'),
        (weekdays[3], (10, 12), 'carol@example.org'),
    ):
        room.approve_reservations(room.reserve(email, (_at(day, start), _at(day, end))))
    room.add_blocker((_at(weekdays[2], 12), _at(weekdays[2], 13)), reason='cleaning')

    nursery = schedulers['nursery']
    nursery.allocate([(_at(d, 0), _at(d, 0)) for d in weekdays], whole_day=True, quota=3,
                     approve_manually=True)
    for day, email in ((weekdays[0], 'dana@example.org'), (weekdays[0], 'eli@example.org'),
                       (weekdays[1], 'finn@example.org')):
        nursery.reserve(email, (_at(day, 0), _at(day + timedelta(days=1), 0)))
    approved = nursery.reserve('gina@example.org', (_at(weekdays[2], 0), _at(weekdays[3], 0)))
    nursery.approve_reservations(approved)

    concert = schedulers['concert']
    evenings = [monday + timedelta(days=n) for n in (4, 5, 11, 12)]
    concert.allocate([(_at(d, 19, 30), _at(d, 22)) for d in evenings], quota=50, quota_limit=4)
    concert.approve_reservations(
        concert.reserve('hugo@example.org', (_at(evenings[0], 19, 30), _at(evenings[0], 22)), quota=4)
    )
    room.commit()
    return schedulers
