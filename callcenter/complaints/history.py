"""A ticket's history in plain words (pure): each stored event as one sentence.

The events keep codes (``moved``, ``status``, ``investigating``) for reports and the
API; a supervisor reads "Status: received → acknowledged" in their language.
``tr(key, **values)`` is the message catalogue in the reader's language,
``when(iso)`` formats an instant in the hospital's time, ``names`` maps user names
to display names.
"""
from __future__ import annotations

from typing import Any, Callable

from callcenter.complaints import lifecycle
from callcenter.complaints.models import CATEGORIES

Tr = Callable[..., str]

# Notes the service writes itself (not typed by a person), said in the reader's language.
SYSTEM_NOTES = {
    "acknowledged by the agent on the call": "cp.hist.note.agent_ack",
    "patient satisfied at the revisit": "cp.hist.note.satisfied",
    "urgent: passed to the department at once": "cp.hist.note.urgent",
}
_FIELDS = ("category", "department", "assigned_to", "tags", "summary", "demand")
_FOLLOWUP = ("pending", "scheduled", "no_phone", "refused", "failed", "done")


def _state(tr: Tr, value: Any) -> str:
    return tr("cp.state." + value) if value in lifecycle.STATES else str(value or "—")


def _value(tr: Tr, field: str, value: Any, names: dict[str, str]) -> str:
    if value in (None, "", []):
        return "—"
    if field == "category":
        return tr("cat." + value) if value in CATEGORIES else str(value)
    if field == "assigned_to":
        return names.get(value, value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _opened(note: str, tr: Tr) -> str:
    """The service's "channel=phone severity=normal category=fees" note, in words."""
    from callcenter.complaints.deadlines import CHANNELS, SEVERITIES

    said = dict(part.partition("=")[::2] for part in note.split() if "=" in part)
    words = []
    for key, prefix, known in (("channel", "cp.ch.", CHANNELS), ("severity", "cp.sev.", SEVERITIES),
                               ("category", "cat.", CATEGORIES)):
        if said.get(key) in known:
            words.append(tr(prefix + said[key]))
    return tr("cp.hist.sep").join(words) or "—"


def describe(event: dict, tr: Tr, when: Callable[[str | None], str], names: dict[str, str]) -> str:
    """What happened, in one sentence (the note is shown beside it: :func:`note`)."""
    action, field = event["action"], event.get("field")
    frm, to = event.get("from"), event.get("to")
    if action == "opened":
        return tr("cp.hist.opened", how=_opened(event.get("note") or "", tr))
    if action == "moved" or action == "reopened":
        key = "cp.hist.reopened" if action == "reopened" else "cp.hist.moved"
        return tr(key, frm=_state(tr, frm), to=_state(tr, to))
    if action == "escalated":
        return tr("cp.hist.escalated")
    if action == "linked":
        kind = tr("cp.link." + field) if field in ("call", "recording", "ivr_session") else str(field)
        return tr("cp.hist.linked", what=kind, ref=to or "")
    if action == "progress":
        return tr("cp.hist.progress_date", date=to) if to else tr("cp.hist.progress")
    if action == "revisit":
        return tr("cp.hist.revisit_ok") if to in (True, "True", "true", "1") else tr("cp.hist.revisit_bad")
    if action == "revisit-ignored":
        return tr("cp.hist.revisit_ignored")
    if action == "changed" and field in _FIELDS:
        return tr("cp.hist.changed", field=tr("cp.field." + field), frm=_value(tr, field, frm, names),
                  to=_value(tr, field, to, names))
    if action == "followup":
        return tr("cp.hist.followup", status=tr("cp.fu." + to) if to in _FOLLOWUP else str(to))
    return tr("cp.hist.other", action=action)


def note(event: dict, tr: Tr) -> str:
    """The event's note; the service's own notes in the reader's language (the follow-up's
    note repeats its due time in UTC: the follow-ups list shows it in local time)."""
    text = event.get("note") or ""
    if event["action"] in ("followup", "opened"):  # said in the sentence itself
        return ""
    key = SYSTEM_NOTES.get(text)
    if key:
        return tr(key)
    unhappy = "patient not satisfied at the revisit"  # + ": what the patient said"
    if text.startswith(unhappy):
        rest = text[len(unhappy):].lstrip(": ")
        return tr("cp.hist.note.unsatisfied") + (tr("cp.hist.note.said", said=rest) if rest else "")
    if event["action"] == "revisit-ignored" and text.startswith("ticket is "):
        return text.partition(": ")[2]  # what the revisit said; the sentence says it was not applied
    return text


def actor(name: str, tr: Tr, names: dict[str, str]) -> str:
    if name == "system":
        return tr("cp.hist.system")
    return names.get(name, name)
