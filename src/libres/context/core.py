"""Contexts: named sets of settings and services, with a parent to fall back on."""

from __future__ import annotations

import enum
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cached_property
from typing import TYPE_CHECKING, Any

from libres.context.exposure import Exposure
from libres.context.replicas import routed_session
from libres.modules import errors

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, SessionTransaction

    from libres.context.registry import Registry
    from libres.context.session import SessionProvider


class _Marker(enum.Enum):
    missing = 'missing'
    required = 'required'


#: Returned by look-ups that found nothing (distinct from ``None``).
missing = _Marker.missing
#: Stored under a service's cache key: create and cache it on first use.
required = _Marker.required


class StoppableService:
    """A service told to stop when it is replaced on its context."""

    def stop_service(self) -> None:
        """Release what the service holds (connections and the like)."""


class Context:
    """Settings and services of one application, falling back to a parent."""

    def __init__(
        self,
        name: str,
        registry: Registry | None = None,
        parent: Context | None = None,
        locked: bool = False,
    ) -> None:
        if registry is None:
            import libres

            registry = libres.registry
        self.name = name
        self.registry = registry
        self.values: dict[str, Any] = {}
        self.parent = parent
        self.locked = locked
        self.thread_lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<Libres Context(name='{self.name}')>"

    @contextmanager
    def as_current_context(self) -> Iterator[Context]:
        with self.registry.context(self.name) as context:
            yield context

    def switch_to(self) -> None:
        self.registry.switch_context(self.name)

    def lock(self) -> None:
        with self.thread_lock:
            self.locked = True

    def unlock(self) -> None:
        with self.thread_lock:
            self.locked = False

    def get(self, key: str) -> Any:
        if key in self.values:
            return self.values[key]
        if self.parent is not None:
            return self.parent.get(key)
        return missing

    def set(self, key: str, value: Any) -> None:
        if self.locked:
            raise errors.ContextIsLocked(self.name)
        with self.thread_lock:
            current = self.values.get(key, missing)
            if isinstance(current, StoppableService):
                current.stop_service()
            self.values[key] = value

    def get_setting(self, name: str) -> Any:
        return self.get('settings.' + name)

    def set_setting(self, name: str, value: Any) -> None:
        self.set('settings.' + name, value)

    def set_service(self, name: str, factory: Callable[[Context], Any], cache: bool = False) -> None:
        with self.thread_lock:
            key = 'service/' + name
            self.set(key, factory)
            if cache:
                # Replacing the cache entry stops a previously cached instance.
                self.set(key + '/cache', required)

    def get_service(self, name: str) -> Any:
        key = 'service/' + name
        factory = self.get(key)
        if factory is missing:
            raise errors.UnknownService(key)
        cache_key = key + '/cache'
        cached = self.get(cache_key)
        if cached is missing:
            return factory(self)
        if cached is required:
            with self.thread_lock:
                cached = self.values.get(cache_key, required)
                if cached is required:
                    cached = factory(self)
                    self.set(cache_key, cached)
        return cached


class ContextServicesMixin:
    """Access to the services of ``self.context`` (cached where it is safe)."""

    context: Context

    @cached_property
    def is_allocation_exposed(self) -> Callable[[Any], bool]:
        """The context's `exposure` service: whether an allocation may be shown (cached)."""
        exposure = self.context.get_service('exposure')
        return exposure.is_allocation_exposed  # type: ignore[no-any-return]

    @cached_property
    def generate_uuid(self) -> Callable[[str | uuid.UUID], uuid.UUID]:
        """The context's `uuid_generator` service: a name to its resource UUID (cached)."""
        return self.context.get_service('uuid_generator')  # type: ignore[no-any-return]

    @cached_property
    def validate_email(self) -> Callable[[str], bool]:
        """The context's `email_validator` service: whether a string is an address (cached)."""
        return self.context.get_service('email_validator')  # type: ignore[no-any-return]

    def exposes_everything(self) -> bool:
        """Whether the default exposure is in use: then nothing is hidden and
        a query need not build objects to ask each one."""
        return self.is_allocation_exposed is Exposure.is_allocation_exposed

    def clear_cache(self) -> None:
        """Forget cached services (after changing the context)."""
        # Only what this class caches; subclasses forget their own.
        for name in ('is_allocation_exposed', 'generate_uuid', 'validate_email'):
            self.__dict__.pop(name, None)

    @property
    def session_provider(self) -> SessionProvider:
        """The context's `session_provider` service (not cached)."""
        return self.context.get_service('session_provider')  # type: ignore[no-any-return]

    @property
    def session(self) -> Session:
        """The primary session; inside a read routed to a replica, the read
        session (``libres.context.replicas``)."""
        return routed_session(self.session_provider)

    def fresh_reads(self) -> AbstractContextManager[None]:
        """Within the block, reads of this thread run on the primary, even
        where a replica would serve them: to see one's own committed booking
        at once. Without replicas it changes nothing."""
        reads = getattr(self.session_provider, 'reads', None)
        return reads.primary_reads() if reads is not None else nullcontext()

    def close(self) -> None:
        """Close the session: its transaction is rolled back and its objects detached.

        Nothing is committed; the next use of `session` begins anew.
        """
        self.session.close()

    @property
    def begin_nested(self) -> Callable[[], SessionTransaction]:
        """`begin_nested` of the session: call it to open a savepoint."""
        return self.session.begin_nested

    def commit(self) -> None:
        """Commit the session (a flush first, through the unit of work).

        A database error of libres' own constraints or triggers raises the
        library's error, the database error chained (see
        `libres.db.errors_translation`); the session must then be rolled back.

        :raises ReservedSlotTaken: another booking took a slot first (an
            `AlreadyReservedError` and an `IntegrityError`).
        :raises AllocationsOverlap: allocations of one resource would overlap.
        :raises ConstraintViolation: another of libres' constraints refused the write.
        :raises SchemaMissing: the database lacks the libres tables.
        """
        from libres.db.errors_translation import translated

        with translated():
            self.session.commit()

    def rollback(self) -> None:
        """Roll the session back: every change since the last commit is undone.

        Objects of the session are expired (read again when next used); no
        event fires.
        """
        self.session.rollback()
