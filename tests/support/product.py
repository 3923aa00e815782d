"""The product as ``callcenter serve`` builds it (``app.build``), against a simulated PBX."""
from __future__ import annotations

from twisted.internet import reactor

from callcenter.app import build
from callcenter.clock import ScaledClock


async def simulated_product(config, db, tmp_path, *, scale: float, start: float, seed: int = 3):
    """``(clock, pbx, product)``: a started simulated PBX and the product built (not started)
    with its AMI pointed at it, FastAGI, web on free ports, recordings under ``tmp_path``, no
    dialer.  The caller starts the product, sets ``pbx.agi_port`` and stops both."""
    from callcenter.simulator import SimConfig, SimulatedPBX

    clock = ScaledClock(reactor, scale, start=start)
    sim = SimConfig()
    pbx = SimulatedPBX(clock, seed=seed, spool_dir=tmp_path / "pbx", agi_port=1, config=sim)
    await pbx.start(host="127.0.0.1", ami_port=0)
    cfg = config.with_overrides({
        "ami": {"host": "127.0.0.1", "port": pbx.ami_port, "username": sim.username, "secret": sim.secret},
        "agi": {"host": "127.0.0.1", "port": 0},
        "recordings": {"directory": str(tmp_path / "rec"), "spool_dir": str(tmp_path / "rec")},
        "dialer": {"enabled": False},
        "web": {"host": "127.0.0.1", "port": 0},
    })
    return clock, pbx, build(cfg, clock=clock, db=db)
