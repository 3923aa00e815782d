"""The parts as the composition root builds them: [ami] config -> gateway -> queue-call tracker."""
from __future__ import annotations

import asyncio

from sqlalchemy import select

from callcenter.ami.replay import ReplayServer
from callcenter.ami.tracefile import traces_dir
from callcenter.app import build
from callcenter.config import load_config
from callcenter.queuecalls.models import QueueCall


async def test_assembly_wires_gateway_and_tracker(config_env, db, monkeypatch):
    server = await ReplayServer(traces_dir() / "02-inbound-abandoned.ami").start()
    monkeypatch.setenv("CALLCENTER_AMI_PORT", str(server.port))
    monkeypatch.setenv("CALLCENTER_AMI_SECRET", "bridge-secret")
    a = build(load_config(None), db=db)
    names = [p.name for p in a.parts]
    assert names.index("Asterisk server default") < names.index("web")  # the server's consumers start first
    assert [p.name for p in a.site("default").parts] == ["ami", "queuecalls", "agent-sessions", "recordings", "dialer"]
    assert a.queuecalls.gateway is a.ami and a.dialer.gateway is a.ami and a.recordings.gateway is a.ami
    gw, tracker = a.ami, a.queuecalls
    await gw.start()
    await tracker.start()
    try:
        await gw.wait_connected(5)
        await asyncio.wait_for(server.finished.wait(), 10)
        while tracker.written < 1:
            await asyncio.sleep(0.01)
        # every login: the queues' wrapuptime (GetConfig queues.conf), then the live state
        assert [a.get("Action") for a in server.actions][:4] == ["Login", "GetConfig", "QueueStatus",
                                                                  "CoreShowChannels"]
    finally:
        await tracker.stop()
        await gw.stop()
        await server.stop()
    with db.session() as s:
        (row,) = s.scalars(select(QueueCall))
    assert (row.outcome, row.queue, row.caller_name) == ("abandoned", "complaint", "Zhang Min")
