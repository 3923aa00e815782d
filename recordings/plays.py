"""What one "play" of a recording is, for the audit log (pure; time from the caller).

A browser's ``<audio>`` element fetches a recording in several HTTP requests: the
first bytes (``Range: bytes=0-``), then more ranges as it buffers and whenever the
listener seeks.  Auditing each request would bury who listened to what under rows
that say nothing new, so the audit records *plays*:

    One play = the audio requests of one user for one recording, each one coming
    within ``quiet`` seconds of the previous one, where ``quiet`` is the longer of
    :data:`QUIET_SECONDS` and the recording's duration.

The first request of a play writes the ``recording.play`` row (who, which recording,
when, from where, which range); the requests that continue it write none.  Listening
again after a pause longer than that is a new play and a new row.  Refused requests
(unknown id, missing file, a range that cannot be satisfied) are audited each time,
and so is every download.  The memory is per web process and bounded: after a
restart the next request starts a new play (one row too many, never one too few).
"""
from __future__ import annotations

from collections import OrderedDict

QUIET_SECONDS = 600.0     # a pause this long (or the recording's length, if longer) ends a play
MAX_TRACKED = 10_000      # (user, recording) pairs remembered; the oldest are forgotten first


class Plays:
    """Which audio requests start a new play (see the module docstring)."""

    def __init__(self, quiet: float = QUIET_SECONDS, max_tracked: int = MAX_TRACKED):
        self.quiet = quiet
        self.max_tracked = max_tracked
        self._last: OrderedDict[tuple[str, int], tuple[float, float]] = OrderedDict()

    def starts_play(self, user: str, recording_id: int, now: float, duration: float | None) -> bool:
        """Record an audio request at ``now`` (seconds); True if it starts a new play."""
        key = (user, recording_id)
        quiet = max(self.quiet, float(duration or 0.0))
        seen = self._last.pop(key, None)
        self._last[key] = (now, quiet)
        while len(self._last) > self.max_tracked:
            self._last.popitem(last=False)
        return seen is None or not (0 <= now - seen[0] <= seen[1])
