"""Time-ordered UUIDs (RFC 9562 version 7) for insert-heavy tables.

Python 3.11 has no `uuid.uuid7`. Keys that grow with time keep B-tree inserts at the right edge
(no page splits all over the index) and make `ORDER BY id` follow insertion order. Within one
millisecond the 12-bit `rand_a` field is a counter (RFC 9562 §6.2 method 1), so ids made by one
process are strictly increasing.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0
# The random bits need uniqueness, not secrecy (the time and counter order the ids), so a
# PRNG seeded from the OS is enough and spares a system call per id; re-seeded in a fork child.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def uuid7() -> uuid.UUID:
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _counter = ms, _random.getrandbits(10)  # leaves headroom to count
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms, _counter = _last_ms + 1, 0
            ms = _last_ms
        counter = _counter
        tail = _random.getrandbits(62)
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76 | counter << 64
    value |= 0b10 << 62 | tail
    return uuid.UUID(int=value)
