"""A per-chat flood limit, shared by the channels that slow a flood down rather than refuse it
(Telegram's update processor, WeChat's callback): one chat sending 50 messages a second waits its
turn without starving the others."""
from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Hashable


class ChatRateLimit:
    """At most `rate` updates per `window` seconds per chat; later ones wait their turn."""

    def __init__(self, rate: int, window: float) -> None:
        self.rate = rate
        self.window = window
        self._times: dict[Hashable, deque[float]] = defaultdict(deque)
        self._swept = time.monotonic()

    def __len__(self) -> int:
        return len(self._times)

    def delay(self, chat_id: Hashable) -> float:
        now = time.monotonic()
        self._forget_quiet(now)
        times = self._times[chat_id]
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) < self.rate:
            times.append(now)
            return 0.0
        wait = self.window - (now - times[0])
        times.popleft()
        times.append(now + wait)
        return max(wait, 0.0)

    def _forget_quiet(self, now: float) -> None:
        """Drop the chats that sent nothing for a window (a gateway meets every user once: one
        deque per chat ever seen grew without end). At most once a window, so O(1) amortised."""
        if now - self._swept < self.window:
            return
        self._swept = now
        for chat_id in [c for c, times in self._times.items() if not times or now - times[-1] >= self.window]:
            del self._times[chat_id]
