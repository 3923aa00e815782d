"""An agent's (queue member's) named state for the wallboard and the dialer — pure.

Asterisk reports a member with ``QueueMemberStatus`` / ``QueueMember`` (``Status`` =
device state number, ``Paused``, ``PausedReason``, ``InCall``, ``LastCall`` = epoch
seconds of the end of the member's last queue call, ``Wrapuptime`` = the member's own
wrap-up seconds, 0 = the queue's ``wrapuptime``), and with ``AgentCalled`` /
``AgentConnect`` / ``AgentComplete`` / ``AgentRingNoAnswer``.  Neither alone is enough
(traces 01, 08, 10):

* with Local-channel members a ringing member shows ``Status: 2`` (INUSE), not 6
  (RINGING), and no ``QueueMemberStatus`` is sent at connect; ``InCall`` is 1 only in
  ``QueueStatus`` list items — so ringing/talking come from the ``Agent*`` events
  (``activity``), the device number is the fallback (PJSIP members do ring as 6);
* wrap-up sends nothing when it ends: app_queue just skips the member while
  ``time(NULL) - lastcall < wrapuptime`` (whole seconds).  So wrap-up is computed
  from ``LastCall`` + the wrap-up time and *now* (the injected clock), and
  :func:`wrapup_ends` tells the caller when to look again.

States: ``available``, ``ringing``, ``on_call``, ``wrap_up``, ``paused``,
``unavailable`` (device INVALID/UNAVAILABLE: logged in but unreachable; the wallboard
counts it with the logged-out agents).  Precedence: a call (ringing, talking) beats
a pause — a paused agent can still finish a call — and a pause beats wrap-up.
"""
from __future__ import annotations

import math

STATES = ("available", "ringing", "on_call", "wrap_up", "paused", "unavailable")
# the wallboard shows an unreachable device with the logged-out agents (users without a member)
BOARD_STATES = ("available", "ringing", "on_call", "wrap_up", "paused", "logged_out")
BUSIEST_FIRST = ("on_call", "ringing", "wrap_up", "paused", "available", "logged_out")


def can_take_call(state: str) -> bool:
    """Would app_queue offer this member a call now?  Only ``available``: not paused,
    not in wrap-up (``time - lastcall < wrapuptime``), device idle."""
    if state not in STATES:
        raise ValueError(f"unknown agent state {state!r} (one of {', '.join(STATES)})")
    return state == "available"


def board_state(state: str) -> str:
    """A member's named state as the wallboard counts it (``unavailable`` -> ``logged_out``)."""
    if state not in STATES:
        raise ValueError(f"unknown agent state {state!r} (one of {', '.join(STATES)})")
    return "logged_out" if state == "unavailable" else state

# ast_device_state numbers (QueueMemberStatus Status)
UNKNOWN, NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING, RINGINUSE, ONHOLD = range(9)
_IDLE_DEVICE = {UNKNOWN, NOT_INUSE, INVALID, UNAVAILABLE}


def wrapup_seconds(wrapuptime: int | float | None, queue_wrapup: float = 0.0) -> float:
    """The member's ``Wrapuptime`` if set, else the queue's (app_queue's ``get_wrapuptime``)."""
    w = float(wrapuptime or 0)
    return w if w > 0 else float(queue_wrapup or 0)


def in_wrapup(last_call: int | None, wrapup: float, now: float) -> bool:
    """app_queue: ``time(NULL) - lastcall < wrapuptime`` (``time(NULL)`` is whole seconds)."""
    if not last_call or wrapup <= 0:
        return False
    return 0 <= math.floor(now) - int(last_call) < wrapup


def wrapup_ends(last_call: int | None, wrapup: float, now: float) -> float | None:
    """Epoch second when the wrap-up ends (the member becomes available), or None."""
    if not in_wrapup(last_call, wrapup, now):
        return None
    return int(last_call) + math.ceil(wrapup)


def agent_state(*, status: int | None, paused: bool = False, in_call: bool = False,
                last_call: int | None = 0, wrapuptime: int | float | None = 0, now: float,
                activity: str | None = None, queue_wrapup: float = 0.0) -> str:
    """The member's state now.  ``activity``: ``"ringing"``/``"on_call"`` from the
    ``Agent*`` events for this interface, ``"ring_ended"`` after ``AgentRingNoAnswer``
    while the device still reports the dying ring as INUSE; None when idle."""
    if activity == "on_call" or in_call:
        return "on_call"
    if activity == "ringing" or status in (RINGING, RINGINUSE):
        return "ringing"
    if status in (INUSE, BUSY, ONHOLD) and activity != "ring_ended":
        return "on_call"  # device busy: a call outside the queue, or talking
    if status in (INVALID, UNAVAILABLE):
        return "unavailable"
    if paused:
        return "paused"
    if in_wrapup(last_call, wrapup_seconds(wrapuptime, queue_wrapup), now):
        return "wrap_up"
    return "available"
