"""The life cycle of a complaint ticket (pure).

::

    received ─► acknowledged ─► investigating ─► answered ─► resolved ─► revisited ─► closed
        └────────────────────────►┘      └──────────────────►┘   │            │
                                       ▲                         │ unsatisfied│
                                       └──── reopen ◄────────────┴────────────┘ (and from closed)

* ``received -> investigating`` is allowed: starting to handle a complaint
  acknowledges it (the service records both).
* ``answered`` = a clear answer given to the patient; ``resolved`` = the matter is
  settled (may follow ``investigating`` directly).  Resolving schedules the revisit.
* ``revisited`` only through a revisit (``service.record_revisit``); an unsatisfied
  revisit *reopens* the ticket (back to ``investigating``, ``reopen_count + 1``).
* ``closed`` only after a revisit, or from ``resolved`` when the revisit could not
  be made (``force`` with a note: the service asks for it).
"""
from __future__ import annotations

from callcenter.errors import Conflict

STATES = ("received", "acknowledged", "investigating", "answered", "resolved", "revisited", "closed")
OPEN_STATES = ("received", "acknowledged", "investigating", "answered")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("acknowledged", "investigating"),
    "acknowledged": ("investigating",),
    "investigating": ("answered", "resolved"),
    "answered": ("resolved", "investigating"),
    "resolved": ("revisited", "investigating", "closed"),
    "revisited": ("closed", "investigating"),
    "closed": ("investigating",),
}

# Moves that only a revisit or a reopen may make (not a plain "move").
REVISIT_ONLY = {("resolved", "revisited")}
REOPENS = {("resolved", "investigating"), ("revisited", "investigating"), ("closed", "investigating")}
NEEDS_NOTE = {("resolved", "closed")}  # closing without a revisit must say why


class IllegalTransition(Conflict, ValueError):
    """A move the life cycle does not allow; the message names from and to."""

    def __init__(self, from_state: str, to_state: str, why: str = ""):
        self.from_state, self.to_state = from_state, to_state
        allowed = ", ".join(TRANSITIONS.get(from_state, ())) or "none"
        msg = f"cannot move a complaint ticket from {from_state!r} to {to_state!r}"
        msg += f": {why}" if why else f" (allowed from {from_state!r}: {allowed})"
        super().__init__(msg)


def check(from_state: str, to_state: str, *, via: str = "move", note: str = "") -> str:
    """Validate a move; returns ``to_state`` or raises :class:`IllegalTransition`.

    ``via`` is how the move is made: ``"move"`` (an operator's transition),
    ``"revisit"`` or ``"reopen"``.
    """
    if to_state not in STATES:
        raise IllegalTransition(from_state, to_state, f"unknown state (states: {', '.join(STATES)})")
    if from_state not in STATES:
        raise IllegalTransition(from_state, to_state, "unknown current state")
    if to_state not in TRANSITIONS[from_state]:
        raise IllegalTransition(from_state, to_state)
    pair = (from_state, to_state)
    if pair in REVISIT_ONLY and via != "revisit":
        raise IllegalTransition(from_state, to_state, "only a revisit (record_revisit) does that")
    if pair in REOPENS and via not in ("reopen", "revisit"):
        raise IllegalTransition(from_state, to_state, "that is a reopen (use reopen with a reason)")
    if pair in NEEDS_NOTE and not note.strip():
        raise IllegalTransition(from_state, to_state, "closing without a revisit needs a note saying why")
    return to_state


def is_open(state: str) -> bool:
    return state in OPEN_STATES
