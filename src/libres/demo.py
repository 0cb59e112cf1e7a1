"""A tour of libres on the embedded PostgreSQL: ``python -m libres.demo``.

Three use cases from the documentation: a meeting room people book
themselves, a nursery that approves from a waiting list, and concert
tickets with a quota and a per-customer limit; and opening hours made by a
recurring rule.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import libres
from libres.context.core import Context
from libres.db.models import Allocation
from libres.db.scheduler import Scheduler
from libres.modules import clock, errors

ZONE = 'Europe/Zurich'
CART_HOLD = timedelta(minutes=15)  # what a cart keeps for its buyer, as ticket shops do
WEDNESDAY = 2


@dataclass(frozen=True)
class DemoDays:
    """Every date the demo books on, derived from one starting day.

    Each use case gets days of its own, and the nursery's course starts
    strictly after its whole-day allocation, so no two allocations of one
    resource can meet, whatever weekday, month end or DST change the
    starting day falls on.
    """

    today: date

    @property
    def meeting_room(self) -> date:
        return self.today + timedelta(days=7)

    @property
    def nursery(self) -> date:
        return self.today + timedelta(days=7)

    @property
    def course(self) -> list[date]:
        """The three Wednesdays after the nursery's day (never that day itself)."""
        first = self.nursery + timedelta(days=(WEDNESDAY - self.nursery.weekday() - 1) % 7 + 1)
        return [first + timedelta(weeks=n) for n in range(3)]

    @property
    def concert(self) -> date:
        return self.today + timedelta(days=7)

    @property
    def help_desk(self) -> date:
        """The Monday of the week after next: the rule's first day."""
        next_week = self.today + timedelta(days=7)
        return next_week - timedelta(days=next_week.weekday()) + timedelta(weeks=1)


def _say(text: str = '') -> None:
    print(text, flush=True)


def _heading(text: str) -> None:
    _say()
    _say(text)
    _say('=' * len(text))


def _span(allocation: Allocation) -> str:
    start, end = allocation.display_start(), allocation.display_end()
    if allocation.whole_day:
        return f'{start:%a %d %b}, whole day'
    return f'{start:%a %d %b %H:%M}–{end:%H:%M}'


def _attempt(action: str, call: Callable[[], Any]) -> Any:
    """Run one booking step and tell what happened, refusals included."""
    try:
        result = call()
    except errors.LibresError as error:
        _say(f'  ✗ {action}: refused, {type(error).__name__}: {error}')
        return None
    _say(f'  ✓ {action}')
    return result


def meeting_room(context: Context, day: date) -> None:
    _heading('1. A meeting room people book themselves')
    room = libres.new_scheduler(context, 'meeting-room', ZONE)
    [allocation] = room.allocate(
        (datetime.combine(day, datetime.min.time()).replace(hour=8),
         datetime.combine(day, datetime.min.time()).replace(hour=18)),
        partly_available=True, raster=15,
    )
    room.commit()
    _say(f'Allocation: {_span(allocation)}, bookable in 15-minute steps')

    def book(email: str, start: tuple[int, int], end: tuple[int, int]) -> None:
        s = datetime(day.year, day.month, day.day, *start)
        e = datetime(day.year, day.month, day.day, *end)

        def run() -> None:
            token = room.reserve(email, (s, e))
            room.approve_reservations(token)
            room.commit()

        result = _attempt(f'{email} books {s:%H:%M}–{e:%H:%M}', run)
        if result is None:
            room.rollback()

    book('alice@example.org', (9, 0), (10, 30))
    book('bob@example.org', (10, 0), (11, 0))
    book('bob@example.org', (10, 30), (11, 30))
    book('carol@example.org', (14, 7), (14, 50))

    [blocker] = room.add_blocker(
        (datetime(day.year, day.month, day.day, 12), datetime(day.year, day.month, day.day, 13)),
        reason='cleaning',
    )
    room.commit()
    _say(f'  ✓ facility management blocks 12:00–13:00 ({blocker.reason})')
    book('dave@example.org', (12, 30), (13, 30))

    # Alice needs the room half an hour longer: same reservation, new time.
    [alice] = room.managed_reservations().filter_by(email='alice@example.org')
    def change(action: str, start: tuple[int, int], end: tuple[int, int]) -> None:
        new = _attempt(action, partial(
            room.change_reservation, alice.token, alice.id,
            datetime(day.year, day.month, day.day, *start), datetime(day.year, day.month, day.day, *end),
        ))
        if new is None:
            room.rollback()
        else:
            room.commit()

    change('alice@example.org extends to 11:00', (9, 0), (11, 0))
    change('alice@example.org moves to 15:00–16:30 (same id and token)', (15, 0), (16, 30))
    allocation = room.allocation_by_id(allocation.id)
    _say(f'Availability of the day: {room.availability():.1f} %')
    blocks = ', '.join(
        f'{share:.0f}% {"taken" if taken else "free"}'
        for share, taken in allocation.availability_partitions()
    )
    _say(f'Calendar strip: {blocks}')


def nursery(context: Context, day: date, course_days: list[date]) -> None:
    _heading('2. A nursery that approves from a waiting list')
    nursery = libres.new_scheduler(context, 'nursery', ZONE)
    midnight = datetime(day.year, day.month, day.day)
    [allocation] = nursery.allocate(
        (midnight, midnight), whole_day=True, quota=2, approve_manually=True
    )
    nursery.commit()
    _say(f'Allocation: {_span(allocation)}, 2 places, staff approve every application')
    tokens = {}
    for parent in ('dana@example.org', 'eve@example.org', 'finn@example.org'):
        tokens[parent] = nursery.reserve(parent, (midnight, midnight + timedelta(days=1)))
        nursery.commit()
    allocation = nursery.allocation_by_id(allocation.id)
    _say(f'Waiting list: {allocation.waitinglist_length} applications')
    for parent in ('eve@example.org', 'dana@example.org', 'finn@example.org'):
        approve = partial(nursery.approve_reservations, tokens[parent])
        if _attempt(f'staff approve {parent}', approve) is None:
            nursery.rollback()
        else:
            nursery.commit()
    nursery.deny_reservation(tokens['finn@example.org'])
    nursery.commit()
    _say('  ✓ staff deny finn@example.org (the nursery is full)')
    allocation = nursery.allocation_by_id(allocation.id)
    _say(f'Places left: {allocation.quota_left}, waiting list: {allocation.waitinglist_length}')

    # A course on three Wednesdays, booked only as a whole.
    wednesdays = [datetime(w.year, w.month, w.day, 14) for w in course_days]
    course = nursery.allocate([(w, w + timedelta(hours=2)) for w in wednesdays], grouped=True, quota=2)
    nursery.commit()
    _say(f'Course: {len(course)} Wednesday afternoons, 2 places, booked as a whole')
    for parent in ('dana@example.org', 'gil@example.org', 'hana@example.org'):
        def enrol(p: str = parent) -> None:
            nursery.approve_reservations(nursery.reserve(p, group=course[0].group))
            nursery.commit()

        if _attempt(f'{parent} enrols for the whole course', enrol) is None:
            nursery.rollback()


def concert(context: Context, day: date) -> None:
    _heading('3. Concert tickets with a quota and a per-customer limit')
    hall = libres.new_scheduler(context, 'concert-hall', ZONE)
    evening = (datetime(day.year, day.month, day.day, 20), datetime(day.year, day.month, day.day, 23))
    [allocation] = hall.allocate(evening, quota=5, quota_limit=2)
    hall.commit()
    _say(f'Allocation: {_span(allocation)}, 5 tickets, at most 2 per customer')

    def buy(email: str, tickets: int) -> None:
        def run() -> None:
            token = hall.reserve(email, evening, quota=tickets)
            hall.approve_reservations(token)
            hall.commit()

        if _attempt(f'{email} buys {tickets}', run) is None:
            hall.rollback()

    buy('gina@example.org', 2)
    buy('hugo@example.org', 3)
    buy('hugo@example.org', 2)
    buy('ines@example.org', 2)
    allocation = hall.allocation_by_id(allocation.id)
    _say(f'Tickets left: {allocation.quota_left} of {allocation.quota}; '
         f'availability {hall.availability():.0f} %')

    hall.change_quota(allocation, 7)
    hall.commit()
    _say('  ✓ the hall adds two chairs: quota 5 → 7')
    buy('ines@example.org', 2)
    allocation = hall.allocation_by_id(allocation.id)
    _attempt('the hall tries to go back to 5 seats', lambda: hall.change_quota(allocation, 5))
    hall.rollback()
    allocation = hall.allocation_by_id(allocation.id)
    _say(f'Tickets left: {allocation.quota_left} of {allocation.quota}')

    checkout_with_a_hold(hall, evening, buy)


def checkout_with_a_hold(
    hall: Scheduler, evening: tuple[datetime, datetime], buy: Callable[[str, int], None]
) -> None:
    """The last ticket in a cart with a hold: nobody else gets it until the
    hold expires; after that, whoever comes first."""
    cart = uuid.uuid4()
    held = hall.reserve('jo@example.org', evening, session_id=cart, hold=CART_HOLD)
    hall.commit()
    until = hall.reservations_by_token(held).one().held_until
    assert until is not None
    _say(f'  ✓ jo@example.org puts the last ticket in the cart (session {str(cart)[:8]}…): '
         f'held until {until.astimezone(ZoneInfo(ZONE)):%H:%M}')
    buy('kim@example.org', 1)
    later = clock.now() + CART_HOLD + timedelta(minutes=1)
    with clock.using(lambda: later):
        _say(f'  … {CART_HOLD.seconds // 60 + 1} minutes later jo has not paid: the hold has expired')
        buy('kim@example.org', 1)

        def checkout() -> None:
            hall.approve_reservations(held)
            hall.commit()

        if _attempt('jo@example.org checks out', checkout) is None:
            hall.rollback()
        expired = hall.queries.remove_expired_reservation_sessions(later)
        hall.commit()
    _say(f'  ✓ the unpaid cart is cleared: {len(expired)} session removed')


def help_desk(context: Context, monday: date) -> None:
    _heading('4. Opening hours from a recurring rule')
    desk = libres.new_scheduler(context, 'help-desk', ZONE)
    start = datetime.combine(monday, time(8))
    rule = desk.add_rule('FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR', start, start.replace(hour=12),
                         horizon=timedelta(days=14), partly_available=True, raster=15)
    desk.commit()
    _say(f'Rule: weekdays 08:00–12:00, {len(desk.allocations_by_rule(rule.id))} allocations made')
    friday = monday + timedelta(days=4)
    desk.add_rule_exception(rule.id, friday)
    desk.commit()
    _say(f'  ✓ closed on {friday:%a %d %b}: that day\'s allocation is gone')
    change = desk.change_rule(rule.id, effective_from=monday + timedelta(days=7),
                              start_time=time(9), end_time=time(13))
    desk.commit()
    _say(f'  ✓ from {monday + timedelta(days=7):%a %d %b} on: 09:00–13:00 (the rule is split in two)')
    for allocation in desk.allocations_by_rule(rule.id) + desk.allocations_by_rule(change.new.id):
        _say(f'  {_span(allocation)}')
    _say('Run `libres rules extend` nightly from cron to keep the horizon moving.')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--dsn', help='PostgreSQL URL (default: the embedded server)')
    parser.add_argument('--today', type=date.fromisoformat, default=None, metavar='YYYY-MM-DD',
                        help='the day the demo takes as today (default: the real one)')
    args = parser.parse_args(argv)

    dsn = args.dsn
    if dsn is None:
        from libres import embedded

        dsn = embedded.start(database='libres_demo')
    context = libres.registry.register_context('libres-demo', replace=True)
    context.set_setting('dsn', dsn)
    setup = Scheduler(context, 'setup', ZONE)
    setup.setup_database()
    setup.commit()

    # A fresh demo every run: remove what the last run left behind.
    for name in ('meeting-room', 'nursery', 'concert-hall', 'help-desk'):
        libres.new_scheduler(context, name, ZONE).extinguish_managed_records()
    setup.commit()

    _say(f'libres {libres.__version__} on {dsn.split("@")[-1]}')
    days = DemoDays(args.today or date.today())
    try:
        meeting_room(context, days.meeting_room)
        nursery(context, days.nursery, days.course)
        concert(context, days.concert)
        help_desk(context, days.help_desk)
    finally:
        # Whatever happened, no transaction is left open on the server.
        setup.rollback()
        setup.close()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
