"""Database errors of libres' own making, told as library errors.

PostgreSQL guards the invariants of the schema (the primary key of
``reserved_slots``, the exclusion constraint against overlapping
allocations, CHECK constraints, the slot triggers of
:mod:`libres.db.models.invariants`). When one of them refuses a write, the
caller gets a :class:`~libres.modules.errors.LibresError` instead of the raw
``IntegrityError``: :class:`~libres.modules.errors.ReservedSlotTaken` (an
``AlreadyReservedError``), :class:`~libres.modules.errors.AllocationsOverlap`
(an ``OverlappingAllocationError``) or
:class:`~libres.modules.errors.ConstraintViolation`. Each is *also* an
``IntegrityError`` carrying the original's ``orig``, so ``except
IntegrityError`` and SQLSTATE checks (``libres.retry``) keep working; the
database error is the ``__cause__``.

A database without the libres tables gives
:class:`~libres.modules.errors.SchemaMissing` (what to run), a naive
datetime given to a query that needs an aware one
:class:`~libres.modules.errors.NaiveDatetimeRefused`, data the JSON
serializer cannot write :class:`~libres.modules.errors.DataNotSerializable`.

Where: on every statement of an engine with :func:`install` (the default
session provider installs it, so flushes and commits are covered), and in
the scheduler's ``commit()`` through :func:`translated` (for providers of
the host application's own making).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.exc import DBAPIError, StatementError

from libres.modules import errors

TABLES = frozenset({'allocations', 'reserved_slots', 'reservations', 'reservation_blockers'})
SLOT_KEY = 'reserved_slots_pkey'
NO_OVERLAP = 'allocations_no_overlap'
CONSTRAINTS = frozenset({
    SLOT_KEY, NO_OVERLAP, 'resource_start_ix', 'reserved_slot_inside_allocation', 'reserved_slot_has_owner',
    'allocations_start_before_end', 'allocations_quota_positive', 'allocations_quota_limit_not_negative',
    'allocations_valid_raster', 'reservations_quota_positive', 'reservations_start_before_end',
    'reservations_span_matches_target', 'reservation_blockers_start_before_end',
    'reservation_blockers_span_matches_target', 'reserved_slots_start_before_end',
    'reserved_slots_allocation_id_fkey',
})
UNDEFINED_TABLE, UNDEFINED_COLUMN = '42P01', '42703'
_WHAT_TO_RUN = 'run scheduler.setup_database() (a new database) or `libres db upgrade` (an older schema)'
_SLOT_KEY_DETAIL = re.compile(r'\(resource, start\)=\(([^,]+), ([^)]+)\)')


def _diagnostics(error: DBAPIError) -> tuple[str | None, str | None, str | None, str]:
    """SQLSTATE, constraint, table and the primary message (psycopg 3 and 2)."""
    orig = error.orig
    sqlstate = getattr(orig, 'sqlstate', None) or getattr(orig, 'pgcode', None)
    diag = getattr(orig, 'diag', None)
    constraint = getattr(diag, 'constraint_name', None)
    table = getattr(diag, 'table_name', None)
    message = getattr(diag, 'message_primary', None) or str(orig).split('\n')[0]
    return sqlstate, constraint, table, message


def _detail(error: DBAPIError) -> str:
    return getattr(getattr(error.orig, 'diag', None), 'message_detail', None) or ''


def _slot_taken(error: DBAPIError) -> errors.LibresError:
    found = _SLOT_KEY_DETAIL.search(_detail(error))
    where = f' (resource {found[1]}, {found[2]} UTC)' if found else ''
    return errors.ReservedSlotTaken(
        f'another booking took the same reserved slot{where} first ({SLOT_KEY}): '
        f'roll back and run the unit of work again (libres.retry.run_with_retries does), '
        f'it then sees the other booking', error, SLOT_KEY,
    )


def _integrity(error: DBAPIError, constraint: str | None, table: str | None, message: str) -> Any:
    if constraint == SLOT_KEY:
        return _slot_taken(error)
    if constraint == NO_OVERLAP:
        return errors.AllocationsOverlap(
            f'two allocations of one resource would overlap ({NO_OVERLAP}): {_detail(error) or message}; '
            f'choose other dates or move the existing allocation first', error, constraint,
        )
    if constraint in CONSTRAINTS or table in TABLES:
        name = constraint or table
        return errors.ConstraintViolation(
            f'the database refused the write ({name}): {message}. libres checks its input '
            f'before writing; rows written past the library (or a bug) break this rule', error, constraint,
        )
    return None


def _our_schema_missing(error: DBAPIError, sqlstate: str | None, message: str) -> Any:
    if sqlstate not in (UNDEFINED_TABLE, UNDEFINED_COLUMN):
        return None
    if not any(table in message or table in str(error.statement or '') for table in TABLES):
        return None
    what = 'tables' if sqlstate == UNDEFINED_TABLE else 'columns'
    return errors.SchemaMissing(f'the database lacks libres {what} ({message}): {_WHAT_TO_RUN}', error)


def translate(error: BaseException) -> errors.LibresError | None:
    """The library error for a database error of libres' concern, else None."""
    if isinstance(error, errors.LibresError):
        return None
    if isinstance(error, DBAPIError):
        sqlstate, constraint, table, message = _diagnostics(error)
        if sqlstate is not None and sqlstate.startswith('23'):
            return _integrity(error, constraint, table, message)  # type: ignore[no-any-return]
        return _our_schema_missing(error, sqlstate, message)  # type: ignore[no-any-return]
    if isinstance(error, StatementError) and isinstance(error.orig, errors.NotTimezoneAware):
        return errors.NaiveDatetimeRefused(
            f'{error.orig}: Queries methods need timezone-aware datetimes (the scheduler reads '
            f'naive ones in its zone)', error,
        )
    cause = error.orig if isinstance(error, StatementError) else error
    if isinstance(cause, TypeError) and 'JSON serializable' in str(cause):
        return errors.DataNotSerializable(
            f'{cause}: store JSON values only, or give the engine a json_serializer that '
            f'handles them (SessionProvider(engine_config=...))'
        )
    return None


def _on_error(context: ExceptionContext) -> None:
    raised = context.sqlalchemy_exception or context.original_exception
    if context.is_disconnect:
        return
    library_error = translate(raised)
    if library_error is not None:
        raise library_error from raised


def install(engine: Engine) -> None:
    """Translate the errors of every statement of ``engine`` (once per engine)."""
    if not event.contains(engine, 'handle_error', _on_error):
        event.listen(engine, 'handle_error', _on_error)


@contextmanager
def translated() -> Iterator[None]:
    """Raise the library error for a database error of libres' concern."""
    try:
        yield
    except Exception as error:
        library_error = translate(error)
        if library_error is None:
            raise
        raise library_error from error
