"""Find (and where it needs no guessing, repair) corrupt libres records.

What PostgreSQL enforces since revision 0002 cannot happen in new data, but
a database taken over from libres 1.4.0, or written around the library,
may hold any of these. The checks are set-based SQL over the whole
database, reported per resource.

Each query returns ``resource`` and ``item`` (a short text naming the
record) and may return more columns: those are kept, typed, in
``Report.details`` (ids, times, e-mail addresses) for reports to show.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from libres.db.booking.engine import Engine
from libres.db.models import Reservation, ReservedSlot
from libres.db.queries import SESSION_EXPIRY, Queries
from libres.db.sql import integrity as sql
from libres.modules import clock, errors
from libres.modules.dates import utcnow

KINDS = {
    'orphaned_slots': 'reserved slots without an owner (approved reservation, held one, or blocker)',
    'missing_slots': 'approved reservations without reserved slots',
    'slots_outside_allocation': 'reserved slots outside their allocation (or on a missing one)',
    'overlapping_allocations': 'allocations of one resource that overlap',
    'mirrors_without_master': 'quota mirrors whose master allocation is missing',
    'expired_holds': 'slots of expired holds left behind (they block nobody)',
    'expired_cart_reservations': 'pending reservations of expired shopping-cart sessions',
}
REPAIRABLE = ('orphaned_slots', 'missing_slots', 'expired_holds', 'expired_cart_reservations')

@dataclass
class Report:
    """Findings per resource: ``{resource: {kind: [item, …]}}``; ``details``
    has the same shape with, for each item, the other columns of its row."""

    findings: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)
    not_repaired: list[str] = field(default_factory=list)
    details: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.findings

    def count(self, kind: str) -> int:
        return sum(len(kinds.get(kind, [])) for kinds in self.findings.values())

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (UUIDs and times as strings)."""
        plain = asdict(self)
        plain['details'] = {
            resource: {kind: [{k: _jsonable(v) for k, v in row.items()} for row in rows]
                       for kind, rows in kinds.items()}
            for resource, kinds in self.details.items()
        }
        return {**plain, 'clean': self.clean}

    def render(self) -> str:
        if self.clean and not self.repaired:
            return 'No problems found.'
        lines = []
        for resource, kinds in sorted(self.findings.items()):
            lines.append(f'resource {resource}:')
            for kind, items in sorted(kinds.items()):
                shown = ', '.join(items[:5]) + (f' … ({len(items)} in all)' if len(items) > 5 else '')
                lines.append(f'  {len(items)} {KINDS[kind]}: {shown}')
        for kind, number in sorted(self.repaired.items()):
            lines.append(f'repaired: {number} {KINDS[kind]}')
        lines.extend(f'not repaired: {reason}' for reason in self.not_repaired)
        return '\n'.join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


Progress = Callable[[str], None]


def check(session: Session, expired_before: datetime | None = None,
          progress: Progress | None = None, kinds: Iterable[str] | None = None) -> Report:
    """Report every finding of ``KINDS`` (or of ``kinds`` only: a schema
    older than the newest may lack columns the others read); carts expire
    15 minutes after their last activity unless ``expired_before`` says
    otherwise; ``progress`` is called with each kind once it has been checked."""
    expired = expired_before or utcnow() - SESSION_EXPIRY
    now = clock.now().replace(tzinfo=None)
    wanted = set(KINDS if kinds is None else kinds)
    report = Report()
    for kind, query in sql.checks(_has_holds(session)).items():
        if kind not in wanted:
            continue
        params = {'expired': expired.replace(tzinfo=None)} if ':expired' in query else {}
        if ':now' in query:
            params['now'] = now
        for row in session.execute(text(query), params).mappings():
            resource = str(row['resource'])
            report.findings.setdefault(resource, {}).setdefault(kind, []).append(row['item'])
            extra = {key: value for key, value in row.items() if key not in ('resource', 'item')}
            report.details.setdefault(resource, {}).setdefault(kind, []).append(extra)
        if progress is not None:
            progress(kind)
    return report


def repair(session: Session, expired_before: datetime | None = None,
           progress: Progress | None = None) -> Report:
    """Fix what needs no guessing, then check again; the caller commits."""
    before = check(session, expired_before, progress)
    repaired: dict[str, int] = {}
    not_repaired: list[str] = []

    if before.count('orphaned_slots'):
        result: Any = session.execute(text(sql.delete_orphaned_slots(_has_holds(session))))
        repaired['orphaned_slots'] = result.rowcount

    if before.count('expired_holds'):
        # An ORM-enabled delete: the session (and a host listening to it) sees it.
        result = session.execute(
            delete(ReservedSlot).where(~ReservedSlot.blocking_at(clock.now())),
            execution_options={'synchronize_session': False},
        )
        repaired['expired_holds'] = result.rowcount

    if before.count('missing_slots'):
        repaired['missing_slots'], failures = _recreate_missing_slots(session)
        not_repaired.extend(failures)

    if before.count('expired_cart_reservations'):
        repaired['expired_cart_reservations'] = _remove_expired_carts(session, expired_before)

    session.flush()
    after = check(session, expired_before, progress)
    after.repaired = {kind: number for kind, number in repaired.items() if number}
    for kind in KINDS:
        if kind not in REPAIRABLE and after.count(kind):
            not_repaired.append(f'{after.count(kind)} {KINDS[kind]} (needs a decision by a person)')
    after.not_repaired = not_repaired
    return after


def _has_holds(session: Session) -> bool:
    """Whether the schema knows holds (revision 0006 on): one taken over from
    1.4.0 is checked before it is upgraded."""
    return bool(session.execute(text(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns"
        " WHERE table_name = 'reserved_slots' AND column_name = 'held_until')"
    )).scalar_one())


def _remove_expired_carts(session: Session, expired_before: datetime | None) -> int:
    expired = (expired_before or utcnow() - SESSION_EXPIRY).replace(tzinfo=None)
    sessions = [row[0] for row in session.execute(text(sql.EXPIRED_CART_SESSIONS), {'expired': expired})]
    if not sessions:
        return 0
    session.execute(text(sql.DELETE_CART_SLOTS), {'sessions': sessions})
    result: Any = session.execute(text(sql.DELETE_CART_RESERVATIONS), {'sessions': sessions})
    return int(result.rowcount)


def _recreate_missing_slots(session: Session) -> tuple[int, list[str]]:
    """Write the slots again where the spot is still free; report the rest."""
    ids = [int(row.item) for row in session.execute(text(sql.checks(True)['missing_slots']))]
    done, failures = 0, []
    for reservation in session.query(Reservation).filter(Reservation.id.in_(ids)):
        slots = Engine.for_scope(_ResourceScope(session, reservation.resource)).slots
        try:
            with session.begin_nested():
                slots.write_reservation(reservation, reservation.id)
            done += 1
        except errors.LibresError as error:
            failures.append(
                f'reservation {reservation.id} ({reservation.email}): {type(error).__name__}: {error}'
            )
    return done, failures


@dataclass
class _ResourceScope:
    """A booking scope addressed by its resource instead of its names, so
    that repairs write slots with the library's own code."""

    session: Session
    resource: uuid.UUID
    context: Any = None
    timezone: str = 'UTC'
    queries: Queries = field(default_factory=lambda: Queries(None))
    blocking_resources: frozenset[uuid.UUID] = frozenset()
