"""Eight processes race with holds, buffers and plain bookings (issue 16).

The layout: 30 tickets (whole allocations of an hour, one spot each) and one
partly available allocation with 15 minutes of buffer around each booking.
Before the race, this process holds at ``T0`` six tickets and one span of
the buffered allocation that nobody comes back for, and six tickets that
worker 7 approves during the race, long after they expired. Each worker
then goes through every ticket and a few random spans of the buffered
allocation in its own order, and on each books (reserve, approve, commit)
or holds (reserve with a 15-minute hold, commit), and after a hold approves
two steps later, approves 16 steps later (expired in its own clock) or
never comes back. Some also book at either edge of the buffered allocation
(the second edge over part of the abandoned held span). Conflicts are
retried; the clock stands still while an action is retried.

**Clocks.** Worker ``n``'s clock starts at ``T0 + n * 10 min`` and moves one
minute after each action (it stands still during one, retries included):
workers two or more apart see each other's holds expire while both run. A
hold's end is stored as an absolute time, computed in the holder's clock;
whether it has expired is judged by whoever reads it, in the reader's clock.
So "while the hold lived" means "while the booker's clock was before the
stored end", and that is what can be asserted. What cannot: a holder
approving before its hold ends in its own clock may still find it gone,
since a worker whose clock runs ahead may have seen it expired and taken
the spot, as the rules allow.

What is asserted, from the database afterwards and what each worker reported:

* **Each committed action took only expired holds' places.** Inside its
  own transaction, just before the library wrote, each action read the
  slots on the range it was to occupy (span and buffers). A committed
  SERIALIZABLE transaction wrote over what it read, so every other owner
  read there must be a reservation's hold that had ended by that worker's
  clock of that action. This is exact for tickets and for the buffered
  allocation alike.
* **A displaced hold was removed whole, by exactly one booker.** Every hold
  whose slots are gone (and that its holder did not confirm) was read in
  the way by exactly one committed action; every hold still there was read
  by none.
* **Across clocks, on tickets:** whoever owns a ticket that someone else
  held wrote it at a clock at or after that hold's end. Sound only for a
  spot of one slot: an owner is replaced only by a booker who saw it
  expired (its clock >= the old hold's end), and a hold's end lies after
  its writer's clock, so the times only grow along the owners of a spot.
  On the buffered allocation a hold goes whole when one of its slots is
  booked over, and its other slots are then free to anyone, whatever their
  clock: there, only the first two statements hold.
* **An expired hold blocks nobody, on tickets:** a refused action at clock
  ``C`` leaves the ticket with an owner that is not a hold ended by ``C``
  (the same argument: refused means something blocked at ``C``, and the
  ends only grow).
* **Every committed booking is there with all its slots**, buffers next to
  it and clipped to the allocation; every hold left is there with exactly
  the slots and end it was written with; no slot has an owner nobody
  reported; no spot is taken twice, in time, by two reservations.
* **Integrity:** clean at ``T0`` (every hold left is alive); later, the
  only findings are the expired holds left behind, which
  ``remove_expired_reservation_sessions`` removes, and then it is clean.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from libres import integrity
from libres.db.scheduler import Scheduler
from libres.modules import clock
from tests.concurrency import policy_workers as pw
from tests.concurrency.policy_workers import Action, Record
from tests.concurrency.test_races import PROCESSES, assert_clean, fresh, race
from tests.concurrency.workers import Span

pytestmark = pytest.mark.concurrency

T0 = datetime(2031, 6, 2, 8, tzinfo=UTC)
OFFSET = timedelta(minutes=10)
# Later than any clock of the race, and than every hold's end.
AFTER = T0 + timedelta(days=1)


def on_buffered(hour: int, minute: int = 0) -> datetime:
    return pw.BUFFERED[0].replace(hour=hour, minute=minute)


# Held here before the race: nobody comes back for these (the last one is
# on the buffered allocation, and holds its buffers too) ...
ABANDONED = [*pw.TICKETS[:6], (on_buffered(18, 30), on_buffered(19, 15))]
# ... and these the approver approves during the race.
CONTESTED = pw.TICKETS[6:12]
# Booked at the allocation's edges, so their buffers are clipped: the first
# by workers 0 and 4, the second, over part of the abandoned hold, by the
# workers from 2 on (all see that hold expired). The random spans keep
# clear of both: exactly one of each is booked.
FIRST_EDGE = (on_buffered(8), on_buffered(8, 45))
LAST_EDGE = (on_buffered(19), on_buffered(20))
RANDOM_AREA = (on_buffered(9, 15), on_buffered(17, 45))
APPROVER = PROCESSES - 1
COMMITTED = ('booked', 'held', 'confirmed', 'rebooked')


@dataclass(frozen=True)
class Slot:
    resource: str
    start: datetime
    source_type: str
    source_id: int
    held_until: datetime | None
    buffer: bool


@dataclass(frozen=True)
class Row:
    status: str
    held_until: datetime | None
    start: datetime | None


@dataclass
class Final:
    """The database after the race, read directly."""

    slots: list[Slot]
    rows: dict[int, Row]

    def slots_of(self, reservation_id: int) -> list[Slot]:
        return [s for s in self.slots if s.source_type == 'reservation' and s.source_id == reservation_id]

    def owner_at(self, start: datetime) -> Slot | None:
        return next((s for s in self.slots if s.start == start), None)


def read_final(engine: sa.Engine) -> Final:
    with engine.connect() as connection:
        slots = [Slot(str(r), s, t, i, h, b) for r, s, t, i, h, b in connection.execute(sa.text(
            'SELECT resource, start, source_type, source_id, held_until, buffer FROM reserved_slots'))]
        rows = {i: Row(st, h, s) for i, st, h, s in connection.execute(sa.text(
            'SELECT id, status, held_until, start FROM reservations'))}
    return Final(slots, rows)


# --- the plans --------------------------------------------------------------------


def random_action(rng: random.Random, span: Span) -> Action:
    """A booking one time in four, else a hold followed by each of the three endings alike."""
    if rng.random() < 0.25:
        return Action('book', span)
    return Action('hold', span, then=rng.choice(('approve_soon', 'approve_late', 'abandon')))


def buffered_span(rng: random.Random) -> Span:
    first, end = RANDOM_AREA
    slots = int((end - first) / timedelta(minutes=pw.RASTER))
    length = rng.randrange(2, 6)
    start = first + timedelta(minutes=pw.RASTER * rng.randrange(0, slots - length + 1))
    return start, start + timedelta(minutes=pw.RASTER * length)


def plan(worker: int, rng: random.Random, seeded: list[Record]) -> list[Action]:
    actions = [random_action(rng, span) for span in pw.TICKETS]
    actions += [random_action(rng, buffered_span(rng)) for _ in range(6)]
    if worker in (0, 4):
        actions.append(Action('book', FIRST_EDGE))
    if worker >= 2:
        actions.append(Action('book', LAST_EDGE))
    rng.shuffle(actions)
    if worker == APPROVER:
        for record in seeded[len(ABANDONED):]:
            actions.insert(rng.randrange(0, len(actions) // 2), Action(
                'approve', record.span, token=record.token, reservation_id=record.reservation_id))
    return actions


def seed_holds(racing: Scheduler) -> list[Record]:
    """Hold the abandoned and the contested spans at ``T0``, here."""
    seeded = []
    with clock.using(lambda: T0):
        for n, span in enumerate(ABANDONED + CONTESTED):
            token = racing.reserve(f'seed{n}@example.org', span, session_id=uuid.uuid4(), hold=pw.HOLD)
            row = racing.reservations_by_token(token).one()
            slots = racing.session.execute(
                sa.text('SELECT resource, start FROM reserved_slots WHERE source_id = :id'), {'id': row.id})
            seeded.append(Record(-1, 'hold', span, pw.naive(T0), 'held', str(token), row.id,
                                 pw.naive(T0 + pw.HOLD), [(str(r), start) for r, start in slots]))
        racing.commit()
    return seeded


# --- what the records say ------------------------------------------------------------


@dataclass
class History:
    """The committed records, by reservation: its hold, its approval, or its booking."""

    records: list[Record]

    def __post_init__(self) -> None:
        self.committed = [r for r in self.records if r.outcome in COMMITTED]
        self.hold: dict[int, Record] = {}
        self.approval: dict[int, Record] = {}
        self.booking: dict[int, Record] = {}
        for r in self.committed:
            assert r.reservation_id is not None
            {'held': self.hold, 'booked': self.booking}.get(r.outcome, self.approval)[r.reservation_id] = r
        self.mentions = Counter(
            slot.source_id for r in self.committed for slot in {(w.source_type, w.source_id): w
                                                                for w in r.in_the_way}.values()
        )

    def written_at(self, reservation_id: int) -> datetime:
        """The clock at which the reservation's slots now in place were written."""
        approval = self.approval.get(reservation_id)
        if approval is not None and approval.outcome == 'rebooked':
            return approval.clock
        if reservation_id in self.hold:
            return self.hold[reservation_id].clock
        return self.booking[reservation_id].clock

    def displaced(self, final: Final) -> list[int]:
        """Holds whose slots are gone and whose holder did not confirm them."""
        rebooked = {i for i, r in self.approval.items() if r.outcome == 'rebooked'}
        confirmed = {i for i, r in self.approval.items() if r.outcome == 'confirmed'}
        return [i for i in self.hold if i in rebooked or (i not in confirmed and not final.slots_of(i))]


def expect_slots(final: Final, reservation_id: int, span: Span, held_until: datetime | None) -> None:
    got = sorted((s.start, s.buffer, s.held_until) for s in final.slots_of(reservation_id))
    assert got == [(start, buffer, held_until) for start, buffer in pw.expected_slots(span)], reservation_id


def assert_final_states(history: History, final: Final) -> None:
    """Every reservation a worker reported is as its last committed action left it."""
    for i, record in history.booking.items():
        assert final.rows[i].status == 'approved' and final.rows[i].start == record.span[0]
        expect_slots(final, i, record.span, None)
    for i, hold in history.hold.items():
        approval = history.approval.get(i)
        if approval is not None:
            assert final.rows[i].status == 'approved' and final.rows[i].held_until is None
            expect_slots(final, i, hold.span, None)
            if approval.outcome == 'confirmed':
                assert sorted(approval.slots) == sorted(hold.slots)
            continue
        assert final.rows[i].status == 'pending'
        if final.slots_of(i):
            assert final.rows[i].held_until == hold.held_until
            expect_slots(final, i, hold.span, hold.held_until)
            assert sorted((s.resource, s.start) for s in final.slots_of(i)) == sorted(hold.slots)
    known = set(history.hold) | set(history.booking)
    assert {(s.source_type, s.source_id) for s in final.slots} <= {('reservation', i) for i in known}


def assert_only_expired_holds_taken(history: History) -> None:
    # A hold lasts its 15 minutes from its holder's clock ...
    for hold in history.hold.values():
        assert hold.held_until == hold.clock + pw.HOLD, hold
    # ... and only a hold that had ended by the booker's clock made way.
    for record in history.committed:
        for slot in record.in_the_way:
            assert slot.source_type == 'reservation' and slot.held_until is not None, record
            assert slot.held_until <= record.clock, record


def assert_displaced_once(history: History, final: Final) -> list[int]:
    displaced = history.displaced(final)
    for i in history.hold:
        assert history.mentions[i] == (1 if i in displaced else 0), history.hold[i]
    return displaced


def ticket_owner(final: Final, span: Span) -> Slot | None:
    return final.owner_at(span[0]) if not pw.is_buffered(span) else None


def assert_ticket_clocks(history: History, final: Final) -> None:
    for i, hold in history.hold.items():
        owner = ticket_owner(final, hold.span)
        if owner is not None and owner.source_id != i:
            assert hold.held_until is not None
            assert history.written_at(owner.source_id) >= hold.held_until, (hold, owner)
    for record in history.records:
        if record.outcome != 'refused' or pw.is_buffered(record.span):
            continue
        owner = ticket_owner(final, record.span)
        assert owner is not None, record
        assert owner.held_until is None or owner.held_until > record.clock, (record, owner)


def assert_no_overlaps(final: Final, engine: sa.Engine) -> None:
    with engine.connect() as connection:
        twice = connection.execute(sa.text(
            'SELECT count(*) FROM (SELECT resource, start FROM reserved_slots'
            ' GROUP BY resource, start HAVING count(*) > 1) AS twice')).scalar_one()
        # Not the primary key's business: two owners' slots meeting in time on a spot.
        meeting = connection.execute(sa.text(
            'SELECT count(*) FROM reserved_slots a JOIN reserved_slots b ON a.resource = b.resource'
            ' AND (a.source_type, a.source_id) < (b.source_type, b.source_id)'
            " AND tsrange(a.start, a.\"end\", '[)') && tsrange(b.start, b.\"end\", '[)')")).scalar_one()
    assert (twice, meeting) == (0, 0)
    # On the buffered allocation: nobody's booked time inside another's span and buffers.
    spans: dict[int, list[datetime]] = {}
    for slot in final.slots:
        if pw.is_buffered((slot.start, slot.start)) and not slot.buffer:
            spans.setdefault(slot.source_id, []).append(slot.start)
    for i, starts in spans.items():
        span = (min(starts), max(starts) + timedelta(minutes=pw.RASTER))
        first, end = pw.occupied(span)
        for j, others in spans.items():
            assert j == i or not any(first <= start < end for start in others), (i, j)


def assert_integrity(dsn: str, engine: sa.Engine, racing: Scheduler) -> int:
    """Clean while every hold left lives; later only those holds, expired;
    clean again once they are removed. Returns how many were left."""
    session = Session(engine)
    try:
        with clock.using(lambda: T0):
            assert integrity.check(session).clean
        with clock.using(lambda: AFTER):
            report = integrity.check(session)
    finally:
        session.close()
    with engine.connect() as connection:
        held = connection.execute(sa.text(
            'SELECT count(*) FROM reserved_slots WHERE held_until IS NOT NULL')).scalar_one()
    assert all(set(kinds) <= {'expired_holds'} for kinds in report.findings.values()), report.render()
    assert report.count('expired_holds') == held
    with clock.using(lambda: AFTER):
        racing.queries.remove_expired_reservation_sessions()
        racing.commit()
        assert_clean(dsn)
    return int(held)


def summary(history: History, final: Final, displaced: list[int], results: list[dict[str, Any]]) -> str:
    outcomes = Counter((r.kind, r.outcome) for r in history.records)
    late = sum(1 for i, r in history.approval.items()
               if r.outcome == 'confirmed' and r.clock >= cast(datetime, history.hold[i].held_until))
    took = sum(1 for r in history.committed if r.in_the_way)
    # Approvals in time by the holder's clock that found the hold gone: a
    # worker whose clock runs ahead had seen it expired.
    overtaken = sum(1 for r in history.records if r.kind == 'approve' and r.outcome in ('refused', 'rebooked')
                    and r.reservation_id in history.hold
                    and r.clock < cast(datetime, history.hold[r.reservation_id].held_until))
    return (f"policy race: {dict(sorted(outcomes.items()))}; {took} actions took the place of "
            f"{len(displaced)} expired holds; {late} approvals confirmed a hold expired in the holder's "
            f"own clock; {overtaken} approvals in time by the holder's clock found the hold taken by a "
            f"worker whose clock ran ahead; {sum(r['retries'] for r in results)} conflicts retried")


def test_holds_buffers_and_bookings_race_on_own_clocks(
    racing: Scheduler, dsn: str, admin_engine: sa.Engine
) -> None:
    racing.allocate(pw.TICKETS)
    racing.allocate(pw.BUFFERED, partly_available=True, raster=pw.RASTER,
                    buffer_before=pw.BUFFER, buffer_after=pw.BUFFER)
    racing.commit()
    seeded = seed_holds(racing)
    rng = random.Random(16)
    start_at = time.time() + 4
    jobs: list[tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]] = [
        (pw.run_plan, (dsn, 'hall', n, plan(n, rng, seeded), T0 + n * OFFSET, start_at))
        for n in range(PROCESSES)
    ]
    results = race(jobs)
    fresh(racing)
    records: list[Record] = seeded + [r for result in results for r in cast(Iterable[Record], result['records'])]
    history = History(records)
    final = read_final(admin_engine)

    assert sum(r['exhausted'] for r in results) == 0
    assert {r.error for r in records if r.outcome == 'refused'} <= {'AlreadyReservedError'}
    assert_only_expired_holds_taken(history)
    displaced = assert_displaced_once(history, final)
    assert_ticket_clocks(history, final)
    assert_final_states(history, final)
    assert_no_overlaps(final, admin_engine)
    # Nobody came back for these: each was booked over once expired.
    for record in seeded[:len(ABANDONED)]:
        assert record.reservation_id in displaced and final.rows[record.reservation_id].status == 'pending'
    assert len(seeded[len(ABANDONED) - 1].slots) == 5  # three held slots and two buffers
    for edge in (FIRST_EDGE, LAST_EDGE):
        assert [r.outcome for r in history.booking.values() if r.span == edge] == ['booked']
    approvals = [r for r in records if r.worker == APPROVER and r.kind == 'approve' and r.reservation_id
                 in {s.reservation_id for s in seeded}]
    assert len(approvals) == len(CONTESTED)
    print(summary(history, final, displaced, results))
    print(f'policy race: {assert_integrity(dsn, admin_engine, racing)} slots of expired holds left, removed')
