"""Time-ordered UUIDs (RFC 9562 version 7) for insert-heavy tables.

Python 3.11 has no `uuid.uuid7`. Keys that grow with time keep B-tree inserts at the right edge
(no page splits all over the index) and make `ORDER BY id` follow insertion order. Within one
millisecond the 12-bit `rand_a` field is a counter (RFC 9562 §6.2 method 1), so ids made by one
process are strictly increasing.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _counter = ms, int.from_bytes(os.urandom(2)) & 0x3FF  # headroom to count
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms, _counter = _last_ms + 1, 0
            ms = _last_ms
        counter = _counter
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76 | counter << 64
    value |= 0b10 << 62 | int.from_bytes(os.urandom(8)) & 0x3FFF_FFFF_FFFF_FFFF
    return uuid.UUID(int=value)
