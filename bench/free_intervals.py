"""Free times for a screen: ``free_intervals`` against the nearest 1.4.0 way.

    python -m bench.free_intervals [--size quick|full] [--rounds N]

A calendar of hourly allocations (30 % booked, as in ``bench/workloads.py``)
and the question a week or month view asks: which intervals are free, in
local time? Ours answers with ``scheduler.free_intervals(start, end)``; the
published libres 1.4.0 has no such call, so its nearest equivalent is
``allocations_with_availability_by_range(start, end)`` plus each
allocation's ``free_slots()``, converted to local time and merged the same
way. Both run on one embedded PostgreSQL, alternating, in fresh processes
and databases (the helpers of ``bench/run.py``); the table gives calls per
second, their ratio and statements per call. Both must find the same
number of intervals.

Run as ``python bench/free_intervals.py measure WORKLOAD --dsn URL --size S``
it is the measured process, under either interpreter.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

WINDOWS = {'free_week': 7, 'free_month': 28}
SIZES = {'quick': {'days': 35, 'calls': 5}, 'full': {'days': 365, 'calls': 20}}


# --- the measured process (either implementation) ---------------------------------

def _ours(scheduler: Any, start: Any, end: Any) -> int:
    return len(scheduler.free_intervals(start, end))


def _published(scheduler: Any, start: Any, end: Any) -> int:
    zone = ZoneInfo(scheduler.timezone)
    one = timedelta(microseconds=1)
    intervals: list[list[Any]] = []
    # Inclusive ends in 1.4.0: one microsecond less is the same half-open window.
    for allocation, _, _ in scheduler.allocations_with_availability_by_range(start, end - one):
        previous_id = None
        for slot_start, slot_end in allocation.free_slots():
            local_start, local_end = slot_start.astimezone(zone), (slot_end + one).astimezone(zone)
            if previous_id == allocation.id and intervals[-1][1] == local_start:
                intervals[-1][1] = local_end
            else:
                intervals.append([local_start, local_end])
            previous_id = allocation.id
    return len(intervals)


def measure(workload: str, dsn: str, size: dict[str, int]) -> dict[str, Any]:
    from workloads import YEAR_START, StatementCounter, fill_hourly, new_scheduler, result, timed

    import libres

    scheduler = new_scheduler(dsn)
    scheduler.setup_database()
    scheduler.commit()
    fill_hourly(scheduler, YEAR_START, size['days'] * 24, 3, 10)
    start = YEAR_START.replace(tzinfo=ZoneInfo('UTC')) + timedelta(days=3)
    end = start + timedelta(days=WINDOWS[workload])
    ask = _ours if hasattr(scheduler, 'free_intervals') else _published
    found = ask(scheduler, start, end)  # warm-up, not counted
    scheduler.commit()
    counter = StatementCounter()

    def once() -> None:
        ask(scheduler, start, end)
        scheduler.commit()

    latencies = timed(once for _ in range(size['calls']))
    outcome = result(latencies, counter.count, intervals=found)
    outcome['libres'] = getattr(libres, '__version__', 'unknown')
    return outcome


# --- the runner (our interpreter) -------------------------------------------------

def run(size: str, rounds: int) -> str:
    from pathlib import Path

    from bench.run import EmbeddedServer, published_python, run_once

    published = published_python()
    ours = Path(sys.executable)
    server = EmbeddedServer()
    database = server.database

    script = ['bench/free_intervals.py', 'measure']
    lines = [
        f'free intervals, size {size} ({SIZES[size]["days"]} days of hourly allocations, 30 % booked), '
        f'{rounds} run(s) per side, medians',
        '',
        '| window | ours calls/s | 1.4.0 calls/s | ratio | statements/call ours | 1.4.0 | intervals |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ]
    for workload, days in WINDOWS.items():
        outcomes: dict[str, list[dict[str, Any]]] = {'ours': [], 'published': []}
        for _ in range(rounds):
            outcomes['ours'].append(run_once(ours, script, workload, database('bench_ours'), size))
            published_dsn = database('bench_published').replace('+psycopg:', '+psycopg2:')
            outcomes['published'].append(run_once(published, script, workload, published_dsn, size))
        rate = {side: sorted(o['operations'] / o['seconds'] for o in runs)[len(runs) // 2]
                for side, runs in outcomes.items()}
        per_call = {side: runs[0]['statements'] / runs[0]['operations'] for side, runs in outcomes.items()}
        found = {side: runs[0]['intervals'] for side, runs in outcomes.items()}
        if found['ours'] != found['published']:
            raise RuntimeError(f'{workload}: ours found {found["ours"]} intervals, '
                               f'1.4.0 {found["published"]}')
        lines.append(
            f'| {days} days | {rate["ours"]:,.1f} | {rate["published"]:,.1f} | '
            f'{rate["ours"] / rate["published"]:.1f}× | {per_call["ours"]:.0f} | '
            f'{per_call["published"]:.0f} | {found["ours"]} |'
        )
    server.admin.dispose()
    return '\n'.join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == 'measure':
        parser = argparse.ArgumentParser()
        parser.add_argument('measure')
        parser.add_argument('workload', choices=sorted(WINDOWS))
        parser.add_argument('--dsn', required=True)
        parser.add_argument('--size', choices=sorted(SIZES), default='quick')
        args = parser.parse_args()
        json.dump(measure(args.workload, args.dsn, SIZES[args.size]), sys.stdout)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--size', choices=sorted(SIZES), default='quick')
    parser.add_argument('--rounds', type=int, default=None, help='runs per side (default: 1 quick, 3 full)')
    args = parser.parse_args()
    print(run(args.size, args.rounds or (1 if args.size == 'quick' else 3)))


if __name__ == '__main__':
    main()
