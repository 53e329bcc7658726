"""One transaction, retried as a whole when it lost a race: the store's only retry loop.

A service writes its whole change inside `work(session)`; when a concurrent transaction wins
a unique constraint (a twin booking, the same new user, the same fresh reference) or
PostgreSQL reports a deadlock or serialization failure, the transaction is rolled back and
`work` runs again from the start, and then sees the winner's committed row. A caller that
gets a result therefore knows it is committed.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from store.db import Database

MAX_ATTEMPTS = 6  # whole-transaction retries after a lost race

T = TypeVar("T")


class Rollback(Exception):
    """Leave the transaction without committing and hand `value` to the caller."""

    def __init__(self, value: Any) -> None:
        super().__init__("rollback")
        self.value = value


def retryable(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        return True  # a concurrent twin won a unique constraint: the retry will see its row
    if isinstance(exc, OperationalError):
        code = getattr(getattr(exc, "orig", None), "sqlstate", None)
        return code in ("40001", "40P01")  # serialization failure, deadlock (PostgreSQL)
    return False


def transaction(db: Database, work: Callable[[Session], T],
                attempts: int = MAX_ATTEMPTS) -> T:
    """Run `work` in one transaction, retried from the start when it lost a race."""
    for attempt in range(attempts):
        try:
            with db.session() as session:
                return work(session)
        except Rollback as rollback:
            return rollback.value
        except (IntegrityError, OperationalError) as exc:
            if not retryable(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
