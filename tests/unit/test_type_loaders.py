"""The column types' fast loaders give exactly what the plain ways give."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from libres.db.models.types.utcdatetime import UTCDateTime, as_aware_utc
from libres.db.models.types.uuid_type import UUID, SoftUUID, to_soft_uuid


@given(st.datetimes())
def test_a_stored_timestamp_loads_as_replace_would_make_it(value: datetime) -> None:
    loaded = as_aware_utc(value)
    expected = value.replace(tzinfo=UTC)
    assert loaded == expected
    assert loaded is not None
    assert loaded.tzinfo is UTC
    assert type(loaded) is datetime
    fields = ('year', 'month', 'day', 'hour', 'minute', 'second', 'microsecond', 'fold')
    assert [getattr(loaded, f) for f in fields] == [getattr(expected, f) for f in fields]


@given(st.datetimes(timezones=st.just(timezone(timedelta(hours=2)))))
def test_an_aware_value_is_relabelled_as_before(value: datetime) -> None:
    assert as_aware_utc(value) == value.replace(tzinfo=UTC)


def test_the_column_type_loads_through_the_fast_loader() -> None:
    processor = UTCDateTime().result_processor(None, None)  # type: ignore[arg-type]
    assert processor(None) is None
    assert processor(datetime(2030, 3, 31, 1, 30)) == datetime(2030, 3, 31, 1, 30, tzinfo=UTC)


@given(st.uuids(), st.booleans())
def test_a_uuid_loads_as_to_soft_uuid_makes_it(value: uuid.UUID, as_text: bool) -> None:
    raw: uuid.UUID | str = str(value) if as_text else value  # psycopg2 gives text
    processor = UUID().result_processor(None, None)  # type: ignore[arg-type]
    loaded = processor(raw)
    assert type(loaded) is SoftUUID
    assert loaded == to_soft_uuid(raw) == value
    assert loaded == str(value)
    assert loaded.int == value.int
    assert hash(loaded) == hash(value)
