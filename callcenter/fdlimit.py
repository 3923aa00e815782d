"""Open-file budget: raise the soft limit at start, and share it between web and FastAGI.

systemd and most shells start services with a soft ``RLIMIT_NOFILE`` of 1,024
while the hard limit is far higher; each HTTP connection and each FastAGI
session is one descriptor, so at 1,024 a few hundred slow web clients used to
leave a hotline caller no socket at all.  :func:`raise_soft_limit` lifts the
soft limit to the hard one; :func:`web_connection_cap` keeps the web's cap
below what is left after FastAGI's sessions and a reserve (database, AMI,
logs, recordings), so the web can never starve the IVR.
"""
from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)
RESERVE = 128            # descriptors kept for the database pool, AMI, log files, recordings
CEILING = 1 << 20        # when the hard limit is "unlimited": the kernel's usual nr_open


def soft_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_soft_limit() -> tuple[int, int]:
    """Set the soft open-files limit to the hard limit; returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = CEILING if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("open-files limit stays %d (could not raise it to %d: %s)", soft, target, exc)
            return soft, soft
        log.info("open-files limit raised from %d to %d", soft, target)
        return soft, target
    return soft, soft


class BudgetError(ValueError):
    """The open-files limit cannot hold the configured FastAGI sessions and a usable web."""


def web_connection_cap(configured: int, agi_sessions: int, limit: int | None = None) -> int:
    """The web's connection cap that fits beside ``agi_sessions`` within ``limit``."""
    limit = soft_limit() if limit is None else limit
    room = limit - agi_sessions - RESERVE
    if room < 16:
        raise BudgetError(f"open-files limit {limit} leaves {room} for the web after [agi] max_sessions "
                          f"= {agi_sessions} and {RESERVE} reserved; raise the limit (ulimit -n / "
                          f"LimitNOFILE=) or lower [agi] max_sessions")
    if configured > room:
        log.warning("[web] max_connections %d lowered to %d: open-files limit %d, [agi] max_sessions %d, "
                    "%d reserved", configured, room, limit, agi_sessions, RESERVE)
        return room
    return configured
