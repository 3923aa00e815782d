"""The typed ports between features, and the start-up check that they are met.

A feature never looks another one up by name: the composition root
(:mod:`callcenter.app`) passes each collaborator in, and :func:`require` checks it
against the port it is meant to fill *at start-up*, so a missing method is one
error naming the collaborator and the method, not a silent no-op on every call.

Ports are small: only what the consumer calls.  Functions that run inside a
database transaction take the caller's SQLAlchemy ``session`` first.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Protocol


class AssemblyError(RuntimeError):
    """The product cannot be put together: a collaborator is missing or incomplete."""


@dataclass(frozen=True)
class QueueLoadInfo:
    """How loaded a queue is right now (the IVR's ``longest_wait_over`` /
    ``agents_available_below`` conditions)."""

    longest_wait: float
    agents_available: int


class AmiClient(Protocol):
    """What features need of the AMI connection (:class:`callcenter.ami.gateway.AmiGateway`)."""

    connected: bool

    def subscribe(self, callback: Callable[[Any, float], Any], events: Any = None,
                  variables: Any = (), when: Any = ()) -> Any: ...

    def unsubscribe(self, callback: Callable[[Any, float], Any]) -> None: ...

    def count_events(self, callback: Callable[[int], Any]) -> None: ...

    def on_connect(self, coro_fn: Callable[[], Awaitable[Any]]) -> None: ...

    def on_disconnect(self, callback: Callable[[float], Any]) -> None: ...

    async def action(self, headers: Any, *, timeout: float | None = None) -> Any: ...


class QueueLoad(Protocol):
    def queue_load(self, queue: str) -> QueueLoadInfo | None: ...


@dataclass(frozen=True)
class FreeAgents:
    """Who in a queue can take a dialled patient now: the members app_queue would offer a
    call to (``callcenter.queuecalls.agentstate.can_take_call``: not paused, not in
    wrap-up, idle) and the inbound callers already waiting for one of them."""

    free: tuple[str, ...] = ()   # member interfaces
    waiting: int = 0             # inbound callers waiting without an agent
    # members ringing, talking or in wrap-up whether paused or not: a reservation of one came too late
    in_call: frozenset[str] = frozenset()


class AgentAvailability(Protocol):
    def free_agents(self, queue: str) -> FreeAgents: ...


class LiveQueues(Protocol):
    """The live view the wallboard and agent screen read (the queue-calls tracker);
    ``buffer``: finished calls not yet written (counted by the wallboard meanwhile);
    ``queue_config_error``: why the queues' wrap-up time could not be read from Asterisk;
    ``wrapup_of(queue)``: that wrap-up time (the reports' handling time adds it)."""

    buffer: list
    queue_config_error: str | None

    def live(self) -> dict[str, dict[str, Any]]: ...

    def wrapup_of(self, queue: str) -> float: ...

    def subscribe(self, callback: Callable[[Any], Any]) -> None: ...


class Callbacks(Protocol):
    def request_callback(self, session: Any, *, phone: str, name: str = "", reason: str = "",
                         requested_at: Any = None, ivr_session_id: int | None = None) -> int | None: ...


class Surveys(Protocol):
    def record_survey_result(self, session: Any, *, attempt_id: Any, answers: dict,
                             opted_out: bool = False, completed: bool = True,
                             ivr_session_id: int | None = None, at: Any = None) -> Any: ...


class Appointments(Protocol):
    """The dialer's appointments for the IVR (reminder calls, the hotline): find the one a call
    is about, store the patient's answer on it, and the message a notification call plays."""

    def find_appointment(self, session: Any, *, by: str, attempt_id: Any = None, caller_number: str = "",
                         patient_number: str | None = None, at: Any = None) -> dict | None: ...

    def answer_appointment(self, session: Any, *, appointment_id: int, answer: str, via: str,
                           attempt_id: Any = None, ivr_session_id: int | None = None, at: Any = None) -> bool: ...

    def notification_message(self, session: Any, *, attempt_id: Any) -> str | None: ...


class VoiceMessages(Protocol):
    """The recordings' side of a voice message: its directory made before RECORD FILE
    (blocking; raises OSError naming what is wrong), the row after it, and why the message
    cannot be acted on (not recorded, or under ``min_seconds`` of audio; None: it can)."""

    def prepare_voice_message(self, path: str) -> Any: ...

    def add_voice_message(self, session: Any, *, path: str, uniqueid: str, caller_number: str | None = None,
                          started_at: Any = None, duration: float | None = None) -> int: ...

    def unusable(self, session: Any, rec_id: int, min_seconds: float) -> str | None: ...


class RecordingLinks(Protocol):
    """The recordings' side of a complaint: a linked call's recordings get complaint retention."""

    def link_ticket(self, session: Any, *, ticket_id: int, uniqueid: str | None = None,
                    recording_id: int | None = None) -> list[int]: ...


class ComplaintIntake(Protocol):
    """Tickets opened by the IVR from an after-hours voice message."""

    def open_from_voice_message(self, session: Any, *, caller_number: str, caller_name: str = "",
                                uniqueid: str = "", ivr_session_id: int | None = None,
                                recording_id: int | None = None, received_at: Any = None,
                                language: str = "zh") -> int: ...


class Ratings(Protocol):
    """The queue calls' side of a post-call satisfaction rating (the IVR's ``rating`` node):
    store it on the rated queue call (:class:`callcenter.queuecalls.ratings.CallRatings`)."""

    def record_rating(self, session: Any, *, uniqueid: str, queue: str, agent: str, outcome: str,
                      score: int | None, level: str, at: Any, ivr_session_id: int | None) -> Any: ...

    def rated(self, fact: Any) -> None: ...  # on the loop, once committed: tells the wallboard


class UnsatisfiedCalls(Protocol):
    """The complaints' side of an unsatisfied rating: the tickets linked to the call reopen
    or are flagged (audited); returns their ids."""

    def flag_unsatisfied_call(self, session: Any, *, call_refs: list[str], at: Any,
                              note: str = "") -> list[int]: ...


class Followups(Protocol):
    """The dialer's side of a complaint revisit: schedule the call."""

    def schedule_followup(self, session: Any, *, campaign_kind: str = "complaint_followup", phone: str,
                          name: str = "", ref_type: str, ref_id: Any, due_after: Any = None,
                          due_before: Any = None) -> int | None: ...


class Revisits(Protocol):
    """The complaints' side of a revisit: the patient's verdict on a resolved ticket."""

    def record_revisit(self, session: Any, ticket_id: int | str, satisfied: bool, note: str = "",
                       at: dt.datetime | float | None = None, *, score: int | None = None) -> Any: ...


def members(port: type) -> list[str]:
    """The names a port declares (methods and attributes), in declaration order."""
    names = [n for n in vars(port) if not n.startswith("_")]
    names += [n for n in getattr(port, "__annotations__", {}) if not n.startswith("_") and n not in names]
    return names


def require(obj: Any, port: type, what: str) -> Any:
    """``obj`` if it fills ``port``; else :class:`AssemblyError` naming ``what`` and the gap."""
    if obj is None:
        raise AssemblyError(f"{what}: no {port.__name__} given")
    missing = [n for n in members(port) if not hasattr(obj, n)]
    missing += [n for n in members(port) if n not in missing and n in vars(port)
                and callable(vars(port)[n]) and not callable(getattr(obj, n))]
    if missing:
        raise AssemblyError(f"{what}: {type(obj).__name__} is not a {port.__name__} "
                            f"(missing {', '.join(missing)})")
    return obj


def require_all(pairs: Iterable[tuple[Any, type, str]]) -> None:
    """Check several collaborators; one error listing every gap."""
    errors = []
    for obj, port, what in pairs:
        try:
            require(obj, port, what)
        except AssemblyError as exc:
            errors.append(str(exc))
    if errors:
        raise AssemblyError("; ".join(errors))
