"""Recurring availability: our rules against calling ``allocate`` yourself
with the published libres 1.4.0 (which has no rules).

    python -m bench.rules [--size quick|full] [--rounds N]   # both sides, a table
    python bench/rules.py WORKLOAD --dsn URL --size SIZE     # one side, JSON (run by the above)

Workloads (an operation is one allocation made):

* ``extend``: 50 resources with a weekday rule (08:00–18:00) made a week
  ahead; extend each by a year (a quarter, quick) and commit. Published:
  the application computes the weekdays itself and calls
  ``allocate(..., skip_overlapping=True)`` per resource.
* ``add_rule``: ``add_rule`` of a year of weekdays on each of 50 resources
  (10, quick). Published: ``allocate`` of the same weekdays.

Both sides tag every allocation with ``data['rule']``, as applications do.
The worker half imports only ``libres`` and SQLAlchemy, so both
interpreters run it; the driver half reuses ``bench.run``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

ZONE = 'Europe/Zurich'
FIRST = datetime(2030, 1, 7, 8)  # a Monday
WEEKDAYS = 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR'
SIZES: dict[str, dict[str, int]] = {
    'quick': {'resources': 50, 'extend_days': 91, 'add_resources': 10},
    'full': {'resources': 50, 'extend_days': 365, 'add_resources': 50},
}
PREPARED_DAYS = 7


def schedulers(dsn: str, count: int) -> list[Any]:
    import libres

    context = libres.registry.register_context('bench-rules', replace=True)
    context.set_setting('dsn', dsn)
    made = [libres.new_scheduler(context, f'room-{n}', ZONE) for n in range(count)]
    made[0].setup_database()
    made[0].commit()
    return made


def weekdays(first_day: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """What an application computes itself: 08:00–18:00 local on weekdays."""
    spans = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        if day.weekday() < 5:
            spans.append((day, day.replace(hour=18)))
    return spans


def has_rules(scheduler: Any) -> bool:
    return hasattr(scheduler, 'add_rule')


def extend(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    rooms = schedulers(dsn, size['resources'])
    tags = {}
    for room in rooms:  # prepared, not timed: a week made already
        if has_rules(room):
            room.add_rule(WEEKDAYS, FIRST, FIRST.replace(hour=18), horizon=timedelta(days=PREPARED_DAYS))
        else:
            tags[room.name] = uuid.uuid4().hex
            room.allocate(weekdays(FIRST, PREPARED_DAYS), data={'rule': tags[room.name]})
    rooms[0].commit()
    until = FIRST + timedelta(days=size['extend_days'])
    from workloads import StatementCounter  # run as a script: bench/ is on the path

    counter = StatementCounter()
    latencies = []
    made = 0
    for room in rooms:
        began = time.perf_counter()
        if has_rules(room):
            made += room.extend_rules(until=until.replace(hour=0))
        else:
            spans = weekdays(FIRST.replace(hour=8) + timedelta(days=PREPARED_DAYS),
                             size['extend_days'] - PREPARED_DAYS)
            made += len(room.allocate(spans, data={'rule': tags[room.name]}, skip_overlapping=True))
        room.commit()
        latencies.append(time.perf_counter() - began)
    return outcome(made, latencies, counter.count)


def add_rule(dsn: str, size: dict[str, int]) -> dict[str, Any]:
    rooms = schedulers(dsn, size['add_resources'])
    from workloads import StatementCounter  # run as a script: bench/ is on the path

    counter = StatementCounter()
    latencies = []
    made = 0
    for room in rooms:
        began = time.perf_counter()
        if has_rules(room):
            rule = room.add_rule(WEEKDAYS, FIRST, FIRST.replace(hour=18), horizon=timedelta(days=365))
            made += rule.last_extension.created
        else:
            made += len(room.allocate(weekdays(FIRST, 365), data={'rule': uuid.uuid4().hex}))
        room.commit()
        latencies.append(time.perf_counter() - began)
    return outcome(made, latencies, counter.count)


def outcome(made: int, latencies: list[float], statements: int) -> dict[str, Any]:
    per_allocation = made / len(latencies)
    return {'operations': made, 'seconds': sum(latencies), 'statements': statements,
            'latencies': [seconds / per_allocation for seconds in latencies]}


WORKLOADS = {'extend': extend, 'add_rule': add_rule}
TITLES = {
    'extend': 'extend 50 resources by a year of weekdays (a quarter quick)',
    'add_rule': 'add_rule of a year of weekdays, per resource (50; 10 quick)',
}


def worker() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('workload', choices=sorted(WORKLOADS))
    parser.add_argument('--dsn', required=True)
    parser.add_argument('--size', choices=sorted(SIZES), default='quick')
    args = parser.parse_args()
    json.dump(WORKLOADS[args.workload](args.dsn, SIZES[args.size]), sys.stdout)


def driver() -> None:
    from pathlib import Path

    from bench.run import EmbeddedServer, Runs, published_python, run_once

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', choices=sorted(SIZES), default='quick')
    parser.add_argument('--rounds', type=int, default=1)
    args = parser.parse_args()
    published = published_python()
    ours = Path(sys.executable)
    server = EmbeddedServer()
    database = server.database

    lines = ['| workload | ours | published 1.4.0, allocate yourself | ratio | SQL/allocation ours '
             '| SQL/allocation published |', '|---|---|---|---|---|---|']
    for name in WORKLOADS:
        runs = {'ours': Runs(), 'published': Runs()}
        for _ in range(args.rounds):
            runs['ours'].outcomes.append(
                run_once(ours, ['bench/rules.py'], name, database('bench_rules_ours'), args.size))
            published_dsn = database('bench_rules_published').replace('+psycopg:', '+psycopg2:')
            runs['published'].outcomes.append(
                run_once(published, ['bench/rules.py'], name, published_dsn, args.size))
        mine, theirs = runs['ours'], runs['published']
        lines.append(f'| {TITLES[name]} | {mine.rate:,.0f}/s | {theirs.rate:,.0f}/s '
                     f'| {mine.rate / theirs.rate:.1f}× | {mine.statements_per_operation:.3f} '
                     f'| {theirs.statements_per_operation:.3f} |')
        print(f'{name}: ours {mine.rate:,.0f}/s, published {theirs.rate:,.0f}/s', file=sys.stderr)
    print(f'Size: {args.size}, {args.rounds} run(s) per side; allocations per second, medians.\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    if __package__:  # python -m bench.rules
        driver()
    else:  # python bench/rules.py WORKLOAD ...
        worker()
