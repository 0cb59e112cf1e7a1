"""Workers of the booking-policy race (imported by spawned children).

Each worker runs a plan of actions on a clock of its own
(``libres.modules.clock``): the clock stands still during an action and
moves one ``STEP`` after it, so the time at which the library judged a hold
expired is known exactly (it is the worker's clock of that action), and
workers started later in time see the holds of the others expire without
anybody sleeping.

Every committed action is reported as a :class:`Record`, with what the
action's own transaction read on the range it was about to occupy just
before the library wrote it (``in_the_way``): under SERIALIZABLE, what a
committed transaction read is what it wrote over.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from libres.db.scheduler import Scheduler
from libres.modules import clock, errors
from libres.retry import RetriesExhausted, run_with_retries
from tests.concurrency.workers import Span, _scheduler, hours

HOLD = timedelta(minutes=15)
STEP = timedelta(minutes=1)
# An approval this many steps after its hold: still held in the holder's clock ...
SOON = 2
# ... or expired there (one step past the hold).
LATE = HOLD // STEP + 1

# Tickets: whole allocations of an hour, one spot each.
TICKET_DAY = datetime(2032, 1, 5)
TICKETS = hours(30, TICKET_DAY)
# One partly available allocation with a buffer on either side of each booking.
BUFFERED: Span = (datetime(2032, 1, 8, 8), datetime(2032, 1, 8, 20))
RASTER = 15
BUFFER = timedelta(minutes=15)

Kind = Literal['book', 'hold', 'approve']
Then = Literal['approve_soon', 'approve_late', 'abandon']
Outcome = Literal['booked', 'held', 'confirmed', 'rebooked', 'refused', 'exhausted']


@dataclass(frozen=True)
class Action:
    """One step of a plan. A hold says what follows it; an approval names
    the held reservation (its token and id)."""

    kind: Kind
    span: Span
    then: Then = 'abandon'
    token: str | None = None
    reservation_id: int | None = None


@dataclass(frozen=True)
class InTheWay:
    """A slot of another owner on the range an action occupied, as its
    transaction read it before writing."""

    source_type: str
    source_id: int
    held_until: datetime | None  # naive UTC


@dataclass
class Record:
    """What one action did, at the worker's clock ``clock`` (naive UTC)."""

    worker: int
    kind: Kind
    span: Span
    clock: datetime
    outcome: Outcome
    token: str | None = None
    reservation_id: int | None = None
    held_until: datetime | None = None
    slots: list[tuple[str, datetime]] = field(default_factory=list)  # (resource, start) written
    in_the_way: list[InTheWay] = field(default_factory=list)
    error: str | None = None


class StepClock:
    """A clock that moves only when told to (aware, UTC)."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current


def naive(moment: datetime) -> datetime:
    """Naive UTC, as raw SQL reads the columns (a naive value is UTC already)."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def is_buffered(span: Span) -> bool:
    return BUFFERED[0] <= span[0] and span[1] <= BUFFERED[1]


def occupied(span: Span) -> Span:
    """The range a booking of ``span`` takes: with its buffers, clipped to
    the allocation, on the buffered allocation; the span itself on a ticket."""
    if not is_buffered(span):
        return span
    return max(span[0] - BUFFER, BUFFERED[0]), min(span[1] + BUFFER, BUFFERED[1])


def expected_slots(span: Span) -> list[tuple[datetime, bool]]:
    """(start, is a buffer) of every slot a booking of ``span`` writes."""
    if not is_buffered(span):
        return [(span[0], False)]
    start, end = occupied(span)
    raster = timedelta(minutes=RASTER)
    slots = []
    while start < end:
        slots.append((start, not (span[0] <= start < span[1])))
        start += raster
    return slots


_IN_THE_WAY = sa.text(
    'SELECT source_type, source_id, held_until FROM reserved_slots'
    ' WHERE resource = :resource AND start >= :first AND start < :end'
)
_SLOTS_OF = sa.text(
    "SELECT resource, start FROM reserved_slots WHERE source_type = 'reservation'"
    ' AND source_id = :id ORDER BY start'
)


def _read_range(scheduler: Scheduler, span: Span) -> list[InTheWay]:
    first, end = occupied(span)
    rows = scheduler.session.execute(_IN_THE_WAY, {'resource': scheduler.resource, 'first': first, 'end': end})
    return [InTheWay(str(kind), int(source), held) for kind, source, held in rows]


class Runner:
    """Runs one worker's actions, each in a transaction retried on conflicts."""

    def __init__(self, scheduler: Scheduler, worker: int, ticking: StepClock) -> None:
        self.scheduler = scheduler
        self.worker = worker
        self.ticking = ticking
        self.retries = 0

    def _count_retry(self, attempt: int, error: BaseException) -> None:
        self.retries += 1

    def perform(self, action: Action) -> Record:
        now = naive(self.ticking())
        try:
            return run_with_retries(
                self.scheduler, lambda: self._unit(action, now), attempts=30, on_retry=self._count_retry
            )
        except RetriesExhausted:
            return Record(self.worker, action.kind, action.span, now, 'exhausted', action.token)
        except errors.LibresError as error:
            self.scheduler.rollback()
            return Record(self.worker, action.kind, action.span, now, 'refused', action.token,
                          action.reservation_id, error=type(error).__name__)

    def _unit(self, action: Action, now: datetime) -> Record:
        scheduler = self.scheduler
        before = _read_range(scheduler, action.span)
        email = f'worker{self.worker}@example.org'
        outcome: Outcome
        if action.kind == 'book':
            token = scheduler.reserve(email, action.span)
            scheduler.approve_reservations(token)
            outcome = 'booked'
        elif action.kind == 'hold':
            token = scheduler.reserve(email, action.span, session_id=uuid.uuid4(), hold=HOLD)
            outcome = 'held'
        else:
            assert action.token is not None
            token = uuid.UUID(action.token)
            # The same snapshot as the approval: whether the hold is still there.
            own = scheduler.session.execute(_SLOTS_OF, {'id': action.reservation_id}).first()
            scheduler.approve_reservations(token)
            outcome = 'confirmed' if own is not None else 'rebooked'
        row = scheduler.reservations_by_token(token).one()
        slots = [(str(resource), start) for resource, start in scheduler.session.execute(_SLOTS_OF, {'id': row.id})]
        held_until = naive(row.held_until) if row.held_until is not None else None
        scheduler.commit()
        others = [slot for slot in before if not (slot.source_type == 'reservation' and slot.source_id == row.id)]
        return Record(self.worker, action.kind, action.span, now, outcome, str(token), row.id,
                      held_until, slots, others)


def _follow_up(record: Record, action: Action) -> tuple[int, Action] | None:
    """The approval a successful hold asks for, and after how many steps."""
    if record.outcome != 'held' or action.then == 'abandon':
        return None
    delay = SOON if action.then == 'approve_soon' else LATE
    return delay, Action('approve', action.span, token=record.token, reservation_id=record.reservation_id)


def run_plan(dsn: str, name: str, worker: int, plan: list[Action], clock_start: datetime,
             start_at: float) -> dict[str, Any]:
    """Run the plan on a clock starting at ``clock_start``; approvals that
    holds ask for are run when due (the clock jumps ahead at the end if need be)."""
    scheduler = _scheduler(dsn, name)
    ticking = StepClock(clock_start)
    clock.set_clock(ticking)
    runner = Runner(scheduler, worker, ticking)
    records: list[Record] = []
    waiting = list(plan)
    due: list[tuple[int, Action]] = []
    tick = 0
    # Line up with the other workers: the race is the point.
    time.sleep(max(0.0, start_at - time.time()))
    while waiting or due:
        ready = [entry for entry in due if entry[0] <= tick]
        if not ready and not waiting:
            tick = min(at for at, _ in due)
        else:
            if ready:
                due.remove(ready[0])
                action = ready[0][1]
            else:
                action = waiting.pop(0)
            ticking.current = clock_start + tick * STEP
            record = runner.perform(action)
            records.append(record)
            follow = _follow_up(record, action)
            if follow is not None:
                due.append((tick + follow[0], follow[1]))
            tick += 1
    scheduler.session_provider.stop_service()
    committed = [r for r in records if r.outcome not in ('refused', 'exhausted')]
    return {
        'booked': [r.token for r in committed], 'refused': sum(r.outcome == 'refused' for r in records),
        'exhausted': sum(r.outcome == 'exhausted' for r in records), 'retries': runner.retries,
        'records': records,
    }
