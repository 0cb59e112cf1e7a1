"""The libres models, all on one declarative base."""

from __future__ import annotations

from libres.db.models import invariants
from libres.db.models.allocation import Allocation
from libres.db.models.base import ORMBase
from libres.db.models.blocker import ReservationBlocker
from libres.db.models.reservation import Reservation
from libres.db.models.reserved_slot import ReservedSlot

invariants.attach(ORMBase.metadata)

__all__ = ('ORMBase', 'Allocation', 'ReservedSlot', 'Reservation', 'ReservationBlocker')

# The rules table lives beside its logic; importing it here puts it into the
# metadata whenever the models are, so create_all and the migrations agree.
from libres.db.rules import model as _rule_model  # noqa: E402, F401
