"""Patient look-ups: who viewed which patient's record, and a bound on bulk reading.

An agent needs a record per call (a screen pop) and now and then a look-up by
number; nobody needs hundreds a minute.  :class:`LookupLimit` allows ``burst``
look-ups per user within ``window`` seconds (on the injected clock) and refuses
more (429); each view -- a look-up or a screen pop -- is audited with the
patient's id and the number looked up (in the database's audit log, never in
the text log).
"""
from __future__ import annotations

from collections import deque

from callcenter.store.models import audit


class LookupLimit:
    def __init__(self, clock, *, burst: int = 30, window: float = 600.0):
        self.clock = clock
        self.burst = burst
        self.window = window
        self._seen: dict[str, deque] = {}

    def take(self, user: str) -> float:
        """0 and the look-up counted, or the seconds until one is allowed (nothing counted)."""
        now = self.clock.seconds()
        q = self._seen.setdefault(user, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.burst:
            return q[0] + self.window - now
        q.append(now)
        return 0.0

    def at_limit(self, user: str) -> bool:
        return len(self._seen.get(user, ())) == self.burst


def audit_view(s, user: str, record: dict, *, via: str, ip: str = "", call: str = "") -> None:
    """``patient.viewed``: which patient (id, or none found) for which number, how, by whom."""
    pid = record.get("patient_id")
    audit(s, user, "patient.viewed", "patient", pid if pid is not None else "-", via=via,
          number=(record.get("number") or "")[:32], external_id=record.get("external_id"),
          found=pid is not None, ip=ip, call=call[:64])
