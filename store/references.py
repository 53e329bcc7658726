"""Booking references: short, unambiguous, easy to read aloud (SC-7K3F9Q)."""
from __future__ import annotations

import secrets

# No 0/O, 1/I/L, 5/S, 2/Z, 8/B: a reference read aloud on the phone or copied from a
# screenshot should not be misread. 25 symbols ** 6 = 244 million references.
REFERENCE_ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
REFERENCE_LENGTH = 6
REFERENCE_PREFIX = "SC-"


def new_reference() -> str:
    return REFERENCE_PREFIX + "".join(
        secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH)
    )


def normalise_reference(text: str) -> str:
    """'sc-7k3f9q', 'SC 7K3F9Q', '7K3F9Q' -> 'SC-7K3F9Q'."""
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    if cleaned.startswith("SC"):
        cleaned = cleaned[2:]
    return REFERENCE_PREFIX + cleaned
