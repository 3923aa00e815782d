"""Complaint deadlines from the hospital's rules (pure: no I/O, no clock).

docs/domain.md, "Response times for complaints" (投诉处理的时效要求):

* urgent (patient safety, medical quality): escalated at once; corrective action
  (the ``start`` deadline: handling begun) within 1 hour, around the clock;
* normal: handling started within 1 working day, a clear answer within 3;
* complex: a progress update within 7 working days, with an expected resolution
  date (which then becomes the ``answer`` deadline);
* online / email (and voicemail / API) complaints acknowledged within 1 hour
  (working time by default; phone complaints are acknowledged by the agent on
  the call);
* after resolution, a revisit within 24 hours (calendar time).

Working-day deadlines start their clock by :meth:`WorkCalendar.clock_start`
(received after hours or on a day off: the next working day's opening) and fall
at the same time of day on the n-th next working day.

Each deadline also has a *warn* instant: when ``warn_fraction`` of the time
allowed (working time for working-time deadlines) has been used; the escalation
check raises "approaching" alerts from then on.  Urgent tickets warn at once.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .workdays import WorkCalendar, WorkingHours, parse_hhmm, to_datetime

SEVERITIES = ("urgent", "normal", "complex")
CHANNELS = ("phone", "voicemail", "online", "email", "api")
# Deadline kinds and what meets them (see service._meet).
KINDS = ("ack", "start", "progress", "answer", "revisit")


class PolicyError(ValueError):
    """Deadline settings that cannot work together (names the keys)."""


@dataclass(frozen=True)
class Policy:
    """The configurable numbers (``[complaints]`` in the config)."""

    urgent_action_hours: float = 1.0
    ack_hours: float = 1.0
    ack_in_working_hours: bool = True
    ack_channels: tuple[str, ...] = ("online", "email", "voicemail", "api")
    auto_ack_channels: tuple[str, ...] = ("phone",)
    start_days: int = 1
    answer_days: int = 3
    progress_days: int = 7
    revisit_hours: float = 24.0
    warn_fraction: float = 0.8
    hours: WorkingHours = field(default_factory=WorkingHours)
    country: str = "CN"
    timezone: str = "Asia/Shanghai"

    @classmethod
    def from_config(cls, config) -> "Policy":
        """From a loaded configuration; :class:`PolicyError` for values that do not fit
        together (each key alone was validated by :func:`config_problem`)."""
        c = config.values["complaints"]
        h = config.values["hospital"]
        try:
            hours = WorkingHours(parse_hhmm(c["workday_start"], "[complaints] workday_start"),
                                 parse_hhmm(c["workday_end"], "[complaints] workday_end"))
        except ValueError as exc:
            raise PolicyError(f"[complaints] {exc}") from None
        return cls(
            urgent_action_hours=c["urgent_action_hours"], ack_hours=c["ack_hours"],
            ack_in_working_hours=c["ack_in_working_hours"],
            ack_channels=tuple(c["ack_channels"]), auto_ack_channels=tuple(c["auto_ack_channels"]),
            start_days=c["start_days"], answer_days=c["answer_days"],
            progress_days=c["progress_days"], revisit_hours=c["revisit_hours"],
            warn_fraction=c["warn_fraction"],
            hours=hours,
            country=h["country"], timezone=h["timezone"],
        )

    def calendar(self) -> WorkCalendar:
        return WorkCalendar(self.country, self.timezone, self.hours)


@dataclass(frozen=True)
class Deadline:
    kind: str
    due: dt.datetime    # aware, UTC
    warn: dt.datetime   # aware, UTC; warn <= due
    working: bool       # counted in working time (else calendar time)


def _utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.timezone.utc)


def _calendar(kind: str, basis: dt.datetime, hours: float, fraction: float) -> Deadline:
    due = basis + dt.timedelta(hours=hours)
    return Deadline(kind, _utc(due), _utc(basis + (due - basis) * fraction), False)


def _working(cal: WorkCalendar, kind: str, basis: dt.datetime, due: dt.datetime,
             fraction: float) -> Deadline:
    allowed = cal.working_seconds_between(cal.clock_start(basis), due)
    warn = cal.add_working_time(basis, allowed * fraction)
    return Deadline(kind, _utc(due), _utc(min(warn, due)), True)


def initial_deadlines(policy: Policy, cal: WorkCalendar, *, severity: str, channel: str | None,
                      received_at: dt.datetime | float) -> list[Deadline]:
    """Deadlines of a new ticket (``channel=None``: a reopened one, no acknowledgement due)."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    basis = to_datetime(received_at)
    f = policy.warn_fraction
    out: list[Deadline] = []
    needs_ack = channel is not None and channel not in policy.auto_ack_channels and (
        channel in policy.ack_channels or severity == "urgent")
    if needs_ack:
        if severity == "urgent":
            out.append(_calendar("ack", basis, policy.urgent_action_hours, 0.0))
        elif policy.ack_in_working_hours:
            due = cal.add_working_time(basis, policy.ack_hours * 3600)
            out.append(_working(cal, "ack", basis, due, f))
        else:
            out.append(_calendar("ack", basis, policy.ack_hours, f))
    if severity == "urgent":
        # Escalated at once: warn == basis, so the first check raises it.
        out.append(_calendar("start", basis, policy.urgent_action_hours, 0.0))
    else:
        out.append(_working(cal, "start", basis, cal.add_working_days(basis, policy.start_days), f))
    if severity == "complex":
        out.append(_working(cal, "progress", basis,
                            cal.add_working_days(basis, policy.progress_days), f))
    else:
        out.append(_working(cal, "answer", basis, cal.add_working_days(basis, policy.answer_days), f))
    return out


def revisit_deadline(policy: Policy, resolved_at: dt.datetime | float) -> Deadline:
    """The revisit (回访) is due within ``revisit_hours`` of resolution, calendar time."""
    return _calendar("revisit", to_datetime(resolved_at), policy.revisit_hours, policy.warn_fraction)


def resolution_deadline(policy: Policy, cal: WorkCalendar, *, set_at: dt.datetime | float,
                        expected: dt.date) -> Deadline:
    """A complex ticket's promised resolution date becomes its ``answer`` deadline
    (closing time of that day in the hospital's timezone)."""
    basis = to_datetime(set_at)
    due = cal.closing(expected)
    if due <= basis:
        raise ValueError(f"expected resolution date {expected.isoformat()} is not in the future")
    return _working(cal, "answer", basis, due, policy.warn_fraction)


def config_problem(kind: str, value) -> str | None:
    """Validation of ``[complaints]`` values for ``callcenter.config`` (text or None)."""
    if kind == "hhmm":
        try:
            parse_hhmm(value)
        except ValueError:
            return "expected HH:MM, e.g. 08:00"
        return None
    if kind == "channels":
        bad = [c for c in value if c not in CHANNELS]
        return f"unknown channel(s) {', '.join(map(repr, bad))} (known: {', '.join(CHANNELS)})" if bad else None
    raise ValueError(kind)
