"""``callcenter simulator run``: the simulated Asterisk on its own (AMI on a TCP port).

Useful to point a dev instance of the service (or ``telnet``) at: it serves AMI with
the trace configuration and, with ``--calls``, plays a day of inbound traffic
``--scale`` times faster than real time.  Ctrl-C stops it cleanly.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(sub, common) -> None:
    p = sub.add_parser("simulator", parents=[common], help="the simulated Asterisk (AMI + FastAGI client)")
    ssub = p.add_subparsers(dest="simulator_command", metavar="ACTION")
    r = ssub.add_parser("run", parents=[common], help="serve AMI and simulate traffic until stopped")
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--ami-port", type=int, default=5038)
    r.add_argument("--scale", type=float, default=1.0, help="simulated seconds per real second")
    r.add_argument("--calls", type=float, default=0, help="expected inbound calls over the day (0 = none)")
    r.add_argument("--context", default="hotline-plain", help="hotline | hotline-plain | hotline-timeout")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--agi-host", default="127.0.0.1")
    r.add_argument("--agi-port", type=int, default=4573)
    r.add_argument("--spool-dir", default=None, help="where MixMonitor/voice files go (default: data dir)")
    r.add_argument("--queue-log", default=None, help="write Asterisk's queue_log here")
    r.set_defaults(func=cmd_run)


def cmd_run(args, config) -> int:
    from callcenter.cli import UserError
    from callcenter.clock import ScaledClock
    from callcenter.runtime import run

    from .people import DayProfile, run_traffic
    from .pbx import SimulatedPBX

    if args.scale <= 0:
        raise UserError("--scale must be > 0")
    spool = Path(args.spool_dir) if args.spool_dir else Path(config.data_dir) / "simulator-spool"

    async def main(stop: asyncio.Event) -> int:
        from twisted.internet import reactor

        clock = ScaledClock(reactor, args.scale)
        pbx = SimulatedPBX(clock, seed=args.seed, spool_dir=spool, agi_host=args.agi_host,
                           agi_port=args.agi_port, queue_log=args.queue_log)
        try:
            await pbx.start(args.host, args.ami_port)
        except OSError as exc:
            raise UserError(f"cannot listen on {args.host}:{args.ami_port}: {exc.strerror}") from None
        print(f"simulated Asterisk: AMI on {args.host}:{pbx.ami_port} (user bridge / bridge-secret), "
              f"x{args.scale:g} time", flush=True)
        traffic = None
        if args.calls:
            traffic = run_traffic(pbx, DayProfile(calls=args.calls, context=args.context,
                                                  agents={"consultation": 3, "complaint": 1}), seed=args.seed)
            print(f"{len(traffic.arrivals)} calls planned over {traffic.duration / 3600:.1f} simulated hours",
                  flush=True)
        try:
            await stop.wait()
        finally:
            if traffic is not None:
                traffic.cancel()
                print(traffic.summary(), flush=True)
            await pbx.stop()
        return 0

    return run(main)
