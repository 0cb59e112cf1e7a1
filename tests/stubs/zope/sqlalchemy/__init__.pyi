from typing import Literal

from sqlalchemy.orm import Session, scoped_session, sessionmaker
from transaction import TransactionManager

_State = Literal['active', 'changed', 'readonly', 'invalidated']

class ZopeTransactionEvents:
    def __init__(self, initial_state: _State = ..., transaction_manager: TransactionManager = ...,
                 keep_session: bool = ...) -> None: ...

def register(
    session: Session | scoped_session[Session] | sessionmaker[Session] | type[Session],
    initial_state: _State = ...,
    transaction_manager: TransactionManager = ...,
    keep_session: bool = ...,
) -> ZopeTransactionEvents: ...

def mark_changed(session: Session, transaction_manager: TransactionManager = ...,
                 keep_session: bool = ...) -> None: ...

invalidate = mark_changed
