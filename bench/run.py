"""Run every workload against our checkout and the published libres 1.4.0.

    python -m bench.run [--size quick|full] [--rounds N] [--only NAME ...]
                        [--states fresh analysed] [--drivers psycopg2 psycopg] [--write FILE]

One embedded PostgreSQL serves both. Each run gets a fresh database and a
fresh process; the implementations alternate (ours, published, ours, ...)
so drift of the machine hits both alike. Every workload runs in both
states (*fresh*: the database as the writes left it, autovacuum at its
defaults; *analysed*: after VACUUM ANALYZE) and with both drivers. The
published libres lives in its own virtual environment (``$LIBRES_140_VENV``,
else ``bench/.venv-libres-1.4.0``), built on first use with both drivers.
Figures are medians over the rounds; a read's first call is shown apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from libres import embedded

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PUBLISHED = 'libres==1.4.0'
PUBLISHED_REQUIREMENTS = [PUBLISHED, 'psycopg2-binary', 'psycopg[binary]']
STATES = ('fresh', 'analysed')
DRIVERS = ('psycopg2', 'psycopg')


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    unit: str  # what one operation is, for the table
    floor: bool = False
    orm_floor: bool = False
    sizes: tuple[str, ...] = ('quick', 'full')


WORKLOADS = [
    Workload('reserve_approve', 'reserve + approve + commit, 1 h at raster 15', 'bookings', floor=True,
             orm_floor=True),
    Workload('quota', 'single tickets on one allocation with quota 200 (60 quick)', 'tickets'),
    Workload('race', '8 processes racing for the same 50 slots (20 quick)', 'bookings', floor=True),
    Workload('search_year', 'search_allocations over a year, 30 % booked (4 weeks quick)', 'calls',
             orm_floor=True),
    Workload('availability_year', 'availability over that year', 'calls'),
    Workload('by_day_year', 'Queries.availability_by_day over that year', 'calls'),
    Workload('bulk_allocate', 'allocate a year hourly in weekly batches (8 weeks quick)', 'allocations'),
    Workload('calendar_week', 'Queries.allocations_with_availability_by_range, a week', 'calls'),
    Workload('calendar_month', 'Queries.allocations_with_availability_by_range, a month', 'calls'),
    Workload('calendar_year', 'Queries.allocations_with_availability_by_range, the year', 'calls'),
    Workload('reserved_slots_month', 'reserved_slots_by_range, a month', 'calls'),
    Workload('search_month', 'search_allocations, a month, 08:00-18:00', 'calls', orm_floor=True),
    Workload('search_weekdays', 'search_allocations, a month, days=mo-fr', 'calls'),
    Workload('search_minspots', 'search_allocations, a week, minspots=1', 'calls'),
    Workload('search_available', 'search_allocations, a month, available_only', 'calls'),
    Workload('availability_50', 'Queries.availability_by_range, 50 resources (1 week each, 4 full)', 'calls'),
    Workload('existing_1k', 'reserve + approve with 1k existing reservations', 'bookings',
             sizes=('full',)),
    Workload('existing_10k', 'reserve + approve with 10k existing reservations', 'bookings'),
    Workload('existing_50k', 'reserve + approve with 50k existing reservations', 'bookings',
             sizes=('full',)),
]


@dataclass
class Runs:
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(float(o[key]) for o in self.outcomes)

    @property
    def rate(self) -> float:
        return statistics.median(o['operations'] / o['seconds'] for o in self.outcomes)

    @property
    def statements_per_operation(self) -> float:
        return statistics.median(o['statements'] / o['operations'] for o in self.outcomes)

    @property
    def first(self) -> float | None:
        firsts = [float(o['first']) for o in self.outcomes if 'first' in o]
        return statistics.median(firsts) if firsts else None

    def percentile(self, share: float) -> float | None:
        latencies = sorted(x for o in self.outcomes for x in o['latencies'])
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))]


# --- environments ----------------------------------------------------------------

def published_python() -> Path:
    venv = Path(os.environ.get('LIBRES_140_VENV') or BENCH / '.venv-libres-1.4.0')
    python = venv / 'bin' / 'python'
    marker = venv / '.installed'
    wanted = '\n'.join(PUBLISHED_REQUIREMENTS)
    if not marker.exists() or marker.read_text() != wanted:
        print(f'building the virtual environment of the published {PUBLISHED} in {venv}', file=sys.stderr)
        if not python.exists():
            subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
        subprocess.run([str(python), '-m', 'pip', 'install', '--quiet', *PUBLISHED_REQUIREMENTS], check=True)
        marker.write_text(wanted)
    return python


def fresh_database(admin: sa.Engine, name: str) -> None:
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE {name}')


class EmbeddedServer:
    """The embedded server the benchmarks run on, and fresh databases on it."""

    def __init__(self) -> None:
        self.dsn = embedded.start()
        self.admin = sa.create_engine(self.dsn.replace('/libres?', '/postgres?'),
                                      isolation_level='AUTOCOMMIT', poolclass=sa.pool.NullPool)

    def database(self, name: str) -> str:
        """A new, empty database called ``name`` (dropped first); its DSN."""
        fresh_database(self.admin, name)
        return self.dsn.replace('/libres?', f'/{name}?')


def run_once(python: Path, script: Sequence[str], workload: str, dsn: str, size: str,
             state: str | None = None) -> dict[str, Any]:
    """One workload in a process of its own; ``state`` for the scripts that
    run in both database states (bench/workloads.py)."""
    completed = subprocess.run(
        [str(python), *script, workload, '--dsn', dsn, '--size', size,
         *(['--state', state] if state else [])],
        cwd=ROOT, capture_output=True, text=True,
    )
    if completed.returncode:
        sys.stderr.write(completed.stderr)
        raise RuntimeError(f'{workload} failed under {python}')
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


# --- the table -------------------------------------------------------------------

def _ms(value: float | None) -> str:
    return '–' if value is None else f'{value * 1000:.1f}'


def _count(value: float) -> str:
    # Bulk work sends a fraction of a statement per allocation.
    return f'{value:.1f}' if value >= 1 else f'{value:.3f}'


def _rate(runs: Runs, workload: Workload) -> str:
    rate = runs.rate
    if workload.unit == 'calls':
        return f'{1 / rate:.3f} s/call'
    return f'{rate:,.1f}/s'


Variant = tuple[str, str]  # (state, driver)
Results = dict[Variant, dict[str, dict[str, Runs]]]


def _first(runs: Runs) -> str:
    return _ms(runs.first)


def table(results: dict[str, dict[str, Runs]]) -> str:
    lines = [
        '| workload | ours | published 1.4.0 | ratio | first call ms ours / published '
        '| p50 / p95 ms ours | p50 / p95 ms published | SQL/op ours | SQL/op published '
        '| floor (plain psycopg) | ours / floor | ORM floor (bare SQLAlchemy) | ours / ORM floor |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for workload in WORKLOADS:
        if workload.name not in results:
            continue
        runs = results[workload.name]
        ours, published = runs['ours'], runs['published']
        floor, orm_floor = runs.get('floor'), runs.get('orm_floor')
        cells = [
            workload.title,
            _rate(ours, workload),
            _rate(published, workload),
            f'{ours.rate / published.rate:.1f}×',
            f'{_first(ours)} / {_first(published)}',
            f'{_ms(ours.percentile(0.5))} / {_ms(ours.percentile(0.95))}',
            f'{_ms(published.percentile(0.5))} / {_ms(published.percentile(0.95))}',
            _count(ours.statements_per_operation),
            _count(published.statements_per_operation),
            _rate(floor, workload) if floor else '–',
            f'{ours.rate / floor.rate:.2f}' if floor else '–',
            f'{_rate(orm_floor, workload)}, first call {_first(orm_floor)} ms' if orm_floor else '–',
            f'{ours.rate / orm_floor.rate:.2f}' if orm_floor else '–',
        ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def summary(results: Results) -> str:
    """Ratios to 1.4.0 side by side; ours' first call against its median."""
    variants = list(results)
    lines = [
        '| workload | ' + ' | '.join(f'ratio {state}, {driver}' for state, driver in variants)
        + ' | ours first call / p50, '
        + ', '.join(f'{state[0]}/{driver}' for state, driver in variants) + ' |',
        '|---|' + '---|' * (len(variants) + 1),
    ]
    for workload in WORKLOADS:
        if not all(workload.name in results[v] for v in variants):
            continue
        ratios = []
        firsts = []
        for variant in variants:
            runs = results[variant][workload.name]
            ratios.append(f'{runs["ours"].rate / runs["published"].rate:.1f}×')
            first, median = runs['ours'].first, runs['ours'].percentile(0.5)
            firsts.append(f'{first / median:.1f}' if first and median else '–')
        lines.append(f'| {workload.name} | ' + ' | '.join(ratios) + ' | ' + ', '.join(firsts) + ' |')
    return '\n'.join(lines)


def notes(results: dict[str, dict[str, Runs]], state: str) -> str:
    lines = []
    if 'quota' in results:
        for side in ('ours', 'published'):
            runs = results['quota'][side]
            lines.append(f'- quota: last 10 % of tickets / first 10 %, mean latency, {side}: '
                         f'{runs.median("last_vs_first"):.2f}')
    if 'race' in results:
        for side in ('ours', 'published', 'floor'):
            runs = results['race'][side]
            lines.append(f'- race, {side}: {runs.median("conflicts"):.0f} conflicts retried, '
                         f'{runs.median("slots_booked"):.0f} slots booked, '
                         f'{max(o["double_bookings"] for o in runs.outcomes)} double bookings')
    existing = [name for name in ('existing_1k', 'existing_10k', 'existing_50k') if name in results]
    if existing:
        rates = ', '.join(f'{name[9:]}: {results[name]["ours"].rate:.1f}/s' for name in existing)
        lines.append(f'- ours, reserve + approve by existing reservations: {rates}')
    if state == 'fresh':
        measured = [o for runs in results.values() for side in ('ours', 'published')
                    for o in runs[side].outcomes if 'analysed' in o]
        touched = sum(1 for o in measured if o['analysed'])
        lines.append(f'- autovacuum had analysed the tables by the end of {touched} of {len(measured)} '
                     'fresh runs (PostgreSQL defaults; the rest ran without any statistics)')
    return '\n'.join(lines)


def machine() -> str:
    cpus = os.cpu_count()
    memory = ''
    meminfo = Path('/proc/meminfo')
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f', {kib / 1024 / 1024:.0f} GiB'
    python = platform.python_version()
    return f'{platform.system()} {platform.machine()}, {cpus} cores{memory}, Python {python}'


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--size', choices=['quick', 'full'], default='quick')
    parser.add_argument('--rounds', type=int, default=None, help='runs per side (default: 1 quick, 3 full)')
    parser.add_argument('--only', nargs='*', default=None, help='workload names')
    parser.add_argument('--states', nargs='*', choices=STATES, default=list(STATES))
    parser.add_argument('--drivers', nargs='*', choices=DRIVERS, default=list(DRIVERS))
    parser.add_argument('--write', type=Path, default=None, help='write the report to this file')
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.size == 'quick' else 3)

    published = published_python()
    ours = Path(sys.executable)
    server = EmbeddedServer()
    database = server.database
    with server.admin.connect() as connection:
        server_version = connection.exec_driver_sql('SHOW server_version').scalar()

    results: Results = {(state, driver): {} for state in args.states for driver in args.drivers}
    began = time.perf_counter()
    for workload in WORKLOADS:
        if (args.only and workload.name not in args.only) or args.size not in workload.sizes:
            continue
        for state in args.states:
            # The floor is plain psycopg: one series per state serves both drivers.
            floor = Runs() if workload.floor else None
            for driver in args.drivers:
                runs = results[state, driver][workload.name] = {'ours': Runs(), 'published': Runs()}
                if floor is not None:
                    runs['floor'] = floor
                if workload.orm_floor:
                    runs['orm_floor'] = Runs()
            for _ in range(rounds):
                for driver in args.drivers:
                    runs = results[state, driver][workload.name]
                    sides = [('ours', ours, ['bench/workloads.py']),
                             ('published', published, ['bench/workloads.py'])]
                    if workload.orm_floor:
                        sides.append(('orm_floor', ours, ['-m', 'bench.orm_floor']))
                    for side, python, script in sides:
                        target = database(f'bench_{side}').replace('+psycopg:', f'+{driver}:')
                        runs[side].outcomes.append(
                            run_once(python, script, workload.name, target, args.size, state))
                if floor is not None:
                    floor.outcomes.append(run_once(ours, ['-m', 'bench.floor'], workload.name,
                                                   database('bench_floor'), args.size, state))
            for driver in args.drivers:
                runs = results[state, driver][workload.name]
                print(f'{workload.name} ({state}, {driver}): ours {runs["ours"].rate:,.2f}/s, '
                      f'published {runs["published"].rate:,.2f}/s', file=sys.stderr)

    sections = [
        f'Size: {args.size}, {rounds} run(s) per side, interleaved; medians.',
        f'Machine: {machine()}; PostgreSQL {server_version} (embedded).',
        f'Run took {time.perf_counter() - began:.0f} s.',
        '',
        '*fresh*: the database exactly as the writes left it (no VACUUM or ANALYZE by the benchmark,'
        ' autovacuum at PostgreSQL\'s defaults); *analysed*: VACUUM ANALYZE before measuring.'
        ' Reads: the first call is reported apart and left out of the median and p95.',
        '',
        '## Summary',
        '',
        summary(results),
    ]
    for (state, driver), by_workload in results.items():
        sections += ['', f'## {state}, {driver}', '', table(by_workload), '', notes(by_workload, state)]
    report = '\n'.join(sections)
    print(report)
    if args.write:
        args.write.write_text(
            '# Benchmark results\n\nRegenerated by `make bench-full`; do not edit by hand.\n\n'
            + report + '\n'
        )


if __name__ == '__main__':
    main()
