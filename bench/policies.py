"""What the booking policies (issue 16) cost a booking: ours only, against
our own plain booking (the published libres has no holds nor buffers).

    python -m bench.policies [--size quick|full] [--rounds N] [--states ...] [--drivers ...]
    python bench/policies.py WORKLOAD --dsn URL --size SIZE --state STATE   # one run, JSON

Workloads (an operation is one booking of an hour, at raster 15, on partly
available allocations of 08:00–18:00; every workload books the same spans,
an hour apart so that buffers fit):

* ``plain``: reserve, approve, commit (as ``reserve_approve`` of bench/run.py).
* ``buffers``: the same on allocations with 15 minutes of buffer before and
  after each booking (six slots written instead of four).
* ``hold``: reserve with a 15-minute hold (its slots written at once),
  approve (the hold becomes the booking), commit: one transaction.
* ``plain_commit``: reserve and commit, then approve and commit: two
  transactions, as a shop without holds does (a pending row waits).
* ``hold_commit``: a shop's way: reserve with a hold and commit, then
  approve and commit: two transactions, against ``plain_commit``.

No cart (``session_id``) anywhere: a cart costs a look-up of its own,
with or without a hold.

The issue allows a booking to get at most 25 % slower; the table gives each
workload's time per booking (all its runs' time over their bookings) and
its median latency against its baseline's of the same round (``plain``; for
``hold_commit``, ``plain_commit``: the same two transactions without a hold), in the same state
and with the same driver (medians over the rounds): within the budget if
both are, over it if both are, else unclear.
The worker half runs bench/workloads.py's helpers; the driver half reuses
``bench.run``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

SIZES: dict[str, dict[str, int]] = {'quick': {'bookings': 200}, 'full': {'bookings': 1000}}
HOLD = timedelta(minutes=15)
BUFFER = timedelta(minutes=15)
FIRST_DAY = datetime(2040, 1, 2)
PER_DAY = 5  # 08:15, 10:15, ... 16:15: an hour apart, room for the buffers
BUDGET = 1.25  # issue 16: at most 25 % slower than a plain booking


def spans(count: int) -> list[tuple[datetime, datetime]]:
    """One-hour bookings, five a day, each starting a quarter past."""
    found = []
    for index in range(count):
        start = FIRST_DAY + timedelta(days=index // PER_DAY, hours=8 + 2 * (index % PER_DAY), minutes=15)
        found.append((start, start + timedelta(hours=1)))
    return found


def prepared(dsn: str, count: int, buffers: bool) -> tuple[Any, list[tuple[datetime, datetime]]]:
    """A scheduler on an empty database, with a day's allocation for every five bookings."""
    from workloads import WARMUP, new_scheduler, settle  # run as a script: bench/ is on the path

    scheduler = new_scheduler(dsn)
    scheduler.setup_database()
    scheduler.commit()
    wanted = spans(count + WARMUP)
    days = (len(wanted) + PER_DAY - 1) // PER_DAY
    policies = {'buffer_before': BUFFER, 'buffer_after': BUFFER} if buffers else {}
    days_open = [(FIRST_DAY + timedelta(days=d, hours=8), FIRST_DAY + timedelta(days=d, hours=18))
                 for d in range(days)]
    scheduler.allocate(days_open, partly_available=True, raster=15, **policies)
    settle(scheduler)
    return scheduler, wanted


def plain_booking(scheduler: Any, start: datetime, end: datetime) -> None:
    token = scheduler.reserve('guest@example.org', (start, end))
    scheduler.approve_reservations(token)
    scheduler.commit()


def held_booking(scheduler: Any, start: datetime, end: datetime) -> None:
    token = scheduler.reserve('guest@example.org', (start, end), hold=HOLD)
    scheduler.approve_reservations(token)
    scheduler.commit()


def committed_then_approved(scheduler: Any, start: datetime, end: datetime) -> None:
    token = scheduler.reserve('guest@example.org', (start, end))
    scheduler.commit()
    scheduler.approve_reservations(token)
    scheduler.commit()


def held_then_committed(scheduler: Any, start: datetime, end: datetime) -> None:
    token = scheduler.reserve('guest@example.org', (start, end), hold=HOLD)
    scheduler.commit()
    scheduler.approve_reservations(token)
    scheduler.commit()


BOOKINGS = {
    'plain': (plain_booking, False),
    'buffers': (plain_booking, True),
    'hold': (held_booking, False),
    'plain_commit': (committed_then_approved, False),
    'hold_commit': (held_then_committed, False),
}
# What each workload is compared with: the same transactions without the policy.
BASELINES = {'plain': 'plain', 'buffers': 'plain', 'hold': 'plain',
             'plain_commit': 'plain_commit', 'hold_commit': 'plain_commit'}
TITLES = {
    'plain': 'reserve + approve + commit, 1 h at raster 15',
    'buffers': 'the same with 15 min buffers before and after',
    'hold': 'reserve with a 15 min hold + approve + commit',
    'plain_commit': 'reserve + commit, approve + commit',
    'hold_commit': 'reserve with a hold + commit, approve + commit',
}


def run_workload(name: str, dsn: str, size: dict[str, int]) -> dict[str, Any]:
    from workloads import WARMUP, StatementCounter, analysed_tables, result, timed

    book, buffers = BOOKINGS[name]
    scheduler, wanted = prepared(dsn, size['bookings'], buffers)
    warmup = timed((lambda s=start, e=end: book(scheduler, s, e)) for start, end in wanted[:WARMUP])
    counter = StatementCounter()
    latencies = timed((lambda s=start, e=end: book(scheduler, s, e)) for start, end in wanted[WARMUP:])
    slots = scheduler.session.execute(SLOT_KINDS).one()
    scheduler.commit()
    outcome: dict[str, Any] = result(
        latencies, counter.count, first=warmup[0], analysed=analysed_tables(scheduler),
        slots=slots[0], buffer_slots=slots[1], held_slots=slots[2])
    return outcome


SLOT_KINDS = sa.text('SELECT count(*), count(*) FILTER (WHERE buffer),'
                     ' count(*) FILTER (WHERE held_until IS NOT NULL) FROM reserved_slots')


def worker() -> None:
    import workloads

    parser = argparse.ArgumentParser()
    parser.add_argument('workload', choices=sorted(BOOKINGS))
    parser.add_argument('--dsn', required=True)
    parser.add_argument('--size', choices=sorted(SIZES), default='quick')
    parser.add_argument('--state', choices=['fresh', 'analysed'], default='fresh')
    args = parser.parse_args()
    workloads.STATE['name'] = args.state
    json.dump(run_workload(args.workload, args.dsn, SIZES[args.size]), sys.stdout)


# --- the driver -----------------------------------------------------------------------

def _check(outcome: dict[str, Any], name: str) -> None:
    """Every booking is there, with its buffers and without a hold left."""
    from bench.workloads import WARMUP

    per_booking = 6 if name == 'buffers' else 4
    bookings = outcome['operations'] + WARMUP
    if outcome['slots'] != per_booking * bookings or outcome['held_slots'] or \
            outcome['buffer_slots'] != (2 * bookings if name == 'buffers' else 0):
        raise RuntimeError(f'{name} left the wrong slots: {outcome}')


def _verdict(ratios: list[float]) -> str:
    """Within the budget by both the time per booking and the median, over by
    both, or one of each (a noisy machine)."""
    within = [ratio <= BUDGET for ratio in ratios]
    return 'yes' if all(within) else ('**no**' if not any(within) else 'unclear')


def paired(runs: Any, base: Any, figure: Callable[[dict[str, Any]], float]) -> float:
    """The median over the rounds of a run's figure against its baseline's of the
    same round (run minutes apart, so the machine's drift cancels out)."""
    return statistics.median(figure(mine) / figure(base) for mine, base in zip(runs.outcomes, base.outcomes))


def time_per_booking(outcome: dict[str, Any]) -> float:
    return float(outcome['seconds']) / float(outcome['operations'])


def median_latency(outcome: dict[str, Any]) -> float:
    return float(statistics.median(outcome['latencies']))


def table(results: dict[tuple[str, str], dict[str, Any]], variants: list[tuple[str, str]]) -> str:
    from bench.run import Runs, _ms

    lines = ['| workload | state, driver | bookings/s | p50 ms | p95 ms | SQL/booking '
             '| time per booking / baseline | p50 / baseline | within 25 % |',
             '|---|---|---|---|---|---|---|---|---|']
    for name in BOOKINGS:
        for variant in variants:
            runs: Runs = results[variant][name]
            base: Runs = results[variant][BASELINES[name]]
            ratios = [paired(runs, base, time_per_booking), paired(runs, base, median_latency)]
            verdict = '–' if BASELINES[name] == name else _verdict(ratios)
            lines.append(
                f'| {TITLES[name]} | {variant[0]}, {variant[1]} | {runs.rate:,.1f} '
                f'| {_ms(runs.percentile(0.5))} | {_ms(runs.percentile(0.95))} '
                f'| {runs.statements_per_operation:.1f} | {ratios[0]:.2f} | {ratios[1]:.2f} | {verdict} |'
            )
    return '\n'.join(lines)


def driver() -> None:
    from pathlib import Path

    from bench.run import DRIVERS, STATES, EmbeddedServer, Runs, machine, run_once

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', choices=sorted(SIZES), default='quick')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--states', nargs='*', choices=STATES, default=list(STATES))
    parser.add_argument('--drivers', nargs='*', choices=DRIVERS, default=list(DRIVERS))
    args = parser.parse_args()
    ours = Path(sys.executable)
    server = EmbeddedServer()
    variants = [(state, driver) for state in args.states for driver in args.drivers]
    results = {variant: {name: Runs() for name in BOOKINGS} for variant in variants}
    began = time.perf_counter()
    # Round by round, every workload in turn: drift of the machine hits all alike.
    for round_ in range(args.rounds):
        print(f'round {round_ + 1} of {args.rounds}', file=sys.stderr)
        for state, driver_name in variants:
            for name in BOOKINGS:
                dsn = server.database('bench_policies').replace('+psycopg:', f'+{driver_name}:')
                outcome = run_once(ours, ['bench/policies.py'], name, dsn, args.size, state)
                _check(outcome, name)
                results[state, driver_name][name].outcomes.append(outcome)
    worst = max(paired(results[v][n], results[v][BASELINES[n]], time_per_booking)
                for v in variants for n in BOOKINGS)
    spread = statistics.median(
        max(o['operations'] / o['seconds'] for o in runs.outcomes)
        / min(o['operations'] / o['seconds'] for o in runs.outcomes)
        for by_name in results.values() for runs in by_name.values()
    )
    print(f'Size: {args.size} ({SIZES[args.size]["bookings"]} bookings a run after a warm-up), '
          f'{args.rounds} run(s) per workload, interleaved; p50/p95 over all runs\' bookings, '
          'ratios the median over the rounds of each run against its baseline\'s of its round.')
    print(f'Machine: {machine()}. Run took {time.perf_counter() - began:.0f} s; the median workload\'s '
          f'fastest run was {spread:.2f}× its slowest.\n')
    print(table(results, variants))
    print(f'\nWorst: {worst:.2f}× the time of its baseline (the budget: {BUDGET:.2f}×).')


if __name__ == '__main__':
    if __package__:  # python -m bench.policies
        driver()
    else:  # python bench/policies.py WORKLOAD ...
        worker()
