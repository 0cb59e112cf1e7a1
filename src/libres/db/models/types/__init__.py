"""Custom column types of the libres tables."""

from __future__ import annotations

from libres.db.models.types.json_type import JSON
from libres.db.models.types.utcdatetime import UTCDateTime
from libres.db.models.types.uuid_type import UUID

__all__ = ('JSON', 'UUID', 'UTCDateTime')
