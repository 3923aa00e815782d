"""Campaigns from the web: list, create, start/pause/resume (database-thread functions).

The figures are ``dialer.campaigns.status`` (what ``callcenter campaign status`` prints);
creation and state changes go through ``dialer.campaigns`` like the CLI, so a
campaign made on the web is the same as one made with ``callcenter campaign create``.
Every change is audited.  Input arrives as text (form or JSON body, see server._body).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from callcenter import errors
from callcenter.store.models import audit

from .http import BadRequest

WEB_KINDS = ("revisit", "no_show", "complaint_followup")   # callbacks: created by the IVR on first use
MODES = ("progressive", "survey", "predictive")
# action -> (states it may start from, the new state)
ACTIONS = {"start": (("draft",), "running"), "pause": (("running",), "paused"), "resume": (("paused",), "running")}
_QUEUE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TRUE = ("1", "on", "true", "yes")


class NotFound(errors.NotFound):
    """No campaign by that name or id (HTTP 404)."""


class Conflict(errors.Conflict):
    """The request is valid but the campaign's state refuses it (HTTP 409)."""


@dataclass(frozen=True)
class DialerContext:
    """What creating a campaign needs from the configuration (built once per app)."""
    settings: object
    rules: object
    plans_file: str
    default_queue: str
    abandon_days: float

    @classmethod
    def from_config(cls, config) -> "DialerContext":
        from dialer.campaigns import Settings
        from dialer.compliance import Rules

        return cls(Settings.from_config(config), Rules.from_config(config), config.dialer.plans_file or "",
                   config.dialer.default_queue, float(config.dialer.predictive_window_days))

    def plans(self):
        from dialer.plans import PlanError, load_plans

        try:
            return load_plans(self.plans_file or None)
        except PlanError as exc:
            raise BadRequest(f"revisit plans file has errors: {exc.problems[0]}") from None


def calling_window(rules, now: float) -> dict:
    """Is the dialer's calling window open at ``now`` (the injected clock), and when does it
    close or next open, as the hospital's local time: ``HH:MM`` today, ``MM-DD HH:MM`` on a
    later day (a weekend or holiday in between).  From ``dialer.compliance``, the rules the
    dialer itself follows."""
    from dialer.compliance import in_window, next_window_open, window_close

    zone = rules.zone
    today = dt.datetime.fromtimestamp(now, zone).date()

    def local(ts: float) -> str:
        d = dt.datetime.fromtimestamp(ts, zone)
        return d.strftime("%H:%M") if d.date() == today else d.strftime("%m-%d %H:%M")

    if in_window(rules, now):
        return {"open": True, "closes": local(window_close(rules, now))}
    opens = next_window_open(rules, now)
    return {"open": False, "opens": local(opens), "opens_at": opens}


def _int(form: dict, name: str, lo: int, hi: int) -> int | None:
    raw = (form.get(name) or "").strip()
    if not raw or raw == "null":
        return None
    try:
        v = int(raw)
    except ValueError:
        raise BadRequest(f"{name}: not a whole number: {raw[:20]!r}") from None
    if not lo <= v <= hi:
        raise BadRequest(f"{name}: must be {lo}-{hi}")
    return v


def parse_create(form: dict, ctx: DialerContext) -> dict:
    """Validated creation fields; BadRequest names the field."""
    name = (form.get("name") or "").strip()
    if not name or len(name) > 64 or any(not ch.isprintable() for ch in name) or "/" in name:
        raise BadRequest("name: 1-64 printable characters, no '/'")
    if name.isdigit():
        raise BadRequest("name: must not be only digits (ids are numbers)")
    kind = form.get("kind") or ""
    if kind not in WEB_KINDS:
        raise BadRequest(f"kind: must be one of {', '.join(WEB_KINDS)}")
    mode = form.get("mode") or "progressive"
    if mode not in MODES:
        raise BadRequest(f"mode: must be one of {', '.join(MODES)}")
    queue = (form.get("queue") or "").strip() or ctx.default_queue
    if not _QUEUE_RE.match(queue):
        raise BadRequest("queue: 1-64 letters, digits, '_', '-', '.'")
    settings: dict = {}
    types_raw = form.get("types") or ""
    if types_raw.startswith("["):  # a JSON array arrives as its JSON text
        types_raw = types_raw.strip("[]").replace('"', "")
    types = [x.strip() for x in types_raw.split(",") if x.strip()]
    if types and kind != "revisit":
        raise BadRequest("types: only for revisit campaigns")
    if types:
        plans = ctx.plans()
        unknown = [x for x in types if x not in plans]
        if unknown:
            raise BadRequest(f"types: unknown treatment type(s) {', '.join(unknown)[:200]} "
                             f"(known: {', '.join(plans)})")
        settings["treatment_types"] = types
    max_channels = _int(form, "max_channels", 1, 500)
    if max_channels is not None:
        settings["max_channels"] = max_channels
    return {"name": name, "kind": kind, "mode": mode, "queue": queue, "settings": settings,
            "max_attempts": _int(form, "max_attempts", 1, 20),
            "start": str(form.get("start") or "").lower() in _TRUE}


# --- database thread ---------------------------------------------------------------------

def _view(s, c, now: float, abandon_days: float) -> dict:
    from .data import campaign_view

    return campaign_view(s, c, now, abandon_days)


def _get(s, ref: str):
    from dialer.campaigns import CampaignError, get_campaign

    if not ref or len(ref) > 64 or (ref.isdigit() and len(ref) > 18):  # no integer overflow in SQL
        raise NotFound(ref)
    try:
        return get_campaign(s, ref)
    except CampaignError:
        raise NotFound(ref) from None


def detail(s, ref: str, *, now: float, abandon_days: float) -> dict:
    return _view(s, _get(s, ref), now, abandon_days)


def create(s, fields: dict, *, actor: str, now: float, ctx: DialerContext) -> dict:
    """Create the campaign and the contacts it is owed now (revisit / no-show), like the CLI."""
    from sqlalchemy import select

    from dialer.campaigns import CampaignError, create_campaign, materialize
    from dialer.models import Campaign

    if s.scalar(select(Campaign.id).where(Campaign.name == fields["name"])) is not None:
        raise Conflict(f"a campaign named {fields['name']!r} exists already")
    try:
        c = create_campaign(s, name=fields["name"], kind=fields["kind"], mode=fields["mode"],
                            queue=fields["queue"], max_attempts=fields["max_attempts"],
                            settings=fields["settings"], state="running" if fields["start"] else "draft")
    except CampaignError as exc:
        raise BadRequest(str(exc)) from None
    plans = ctx.plans() if c.kind == "revisit" else None
    n = materialize(s, c, now=now, plans=plans, settings=ctx.settings, rules=ctx.rules)
    audit(s, actor, "campaign_create", "campaign", c.id, name=c.name, kind=c.kind, mode=c.mode, queue=c.queue,
          state=c.state, contacts_created=n)
    return {**_view(s, c, now, ctx.abandon_days), "contacts_created": n}


def change_state(s, ref: str, action: str, *, actor: str, now: float, abandon_days: float) -> dict:
    if action not in ACTIONS:
        raise BadRequest(f"action: must be one of {', '.join(ACTIONS)}")
    c = _get(s, ref)
    allowed, new = ACTIONS[action]
    if c.state not in allowed:
        raise Conflict(f"campaign {c.name!r} is {c.state}: cannot {action} it")
    old, c.state = c.state, new
    audit(s, actor, f"campaign_{action}", "campaign", c.id, name=c.name, before=old, after=new)
    return _view(s, c, now, abandon_days)
