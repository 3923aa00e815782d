"""The components as the service builds them: [ami] config -> gateway, "queuecalls" tracker."""
from __future__ import annotations

import asyncio

from sqlalchemy import select

from callcenter.ami.replay import ReplayServer
from callcenter.ami.tracefile import traces_dir
from callcenter.config import load_config
from callcenter.queuecalls.models import QueueCall
from callcenter.service import COMPONENT_FACTORIES, Service


async def test_service_factories_wire_gateway_and_tracker(config_env, db, monkeypatch):
    mine = ["callcenter.ami.gateway:from_service", "callcenter.queuecalls.tracker:from_service"]
    assert [f for f in COMPONENT_FACTORIES if f in mine] == mine  # the gateway starts first
    server = await ReplayServer(traces_dir() / "02-inbound-abandoned.ami").start()
    monkeypatch.setenv("CALLCENTER_AMI_PORT", str(server.port))
    monkeypatch.setenv("CALLCENTER_AMI_SECRET", "bridge-secret")
    service = Service(load_config(None), db=db, factories=mine)
    await service.start()
    try:
        gw, tracker = service.get("ami"), service.get("queuecalls")
        await gw.wait_connected(5)
        await asyncio.wait_for(server.finished.wait(), 10)
        while tracker.written < 1:
            await asyncio.sleep(0.01)
        assert [a.get("Action") for a in server.actions][:3] == ["Login", "QueueStatus", "CoreShowChannels"]
    finally:
        await service.stop()
        await server.stop()
    with db.session() as s:
        (row,) = s.scalars(select(QueueCall))
    assert (row.outcome, row.queue, row.caller_name) == ("abandoned", "complaint", "Zhang Min")
