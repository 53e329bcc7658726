"""When the store cannot be written (SQLite on a read-only or full disk, PostgreSQL gone): the
user is told plainly that nothing can be saved just now, and the operator gets one log line per
outage (then at most one every LOG_EVERY seconds), not a traceback per message and per
notifier round. The gateway keeps running and recovers by itself when the store does."""
from __future__ import annotations

import logging
import time

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from bot import metrics

logger = logging.getLogger(__name__)

LOG_EVERY = 300.0
_last_logged: float | None = None


def is_store_fault(error: BaseException | None) -> bool:
    """The database refused or could not do the work (not a bug in a query: those are
    ProgrammingError/IntegrityError and keep their traceback)."""
    if isinstance(error, (OperationalError, InterfaceError)):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def report(where: str, error: BaseException) -> None:
    global _last_logged
    metrics.STORE_ERRORS.inc()
    now = time.monotonic()
    if _last_logged is not None and now - _last_logged < LOG_EVERY:
        return
    _last_logged = now
    cause = str(getattr(error, "orig", None) or error).splitlines()[0][:200]
    logger.error("store unavailable (%s): %s; users are told to try again later "
                 "(logged once per %d s while it lasts)", where, cause, LOG_EVERY)


def recovered() -> None:
    """A store write succeeded again: the next fault is a new outage, logged at once."""
    global _last_logged
    if _last_logged is not None:
        _last_logged = None
        logger.warning("store available again")
