"""`libres rules extend`, invoked through the `libres` command."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from click.testing import CliRunner

from libres.cli import main
from libres.context.core import Context
from libres.context.registry import create_default_registry
from libres.db.scheduler import Scheduler


def test_rules_extend_runs_every_resource_once_and_is_idempotent(context: Context, dsn: str) -> None:
    other_context = create_default_registry().register_context('elsewhere')
    other_context.set_setting('dsn', dsn)
    other_context.set_service('session_provider', lambda _: context.get_service('session_provider'))
    rooms = [Scheduler(context, 'room', 'Europe/Zurich'), Scheduler(context, 'hall', 'UTC'),
             Scheduler(other_context, 'room', 'America/New_York')]
    for scheduler in rooms:
        scheduler.add_rule('FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR', datetime(2031, 3, 3, 8),
                           datetime(2031, 3, 3, 18), horizon=timedelta(days=7))
    stopped = Scheduler(context, 'closed', 'Europe/Zurich')
    stopped.stop_rule(stopped.add_rule('FREQ=DAILY', datetime(2031, 3, 3, 8), datetime(2031, 3, 3, 9),
                                       horizon=timedelta(days=1)).id)
    rooms[0].commit()

    runner = CliRunner()
    result = runner.invoke(main, ['rules', 'extend', '--until', '2031-03-31', '--dsn', dsn])
    assert result.exit_code == 0, result.output
    # 21 weekdays in March from the 3rd, 5 made already: 16 more for each of 3 resources
    assert result.output.strip().endswith('48 allocations made for 3 resources')
    rooms[0].rollback()
    assert [s.managed_allocations().count() for s in rooms] == [21, 21, 21]
    assert stopped.managed_allocations().count() == 1

    again = runner.invoke(main, ['rules', 'extend', '--until', '2031-03-31', '--dsn', dsn])
    assert again.exit_code == 0 and again.output.strip().endswith('0 allocations made for 3 resources')


def test_rules_extend_reports_a_resource_it_cannot_extend(context: Context, dsn: str) -> None:
    scheduler = Scheduler(context, 'room', 'Europe/Zurich')
    scheduler.add_rule('FREQ=DAILY', datetime(2031, 3, 3, 8), datetime(2031, 3, 3, 9),
                       horizon=timedelta(days=1))
    scheduler.commit()
    result = CliRunner().invoke(main, ['rules', 'extend', '--until', '2045-01-01', '--dsn', dsn])
    assert result.exit_code == 1
    assert 'ten years' in result.output and '1 failed' in result.output
    scheduler.rollback()
    assert scheduler.managed_allocations().count() == 1


def test_rules_extend_needs_a_database_named(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv('LIBRES_DSN', raising=False)
    result = CliRunner().invoke(main, ['rules', 'extend'])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[0].startswith('Error: rules extend needs a database') and len(lines) <= 3


def test_rules_extend_answers_in_json(context: Context, dsn: str) -> None:
    scheduler = Scheduler(context, 'room', 'Europe/Zurich')
    scheduler.add_rule('FREQ=DAILY', datetime(2031, 3, 3, 8), datetime(2031, 3, 3, 9),
                       horizon=timedelta(days=1))
    scheduler.commit()
    result = CliRunner().invoke(main, ['rules', 'extend', '--until', '2031-03-05', '--dsn', dsn, '--json'])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {'created': 2, 'resources': 1, 'failed': []}
