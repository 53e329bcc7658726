"""Bot API calls that survive a flaky connection: AIORateLimiter (waits out 429 retry_after)
plus a few retries, with backoff, of calls that failed on the network or a proxy (502, a
dropped connection). Without them a reply whose sendMessage hit a 502 was lost: the turn had
been answered by Rasa and the user saw only the error handler's apology.

Not retried: a request Telegram refused (BadRequest, Forbidden, InvalidToken...), and
getUpdates (the updater polls again by itself, from the same offset, so no update is lost).
A retry after a failure that Telegram had in fact processed may send a message twice; losing
it is worse."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram.error import BadRequest, NetworkError
from telegram.ext import AIORateLimiter

logger = logging.getLogger(__name__)

NETWORK_RETRIES = 3
BACKOFF = (0.5, 1.0, 2.0)
NOT_RETRIED = frozenset({"getUpdates", "getupdates", "setWebhook", "setwebhook"})


class RetryingRateLimiter(AIORateLimiter):
    async def process_request(self, callback, args: Any, kwargs: dict[str, Any], endpoint: str,
                              data: dict[str, Any], rate_limit_args: int | None):
        attempt = 0
        while True:
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
            except BadRequest:
                raise  # Telegram's answer, not the network's: the same request would fail again
            except NetworkError as error:  # includes TimedOut
                if endpoint in NOT_RETRIED or attempt >= NETWORK_RETRIES:
                    raise
                logger.warning("Bot API %s failed (%s); retry %d of %d", endpoint, error,
                               attempt + 1, NETWORK_RETRIES)
                await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
