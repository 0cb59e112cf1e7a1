"""``libres demo``: the use cases of the documentation, printed or served.

    libres demo [--today YYYY-MM-DD] [--dsn URL]
    libres demo --web [--port 8000] [--today YYYY-MM-DD] [--dsn URL]

Both run on the embedded server unless ``--dsn`` (or ``$LIBRES_DSN``) names
another: a demonstration is the one place where starting it unasked is the
point.
"""

from __future__ import annotations

import os
from datetime import datetime

import click


@click.command()
@click.option('--web', is_flag=True, help='Serve the calendar web app on 127.0.0.1 until stopped.')
@click.option('--port', default=8000, show_default=True, help='With --web: the port to serve on.')
@click.option('--today', type=click.DateTime(formats=['%Y-%m-%d']), default=None,
              help='The day the demo takes as today (default: the real one).')
@click.option('--dsn', metavar='URL', default=None,
              help='PostgreSQL URL (default: $LIBRES_DSN, else the embedded server).')
def demo(web: bool, port: int, today: datetime | None, dsn: str | None) -> None:
    """Run the documentation's use cases on a real PostgreSQL: printed as
    they happen, or (--web) as a calendar app in the browser."""
    dsn = dsn or os.environ.get('LIBRES_DSN') or None
    if web:
        from libres.web.cli import web_command

        assert web_command.callback is not None
        web_command.callback(port=port, dsn=dsn, day=today.date().isoformat() if today else None)
        return
    from libres import demo as console_demo

    argv = [*(['--dsn', dsn] if dsn else []), *(['--today', today.date().isoformat()] if today else [])]
    click.get_current_context().exit(console_demo.main(argv))
