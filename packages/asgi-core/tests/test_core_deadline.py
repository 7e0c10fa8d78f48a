"""`Deadline`: fires once its delay has passed since the latest `arm`, never early, and not after `cancel`; the same
when it waits in a `DeadlineQueue` shared with others."""

from __future__ import annotations

import asyncio

from asgi_core import Deadline, DeadlineQueue

SHORT = 0.05


async def _fired_after(arm_then: float, delay: float, *, rearm_at: float | None = None) -> float | None:
    """Arm at `arm_then` seconds, optionally re-arm at `rearm_at`; when (seconds after start) it fired."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    fired: list[float] = []
    deadline = Deadline(loop, lambda: fired.append(loop.time() - started))
    await asyncio.sleep(arm_then)
    deadline.arm(delay)
    if rearm_at is not None:
        await asyncio.sleep(rearm_at - arm_then)
        deadline.arm(delay)
    await asyncio.sleep(delay * 4 + (rearm_at or 0))
    deadline.close()
    return fired[0] if len(fired) == 1 else None


def test_fires_once_after_its_delay() -> None:
    fired = asyncio.run(_fired_after(0, SHORT))
    assert fired is not None
    assert fired >= SHORT


def test_moving_it_later_delays_the_callback() -> None:
    fired = asyncio.run(_fired_after(0, SHORT * 2, rearm_at=SHORT))
    assert fired is not None
    assert fired >= SHORT * 3  # not at the first deadline, whose loop timer was left in place


def test_moving_it_earlier_fires_at_the_earlier_time() -> None:
    async def scenario() -> tuple[float, list[float]]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        fired: list[float] = []
        deadline = Deadline(loop, lambda: fired.append(loop.time() - started))
        deadline.arm(10.0)
        deadline.arm(SHORT)
        await asyncio.sleep(SHORT * 4)
        deadline.close()
        return started, fired

    _, fired = asyncio.run(scenario())
    assert len(fired) == 1
    assert SHORT <= fired[0] < 1.0


def test_cancel_and_close_stop_it() -> None:
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        fired: list[str] = []
        cancelled = Deadline(loop, lambda: fired.append("cancelled"))
        closed = Deadline(loop, lambda: fired.append("closed"))
        cancelled.arm(SHORT)
        closed.arm(SHORT)
        cancelled.cancel()
        closed.close()
        assert not cancelled.armed
        assert not closed.armed
        await asyncio.sleep(SHORT * 3)
        return fired

    assert asyncio.run(scenario()) == []


def test_none_disarms() -> None:
    async def scenario() -> list[int]:
        loop = asyncio.get_running_loop()
        fired: list[int] = []
        deadline = Deadline(loop, lambda: fired.append(1))
        deadline.arm(SHORT)
        assert deadline.armed
        deadline.arm(None)
        assert not deadline.armed
        await asyncio.sleep(SHORT * 3)
        return fired

    assert asyncio.run(scenario()) == []


def test_deadlines_in_a_queue_fire_in_order_after_its_delay_unless_taken_out() -> None:
    async def scenario() -> tuple[list[tuple[str, float]], int]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        queue = DeadlineQueue(loop, SHORT)
        fired: list[tuple[str, float]] = []

        def deadline(name: str) -> Deadline:
            return Deadline(loop, lambda: fired.append((name, loop.time() - started)))

        first, cancelled, closed, moved, last = (
            deadline(n) for n in ("first", "cancelled", "closed", "moved", "last")
        )
        for each in (first, cancelled, closed, moved):
            each.arm_in(queue)
        await asyncio.sleep(SHORT / 2)
        last.arm_in(queue)
        cancelled.cancel()
        closed.close()
        moved.arm(SHORT * 4)  # out of the queue, on a timer of its own
        assert first.armed
        assert not cancelled.armed
        await asyncio.sleep(SHORT * 6)
        return fired, len(queue)

    fired, waiting = asyncio.run(scenario())
    assert [name for name, _ in fired] == ["first", "last", "moved"]
    first_at, last_at, moved_at = (at for _, at in fired)
    assert SHORT <= first_at < last_at  # never early: the later one waited for its own time
    assert last_at >= SHORT * 1.5
    assert moved_at >= SHORT * 4.5
    assert waiting == 0  # nothing is held once fired or taken out


def test_a_fired_deadline_can_be_armed_again() -> None:
    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        queue = DeadlineQueue(loop, SHORT)
        fired: list[int] = []
        deadline = Deadline(loop, lambda: fired.append(1))
        deadline.arm_in(queue)
        await asyncio.sleep(SHORT * 2)
        assert not deadline.armed
        deadline.arm_in(queue)
        await asyncio.sleep(SHORT * 2)
        return len(fired)

    assert asyncio.run(scenario()) == 2
