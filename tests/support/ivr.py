"""Run complete IVR calls over real FastAGI TCP: AgiServer <-> run_agi (simulated Asterisk)."""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from twisted.internet import reactor

from callcenter.clock import ScaledClock
from callcenter.simulator.agi_client import ScriptedCaller, run_agi
from tests import support

TZ = ZoneInfo("Asia/Shanghai")
# A Wednesday 10:00 in Shanghai (open), and a Wednesday 22:00 (closed); 2026-10-01 is a holiday.
OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=TZ).timestamp()
CLOSED = dt.datetime(2026, 11, 25, 22, 0, tzinfo=TZ).timestamp()
HOLIDAY = dt.datetime(2026, 10, 1, 10, 0, tzinfo=TZ).timestamp()


def recordings_config(directory, config=None):
    """The configuration with `[recordings] directory` = `spool_dir` = ``directory``
    (ours and Asterisk's name for it): voice messages are recorded there."""
    from callcenter.config import load_config

    return (config or load_config(None)).with_overrides(
        {"recordings": {"directory": str(directory), "spool_dir": str(directory)}})


@contextlib.asynccontextmanager
async def agi_server(db=None, *, at=OPEN, scale=200.0, dialer=None, spool=None, **kw):
    """The product's FastAGI server on a scaled clock; ``dialer`` replaces the dialer's
    callback/survey port (a test double that records what the IVR asked).  Voice messages
    go to ``spool`` (default: a temporary directory) as both the catalogue's directory
    and Asterisk's."""
    clock = ScaledClock(reactor, scale, start=at)
    with contextlib.ExitStack() as stack:
        if spool is None and "config" not in kw:
            spool = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ivr-recordings-")))
        if spool is not None:
            kw["config"] = recordings_config(spool, kw.get("config"))
            kw.setdefault("recordings_dir", str(spool))
        server = support.agi_server(clock=clock, db=db, **kw)
        if dialer is not None:
            server.ports = dataclasses.replace(server.ports, callbacks=dialer, surveys=dialer)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()


async def call(server, flow="hotline", *, number="13800138002", name="王小明",
               uniqueid="1795346775.48", env=None, **caller_kw):
    clock = server.clock
    caller = ScriptedCaller(clock, uniqueid=uniqueid, **caller_kw)
    url = f"agi://127.0.0.1:{server.port}/{flow}"
    values = {"agi_callerid": number, "agi_calleridname": name, "agi_context": "hotline",
              **(env or {})}
    try:
        status = await run_agi(url, values, caller)
    finally:
        caller.close()
    return status, caller
