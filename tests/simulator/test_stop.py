"""``SimulatedPBX.stop()`` in the middle of calls leaves nothing behind: no pending timer on
the PBX's clock, no running task (FastAGI sessions included), the AGI socket closed."""
from __future__ import annotations

import asyncio

from twisted.internet import task

from callcenter.simulator import SimConfig, SimulatedPBX


def _pending_tasks(before: set) -> list:
    return [t for t in asyncio.all_tasks() if t not in before and not t.done()]


class HoldingAgiServer:
    """FastAGI server that answers, then asks for a digit with a long timeout and waits."""

    def __init__(self):
        self.commands_sent = 0
        self.eof = asyncio.Event()
        self.waiting = asyncio.Event()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer) -> None:
        try:
            while (await reader.readline()).strip():
                pass
            writer.write(b"ANSWER\n")
            await reader.readline()
            writer.write(b"GET DATA beep 30000 4\n")
            await writer.drain()
            self.waiting.set()
            while await reader.read(1024):
                pass
            self.eof.set()
        finally:
            writer.close()

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def _run(clock: task.Clock, seconds: float, step: float = 0.05) -> None:
    for _ in range(int(seconds / step)):
        clock.advance(step)
        await asyncio.sleep(0)


async def test_stop_mid_ivr_cancels_the_agi_session_and_its_timers():
    before = set(asyncio.all_tasks())
    clock = task.Clock()
    clock.advance(1795300000)
    agi = HoldingAgiServer()
    pbx = SimulatedPBX(clock, seed=1, agi_port=await agi.start())
    await pbx.start()
    try:
        pbx.inbound_call("13800138002", "王小明", context="hotline", digits="", patience=600)
        for _ in range(200):
            clock.advance(0.05)
            await asyncio.sleep(0.002)
            if agi.waiting.is_set() and clock.getDelayedCalls():
                break
        assert agi.waiting.is_set()
        await _run(clock, 2.0)  # GET DATA is playing/waiting on the clock
        assert clock.getDelayedCalls(), "the AGI session should be waiting on the PBX clock"
        assert _pending_tasks(before), "the AGI session should be a running task"
        await pbx.stop()
        assert clock.getDelayedCalls() == []
        assert not [t for t in _pending_tasks(before) if "_handle" not in repr(t)]  # no AGI session left
        await asyncio.wait_for(agi.eof.wait(), 2)  # the FastAGI connection was closed
        await asyncio.sleep(0.01)
        assert _pending_tasks(before) == []
    finally:
        await pbx.stop()
        await agi.stop()


async def test_stop_mid_queue_leaves_no_timer():
    before = set(asyncio.all_tasks())
    clock = task.Clock()
    clock.advance(1795300000)
    pbx = SimulatedPBX(clock, seed=1, config=SimConfig(queues={"consultation": [("1001", "Agent 1001")]}))
    pbx.set_agent("1001", answer_delay=40, talk_time=5, wrapup=30)
    await pbx.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    try:
        pbx.inbound_call("13800000001", "A", context="hotline-plain", digits="1", digit_delay=1, patience=300)
        pbx.inbound_call("13800000002", "B", context="hotline-plain", digits="1", digit_delay=1, patience=300)
        await _run(clock, 12.0)
        q = pbx.queues["consultation"]
        assert len(q.entries) == 2 and any(e.ringing for e in q.entries)  # one rings, one waits
        await pbx.stop()
        assert clock.getDelayedCalls() == []
        assert _pending_tasks(before) == []
        assert await asyncio.wait_for(reader.read(), 2) is not None  # AMI session closed
    finally:
        writer.close()
        await pbx.stop()


async def test_stop_after_wrapup_started_cancels_the_wrapup_timer():
    clock = task.Clock()
    clock.advance(1795300000)
    pbx = SimulatedPBX(clock, seed=1, config=SimConfig(queues={"consultation": [("1001", "Agent 1001")]}))
    pbx.set_agent("1001", answer_delay=1, talk_time=3, wrapup=120)
    pbx.inbound_call("13800000001", "A", context="hotline-plain", digits="1", digit_delay=1, patience=300,
                     stay_when_connected=True)
    await _run(clock, 15.0)
    assert pbx.queues["consultation"].members[0].wrapup_until > clock.seconds()
    await pbx.stop()
    assert clock.getDelayedCalls() == []
