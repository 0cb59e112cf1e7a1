"""``libres demo --web``: the calendar web app on the embedded database.

The command object is ``web_command``; the ``libres`` CLI registers it, and
``python -m libres.web`` runs it on its own.
"""

from __future__ import annotations

import os
from datetime import date

import click

from libres.context.core import Context


def serve_context(dsn: str | None) -> Context:
    """A context named ``libres-web`` on ``dsn`` (default ``$LIBRES_DSN``, then
    the embedded server), its schema created or migrated."""
    import libres
    from libres.web.seed import scheduler_for

    if not dsn:
        dsn = os.environ.get('LIBRES_DSN')
    if not dsn:
        from libres import embedded

        dsn = embedded.start()
    name = 'libres-web'
    context = libres.registry.get_context(name) if libres.registry.is_existing_context(name) \
        else libres.registry.register_context(name)
    context.set_setting('dsn', dsn)
    scheduler_for(context, 'meeting-room').setup_database()
    return context


@click.command('web')
@click.option('--port', default=8000, show_default=True, help='Port on 127.0.0.1 to serve on.')
@click.option('--dsn', default=None, help='PostgreSQL URL (default: $LIBRES_DSN, then the embedded server).')
@click.option('--day', 'day', default=None, help='First seeded day, YYYY-MM-DD (default: today).')
def web_command(port: int, dsn: str | None, day: str | None) -> None:
    """Seed the three use cases and serve the calendar app until stopped."""
    import uvicorn

    from libres.web.app import create_app
    from libres.web.seed import seed

    start_day = date.fromisoformat(day) if day else date.today()
    context = serve_context(dsn)
    seed(context, start_day)
    app = create_app(context, start_day)
    click.echo(f'libres calendar demo: http://127.0.0.1:{port}/  (Ctrl+C stops it)')
    uvicorn.run(app, host='127.0.0.1', port=port, log_level='warning')
