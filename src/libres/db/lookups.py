"""Exactly one record, or a library error that says which was looked for.

``NoResultFound`` and ``MultipleResultsFound`` are what libres 1.4.0 raised
(``allocation_by_id``, ``change_reservation``, ...); the errors raised here
derive from them as well as from ``LibresError``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import MultipleResultsFound, NoResultFound

from libres.modules import errors


def the_one(query: Any, what: str) -> Any:
    """``query.one()``, its errors naming ``what`` (e.g. ``'allocation 12'``)."""
    try:
        return query.one()
    except NoResultFound as error:
        raise errors.RecordNotFound(f'no {what} of this scheduler exists') from error
    except MultipleResultsFound as error:
        raise errors.SeveralRecordsFound(
            f'several records match {what}, one was expected (a group? address one member by id)'
        ) from error
