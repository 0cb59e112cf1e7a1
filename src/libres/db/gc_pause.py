"""Pause Python's cyclic garbage collector while many ORM objects are built.

Loading thousands of allocations allocates tens of thousands of tracked
objects (instances, their states, weak references, mutable ``data``
wrappers). Each allocation burst triggers collections that walk the whole
heap, SQLAlchemy's own objects included: measured on a year of hourly
allocations, half of ``search_allocations`` was spent in the collector.
Nothing built during the load is garbage yet, so walking it is wasted.

The pause only postpones collection, it never skips it: the collector
runs again as soon as the last overlapping pause ends. A collector that
was already disabled when the first pause began stays disabled.

It affects the whole process, every thread of the host application
included, so the library pauses only when the context asks for it: the
setting ``pause_gc_during_loads`` (default off).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from libres.context.core import Context

_lock = threading.Lock()
_depth = 0
_reenable = False


@contextmanager
def collector_paused(enabled: bool = True) -> Iterator[None]:
    """Run the block with the collector off (only if ``enabled``);
    overlapping pauses (threads, nesting) share one pause that ends with
    the last of them."""
    global _depth, _reenable
    if not enabled:
        yield
        return
    with _lock:
        if _depth == 0:
            _reenable = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _reenable:
                gc.enable()


def collector_paused_for(context: Context) -> AbstractContextManager[None]:
    """Around loads of many objects: the collector paused only if the
    context's ``pause_gc_during_loads`` setting asks for it."""
    return collector_paused(context.get_setting('pause_gc_during_loads') is True)
