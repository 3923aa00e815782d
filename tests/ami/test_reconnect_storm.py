"""A server that takes the login and then drops (or sends a line over 1 MiB): backoff grows,
one log line per cycle, the outage recorded (issue 16.6)."""
from __future__ import annotations

import asyncio
import logging
import random

import pytest
from twisted.internet import task

from callcenter.ami.gateway import AmiGateway


class HostileAmi:
    """Banner, ``Response: Success`` to the Login, then ``mode``: drop | flood | stay."""

    def __init__(self, mode="drop"):
        self.mode = mode
        self.logins = 0
        self.server = None
        self.port = 0

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer):
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        try:
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                aid = next((ln.split(b": ", 1)[1] for ln in block.split(b"\r\n")
                            if ln.lower().startswith(b"actionid: ")), b"")
                writer.write(b"Response: Success\r\nActionID: " + aid + b"\r\nMessage: ok\r\n\r\n")
                if block.lower().startswith(b"action: login"):
                    self.logins += 1
                    if self.mode == "drop":
                        await writer.drain()
                        writer.close()
                        return
                    if self.mode == "flood":
                        writer.write(b"Event: X\r\nJunk: " + b"x" * (1024 * 1024 + 10))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _run_for(clock, seconds, step=0.25):
    for _ in range(int(seconds / step)):
        clock.advance(step)
        for _ in range(3):
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("mode", ["drop", "flood"])
async def test_login_then_drop_backs_off_logs_one_line_per_cycle_and_records_the_outage(mode, caplog):
    server = HostileAmi(mode)
    await server.start()
    clock = task.Clock()
    clock.advance(1_795_346_000)
    gw = AmiGateway("127.0.0.1", server.port, "u", "s", clock=clock, ping_interval=3600,
                    reconnect_base_delay=0.5, reconnect_max_delay=30, rng=random.Random(1), healthy_after=30)
    resyncs = []

    async def resync():   # like the tracker's: asks the server something, fails when the link goes
        resyncs.append(1)
        await gw.action({"Action": "QueueStatus"}, timeout=5)
    gw.on_connect(resync)
    caplog.set_level(logging.DEBUG, logger="callcenter.ami")
    await gw.start()
    try:
        await _run_for(clock, 30)
        logins_in_30s = server.logins
        assert 3 <= logins_in_30s <= 7, logins_in_30s        # was 67 in 30 s: backoff reset on each login
        assert gw.outage is not None and gw.outage.logins == logins_in_30s - 1
        cycles = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(cycles) == logins_in_30s                   # one line per cycle ...
        assert not any(r.exc_info for r in caplog.records)    # ... and no traceback
        assert all("reconnect in" in r.getMessage() for r in cycles)
        server.mode = "stay"                                  # the server behaves again
        await _run_for(clock, 75)
        assert gw.connected and gw.outage is None and len(gw.outages) == 1
        outage = gw.outages[0]
        assert outage.logins == server.logins - 1 and outage.end - outage.start > 60
        assert "outage over" in caplog.records[-1].getMessage()
    finally:
        await gw.stop()
        await server.stop()
