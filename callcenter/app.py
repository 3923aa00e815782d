"""Process entry points: ``serve`` (real Asterisk) and ``demo`` (simulated PBX).

Both run one asyncio loop with Twisted's reactor on it (``runtime.run``),
start the service's components in order and, on SIGINT/SIGTERM, stop taking
new work, let writers flush and close connections.
"""
from __future__ import annotations

import logging

from . import runtime
from .config import Config

log = logging.getLogger("callcenter")


def _check_schema(config: Config) -> None:
    from .store import Database

    db = Database(config.database_url)
    try:
        db.check_migrated()
    finally:
        db.close()


def serve(config: Config) -> int:
    _check_schema(config)  # before the loop: a one-line error, no half-started service

    async def main(stop) -> int:
        from .service import Service

        service = Service(config)
        try:
            await service.start()
            log.info("callcenter serving: AMI %s:%s, FastAGI %s:%s, web http://%s:%s/",
                     config.ami.host, config.ami.port, config.agi.host, config.agi.port,
                     config.web.host, config.web.port)
            await stop.wait()
            log.info("stopping: no new work, flushing writes")
        finally:
            await service.stop()
            service.db.close()
        return 0

    return runtime.run(main)
