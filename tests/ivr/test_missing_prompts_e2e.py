"""Issue 14.6: a prompt file missing on the PBX does not hang the caller up.

The simulated Asterisk is given a sounds directory; like Asterisk, GET DATA on a file it
lacks answers ``200 result=-1`` at once (and STREAM FILE ``200 result=-1 endpos=0``).  The
IVR used to take that for a caller hang-up: the session ended ``hangup`` and the caller
was dropped.  Now it asks ``CHANNEL STATUS`` (a gone caller gets 511), logs a warning
naming the file, and carries on; the start-up check names the missing files.
"""
from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from callcenter.simulator import SimulatedPBX
from ivr_flows.flow import FLOWS_DIR, load_flow
from ivr_flows.prompts import extra_texts
from ivr_flows.models import IvrSession
from tests import support

from tests.support.ivr import OPEN

MISSING = {"callcenter/zh/hotline/main_menu", "callcenter/zh/hotline/welcome"}


def sounds(tmp_path):
    """What `callcenter prompts build` would install (every served flow's prompts, the
    spoken segments and notification messages), less MISSING."""
    root = tmp_path / "sounds"
    flows = [load_flow(p) for p in sorted(FLOWS_DIR.glob("*.yaml"))]
    names = {flow.prompt_file(pid, lang, "callcenter") for flow in flows for pid in flow.prompts
             for lang in flow.languages}
    names |= {f"callcenter/{lang}/{d}/{name}" for d, name, lang, _ in extra_texts(flows)}
    for name in names - MISSING:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / f"{name}.wav").write_bytes(b"RIFF")
    return root


async def test_missing_menu_prompt_is_no_input_not_a_hang_up(db, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    clock = ScaledClock(reactor, 50, start=OPEN)
    root = sounds(tmp_path)
    server = support.agi_server(clock=clock, db=db, sounds_dir=root, recordings_dir=str(tmp_path / "rec"))
    await server.start()
    pbx = SimulatedPBX(clock, seed=2, spool_dir=tmp_path / "pbx", agi_port=server.port)
    pbx.sounds_dir = root
    await pbx.start(host="127.0.0.1", ami_port=0)
    try:
        assert server.missing_prompts == sorted(MISSING)
        assert any("IVR prompts missing" in r.getMessage() and "zh/hotline/main_menu" in r.getMessage()
                   for r in caplog.records if r.levelname == "ERROR")
        call = pbx.inbound_call("13800138002", "王小明", context="hotline", digits="1", digit_delay=1,
                                patience=120)
        loop = asyncio.get_running_loop()
        end = loop.time() + 20

        def row():
            with db.session() as s:
                return s.scalars(select(IvrSession)).first()
        while (r := row()) is None or r.ended_at is None:
            assert loop.time() < end, "IVR session not finished"
            await asyncio.sleep(0.02)
    finally:
        await pbx.stop()
        await server.stop()
    # no menu heard, no key pressed: the menu's retries run out and a person helps
    assert r.result == "operator" and r.path[-2:] == ["main", "operator"], (r.result, r.path)
    warnings = r.detail["warnings"]
    assert any("callcenter/zh/hotline/welcome missing" in w for w in warnings)
    assert sum("callcenter/zh/hotline/main_menu missing" in w for w in warnings) == 3  # 1 + 2 retries
    assert not call.done or call.outcome != "ivr-hangup"
