"""Prometheus metrics of the gateway (served on /metrics by bot/health.py).

Counted here, in this process: turns by channel and language, turn latency, fallbacks, Rasa
unavailability. Read from the store at scrape time (so they count what the action servers
and the console did too, whichever process did it): bookings, handoffs and the time staff took
to claim them. Every gateway reports the same store figures: aggregate those with max(), not
sum().
"""
from __future__ import annotations

import logging

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from store import stats

logger = logging.getLogger(__name__)

# Intents that mean "not understood": the answer was the fallback.
FALLBACK_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})

TURNS = Counter("score_turns", "User messages answered through Rasa", ["channel", "language"])
TURN_SECONDS = Histogram(
    "score_turn_seconds", "Time from a user message to its answer (store + Rasa + actions)", ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)
FALLBACKS = Counter("score_fallbacks", "Turns Rasa did not understand (fallback answer)", ["language"])
RASA_UNAVAILABLE = Counter(
    "score_rasa_unavailable", "Calls to Rasa that failed: unreachable, an error status, or no answer in time")
STORE_ERRORS = Counter("score_store_errors", "Updates that failed on a store error (read-only, full, unreachable)")

CLAIM_BUCKETS = (30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)


def observe_turn(channel: str, language: str, seconds: float, intent: str | None) -> None:
    TURNS.labels(channel, language).inc()
    TURN_SECONDS.labels(channel).observe(seconds)
    if intent in FALLBACK_INTENTS:
        FALLBACKS.labels(language).inc()


class StoreCollector:
    """Bookings, handoffs and time-to-claim, counted in the store when Prometheus scrapes."""

    def __init__(self, db) -> None:
        self.db = db

    def collect(self):
        try:
            counted = stats.figures(self.db)
        except Exception as error:  # a scrape must not fail because the store does
            logger.warning("metrics: store not readable: %s", error)
            return
        family = GaugeMetricFamily("score_bookings", "Bookings in the store", labels=["kind", "status"])
        for kind, status, count in counted.bookings:
            family.add_metric([kind, status], count)
        yield family
        family = GaugeMetricFamily("score_handoffs", "Handoffs to staff in the store", labels=["reason", "status"])
        for reason, status, count in counted.handoffs:
            family.add_metric([reason, status], count)
        yield family
        waits = counted.claim_waits
        buckets, index = [], 0
        for bound in CLAIM_BUCKETS:
            while index < len(waits) and waits[index] <= bound:
                index += 1
            buckets.append((str(float(bound)), index))
        buckets.append(("+Inf", len(waits)))
        yield HistogramMetricFamily(
            "score_handoff_claim_seconds", "Time from a handoff to a staff member claiming it",
            buckets=buckets, sum_value=sum(waits),
        )


_collectors: dict[str, StoreCollector] = {}


def register_store(db) -> None:
    """Once per store URL and process (tests build several gateways in one process)."""
    if db.url not in _collectors:
        if _collectors:  # another store in this process (tests): report the newest
            for old in _collectors.values():
                REGISTRY.unregister(old)
            _collectors.clear()
        _collectors[db.url] = StoreCollector(db)
        REGISTRY.register(_collectors[db.url])
    else:
        _collectors[db.url].db = db
