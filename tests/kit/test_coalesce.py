"""kit.coalesce: the calls of one event-loop turn share one load; each gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from worthline.kit.coalesce import Coalescer


class Recorder:
    """A load that records its batches and answers each item with its double."""

    def __init__(self, pause: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.pause = pause

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        if self.pause:
            await asyncio.sleep(self.pause)
        return [2 * item for item in items]


async def test_calls_of_one_turn_share_one_load_in_call_order():
    load = Recorder()
    coalescer = Coalescer(load)
    answers = await asyncio.gather(*(coalescer(i) for i in (5, 3, 5, 1)))
    assert answers == [10, 6, 10, 2]
    assert load.batches == [[5, 3, 5, 1]]  # repeated items are sent as often as asked


async def test_calls_of_separate_turns_load_separately():
    load = Recorder()
    coalescer = Coalescer(load)
    assert await coalescer(1) == 2
    assert await coalescer(2) == 4
    assert load.batches == [[1], [2]]


async def test_calls_made_while_a_load_runs_form_the_next_batch():
    load = Recorder(pause=0.05)
    coalescer = Coalescer(load)
    first = asyncio.gather(*(coalescer(i) for i in (1, 2)))
    await asyncio.sleep(0.01)  # the first load is under way
    second = asyncio.gather(*(coalescer(i) for i in (3, 4)))
    assert await first == [2, 4]
    assert await second == [6, 8]
    assert load.batches == [[1, 2], [3, 4]]


async def test_a_full_batch_goes_at_once():
    load = Recorder()
    coalescer = Coalescer(load, max_batch=3)
    answers = await asyncio.gather(*(coalescer(i) for i in range(7)))
    assert answers == [2 * i for i in range(7)]
    assert load.batches == [[0, 1, 2], [3, 4, 5], [6]]


async def test_a_failed_load_fails_each_of_its_callers_only():
    calls = 0

    async def flaky(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("server gone")
        return list(items)

    coalescer = Coalescer(flaky)
    outcomes = await asyncio.gather(*(coalescer(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    assert await asyncio.gather(coalescer(7), coalescer(8)) == [7, 8]


async def test_a_load_answering_the_wrong_number_of_items_is_an_error():
    async def short(items: Sequence[int]) -> list[int]:
        return list(items)[:-1]

    coalescer = Coalescer(short)
    outcomes = await asyncio.gather(coalescer(1), coalescer(2), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)


async def test_a_cancelled_caller_leaves_the_others_their_answers():
    load = Recorder(pause=0.05)
    coalescer = Coalescer(load)
    leaving = asyncio.ensure_future(coalescer(1))
    staying = asyncio.ensure_future(coalescer(2))
    await asyncio.sleep(0.01)
    leaving.cancel()
    assert await staying == 4
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert load.batches == [[1, 2]]  # sent, as a single call cancelled mid-round-trip is


async def test_each_event_loop_has_its_own_batches():
    load = Recorder()
    coalescer = Coalescer(load)

    def other_loop() -> list[int]:
        async def run() -> list[int]:
            return list(await asyncio.gather(coalescer(10), coalescer(11)))

        return asyncio.run(run())

    here = asyncio.gather(coalescer(1), coalescer(2))
    there = await asyncio.to_thread(other_loop)
    assert await here == [2, 4]
    assert there == [20, 22]
    assert sorted(load.batches) == [[1, 2], [10, 11]]
