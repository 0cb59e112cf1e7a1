"""A calendar web app on libres (``libres[web]``): Starlette, Jinja2, htmx and
EventCalendar, vendored. ``seed(context, start_day)`` fills the three use
cases of the documentation; ``create_app(context, start_day)`` is the ASGI
app; ``python -m libres.web`` (or ``libres demo --web``) serves both."""

from __future__ import annotations

from libres.web.seed import seed

__all__ = ('seed',)
