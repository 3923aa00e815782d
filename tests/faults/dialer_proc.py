"""A dialer process for the SIGKILL test: AMI gateway + dialer + FastAGI server (the
survey) against a simulated PBX in the parent, on a clock shared through wall time.

    python -m tests.faults.dialer_proc DB_URL AMI_PORT AGI_PORT REAL0 SIM0 SCALE INSTANCE

Prints ``ready`` once logged in and dialling; runs until killed (or SIGTERM).
"""
from __future__ import annotations

import logging
import sys

from dialer.compliance import Rules
from dialer.engine import DialSettings
from dialer.pacing import StaticAgents

RULES = Rules(max_attempts=3, retry_minutes={"busy": 2.0, "no_answer": 3.0, "congestion": 3.0, "failed": 3.0,
                                             "hungup": 3.0, "abandoned": 3.0})
DIAL = DialSettings(channel_template="Local/{number}@sim-patient", originate_timeout=20, max_rate=2,
                    max_channels=6)
MIN_RETRY = 120.0      # seconds: the shortest retry delay above


def main(argv: list[str]) -> int:
    db_url, ami_port, agi_port, real0, sim0, scale, instance = argv
    from callcenter import runtime

    async def run(stop) -> int:
        from twisted.internet import reactor

        from callcenter.ami.gateway import AmiGateway
        from callcenter.clock import ScaledClock
        from callcenter.store import Database
        from dialer.engine import Dialer

        clock = ScaledClock(reactor, float(scale))
        clock._real0, clock._sim0 = float(real0), float(sim0)  # the parent's simulated time
        db = Database(db_url)
        from ivr_flows.server import AgiServer

        from tests import support

        agi = AgiServer("127.0.0.1", int(agi_port), clock=clock, db=db, ports=support.ivr_ports(clock=clock),
                        recordings_dir=str(support.domain(clock=clock).recording_settings.spool_dir))
        await agi.start()
        gw = AmiGateway("127.0.0.1", int(ami_port), "bridge", "bridge-secret", clock=clock,
                        action_timeout=600, reconnect_base_delay=1)
        dialer = Dialer(agents=StaticAgents(), db=db, clock=clock, gateway=gw, rules=RULES, instance=instance, dial=DIAL)
        await gw.start()
        await gw.wait_connected(10)
        await dialer.start()
        print("ready", flush=True)
        await stop.wait()
        await dialer.stop()
        await gw.stop()
        await agi.stop()
        return 0

    return runtime.run(run)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(main(sys.argv[1:]))
