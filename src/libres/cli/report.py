"""The integrity report for people (rich tables) and for programs (JSON).

Generic over the kinds of findings: whatever ``integrity.check`` returns is
shown, its typed columns (``*_id``, ``start``/``end``, ``timezone``, the
rest) in the columns Record, When and Details. A kind this module has no
wording for is still shown, with the description ``integrity.KINDS`` has.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console
from rich.table import Table
from rich.text import Text

from libres import integrity

# (one, several) of each kind, for counts that read right.
NOUNS = {
    'orphaned_slots': ('reserved slot without an owner', 'reserved slots without an owner'),
    'missing_slots': ('approved reservation without reserved slots',
                      'approved reservations without reserved slots'),
    'slots_outside_allocation': ('reserved slot outside its allocation',
                                 'reserved slots outside their allocation'),
    'overlapping_allocations': ('pair of overlapping allocations', 'pairs of overlapping allocations'),
    'mirrors_without_master': ('quota mirror without its master allocation',
                               'quota mirrors without their master allocation'),
    'expired_cart_reservations': ('pending reservation of an expired shopping cart',
                                  'pending reservations of expired shopping carts'),
}
SPAN_KEYS = ('start', 'end', 'other_start', 'other_end', 'timezone')
ROWS_SHOWN = 10


def plural(number: int, one: str, several: str | None = None) -> str:
    return f'{number} {one if number == 1 else several or one + "s"}'


def counted(kind: str, number: int) -> str:
    """``1 reserved slot without an owner``, ``2 reserved slots …``."""
    if kind in NOUNS:
        return plural(number, *NOUNS[kind])
    return f'{plural(number, "finding")}: {integrity.KINDS.get(kind, kind)}'


def _kinds_in_order(kinds: Iterable[str]) -> list[str]:
    order = list(integrity.KINDS)
    return sorted(kinds, key=lambda kind: (order.index(kind) if kind in order else len(order), kind))


def _rows(report: integrity.Report, resource: str, kind: str) -> list[tuple[str, dict[str, Any]]]:
    items = report.findings.get(resource, {}).get(kind, [])
    details = report.details.get(resource, {}).get(kind, [])
    rows = [(item, details[n] if n < len(details) else {}) for n, item in enumerate(items)]

    def by_time(pair: tuple[str, dict[str, Any]]) -> tuple[bool, str]:
        start = pair[1].get('start')
        return start is None, start.isoformat() if isinstance(start, datetime) else pair[0]

    return sorted(rows, key=by_time)


def typed_item(item: str, row: dict[str, Any]) -> Any:
    """The item for JSON: its typed columns when the check gave them."""
    return row if row else item


def as_json(report: integrity.Report, names: dict[str, str], database: str) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for kinds in report.findings.values():
        for kind, items in kinds.items():
            counts[kind] = counts.get(kind, 0) + len(items)
    return {
        'database': database,
        'clean': report.clean,
        'counts': counts,
        'findings': {
            resource: {kind: [typed_item(item, row) for item, row in _rows(report, resource, kind)]
                       for kind in _kinds_in_order(kinds)}
            for resource, kinds in sorted(report.findings.items())
        },
        'names': {resource: names.get(resource) for resource in sorted(report.findings)},
        'descriptions': {kind: integrity.KINDS.get(kind, kind) for kind in _kinds_in_order(counts)},
        'repairable': [kind for kind in _kinds_in_order(counts) if kind in integrity.REPAIRABLE],
        'repaired': report.repaired,
        'not_repaired': report.not_repaired,
    }


def _zone(name: str | None) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def span(start: datetime | None, end: datetime | None, zone: tzinfo) -> str:
    if start is None:
        return ''
    local_start = (start if start.tzinfo else start.replace(tzinfo=UTC)).astimezone(zone)
    if end is None:
        return f'{local_start:%Y-%m-%d %H:%M}'
    if end.microsecond == 999999:  # ends are stored inclusive, a microsecond early
        end += timedelta(microseconds=1)
    local_end = (end if end.tzinfo else end.replace(tzinfo=UTC)).astimezone(zone)
    if local_end.date() == local_start.date():
        return f'{local_start:%Y-%m-%d %H:%M}–{local_end:%H:%M}'
    return f'{local_start:%Y-%m-%d %H:%M} – {local_end:%Y-%m-%d %H:%M}'


def when(row: dict[str, Any], display_zone: str | None) -> str:
    """The row's times in its own zone (or ``display_zone``), labelled."""
    zone = _zone(display_zone or row.get('timezone'))
    spans = [span(row.get('start'), row.get('end'), zone)]
    if row.get('other_start') is not None:
        spans.append(span(row.get('other_start'), row.get('other_end'), zone))
    shown = ' and '.join(text for text in spans if text)
    return f'{shown} {getattr(zone, "key", "UTC")}' if shown else ''


def record(item: str, row: dict[str, Any]) -> str:
    """``reservation 12``, ``allocations 3 and 4``: the integer ids of the row."""
    labelled: dict[str, list[str]] = {}
    for key, value in row.items():
        if not key.endswith('_id') or not isinstance(value, int):
            continue
        label = row.get('source_type') if key == 'source_id' else key.removeprefix('other_')[:-3]
        labelled.setdefault(str(label).replace('_', ' '), []).append(str(value))
    if not labelled:
        return item
    return ', '.join(f'{label}s {" and ".join(ids)}' if len(ids) > 1 else f'{label} {ids[0]}'
                     for label, ids in labelled.items())


def details(row: dict[str, Any], resource: str) -> str:
    shown = []
    for key, value in row.items():
        if key in SPAN_KEYS or key == 'source_type' or value is None or str(value) == resource:
            continue
        if key.endswith('_id') and isinstance(value, int):
            continue
        shown.append(str(value) if key == 'email' else f'{key.removesuffix("_id").replace("_", " ")} {value}')
    return ', '.join(shown)


def resource_title(resource: str, names: dict[str, str]) -> Text:
    if resource in names:
        return Text.assemble((names[resource], 'bold'), f'  (resource {resource})')
    return Text.assemble((f'resource {resource}', 'bold'), '  (name unknown: --name CONTEXT/NAME names it)')


def _table(report: integrity.Report, resource: str, display_zone: str | None, show_all: bool) -> Table:
    table = Table(show_lines=False, expand=False)
    table.add_column('Problem', no_wrap=True)
    for column in ('Record', 'When', 'Details'):
        table.add_column(column, overflow='fold')
    kinds = _kinds_in_order(report.findings[resource])
    for position, kind in enumerate(kinds):
        rows = _rows(report, resource, kind)
        shown = rows if show_all else rows[:ROWS_SHOWN]
        for n, (item, row) in enumerate(shown):
            table.add_row(counted(kind, len(rows)) if n == 0 else '', record(item, row),
                          when(row, display_zone), details(row, resource))
        if len(shown) < len(rows):
            table.add_row('', f'… and {len(rows) - len(shown)} more (--all shows them)', '', '')
        if position < len(kinds) - 1:
            table.add_section()
    return table


def _totals(report: integrity.Report) -> dict[str, int]:
    totals: dict[str, int] = {}
    for kinds in report.findings.values():
        for kind, items in kinds.items():
            totals[kind] = totals.get(kind, 0) + len(items)
    return totals


def _kind_lines(report: integrity.Report) -> set[str]:
    # The lines repair() writes for kinds it leaves alone; shown here as findings.
    return {f'{report.count(kind)} {description} (needs a decision by a person)'
            for kind, description in integrity.KINDS.items()}


def console() -> Console:
    """Standard output; wide when it is not a terminal (a log, a pipe) and
    $COLUMNS says nothing, so rows stay on one line."""
    terminal = Console().is_terminal
    return Console(width=None if terminal or os.environ.get('COLUMNS') else 160)


def render(console: Console, report: integrity.Report, names: dict[str, str], *,
           display_zone: str | None = None, show_all: bool = False, repairing: bool = False) -> None:
    """Print the report: a table per resource, then what it adds up to."""
    if report.clean and not report.repaired and not report.not_repaired:
        console.print('No problems found.')
        return
    for resource in sorted(report.findings, key=lambda r: (r not in names, names.get(r, r))):
        console.print(resource_title(resource, names), soft_wrap=True)
        console.print(_table(report, resource, display_zone, show_all))
    if report.repaired:
        repaired = ', '.join(counted(kind, number) for kind, number in report.repaired.items())
        console.print(Text(f'Repaired: {repaired}.'), soft_wrap=True)
    for line in report.not_repaired:
        if line not in _kind_lines(report):
            console.print(Text(f'Not repaired: {line}'), soft_wrap=True)
    totals = _totals(report)
    if not totals:
        console.print('No problems left.')
        return
    found = ', '.join(counted(kind, totals[kind]) for kind in _kinds_in_order(totals))
    left = 'Left' if repairing else 'Found'
    console.print(Text(f'{left} in {plural(len(report.findings), "resource")}: {found}.'), soft_wrap=True)
    fixable = [kind for kind in _kinds_in_order(totals) if kind in integrity.REPAIRABLE]
    if fixable and not repairing:
        console.print(Text(
            f'Hint: libres check --repair fixes what needs no guessing '
            f'({", ".join(counted(kind, totals[kind]) for kind in fixable)}); the rest needs a person.'),
            soft_wrap=True)
    elif not repairing:
        console.print(Text('These need a decision by a person: --repair does not guess.'), soft_wrap=True)
    else:
        console.print(Text('What is left needs a decision by a person.'), soft_wrap=True)


__all__ = ('as_json', 'counted', 'plural', 'render')
