"""The collector pause around large loads postpones collection, never
leaves it off, and leaves a collector the application disabled alone."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from libres.db.gc_pause import collector_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    if was_enabled:
        gc.enable()


def test_pause_turns_the_collector_off_and_back_on() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_end_with_the_outer_one() -> None:
    gc.enable()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_inside_still_ends_the_pause() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError('load failed')
    assert gc.isenabled()


def test_a_collector_disabled_by_the_application_stays_disabled() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pauses_in_threads_end_with_the_last() -> None:
    gc.enable()
    inside = threading.Event()
    leave = threading.Event()

    def other_load() -> None:
        with collector_paused():
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=other_load)
    with collector_paused():
        thread.start()
        assert inside.wait(5)
    # This thread's pause ended, the other thread's has not.
    assert not gc.isenabled()
    leave.set()
    thread.join(5)
    assert gc.isenabled()


def test_a_pause_not_enabled_leaves_the_collector_running() -> None:
    assert gc.isenabled()
    with collector_paused(enabled=False):
        assert gc.isenabled()
    assert gc.isenabled()
