"""``python -m libres.cli``: the same as ``libres``."""

from __future__ import annotations

from libres.cli.app import main

main(prog_name="libres")
