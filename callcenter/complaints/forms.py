"""Validation of complaint input from forms and the JSON API (pure: no I/O, no clock).

Every problem is reported against its field, all at once, so an API client (or the form)
can show each next to its input: :class:`FieldErrors` carries ``{field: message}`` and
becomes a 400 answer ``{"error": ..., "fields": {...}}``.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.complaints import lifecycle
from callcenter.complaints.deadlines import CHANNELS, SEVERITIES
from callcenter.complaints.models import CATEGORIES
from callcenter.errors import InvalidInput

# Operator actions on a ticket and what they do (the state they move to, or a special step).
ACTIONS = {
    "acknowledge": "acknowledged", "investigate": "investigating", "answer": "answered",
    "resolve": "resolved", "close": "closed", "progress": None, "reopen": None, "revisit": None,
}
STATE_ACTION = {v: k for k, v in ACTIONS.items() if v}
EDITABLE = ("category", "department", "assigned_to", "tags", "summary", "demand")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{2,30}$")
_UNIQUEID = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_TRUE = ("1", "true", "on", "yes", True, 1)
_FALSE = ("0", "false", "off", "no", False, 0)
MAX_TAGS = 20


def offered_actions(status: str) -> tuple[str, ...]:
    """The operator actions the life cycle allows from ``status``, in :data:`ACTIONS` order:
    what a ticket's page offers (the API's ``allowed`` lists the target states)."""
    offered = set()
    for to in lifecycle.TRANSITIONS.get(status, ()):
        pair = (status, to)
        if pair in lifecycle.REOPENS:
            offered.add("reopen")
        elif pair in lifecycle.REVISIT_ONLY:
            offered.add("revisit")
        else:
            offered.add(STATE_ACTION[to])
    if lifecycle.is_open(status):
        offered.add("progress")  # a progress update is given on any open ticket
    return tuple(a for a in ACTIONS if a in offered)


class FieldErrors(InvalidInput):
    """Bad input in one or more fields: ``fields`` maps each to its message."""

    def __init__(self, fields: dict[str, str]):
        self.fields = fields
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))

    def to_dict(self) -> dict:
        return {"error": f"invalid input: {self}", "code": self.code, "status": self.status,
                "fields": self.fields}


def _text(form: dict, name: str, errors: dict, *, max_len: int, required: bool = False) -> str:
    v = form.get(name)
    if v is None or v == "":
        if required:
            errors[name] = "required"
        return ""
    if not isinstance(v, str):
        errors[name] = "must be text"
        return ""
    v = v.strip()
    if required and not v:
        errors[name] = "required"
    elif len(v) > max_len:
        errors[name] = f"at most {max_len} characters"
    return v


def _choice(form: dict, name: str, errors: dict, allowed, default: str, *, blank_ok: bool = False) -> str:
    v = form.get(name)
    if v is None or v == "":
        return default
    if v not in allowed:
        errors[name] = f"must be one of {', '.join(allowed)}" + (" (or empty)" if blank_ok else "")
        return default
    return v


def parse_tags(value: Any, errors: dict) -> list[str]:
    """A JSON list, a JSON-encoded list (what the server does with JSON arrays) or comma-separated text."""
    if value is None or value == "":
        return []
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            errors["tags"] = "not a valid JSON list"
            return []
    items = value if isinstance(value, list) else str(value).split(",")
    tags: list[str] = []
    for item in items:
        tag = str(item).strip()
        if not tag:
            continue
        if len(tag) > 32:
            errors["tags"] = f"each tag at most 32 characters ({tag[:10]}…)"
            return []
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        errors["tags"] = f"at most {MAX_TAGS} tags"
    return tags


def parse_bool(value: Any, name: str, errors: dict, default: bool | None = None) -> bool | None:
    if value is None or value == "":
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    errors[name] = "must be true or false"
    return default


def parse_instant(value: Any, name: str, errors: dict, tz: ZoneInfo) -> dt.datetime | None:
    """ISO 8601; without an offset it is the hospital's local time."""
    if value is None or value == "":
        return None
    try:
        d = dt.datetime.fromisoformat(str(value).strip())
        d = (d if d.tzinfo else d.replace(tzinfo=tz)).astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        errors[name] = "not an ISO 8601 date-time (e.g. 2026-11-25T18:30:00+08:00)"
        return None
    if d.year < 2000:
        errors[name] = "before 2000"
        return None
    return d


def parse_open(form: dict, *, now: dt.datetime, tz: ZoneInfo, lang: str = "zh",
               default_channel: str = "api") -> dict[str, Any]:
    """Keyword arguments for ``service.open_ticket`` (without actor), or :class:`FieldErrors`."""
    e: dict[str, str] = {}
    out: dict[str, Any] = {
        "category": _choice(form, "category", e, CATEGORIES, "", blank_ok=True),
        "severity": _choice(form, "severity", e, SEVERITIES, "normal"),
        "channel": _choice(form, "channel", e, CHANNELS, default_channel),
        "summary": _text(form, "summary", e, max_len=4000, required=True),
        "demand": _text(form, "demand", e, max_len=4000),
        "department": _text(form, "department", e, max_len=64),
        "patient_phone": _text(form, "patient_phone", e, max_len=32),
        "patient_name": _text(form, "patient_name", e, max_len=64),
        "language": _choice(form, "language", e, ("zh", "en"), lang if lang in ("zh", "en") else "zh"),
        "tags": parse_tags(form.get("tags"), e),
    }
    if out["patient_phone"] and "patient_phone" not in e and not _PHONE.match(out["patient_phone"]):
        e["patient_phone"] = "not a phone number"
    uid = _text(form, "call_uniqueid", e, max_len=64)
    if uid and not _UNIQUEID.match(uid):
        e["call_uniqueid"] = "not an Asterisk uniqueid (e.g. 1795346775.48)"
    out["call_uniqueid"] = uid or None
    rec = form.get("recording_id")
    if rec not in (None, ""):
        if isinstance(rec, bool) or not str(rec).isdigit() or len(str(rec)) > 18:
            e["recording_id"] = "must be a recording id (a positive integer)"
        out["recording_id"] = int(rec) if "recording_id" not in e else None
    received = parse_instant(form.get("received_at"), "received_at", e, tz)
    if received is not None and received > now + dt.timedelta(minutes=5):
        e["received_at"] = "is in the future"
    out["received_at"] = received or now
    if e:
        raise FieldErrors(e)
    return out


def parse_action(form: dict, *, tz: ZoneInfo, today: dt.date | None = None) -> dict[str, Any]:
    """``{"action", "note", ...}`` for a life-cycle step, or :class:`FieldErrors`.

    ``action`` is one of :data:`ACTIONS`; ``to`` (a state name) is accepted instead.
    ``reopen`` needs a note (the reason); ``progress`` a note and optionally
    ``expected_resolution`` (YYYY-MM-DD); ``revisit`` needs ``satisfied`` (and an optional
    ``score`` 1-5)."""
    e: dict[str, str] = {}
    action = form.get("action") or ""
    if not action and form.get("to"):
        action = STATE_ACTION.get(form["to"], "")
        if not action:
            e["to"] = f"must be one of {', '.join(STATE_ACTION)}"
    if not action and not e:
        e["action"] = "required"
    elif action and action not in ACTIONS:
        e["action"] = f"must be one of {', '.join(ACTIONS)}"
    note = _text(form, "note", e, max_len=4000, required=action in ("reopen", "progress"))
    out: dict[str, Any] = {"action": action, "note": note}
    if action == "progress":
        exp = form.get("expected_resolution")
        out["expected_resolution"] = None
        if exp not in (None, ""):
            try:
                out["expected_resolution"] = dt.date.fromisoformat(str(exp))
            except ValueError:
                e["expected_resolution"] = "not a date (YYYY-MM-DD)"
            else:
                if today is not None and not today <= out["expected_resolution"] <= today.replace(
                        year=today.year + 2, day=min(today.day, 28)):
                    e["expected_resolution"] = "must be between today and two years from now"
    if action == "revisit":
        sat = parse_bool(form.get("satisfied"), "satisfied", e)
        if sat is None and "satisfied" not in e:
            e["satisfied"] = "required (true or false)"
        out["satisfied"] = sat
        score = form.get("score")
        out["score"] = None
        if score not in (None, ""):
            if isinstance(score, bool) or str(score) not in ("1", "2", "3", "4", "5"):
                e["score"] = "must be 1-5"
            else:
                out["score"] = int(score)
    if e:
        raise FieldErrors(e)
    return out


def parse_edit(form: dict) -> dict[str, Any]:
    """Changed classification/handling fields (only those present), or :class:`FieldErrors`."""
    e: dict[str, str] = {}
    out: dict[str, Any] = {}
    if "category" in form:
        out["category"] = _choice(form, "category", e, CATEGORIES, "", blank_ok=True)
    for name, n in (("department", 64), ("assigned_to", 64), ("summary", 4000), ("demand", 4000)):
        if name in form:
            out[name] = _text(form, name, e, max_len=n, required=name == "summary")
    if "tags" in form:
        out["tags"] = parse_tags(form.get("tags"), e)
    if "severity" in form:
        e["severity"] = "fixed at opening (its deadlines depend on it)"
    if not out and not e:
        e["category"] = f"nothing to change (fields: {', '.join(EDITABLE)})"
    if e:
        raise FieldErrors(e)
    return out
