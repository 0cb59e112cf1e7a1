"""``python -m libres.web [--port 8000] [--dsn ...]``."""

from __future__ import annotations

from libres.web.cli import web_command

if __name__ == '__main__':
    web_command()
