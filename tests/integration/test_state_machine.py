"""Random sequences of operations, checked after every step against a small
model of who holds which hours on which spot (master or mirror)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy.orm import Session

from libres import integrity
from libres.context.core import Context
from libres.db.models import Allocation, ReservedSlot
from libres.db.rules import AllocationRule
from libres.db.scheduler import Scheduler
from libres.modules import errors

DAY = datetime(2033, 2, 1, tzinfo=UTC)
NAMES = ('a', 'b')


def hour(h: int) -> datetime:
    return DAY + timedelta(hours=h)


@dataclass
class ModelAllocation:
    name: str
    id: int
    start: int
    end: int  # exclusive
    partly: bool
    spots: list[set[int]] = field(default_factory=list)  # occupied hours per sibling, key order
    rule: uuid.UUID | None = None  # the rule that made it (data['rule'])

    def hours(self, start: int, end: int) -> set[int]:
        return set(range(self.start, self.end)) if not self.partly else set(range(start, end))

    def free_spots(self, hours: set[int]) -> list[int]:
        return [i for i, taken in enumerate(self.spots) if not taken & hours]


@dataclass
class Holding:
    allocation: ModelAllocation
    hours: set[int]
    spots: int
    kind: str  # 'approved', 'pending' or 'blocker'
    taken: list[int] = field(default_factory=list)


@dataclass
class ModelRule:
    """An hourly rule: its occurrences (start hours), all on known hours."""

    name: str
    id: uuid.UUID
    hours: list[int]  # every occurrence of the recurrence, exceptions included
    length: int
    quota: int
    partly: bool
    horizon: int
    reach: int  # allocations exist for occurrences before this hour
    interval: int
    exceptions: set[int] = field(default_factory=set)  # day numbers from DAY
    stopped: bool = False

    def due(self, until: int) -> list[int]:
        return [h for h in self.hours if self.reach <= h < until and h // 24 not in self.exceptions]


class Calendar(RuleBasedStateMachine):
    context: Context
    engine: sa.Engine

    def __init__(self) -> None:
        super().__init__()
        self.schedulers = {name: Scheduler(self.context, name, 'UTC') for name in NAMES}
        self.allocations: list[ModelAllocation] = []
        self.holdings: dict[uuid.UUID, Holding] = {}
        self.model_rules: list[ModelRule] = []
        self._forget_everything()

    def _forget_everything(self) -> None:
        for scheduler in self.schedulers.values():
            scheduler.extinguish_managed_records()
        self.schedulers['a'].commit()

    def teardown(self) -> None:
        self.schedulers['a'].rollback()
        self._forget_everything()

    # --- helpers ------------------------------------------------------------

    def done(self, ok: bool, expected: bool | None = None) -> None:
        scheduler = self.schedulers['a']
        if ok:
            scheduler.commit()
        else:
            scheduler.rollback()
        if expected is not None:
            assert ok == expected

    def take(self, allocation: ModelAllocation, hours: set[int], spots: int) -> list[int] | None:
        """The library's choice: spot by spot, the first sibling free over the hours."""
        taken = []
        for _ in range(spots):
            free = [i for i in allocation.free_spots(hours) if i not in taken]
            if not free:
                return None
            taken.append(free[0])
        return taken

    # --- rules --------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES), start=st.integers(0, 20), length=st.integers(1, 3),
          quota=st.integers(1, 3), partly=st.booleans())
    def allocate(self, name: str, start: int, length: int, quota: int, partly: bool) -> None:
        end = start + length
        clash = any(a.name == name and a.start < end and start < a.end for a in self.allocations)
        try:
            [allocation] = self.schedulers[name].allocate((hour(start), hour(end)), quota=quota,
                                                          partly_available=partly, raster=60)
        except errors.OverlappingAllocationError:
            return self.done(False, expected=not clash)
        self.allocations.append(ModelAllocation(name, allocation.id, start, end, partly,
                                                [set() for _ in range(quota)]))
        self.done(True, expected=not clash)

    def _reserve(self, data: st.DataObject, approve: bool) -> None:
        allocation = data.draw(st.sampled_from(self.allocations))
        start = data.draw(st.integers(allocation.start, allocation.end - 1))
        end = data.draw(st.integers(start + 1, allocation.end))
        spots = data.draw(st.integers(1, 3))
        hours = allocation.hours(start, end)
        quota = len(allocation.spots)
        expected = spots <= quota and len(allocation.free_spots(hours)) >= spots
        scheduler = self.schedulers[allocation.name]
        try:
            token = scheduler.reserve('who@example.org', (hour(start), hour(end)), quota=spots)
            if approve:
                scheduler.approve_reservations(token)
        except errors.LibresError:
            return self.done(False, expected=expected)
        taken = self.take(allocation, hours, spots) if approve else []
        assert taken is not None
        for index in taken:
            allocation.spots[index] |= hours
        self.holdings[token] = Holding(allocation, hours, spots, 'approved' if approve else 'pending', taken)
        self.done(True, expected=expected)

    @precondition(lambda self: self.allocations)
    @rule(data=st.data())
    def reserve_and_approve(self, data: st.DataObject) -> None:
        self._reserve(data, approve=True)

    @precondition(lambda self: self.allocations)
    @rule(data=st.data())
    def reserve_pending(self, data: st.DataObject) -> None:
        self._reserve(data, approve=False)

    def _tokens(self, kind: str) -> list[uuid.UUID]:
        # In the order they were made: tokens are random, the draws must not be.
        return [t for t, h in self.holdings.items() if h.kind == kind]

    @precondition(lambda self: self._tokens('pending'))
    @rule(data=st.data())
    def approve_pending(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(self._tokens('pending')))
        holding = self.holdings[token]
        taken = self.take(holding.allocation, holding.hours, holding.spots)
        try:
            self.schedulers[holding.allocation.name].approve_reservations(token)
        except errors.AlreadyReservedError:
            return self.done(False, expected=taken is not None)
        assert taken is not None
        for index in taken:
            holding.allocation.spots[index] |= holding.hours
        holding.kind, holding.taken = 'approved', taken
        self.done(True, expected=True)

    @precondition(lambda self: self.holdings)
    @rule(data=st.data(), deny=st.booleans())
    def deny_or_remove(self, data: st.DataObject, deny: bool) -> None:
        token = data.draw(st.sampled_from(list(self.holdings)))
        holding = self.holdings[token]
        scheduler = self.schedulers[holding.allocation.name]
        if holding.kind == 'blocker':
            scheduler.remove_blocker(token)
        elif deny:
            scheduler.deny_reservation(token)
            if holding.kind == 'approved':
                return self.done(True)  # approved reservations cannot be denied
        else:
            scheduler.remove_reservation(token)
        for index in holding.taken:
            holding.allocation.spots[index] -= holding.hours
        del self.holdings[token]
        self.done(True)

    def _changeable(self) -> list[uuid.UUID]:
        # One spot on a partly available allocation: a reservation of several
        # spots holds several allocations (change_reservation refuses it).
        return [t for t in self._tokens('approved')
                if self.holdings[t].allocation.partly and self.holdings[t].spots == 1]

    @precondition(lambda self: self._changeable())
    @rule(data=st.data())
    def change_reservation(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(self._changeable()))
        holding = self.holdings[token]
        allocation = holding.allocation
        start = data.draw(st.integers(allocation.start, allocation.end - 1))
        end = data.draw(st.integers(start + 1, allocation.end))
        hours = set(range(start, end))
        for index in holding.taken:
            allocation.spots[index] -= holding.hours
        taken = self.take(allocation, hours, holding.spots)
        scheduler = self.schedulers[allocation.name]
        [row] = scheduler.reservations_by_token(token)
        try:
            changed = scheduler.change_reservation(token, row.id, hour(start), hour(end))
        except errors.LibresError:
            for index in holding.taken:
                allocation.spots[index] |= holding.hours
            return self.done(False, expected=taken is not None)
        if changed is None:  # same span
            taken = holding.taken
        assert taken is not None
        for index in taken:
            allocation.spots[index] |= hours
        holding.hours, holding.taken = hours, taken
        self.done(True, expected=True)

    @precondition(lambda self: self.allocations)
    @rule(data=st.data())
    def add_blocker(self, data: st.DataObject) -> None:
        allocation = data.draw(st.sampled_from(self.allocations))
        start = data.draw(st.integers(allocation.start, allocation.end - 1))
        end = data.draw(st.integers(start + 1, allocation.end))
        hours = allocation.hours(start, end)
        expected = len(allocation.free_spots(hours)) == len(allocation.spots)
        try:
            [blocker] = self.schedulers[allocation.name].add_blocker((hour(start), hour(end)))
        except errors.AlreadyReservedError:
            return self.done(False, expected=expected)
        taken = list(range(len(allocation.spots)))
        for index in taken:
            allocation.spots[index] |= hours
        self.holdings[blocker.token] = Holding(allocation, hours, len(taken), 'blocker', taken)
        self.done(True, expected=expected)

    @precondition(lambda self: self.allocations)
    @rule(data=st.data(), quota=st.integers(1, 4))
    def change_quota(self, data: st.DataObject, quota: int) -> None:
        allocation = data.draw(st.sampled_from(self.allocations))
        old = len(allocation.spots)
        scheduler = self.schedulers[allocation.name]
        free = [i for i, taken in enumerate(allocation.spots) if not taken]
        expected = quota >= old or len(free) >= old - quota
        try:
            scheduler.change_quota(scheduler.allocation_by_id(allocation.id), quota)
        except errors.AffectedReservationError:
            return self.done(False, expected=expected)
        if quota > old:
            allocation.spots += [set() for _ in range(quota - old)]
        elif quota < old:
            # Booked spots move to the front, in key order.
            used = [i for i in range(old) if allocation.spots[i]]
            moved = {old_index: new_index for new_index, old_index in enumerate(used)}
            allocation.spots = [allocation.spots[i] for i in used] + [set() for _ in range(quota - len(used))]
            for holding in self.holdings.values():
                if holding.allocation is allocation:
                    holding.taken = [moved[i] for i in holding.taken]
        self.done(True, expected=expected)

    @precondition(lambda self: self.allocations)
    @rule(data=st.data(), shift=st.integers(-2, 2), grow=st.integers(-1, 1))
    def move_allocation(self, data: st.DataObject, shift: int, grow: int) -> None:
        allocation = data.draw(st.sampled_from(self.allocations))
        start, end = allocation.start + shift, allocation.end + shift + grow
        if end <= start or start < 0:
            return
        held = set().union(*allocation.spots)
        pending = any(h.kind == 'pending' and h.allocation is allocation for h in self.holdings.values())
        clash = any(a is not allocation and a.name == allocation.name and a.start < end and start < a.end
                    for a in self.allocations)
        changes = (start, end) != (allocation.start, allocation.end)
        if allocation.partly:
            blocked = any(not start <= h < end for h in held) or (pending and any(
                not h.hours <= set(range(start, end)) for h in self.holdings.values()
                if h.kind == 'pending' and h.allocation is allocation))
        else:
            blocked = changes and (bool(held) or pending)
        expected = not clash and not blocked
        scheduler = self.schedulers[allocation.name]
        try:
            scheduler.move_allocation(allocation.id, hour(start), hour(end))
        except (errors.OverlappingAllocationError, errors.AffectedReservationError):
            return self.done(False, expected=expected)
        allocation.start, allocation.end = start, end
        self.done(True, expected=expected)

    # --- recurring rules ------------------------------------------------------

    def _booked(self, allocation: ModelAllocation) -> bool:
        return any(h.allocation is allocation for h in self.holdings.values())

    def _make(self, rule: ModelRule, hours: list[int]) -> list[ModelAllocation]:
        """What the library makes of the due hours: each unless it overlaps."""
        made = []
        for start in hours:
            end = start + rule.length
            if any(a.name == rule.name and a.start < end and start < a.end for a in self.allocations):
                continue
            allocation = ModelAllocation(rule.name, 0, start, end, rule.partly,
                                         [set() for _ in range(rule.quota)], rule.id)
            self.allocations.append(allocation)
            made.append(allocation)
        return made

    def _learn_ids(self, rule: ModelRule, made: list[ModelAllocation]) -> None:
        by_start = {a.start: a.id for a in self.schedulers[rule.name].allocations_by_rule(rule.id)}
        for allocation in made:
            allocation.id = by_start[hour(allocation.start)]

    @rule(name=st.sampled_from(NAMES), start=st.integers(0, 20), interval=st.integers(1, 4),
          count=st.integers(1, 6), data=st.data(), quota=st.integers(1, 2), partly=st.booleans(),
          horizon=st.integers(1, 12))
    def add_rule(self, name: str, start: int, interval: int, count: int, data: st.DataObject,
                 quota: int, partly: bool, horizon: int) -> None:
        length = data.draw(st.integers(1, min(interval, 23 - start) if start < 23 else 1))
        if start + length > 23:
            return
        hours = [start + k * interval for k in range(count)]
        made = self.schedulers[name].add_rule(
            f'FREQ=HOURLY;INTERVAL={interval};COUNT={count}', hour(start).replace(tzinfo=None),
            hour(start + length).replace(tzinfo=None), horizon=timedelta(hours=horizon),
            quota=quota, partly_available=partly, raster=60)
        model = ModelRule(name, made.id, hours, length, quota, partly, horizon, start, interval)
        created = self._make(model, model.due(start + horizon))
        model.reach = start + horizon
        assert made.last_extension is not None and made.last_extension.created == len(created)
        self.model_rules.append(model)
        self._learn_ids(model, created)
        self.done(True)

    @precondition(lambda self: self.model_rules)
    @rule(name=st.sampled_from(NAMES), until=st.integers(0, 40))
    def extend_rules(self, name: str, until: int) -> None:
        mine = sorted((r for r in self.model_rules if r.name == name),
                      key=lambda r: (r.hours[0] if r.hours else 0, r.id))
        created = []
        for model in mine:
            if model.stopped or until <= model.reach:
                continue
            made = self._make(model, model.due(until))
            model.reach = until
            created.append((model, made))
        assert self.schedulers[name].extend_rules(until=hour(until).replace(tzinfo=None)) == sum(
            len(made) for _, made in created)
        for model, made in created:
            self._learn_ids(model, made)
        self.done(True)

    @precondition(lambda self: self.model_rules)
    @rule(data=st.data(), day=st.integers(0, 1))
    def add_rule_exception(self, data: st.DataObject, day: int) -> None:
        model = data.draw(st.sampled_from(self.model_rules))
        those = [a for a in self.allocations if a.rule == model.id and a.start // 24 == day]
        blocked = any(self._booked(a) for a in those)
        try:
            removed = self.schedulers[model.name].add_rule_exception(model.id, (DAY + timedelta(days=day)).date())
        except errors.AffectedReservationError:
            return self.done(False, expected=not blocked)
        assert removed == len(those)
        self.allocations = [a for a in self.allocations if a not in those]
        model.exceptions.add(day)
        self.done(True, expected=not blocked)

    @precondition(lambda self: self.model_rules)
    @rule(data=st.data(), day=st.integers(0, 1), shift=st.integers(0, 1), quota=st.integers(1, 2))
    def change_rule(self, data: st.DataObject, day: int, shift: int, quota: int) -> None:
        old = data.draw(st.sampled_from(self.model_rules))
        cut = 24 * day
        before = [h for h in old.hours if h < cut]
        following = [h for h in old.hours if h >= cut]
        # start_time is a time of day on the day of the following occurrence:
        # 23:00 shifted by an hour is 00:00 of that same day, not of the next.
        new_first = following[0] - following[0] % 24 + (following[0] + shift) % 24 if following else 0
        if following and new_first % 24 + old.length > 23:
            return  # the new times would leave the day
        remaining = len(old.hours) - len(before)
        new_hours = [new_first + k * old.interval for k in range(remaining)] if following else []
        exceptions = {d for d in old.exceptions if d >= day}
        valid = not old.stopped and any(h // 24 not in exceptions for h in new_hours)
        scheduler = self.schedulers[old.name]
        start_time = time(new_first % 24) if following else None
        end_time = time((new_first % 24) + old.length) if following else None
        try:
            change = scheduler.change_rule(old.id, (DAY + timedelta(days=day)).date(),
                                           start_time=start_time, end_time=end_time, quota=quota)
        except errors.InvalidRuleError:
            return self.done(False, expected=valid)
        assert valid
        later = [a for a in self.allocations if a.rule == old.id and a.start >= cut]
        booked = [a for a in later if self._booked(a)]
        assert sorted(a.id for a in change.retagged) == sorted(a.id for a in booked)
        assert change.removed == len(later) - len(booked)
        self.allocations = [a for a in self.allocations if a not in later or a in booked]
        new = ModelRule(old.name, change.new.id, new_hours, old.length, quota, old.partly, old.horizon,
                        new_first, old.interval, exceptions)
        for allocation in booked:
            allocation.rule = new.id
        reach = max(old.reach, new_first + old.horizon)
        made = self._make(new, new.due(reach))
        new.reach = reach
        if before:
            old.hours, old.reach = before, min(old.reach, cut)
            assert change.old is not None
        else:
            self.model_rules.remove(old)
            assert change.old is None
        self.model_rules.append(new)
        assert change.extension.created == len(made)
        self._learn_ids(new, made)
        self.done(True)

    @precondition(lambda self: self.model_rules)
    @rule(data=st.data())
    def stop_rule(self, data: st.DataObject) -> None:
        model = data.draw(st.sampled_from(self.model_rules))
        assert self.schedulers[model.name].stop_rule(model.id).stopped
        model.stopped = True
        self.done(True)

    @precondition(lambda self: self.model_rules)
    @rule(data=st.data())
    def delete_rule(self, data: st.DataObject) -> None:
        model = data.draw(st.sampled_from(self.model_rules))
        mine = [a for a in self.allocations if a.rule == model.id and a.name == model.name]
        kept = [a for a in mine if self._booked(a)]
        assert self.schedulers[model.name].delete_rule(model.id) == (len(mine) - len(kept), len(kept))
        self.allocations = [a for a in self.allocations if a not in mine or a in kept]
        self.model_rules.remove(model)
        self.done(True)

    # --- invariants -----------------------------------------------------------

    @invariant()
    def database_matches_the_model(self) -> None:
        with Session(self.engine) as session:
            assert integrity.check(session).clean
            for name, scheduler in self.schedulers.items():
                mine = [a for a in self.allocations if a.name == name]
                masters = session.query(Allocation).filter(
                    Allocation.resource == scheduler.resource).count()
                assert masters == len(mine)
                for allocation in mine:
                    rows = session.query(Allocation).filter(
                        Allocation.mirror_of == scheduler.resource,
                        Allocation._start == hour(allocation.start)).all()
                    slots = session.query(ReservedSlot).filter(
                        ReservedSlot.allocation_id.in_([r.id for r in rows])).all()
                    for h in range(allocation.start, allocation.end):
                        used = sum(1 for s in slots if s.start <= hour(h) <= s.end)
                        assert used == sum(1 for taken in allocation.spots if h in taken), (name, h)
                    assert all(r.quota == len(allocation.spots) for r in rows if r.is_master)

    @invariant()
    def rules_match_the_model(self) -> None:
        with Session(self.engine) as session:
            for name, scheduler in self.schedulers.items():
                tags = {a._start: (a.data or {}).get('rule') for a in session.query(Allocation).filter(
                    Allocation.resource == scheduler.resource)}
                assert tags == {hour(a.start): a.rule.hex if a.rule else None
                                for a in self.allocations if a.name == name}
                rows = {r.id: r for r in session.query(AllocationRule).filter(
                    AllocationRule.resource == scheduler.resource)}
                mine = {r.id: r for r in self.model_rules if r.name == name}
                assert set(rows) == set(mine)
                for rule_id, row in rows.items():
                    assert row.stopped == mine[rule_id].stopped
                    assert row.generated_until == hour(mine[rule_id].reach).replace(tzinfo=None)


@pytest.mark.filterwarnings('ignore::hypothesis.errors.NonInteractiveExampleWarning')
def test_random_operations_keep_every_invariant(context: Context, admin_engine: sa.Engine) -> None:
    Calendar.context = context
    Calendar.engine = admin_engine
    runner = Calendar.TestCase
    runner.settings = settings(max_examples=30, stateful_step_count=25, deadline=None,
                               suppress_health_check=list(HealthCheck))
    runner().runTest()
