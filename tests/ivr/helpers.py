"""Run complete IVR calls over real FastAGI TCP: AgiServer <-> run_agi (simulated Asterisk)."""
from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from twisted.internet import reactor

from callcenter.clock import ScaledClock
from callcenter.simulator.agi_client import ScriptedCaller, run_agi
from ivr_flows.server import AgiServer

TZ = ZoneInfo("Asia/Shanghai")
# A Wednesday 10:00 in Shanghai (open), and a Wednesday 22:00 (closed); 2026-10-01 is a holiday.
OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=TZ).timestamp()
CLOSED = dt.datetime(2026, 11, 25, 22, 0, tzinfo=TZ).timestamp()
HOLIDAY = dt.datetime(2026, 10, 1, 10, 0, tzinfo=TZ).timestamp()


@contextlib.contextmanager
def recordings_in(directory):
    """`[recordings] directory` = `spool_dir` = ``directory`` for the catalogue (process-wide
    settings), restored afterwards; voice messages are recorded there."""
    from recordings import catalog
    from recordings.settings import Settings

    before = catalog._settings
    catalog.configure(Settings(directory=directory, spool_dir=directory))
    try:
        yield directory
    finally:
        catalog._settings = before


@contextlib.asynccontextmanager
async def agi_server(db=None, *, at=OPEN, scale=200.0, **kw):
    """A FastAGI server; voice messages go to a temporary recordings directory unless the
    test names one (``recordings_dir`` = the catalogue's, see :func:`recordings_in`)."""
    clock = ScaledClock(reactor, scale, start=at)
    with contextlib.ExitStack() as stack:
        if "recordings_dir" not in kw:
            spool = stack.enter_context(tempfile.TemporaryDirectory(prefix="ivr-recordings-"))
            stack.enter_context(recordings_in(Path(spool)))
            kw["recordings_dir"] = spool
        server = AgiServer("127.0.0.1", 0, clock=clock, db=db, **kw)
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
