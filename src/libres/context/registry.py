"""The registry of contexts, and the default one libres creates at import."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from libres.context.core import Context
from libres.context.exposure import Exposure
from libres.context.session import provider_for
from libres.context.settings import set_default_settings
from libres.modules import errors
from libres.modules.validation import is_email_address


class Registry:
    """Holds contexts by name and the current context of each thread."""

    master_context: Context | None = None

    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.contexts: dict[str, Context] = {}
        self.local = threading.local()
        self.master_context = self.register_context('master')

    @property
    def current_context(self) -> Context:
        current = getattr(self.local, 'current_context', None)
        if current is None:
            assert self.master_context is not None
            current = self.local.current_context = self.master_context
        return current

    def is_existing_context(self, name: str) -> bool:
        return name in self.contexts

    def assert_not_locked(self, name: str) -> None:
        if self.get_context(name).locked:
            raise errors.ContextIsLocked(name)

    def assert_exists(self, name: str) -> None:
        if not self.is_existing_context(name):
            raise errors.UnknownContext(name)

    def assert_does_not_exist(self, name: str) -> None:
        if self.is_existing_context(name):
            raise errors.ContextAlreadyExists(name)

    def register_context(self, name: str, replace: bool = False) -> Context:
        with self.thread_lock:
            if replace:
                if self.is_existing_context(name):
                    self.assert_not_locked(name)
            else:
                self.assert_does_not_exist(name)
            context = Context(name, registry=self, parent=self.master_context, locked=False)
            self.contexts[name] = context
            return context

    def switch_context(self, name: str) -> None:
        with self.thread_lock:
            self.assert_exists(name)
            self.local.current_context = self.contexts[name]

    @contextmanager
    def context(self, name: str) -> Iterator[Context]:
        previous = self.current_context.name
        self.switch_context(name)
        try:
            yield self.current_context
        finally:
            self.switch_context(previous)

    def get_current_context(self) -> Context:
        return self.current_context

    def get_context(self, name: str, autocreate: bool = False) -> Context:
        with self.thread_lock:
            if autocreate and not self.is_existing_context(name):
                return self.register_context(name)
            self.assert_exists(name)
            return self.contexts[name]


def _email_validator(context: Context) -> Callable[[str], bool]:
    # The email-validator package's syntax rules, no DNS; replace the
    # service to change them (libres 1.4.0 let trailing text pass).
    return is_email_address


def _uuid_generator(context: Context) -> Callable[[str], uuid.UUID]:
    def generate(name: str | uuid.UUID) -> uuid.UUID:
        # A UUID name means its dashed text form.
        return uuid.uuid5(context.get_setting('uuid_namespace'), context.name + '/' + str(name))

    return generate


def create_default_registry() -> Registry:
    """A registry whose master context has the default settings and services."""
    registry = Registry()
    master = registry.master_context
    assert master is not None
    master.set_service('email_validator', _email_validator)
    master.set_service('session_provider', provider_for, cache=True)
    master.set_service('exposure', lambda context: Exposure())
    master.set_service('uuid_generator', _uuid_generator)
    set_default_settings(master)
    master.lock()
    return registry
