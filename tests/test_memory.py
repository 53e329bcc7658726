"""bot/memory.py: freed memory goes back to the operating system (glibc)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from stack.settings import ROOT

# In a fresh process: ~100 MB of 1 KB objects (each its own malloc), every 50th kept, so the
# heap is full of holes that plain free() leaves resident.
PROBE = """
from bot.memory import release_freed_memory
def rss():
    return next(int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith("VmRSS"))
blocks = [bytes(1024) + bytes([i % 256]) for i in range(100_000)]
kept = blocks[::50]
del blocks
before = rss()
released = release_freed_memory()
print(before, rss(), released, len(kept))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_memory_goes_back_to_the_system() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    before, after, released, _ = done.stdout.split()
    assert released == "True"
    assert int(after) < int(before) - 50, done.stdout  # MB
