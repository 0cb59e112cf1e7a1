"""Read-only calls routed to PostgreSQL streaming replicas.

A read method opts in with one line, the decorator :func:`replica_read`::

    @replica_read
    def free_intervals(self, start, end): ...

While such a call runs, ``self.session`` (of a scheduler or ``Queries``)
is the thread's *read session* on the first healthy replica instead of the
primary session, provided the session provider has replicas
(``settings.read_dsn``) and none of these holds:

* the primary session has written in its current transaction: a flush, an
  ORM ``INSERT``/``UPDATE``/``DELETE``, or a textual statement that is not a
  ``SELECT``/``WITH``/``SHOW`` (a ``do_orm_execute``/``after_flush`` listener
  sets a flag that the end of the transaction clears); or it holds new,
  changed or deleted objects: the caller must see its own writes;
* the caller asked for the primary: ``with scheduler.fresh_reads(): ...``;
* every replica failed within the last ``read_retry_after`` seconds.

Read sessions run ``REPEATABLE READ READ ONLY`` (a standby refuses
SERIALIZABLE): every statement of one call sees one snapshot. The outermost
routed call ends the read transaction when it returns, so the next call sees
what the replica has replayed since.

Objects a routed call returns belong to the read session, not the primary
one: their attributes and lazy loads read the replica. They are read only:
the read session refuses to flush (:class:`~libres.modules.errors.ModifiedReadOnlySession`).
Write methods that take an object (``change_quota``) load the primary's own
copy of it first, so nothing is ever written through a replica. To change an
object you found on a replica, load it on the primary, e.g.
``scheduler.allocation_by_id(allocation.id)``.

A replica that fails (connection refused or lost, recovery conflict) is
skipped for ``read_retry_after`` seconds; the call is re-run on the primary
with a :class:`ReplicaUnavailableWarning`, or raises
:class:`ReplicaUnavailable` if ``read_fallback`` is ``'raise'``.
"""

from __future__ import annotations

import functools
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sqlalchemy import create_engine, event, inspect, pool
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import ORMExecuteState, Session, object_session, scoped_session, sessionmaker
from sqlalchemy.sql.elements import TextClause

from libres.modules import errors

if TYPE_CHECKING:
    from libres.context.session import SessionProvider

P = ParamSpec('P')
T = TypeVar('T')
Obj = TypeVar('Obj')

READ_ISOLATION = 'REPEATABLE READ'
FALLBACKS = ('primary', 'raise')
DEFAULT_RETRY_AFTER = 5.0
#: Set in ``Session.info`` of a primary session that wrote in its transaction.
WROTE = 'libres.wrote'
#: Set in ``Session.info`` of every read session.
READ_SESSION = 'libres.read_session'
_READ_ONLY_TEXT = ('select', 'with', 'show', 'explain')


class ReplicaUnavailableWarning(UserWarning):
    """A read meant for a replica ran on the primary: no replica answered."""


class ReplicaUnavailable(errors.LibresError):
    """No replica answered and ``read_fallback`` is ``'raise'``."""


class InvalidReadSettings(errors.LibresError, ValueError):
    """``read_dsn``, ``read_fallback`` or ``read_retry_after`` is not usable."""


# --- the primary side: did this transaction write? ----------------------------

def _mark_write(session: Session) -> None:
    session.info[WROTE] = True


def _on_primary_execute(state: ORMExecuteState) -> None:
    statement = state.statement
    if state.is_insert or state.is_update or state.is_delete:
        _mark_write(state.session)
    elif isinstance(statement, TextClause) and not _reads_only(statement):
        # Textual SQL we cannot parse counts as a write, to be safe.
        _mark_write(state.session)


def _reads_only(statement: TextClause) -> bool:
    return statement.text.lstrip().lower().startswith(_READ_ONLY_TEXT)


def _on_primary_flush(session: Session, *_: Any) -> None:
    _mark_write(session)


def has_written(session: Session) -> bool:
    """Whether the session wrote in its transaction or holds unflushed changes."""
    return bool(session.info.get(WROTE) or session.new or session.dirty or session.deleted)


# --- the read side --------------------------------------------------------------

def _refuse_flush(session: Session, *_: Any) -> None:
    changed = [*session.new, *session.dirty, *session.deleted]
    if changed:
        # The changed objects leave the read session (their changes with
        # them), so it stays usable for the next read.
        for obj in changed:
            session.expunge(obj)
        raise errors.ModifiedReadOnlySession(
            f'{len(changed)} object(s) read from a replica were changed; load them on the '
            'primary (e.g. scheduler.allocation_by_id) to change them'
        )


def _reload_existing(state: ORMExecuteState) -> None:
    # The read session lives as long as its thread: rows it loads again
    # replace what it read in an earlier (older) snapshot.
    if state.is_select:
        state.update_execution_options(populate_existing=True)


class Replica:
    """One replica: its engine, the thread-scoped read sessions on it, and
    until when it counts as down."""

    def __init__(self, dsn: str, engine_config: dict[str, Any] | None = None) -> None:
        from libres.context.session import _url

        self.dsn = dsn
        options: dict[str, Any] = {
            'poolclass': pool.QueuePool,
            'pool_size': 5,
            'max_overflow': 5,
            'isolation_level': READ_ISOLATION,
            'pool_pre_ping': True,
            'connect_args': {'connect_timeout': 3},
            # BEGIN ... READ ONLY, from the driver, in the same round trip.
            'execution_options': {'postgresql_readonly': True},
        }
        options.update(engine_config or {})
        self.engine: Engine = create_engine(_url(dsn), **options)
        factory: sessionmaker[Session] = sessionmaker(
            bind=self.engine, expire_on_commit=False, info={READ_SESSION: True}
        )
        event.listen(factory, 'before_flush', _refuse_flush)
        event.listen(factory, 'do_orm_execute', _reload_existing)
        self.session: scoped_session[Session] = scoped_session(factory)
        self.down_until = 0.0

    def is_up(self, now: float) -> bool:
        return now >= self.down_until

    def end_transaction(self) -> None:
        """End this thread's read transaction, keeping its objects loaded."""
        if self.session.registry.has():
            session = self.session()
            if session.in_transaction():
                try:
                    session.commit()
                except DBAPIError:
                    # The connection is gone: there is nothing to end on it.
                    session.close()

    def stop(self) -> None:
        self.session.remove()
        self.engine.dispose()


class _Routing(threading.local):
    """Per thread: the replica the current routed call uses, how deep routed
    calls are nested, and how deep ``fresh_reads`` blocks are."""

    def __init__(self) -> None:
        self.replica: Replica | None = None
        self.depth = 0
        self.fresh = 0


class ReadSide:
    """The replicas of a session provider and the routing of reads to them."""

    def __init__(
        self,
        provider: SessionProvider,
        dsns: Sequence[str],
        fallback: str = 'primary',
        retry_after: float = DEFAULT_RETRY_AFTER,
        engine_config: dict[str, Any] | None = None,
    ) -> None:
        if not dsns:
            raise InvalidReadSettings('read_dsn names no replica')
        if fallback not in FALLBACKS:
            raise InvalidReadSettings(f'read_fallback must be one of {FALLBACKS}, got {fallback!r}')
        if not isinstance(retry_after, (int, float)) or retry_after < 0:
            raise InvalidReadSettings(f'read_retry_after must be seconds, not negative, got {retry_after!r}')
        self.provider = provider
        self.fallback = fallback
        self.retry_after = retry_after
        self.replicas = [Replica(dsn, engine_config) for dsn in dsns]
        self.local = _Routing()
        maker = provider.session.session_factory
        event.listen(maker, 'do_orm_execute', _on_primary_execute)
        event.listen(maker, 'after_flush', _on_primary_flush)
        event.listen(maker, 'after_transaction_end', self._on_primary_transaction_end)

    def _on_primary_transaction_end(self, session: Session, transaction: Any) -> None:
        if transaction.parent is None:
            session.info.pop(WROTE, None)
            # A replica transaction opened by lazy loads ends with the caller's.
            if self.local.depth == 0:
                for replica in self.replicas:
                    replica.end_transaction()

    def current_session(self) -> Session | None:
        """The read session of the routed call running in this thread, if any."""
        replica = self.local.replica
        return replica.session() if replica is not None else None

    @contextmanager
    def primary_reads(self) -> Iterator[None]:
        """Within the block, routed reads of this thread run on the primary."""
        self.local.fresh += 1
        try:
            yield
        finally:
            self.local.fresh -= 1

    def _healthy(self) -> list[Replica]:
        """The replicas to try, in order: those not failed recently."""
        now = time.monotonic()
        return [replica for replica in self.replicas if replica.is_up(now)]

    def _unavailable(self, why: str) -> None:
        if self.fallback == 'raise':
            raise ReplicaUnavailable(why)
        warnings.warn(f'{why}; reading from the primary', ReplicaUnavailableWarning, stacklevel=4)

    def run(self, call: Callable[[], T]) -> T:
        """Run a read-only call on a replica if routing allows, else on the primary."""
        local = self.local
        if local.depth or local.fresh or has_written(self.provider.session()):
            # Nested in a routed call (its session stays), or bound to the primary.
            return self._counted(call)
        why = f'every replica failed in the last {self.retry_after:.1f} s'
        for replica in self._healthy():
            try:
                return self._on_replica(replica, call)
            except DBAPIError as error:
                if not _is_replica_failure(error):
                    raise
                replica.down_until = time.monotonic() + self.retry_after
                # Closed, not rolled back: a rollback would expire what earlier
                # reads returned, and reloading it would need the failed replica.
                replica.session().close()
                why = f'replica {replica.engine.url.render_as_string()} failed: {error.orig!r}'
        self._unavailable(why)
        with self.primary_reads():
            return call()

    def _on_replica(self, replica: Replica, call: Callable[[], T]) -> T:
        local = self.local
        replica.end_transaction()  # a fresh snapshot for this call
        local.replica = replica
        local.depth += 1
        try:
            result = call()
            if isinstance(result, Iterator):
                # Consumed here: the caller's code between items must not run routed.
                result = iter(list(result))  # type: ignore[assignment]
        finally:
            local.depth -= 1
            local.replica = None
        replica.end_transaction()
        return result

    def _counted(self, call: Callable[[], T]) -> T:
        self.local.depth += 1
        try:
            return call()
        finally:
            self.local.depth -= 1

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()


def _is_replica_failure(error: DBAPIError) -> bool:
    """Connection refused or lost, server starting or shutting down, or a
    query cancelled by a recovery conflict: another server can answer."""
    from sqlalchemy.exc import OperationalError

    code = getattr(error.orig, 'sqlstate', None) or getattr(error.orig, 'pgcode', None)
    return bool(
        error.connection_invalidated
        or isinstance(error, OperationalError)
        or (code is not None and (code.startswith('57') or code.startswith('08') or code == '40001'))
    )


def replica_read(method: Callable[P, T]) -> Callable[P, T]:
    """Let a read-only method of a scheduler or ``Queries`` run on a replica.

    The method must not write; an iterator it returns is consumed inside
    the routed call. Without replicas configured the method runs unchanged.
    """

    @functools.wraps(method)
    def routed(*args: P.args, **kwargs: P.kwargs) -> T:
        reads = getattr(args[0].session_provider, 'reads', None)  # type: ignore[attr-defined]
        if reads is None:
            return method(*args, **kwargs)
        return reads.run(lambda: method(*args, **kwargs))  # type: ignore[no-any-return]

    return routed


def routed_session(provider: Any) -> Session:
    """The session ``self.session`` means now: the read session inside a
    routed call on a replica, the provider's (primary) session otherwise."""
    reads: ReadSide | None = getattr(provider, 'reads', None)
    if reads is not None:
        read = reads.current_session()
        if read is not None:
            return read
    return provider.session()  # type: ignore[no-any-return]


def on_primary(session: Session, obj: Obj) -> Obj:
    """The primary session's own copy of an object a replica read returned
    (one look-up, unless the primary holds it already); any other object as
    it is. Write methods that take objects call this first."""
    owner = object_session(obj)
    if owner is None or not owner.info.get(READ_SESSION):
        return obj
    copy = session.get(type(obj), inspect(obj).identity)
    if copy is None:
        raise errors.LibresError(f'{obj!r} was read from a replica but is not on the primary')
    return copy


def split_dsns(read_dsn: str | Sequence[str] | None) -> list[str]:
    """``read_dsn`` as a list: one URL, several, or none."""
    if not read_dsn:
        return []
    if isinstance(read_dsn, str):
        return [read_dsn]
    return [str(dsn) for dsn in read_dsn]
