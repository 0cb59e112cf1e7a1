from __future__ import annotations

import pickle
import threading
import uuid

import pytest

import libres
from libres.context.core import Context, StoppableService, missing, required
from libres.context.registry import Registry, create_default_registry
from libres.modules import errors


def test_markers_are_distinct_picklable_singletons() -> None:
    assert missing is not required and missing is not None
    assert pickle.loads(pickle.dumps(missing)) is missing


def test_unknown_keys_are_missing_and_parents_are_asked() -> None:
    parent = Context('parent')
    child = Context('child', parent=parent)
    assert child.get('x') is missing and child.get_setting('x') is missing
    parent.set('x', 1)
    assert child.get('x') == 1
    child.set('x', 2)
    assert (child.get('x'), parent.get('x')) == (2, 1)
    assert repr(child) == "<Libres Context(name='child')>"


def test_locked_contexts_refuse_changes() -> None:
    context = Context('locked', locked=True)
    with pytest.raises(errors.ContextIsLocked):
        context.set_setting('dsn', 'x')
    context.unlock()
    context.set_setting('dsn', 'x')
    context.lock()
    with pytest.raises(errors.ContextIsLocked):
        context.set_service('thing', lambda ctx: 1)


def test_services_fresh_or_cached() -> None:
    context = Context('services')
    context.set_service('fresh', lambda ctx: object())
    assert context.get_service('fresh') is not context.get_service('fresh')
    context.set_service('cached', lambda ctx: object(), cache=True)
    assert context.get_service('cached') is context.get_service('cached')
    with pytest.raises(errors.UnknownService) as info:
        context.get_service('nothing')
    assert info.value.args == ('service/nothing',)


def test_recaching_stops_the_previous_instance() -> None:
    stopped = []

    class Service(StoppableService):
        def stop_service(self) -> None:
            stopped.append(self)

    context = Context('stop')
    context.set_service('s', lambda ctx: Service(), cache=True)
    first = context.get_service('s')
    context.set_service('s', lambda ctx: Service(), cache=True)
    assert stopped == [first]
    assert context.get_service('s') is not first


def test_child_contexts_inherit_the_cache_flag() -> None:
    registry = create_default_registry()
    context = registry.register_context('app')
    context.set_setting('dsn', None)
    context.set_service('session_provider', lambda ctx: object())
    assert context.get_service('session_provider') is context.get_service('session_provider')


def test_default_services() -> None:
    registry = create_default_registry()
    context = registry.register_context('my_app')
    generate = context.get_service('uuid_generator')
    assert generate('room') == uuid.UUID('3b941dbc-f646-5f3f-8a55-ab94de05a49c')
    validate = context.get_service('email_validator')
    # email-validator's syntax rules: trailing text is no longer accepted (issue 13).
    assert validate('a@example.org') and not validate('a@example.org trailing text')
    assert not validate('a@b') and not validate('nope')
    assert not validate("a@example.org'; DROP TABLE reservations; --")
    assert context.get_service('exposure').is_allocation_exposed(None) is True
    assert registry.master_context is not None and registry.master_context.locked
    assert context.get_setting('dsn') is None


def test_registry_contexts() -> None:
    registry = Registry()
    with pytest.raises(errors.UnknownContext):
        registry.get_context('nope')
    first = registry.register_context('app')
    first.set_setting('dsn', 'x')
    with pytest.raises(errors.ContextAlreadyExists):
        registry.register_context('app')
    replaced = registry.register_context('app', replace=True)
    assert replaced is not first and replaced.get_setting('dsn') is missing
    assert registry.get_context('app') is replaced
    auto = registry.get_context('auto', autocreate=True)
    assert registry.get_context('auto', autocreate=True) is auto
    replaced.lock()
    with pytest.raises(errors.ContextIsLocked):
        registry.register_context('app', replace=True)
    # Registering does not switch.
    assert registry.current_context is registry.master_context


def test_context_manager_restores_on_error() -> None:
    registry = Registry()
    registry.register_context('outer')
    registry.register_context('inner')
    registry.switch_context('outer')
    with pytest.raises(RuntimeError), registry.context('inner') as inner:
        assert registry.current_context is inner
        raise RuntimeError
    assert registry.current_context.name == 'outer'
    with registry.get_context('inner').as_current_context():
        assert registry.get_current_context().name == 'inner'
    assert registry.current_context.name == 'outer'


def test_current_context_is_per_thread() -> None:
    registry = Registry()
    names = [f'ctx{n}' for n in range(4)]
    for name in names:
        registry.register_context(name)
    failures = []

    def work(name: str) -> None:
        for _ in range(100):
            registry.switch_context(name)
            if registry.current_context.name != name:
                failures.append(name)

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_registries_are_independent() -> None:
    one, two = Registry(), Registry()
    one.register_context('same')
    two.register_context('same')
    assert one.master_context is not two.master_context
    assert one.get_context('same') is not two.get_context('same')


def test_global_registry_and_names() -> None:
    assert isinstance(libres.registry, Registry)
    assert libres.__all__ == ('new_scheduler', 'registry')
    assert Context('unbound').registry is libres.registry
