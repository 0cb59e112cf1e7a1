"""A scheduler of custom model classes type-checks without an ignore.

The scheduler is generic over its allocation and reservation classes
(``allocation_cls``, ``reservation_cls``): what its methods return is
typed as those classes. mypy (strict) checks a small host module here.
"""

from __future__ import annotations

from pathlib import Path

from mypy import api

HOST_MODULE = '''
from __future__ import annotations

from datetime import datetime
from typing import assert_type

import libres
from libres.db.models import Allocation, Reservation
from libres.db.scheduler import Scheduler


class Room(Allocation):
    __mapper_args__ = {'polymorphic_identity': 'room'}

    def seats(self) -> int:
        return self.quota


class Booking(Reservation):
    __mapper_args__ = {'polymorphic_identity': 'booking'}


def use(context: libres.context.core.Context) -> None:
    rooms = libres.new_scheduler(
        context, 'room', 'Europe/Zurich', allocation_cls=Room, reservation_cls=Booking
    )
    assert_type(rooms, Scheduler[Room, Booking])
    span = (datetime(2030, 1, 1, 8), datetime(2030, 1, 1, 9))
    allocations = rooms.allocate(span)
    assert_type(allocations, list[Room])
    assert_type(rooms.allocation_by_id(1).seats(), int)
    assert_type(rooms.managed_allocations().first(), Room | None)
    assert_type(rooms.search_allocations(*span), list[Room])
    token = rooms.reserve('guest@example.org', span)
    assert_type(rooms.reservations_by_token(token).one(), Booking)

    plain = libres.new_scheduler(context, 'plain', 'UTC')
    assert_type(plain, Scheduler[Allocation, Reservation])
    assert_type(plain.allocation_by_id(1), Allocation)
'''


def test_a_scheduler_of_custom_classes_is_typed_by_them(tmp_path: Path) -> None:
    module = tmp_path / 'host_app.py'
    module.write_text(HOST_MODULE)
    out, err, status = api.run([
        '--strict', '--warn-unused-ignores', '--no-incremental',
        '--cache-dir', str(tmp_path / 'cache'), str(module),
    ])
    assert status == 0, out + err
