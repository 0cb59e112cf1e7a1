from __future__ import annotations

import pytest

from libres import demo


def test_demo_tells_the_three_stories(clean_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):  # a second run starts from a clean slate too
        assert demo.main(['--dsn', clean_database]) == 0
        out = capsys.readouterr().out
        assert '✓ alice@example.org books 09:00–10:30' in out
        assert '✗ bob@example.org books 10:00–11:00: refused, AlreadyReservedError' in out
        assert 'Waiting list: 3 applications' in out
        assert '✗ staff approve finn@example.org: refused' in out
        assert 'Places left: 0, waiting list: 0' in out
        assert '✗ hugo@example.org buys 3: refused, QuotaOverLimit' in out
        assert 'Tickets left: 1 of 5' in out
        assert '1 session removed' in out
        assert '✓ facility management blocks 12:00–13:00 (cleaning)' in out
        assert '✗ dave@example.org books 12:30–13:30: refused' in out
        assert '✓ alice@example.org moves to 15:00–16:30 (same id and token)' in out
        assert '✗ hana@example.org enrols for the whole course: refused' in out
        assert '✓ the hall adds two chairs: quota 5 → 7' in out
        assert '✗ the hall tries to go back to 5 seats: refused, AffectedReservationError' in out
