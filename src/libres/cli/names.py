"""Resource names for reports: ``CONTEXT/NAME`` to the resource's UUID.

The database only holds UUIDs. A scheduler's resource is derived from its
context's name and its own name; this asks a context of a private registry
(so nothing of the caller's is touched) to derive it the library's way.
"""

from __future__ import annotations

import uuid

import click

from libres.context.registry import create_default_registry


def resource_of(context_name: str, name: str, namespace: uuid.UUID | None = None) -> uuid.UUID:
    """The resource of ``Scheduler(context_name, name)``."""
    registry = create_default_registry()
    context = registry.register_context(context_name)
    if namespace is not None:
        context.set_setting('uuid_namespace', namespace)
    generate = context.get_service('uuid_generator')
    return generate(name)  # type: ignore[no-any-return]


class ResourceName(click.ParamType):  # type: ignore[type-arg]
    """``CONTEXT/NAME``, as the application registers the context and names the scheduler."""

    name = 'CONTEXT/NAME'

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        context_name, slash, name = str(value).partition('/')
        if not slash or not context_name or not name:
            self.fail(f'{value!r} is not CONTEXT/NAME (e.g. my_app/meeting-room)', param, ctx)
        return context_name, name


def names_by_resource(names: tuple[tuple[str, str], ...],
                      namespace: uuid.UUID | None = None) -> dict[str, str]:
    """``{resource uuid: 'context/name'}`` for the names given."""
    return {str(resource_of(context_name, name, namespace)): f'{context_name}/{name}'
            for context_name, name in names}
