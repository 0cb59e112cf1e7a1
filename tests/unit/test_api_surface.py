"""Every public name of the spec at its import path, with its parameters."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

from libres.context.core import missing as core_missing

# The public modules of libres 1.4.0 and the names each exports (its overview, section 3).
PACKAGE_MAP = {
    'libres': ['registry', 'new_scheduler', '__version__'],
    'libres.context.registry': ['Registry', 'create_default_registry'],
    'libres.context.core': ['Context', 'ContextServicesMixin', 'StoppableService', 'missing', 'required'],
    'libres.context.session': ['SessionProvider', 'SERIALIZABLE'],
    'libres.context.settings': ['set_default_settings'],
    'libres.context.exposure': ['Exposure'],
    'libres.db': ['new_scheduler'],
    'libres.db.scheduler': ['Scheduler', 'DAYS_MAP', 'missing'],
    'libres.db.queries': ['Queries'],
    'libres.db.models': ['ORMBase', 'Allocation', 'ReservedSlot', 'Reservation', 'ReservationBlocker'],
    'libres.db.models.allocation': ['Allocation'],
    'libres.db.models.reserved_slot': ['ReservedSlot'],
    'libres.db.models.reservation': ['Reservation', 'Timespan'],
    'libres.db.models.blocker': ['ReservationBlocker'],
    'libres.db.models.timespan': ['Timespan'],
    'libres.db.models.timestamp': ['TimestampMixin'],
    'libres.db.models.other': ['OtherModels'],
    'libres.db.models.base': ['ORMBase'],
    'libres.db.models.types': ['UUID', 'UTCDateTime', 'JSON'],
    'libres.db.models.types.uuid_type': ['SoftUUID', 'UUID'],
    'libres.db.models.types.utcdatetime': ['UTCDateTime'],
    'libres.db.models.types.json_type': ['JSON'],
    'libres.modules.errors': [
        'LibresError', 'ModifiedReadOnlySession', 'DirtyReadOnlySession', 'ContextAlreadyExists',
        'UnknownContext', 'ContextIsLocked', 'UnknownService', 'UnknownUtility',
        'InvalidAllocationError', 'InvalidEmailAddress', 'ReservationTooLong', 'ReservationTooShort',
        'ReservationParametersInvalid', 'AlreadyReservedError', 'QuotaOverLimit', 'QuotaImpossible',
        'InvalidQuota', 'InvalidReservationError', 'NotReservableError', 'NoReservationsToConfirm',
        'InvalidReservationToken', 'OverlappingAllocationError', 'OverlappingReservationError',
        'AffectedReservationError', 'AffectedPendingReservationError', 'DatesMayNotBeEqualError',
        'TimerangeTooLong', 'NotTimezoneAware',
    ],
    'libres.modules.events': [
        'Event', 'on_allocations_added', 'on_reservations_made', 'on_reservations_confirmed',
        'on_reservations_approved', 'on_reservations_denied', 'on_reservations_removed',
        'on_reservation_time_changed',
    ],
    'libres.modules.rasterizer': [
        'VALID_RASTER', 'MIN_RASTER', 'MAX_RASTER', 'Raster', 'is_valid_raster', 'rasterize_start',
        'rasterize_end', 'rasterize_span', 'iterate_span',
    ],
    'libres.modules.utils': ['generate_uuids', 'flatten', 'pairs', 'is_valid_reservation_length'],
}

M = '<missing>'
# (dotted path of a callable) → parameters after self/cls as (name, default or M)
SIGNATURES: dict[str, list[tuple[str, Any]]] = {
    'libres.context.core.Context': [('name', M), ('registry', None), ('parent', None), ('locked', False)],
    'libres.context.session.SessionProvider': [('dsn', M), ('engine_config', None), ('session_config', None)],
    'libres.context.registry.Registry.register_context': [('name', M), ('replace', False)],
    'libres.context.registry.Registry.get_context': [('name', M), ('autocreate', False)],
    'libres.context.core.Context.set_service': [('name', M), ('factory', M), ('cache', False)],
    'libres.db.scheduler.Scheduler': [
        ('context', M), ('name', M), ('timezone', M), ('blocking_names', ()),
        ('allocation_cls', 'Allocation'), ('reservation_cls', 'Reservation')],
    'libres.db.scheduler.Scheduler.allocate': [
        ('dates', M), ('partly_available', False), ('raster', 5), ('whole_day', False), ('quota', None),
        ('quota_limit', 0), ('grouped', False), ('data', None), ('approve_manually', False),
        ('skip_overlapping', False)],
    'libres.db.scheduler.Scheduler.reserve': [
        ('email', M), ('dates', None), ('group', None), ('data', None), ('session_id', None),
        ('quota', 1), ('single_token_per_session', False)],
    'libres.db.scheduler.Scheduler.approve_reservations': [('token', M)],
    'libres.db.scheduler.Scheduler.deny_reservation': [('token', M)],
    'libres.db.scheduler.Scheduler.remove_reservation': [('token', M), ('id', None)],
    'libres.db.scheduler.Scheduler.change_quota': [('master', M), ('new_quota', M)],
    'libres.db.scheduler.Scheduler.reordered_keylist': [('allocations', M), ('new_quota', M)],
    'libres.db.scheduler.Scheduler.move_allocation': [
        ('master_id', M), ('new_start', None), ('new_end', None), ('group', None), ('new_quota', None),
        ('approve_manually', None), ('quota_limit', 0), ('whole_day', None), ('data', core_missing)],
    'libres.db.scheduler.Scheduler.remove_allocation': [('id', None), ('groups', None)],
    'libres.db.scheduler.Scheduler.remove_unused_allocations': [
        ('start', M), ('end', M), ('days', None), ('exclude_groups', False)],
    'libres.db.scheduler.Scheduler.availability': [('start', None), ('end', None)],
    'libres.db.scheduler.Scheduler.free_allocations_count': [('master_allocation', M), ('start', M), ('end', M)],
    'libres.db.scheduler.Scheduler.reservation_targets': [('start', M), ('end', M)],
    'libres.db.scheduler.Scheduler.search_allocations': [
        ('start', M), ('end', M), ('days', None), ('minspots', 0), ('available_only', False),
        ('whole_day', 'any'), ('groups', 'any'), ('strict', False)],
    'libres.db.scheduler.Scheduler.reserved_slots_by_range': [('start', M), ('end', M)],
    'libres.db.scheduler.Scheduler.allocations_with_availability_by_range': [
        ('start', M), ('end', M), ('normalize_dst', True)],
    'libres.db.scheduler.Scheduler.change_email': [('token', M), ('new_email', M)],
    'libres.db.scheduler.Scheduler.change_reservation_data': [('token', M), ('data', M)],
    'libres.db.scheduler.Scheduler.change_reservation_time_candidates': [('tokens', None)],
    'libres.db.scheduler.Scheduler.change_reservation_time': [
        ('token', M), ('id', M), ('new_start', M), ('new_end', M)],
    'libres.db.scheduler.Scheduler.change_reservation': [
        ('token', M), ('id', M), ('new_start', M), ('new_end', M), ('quota', None)],
    'libres.db.scheduler.Scheduler.add_blocker': [
        ('dates', None), ('group', None), ('reason', None), ('token', None), ('id', None)],
    'libres.db.scheduler.Scheduler.remove_blocker': [('token', M), ('id', None)],
    'libres.db.scheduler.Scheduler.change_blocker_reason': [('token', M), ('new_reason', M)],
    'libres.db.scheduler.Scheduler.change_blocker': [('token', M), ('id', M), ('new_start', M), ('new_end', M)],
    'libres.db.scheduler.Scheduler.allocation_by_id': [('id', M)],
    'libres.db.scheduler.Scheduler.allocations_by_ids': [('ids', M)],
    'libres.db.scheduler.Scheduler.allocations_by_group': [('group', M), ('masters_only', True)],
    'libres.db.scheduler.Scheduler.allocations_by_groups': [('groups', M), ('masters_only', True)],
    'libres.db.scheduler.Scheduler.allocations_by_reservation': [('token', M), ('id', None)],
    'libres.db.scheduler.Scheduler.allocations_by_blocker': [('token', M), ('id', None)],
    'libres.db.scheduler.Scheduler.allocations_in_range': [
        ('start', M), ('end', M), ('masters_only', True), ('managed_only', True)],
    'libres.db.scheduler.Scheduler.allocation_by_date': [('start', M), ('end', M)],
    'libres.db.scheduler.Scheduler.allocation_dates_by_group': [('group', M)],
    'libres.db.scheduler.Scheduler.allocation_mirrors_by_master': [('master', M)],
    'libres.db.scheduler.Scheduler.allocation_dates_by_ids': [('ids', M), ('start_time', None), ('end_time', None)],
    'libres.db.scheduler.Scheduler.manual_approval_required': [('ids', M)],
    'libres.db.scheduler.Scheduler.reserved_slots_by_type': [('token', M), ('type', None)],
    'libres.db.scheduler.Scheduler.reserved_slots_by_reservation': [('token', M), ('id', None)],
    'libres.db.scheduler.Scheduler.reserved_slots_by_blocker': [('token', M), ('id', None)],
    'libres.db.scheduler.Scheduler.reservations_by_group': [('group', M)],
    'libres.db.scheduler.Scheduler.reservations_by_allocation': [('allocation_id', M)],
    'libres.db.scheduler.Scheduler.reservations_by_token': [('token', M), ('id', None)],
    'libres.db.scheduler.Scheduler.blockers_by_token': [('token', M), ('id', None)],
    **{f'libres.db.scheduler.Scheduler.{name}': [] for name in (
        'managed_allocations', 'blocking_allocations', 'visible_allocations', 'managed_reserved_slots',
        'managed_reservations', 'visible_reservations', 'managed_blockers', 'visible_blockers',
        'extinguish_managed_records', 'clone', 'setup_database', 'commit', 'rollback', 'close',
        'clear_cache')},
    'libres.db.queries.Queries': [('context', M)],
    'libres.db.queries.Queries.all_allocations_in_range': [('start', M), ('end', M)],
    'libres.db.queries.Queries.allocations_in_range': [('query', M), ('start', M), ('end', M)],
    'libres.db.queries.Queries.overlapping_allocations': [('query', M), ('dates', M)],
    'libres.db.queries.Queries.availability_by_allocations': [('allocations', M)],
    'libres.db.queries.Queries.availability_by_range': [('start', M), ('end', M), ('resources', M)],
    'libres.db.queries.Queries.availability_by_day': [('start', M), ('end', M), ('resources', M)],
    'libres.db.queries.Queries.reserved_slots_by_range': [
        ('start', M), ('end', M), ('resource', M), ('blocking_resources', M)],
    'libres.db.queries.Queries.availability_and_partitions_by_allocations': [
        ('allocations', M), ('resource', M), ('blocking_resources', M), ('normalize_dst', True)],
    'libres.db.queries.Queries.allocations_with_availability_by_range': [
        ('start', M), ('end', M), ('resource', M), ('blocking_resources', M), ('normalize_dst', True)],
    'libres.db.queries.Queries.reservations_by_session': [('session_id', M)],
    'libres.db.queries.Queries.confirm_reservations_for_session': [('session_id', M), ('token', None)],
    'libres.db.queries.Queries.remove_reservation_from_session': [('session_id', M), ('token', M)],
    'libres.db.queries.Queries.find_expired_reservation_sessions': [('expiration_date', M)],
    'libres.db.queries.Queries.remove_expired_reservation_sessions': [('expiration_date', None)],
    'libres.db.models.allocation.Allocation.display_start': [('timezone', None)],
    'libres.db.models.allocation.Allocation.display_end': [('timezone', None)],
    'libres.db.models.allocation.Allocation.overlaps': [('start', M), ('end', M)],
    'libres.db.models.allocation.Allocation.contains': [('start', M), ('end', M)],
    'libres.db.models.allocation.Allocation.align_dates': [('start', None), ('end', None)],
    'libres.db.models.allocation.Allocation.all_slots': [('start', None), ('end', None)],
    'libres.db.models.allocation.Allocation.free_slots': [('start', None), ('end', None)],
    'libres.db.models.allocation.Allocation.count_slots': [('start', None), ('end', None)],
    'libres.db.models.allocation.Allocation.is_available': [('start', None), ('end', None)],
    'libres.db.models.allocation.Allocation.limit_timespan': [
        ('start', M), ('end', M), ('timezone', None), ('is_dst', False), ('raise_non_existent', False),
        ('raise_ambiguous', False)],
    'libres.db.models.allocation.Allocation.availability_partitions': [('normalize_dst', True)],
    'libres.db.models.allocation.Allocation.siblings': [('imaginary', True)],
    'libres.db.models.allocation.Allocation.find_spot': [('start', M), ('end', M)],
    'libres.db.models.allocation.Allocation.set_raster': [('raster', M)],
    'libres.db.models.blocker.ReservationBlocker.target_allocations': [('masters_only', True)],
    'libres.modules.rasterizer.rasterize_start': [('start', M), ('raster', M)],
    'libres.modules.rasterizer.rasterize_end': [('end', M), ('raster', M)],
    'libres.modules.rasterizer.rasterize_span': [('start', M), ('end', M), ('raster', M)],
    'libres.modules.rasterizer.iterate_span': [('start', M), ('end', M), ('raster', M)],
    'libres.modules.utils.generate_uuids': [('uuid', M), ('quota', M)],
    'libres.modules.utils.is_valid_reservation_length': [('start', M), ('end', M), ('timezone', M)],
}

PROPERTIES = {
    'libres.db.models.allocation.Allocation': [
        'start', 'end', 'raster', 'whole_day', 'availability', 'normalized_availability', 'quota_left',
        'pending_reservations', 'waitinglist_length', 'is_master', 'is_transient', 'in_group',
        'is_separate'],
    'libres.db.models.reservation.Reservation': ['title', 'autoapprovable'],
    'libres.db.scheduler.Scheduler': ['resource', 'blocking_resources', 'session', 'session_provider'],
}


def resolve(path: str) -> Any:
    parts = path.split('.')
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module('.'.join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            target = getattr(target, name)
        return target
    raise ImportError(path)


@pytest.mark.parametrize(('module', 'names'), PACKAGE_MAP.items())
def test_package_map(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    absent = [name for name in names if not hasattr(imported, name)]
    assert absent == []


def _normalise(default: Any) -> Any:
    if isinstance(default, type):
        return default.__name__
    return default


# Parameters libres adds after 1.4.0's (issue 16's booking policies): they come
# last and have defaults that keep 1.4.0's behaviour, so every call written for
# 1.4.0, positional or by keyword, means what it meant.
EXTENSIONS: dict[str, list[tuple[str, Any]]] = {
    'libres.db.scheduler.Scheduler.allocate': [
        ('buffer_before', None), ('buffer_after', None), ('min_notice', None), ('max_advance', None)],
    'libres.db.scheduler.Scheduler.reserve': [('hold', None), ('ignore_booking_window', False)],
    'libres.db.scheduler.Scheduler.reserved_slots_by_range': [('with_buffers', False)],
    'libres.db.scheduler.Scheduler.change_reservation': [('ignore_booking_window', False)],
    'libres.db.queries.Queries.reserved_slots_by_range': [('with_buffers', False)],
}


@pytest.mark.parametrize(('path', 'expected'), SIGNATURES.items())
def test_signature(path: str, expected: list[tuple[str, Any]]) -> None:
    target = resolve(path)
    parameters = [
        p for p in inspect.signature(target).parameters.values()
        if p.name not in ('self', 'cls') and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    actual = [(p.name, M if p.default is p.empty else _normalise(p.default)) for p in parameters]
    assert actual == expected + EXTENSIONS.get(path, [])


def test_extensions_extend_signatures_of_the_spec() -> None:
    assert set(EXTENSIONS) <= set(SIGNATURES)


@pytest.mark.parametrize(('path', 'names'), PROPERTIES.items())
def test_properties(path: str, names: list[str]) -> None:
    cls = resolve(path)
    assert [n for n in names if not hasattr(cls, n)] == []


def test_aliases() -> None:
    import libres
    from libres.db import new_scheduler
    from libres.db.models import reservation, timespan
    from libres.db.scheduler import Scheduler

    assert libres.new_scheduler is Scheduler is new_scheduler
    assert reservation.Timespan is timespan.Timespan
    assert Scheduler.__init__ is not None
