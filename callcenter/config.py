"""Configuration: one TOML file plus ``CALLCENTER_<SECTION>_<KEY>`` environment overrides.

Everything is validated at start; an error names the file, the key and what is
wrong, in one line (no traceback).  Packages declare their keys in ``SCHEMA``
below (add a section; don't read config elsewhere).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(ValueError):
    """A configuration problem, phrased for the operator."""


@dataclass(frozen=True)
class Key:
    type: type
    default: Any
    secret: bool = False
    check: Callable[[Any], str | None] | None = None  # returns an error text or None
    help: str = ""


def _port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be a TCP port (0-65535)"


def _proxies(v: list) -> str | None:
    import ipaddress

    for item in v:
        try:
            ipaddress.ip_network(str(item).strip(), strict=False)
        except ValueError:
            return f"{item!r} is not an IP address or network"
    return None


def _server_name(v: str) -> str | None:
    import re

    return (None if re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", v)
            else "must be 1-32 of a-z, 0-9, '-', '_' (it is stored with every queue call)")


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def _non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _timezone(v: str) -> str | None:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown timezone {v!r}"
    return None


def _country(v: str) -> str | None:
    import holidays

    return None if v.upper() in holidays.list_supported_countries() else f"unknown country code {v!r}"


def _language(v: str) -> str | None:
    return None if v in ("zh", "en") else "must be 'zh' or 'en'"


def _recording_rule(v: str) -> str | None:
    from recordings.policy import rule_problem

    return rule_problem(v)


def _recording_rules(v: list) -> str | None:
    from recordings.policy import rules_problem

    return rules_problem(v)


def _campaign_recording_rules(v: list) -> str | None:
    from recordings.policy import campaign_rules_problem

    return campaign_rules_problem(v)


def _days(v: int) -> str | None:
    return None if v >= 0 else "must be >= 0 days (0 = keep until purged by hand)"


def _complaints_check(kind: str, v) -> str | None:
    from callcenter.complaints.deadlines import config_problem

    return config_problem(kind, v)


def _hhmm(v: str) -> str | None:
    import re

    m = re.fullmatch(r"(\d{1,2}):(\d{2})", v.strip())
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59:
        return "must be a time HH:MM"
    return None


def _pause_reasons(v: list) -> str | None:
    from callcenter.web.pause_reasons import problem

    return problem(v)


_PAUSE_DEFAULT = ("break=休息|Break", "meal=用餐|Meal", "training=培训|Training", "paperwork=文书工作|Paperwork")


def _weekdays(v: list) -> str | None:
    days = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
    bad = [d for d in v if str(d).lower() not in days]
    return f"unknown day(s) {bad} (use mon..sun)" if bad else None


SCHEMA: dict[str, dict[str, Key]] = {
    "service": {
        "data_dir": Key(str, "var", help="where the SQLite file, recordings and logs live"),
        "log_level": Key(str, "INFO"),
        "standby_poll_seconds": Key(float, 2.0, check=_positive,
                                    help="PostgreSQL: how often a standby instance tries to take over an "
                                         "Asterisk server (its advisory lock) and the active one checks it"),
    },
    "database": {
        "url": Key(str, "", secret=True, help="SQLAlchemy URL; default sqlite under data_dir"),
    },
    "ami": {  # one Asterisk; several: [[ami]] entries with the same keys, each with its own name
        "name": Key(str, "default", check=_server_name,
                    help="this Asterisk server's name (stored with its queue calls, recordings, campaigns)"),
        "host": Key(str, "127.0.0.1"),
        "port": Key(int, 5038, check=_port),
        "username": Key(str, "bridge"),
        "secret": Key(str, "", secret=True),
        "ping_interval": Key(float, 10.0, check=_positive),
        "ping_timeout": Key(float, 5.0, check=_positive),
        "action_timeout": Key(float, 10.0, check=_positive),
        "reconnect_max_delay": Key(float, 30.0, check=_positive),
        "healthy_after": Key(float, 30.0, check=_positive,
                             help="s a link must stay up before the reconnect backoff starts again from 0"),
        "queue_log": Key(str, "", help="path of Asterisk's queue_log, if readable"),
    },
    "agi": {
        "host": Key(str, "127.0.0.1"),
        "port": Key(int, 4573, check=_port),
        "flows_dir": Key(str, "", help="directory of IVR flow files; default: the shipped ivr_flows/"),
        "prompt_base": Key(str, "callcenter", help="prompt path prefix under Asterisk sounds dir"),
        "recordings_dir": Key(str, "", help="where Asterisk writes voice messages (RECORD FILE); "
                              "default: [recordings] spool_dir; must lie under it (else serve refuses to start)"),
        "max_sessions": Key(int, 256, check=_positive, help="FastAGI sessions at once (more: refused)"),
        "reply_timeout": Key(float, 120.0, check=_positive,
                             help="s Asterisk may take to answer one AGI command (plus the "
                                  "command's own timeout, e.g. GET DATA, RECORD FILE)"),
        "sounds_dir": Key(str, "", help="Asterisk's sounds directory, when readable here: the flows' "
                          "prompt files are checked at start (missing ones logged) and by callcenter doctor"),
    },
    "complaints": {
        "enabled": Key(bool, True, help="run the deadline escalation check"),
        "workday_start": Key(str, "08:00", check=lambda v: _complaints_check("hhmm", v)),
        "workday_end": Key(str, "17:30", check=lambda v: _complaints_check("hhmm", v)),
        "urgent_action_hours": Key(float, 1.0, check=_positive, help="urgent: corrective action due (calendar hours)"),
        "ack_hours": Key(float, 1.0, check=_positive, help="online/email/voicemail/api: acknowledged within"),
        "ack_in_working_hours": Key(bool, True, help="count ack_hours in working time"),
        "ack_channels": Key(list, ["online", "email", "voicemail", "api"], check=lambda v: _complaints_check("channels", v)),
        "auto_ack_channels": Key(list, ["phone"], check=lambda v: _complaints_check("channels", v),
                                 help="acknowledged by the agent on the call"),
        "start_days": Key(int, 1, check=_non_negative, help="normal/complex: handling started within (working days)"),
        "answer_days": Key(int, 3, check=_positive, help="normal/urgent: clear answer within (working days)"),
        "progress_days": Key(int, 7, check=_positive, help="complex: progress update within (working days)"),
        "revisit_hours": Key(float, 24.0, check=_positive, help="revisit after resolution within (calendar hours)"),
        "warn_fraction": Key(float, 0.8, check=lambda v: None if 0 <= v <= 1 else "must be between 0 and 1"),
        "check_seconds": Key(float, 60.0, check=_positive, help="how often the escalation check runs"),
        "close_on_satisfied_revisit": Key(bool, True),
        "rating_flag_queues": Key(list, ["complaint"],
                                  help="queues whose calls rated unsatisfied after the call reopen or flag "
                                       "the call's tickets"),
    },
    "web": {
        "host": Key(str, "127.0.0.1"),
        "port": Key(int, 8080, check=_port),
        "session_hours": Key(float, 12.0, check=_positive),
        "enabled": Key(bool, True, help="serve the wallboard, agent desk, reports and API"),
        "secure_cookies": Key(bool, False, help="mark cookies Secure (set when served over HTTPS)"),
        "idle_timeout": Key(float, 15.0, check=_positive, help="s without a byte before/between requests"),
        "header_timeout": Key(float, 10.0, check=_positive,
                              help="s from a request's first byte to the end of its headers"),
        "body_timeout": Key(float, 30.0, check=_positive, help="s to receive a request body"),
        "max_connections": Key(int, 512, check=_positive, help="open HTTP connections in total"),
        "max_connections_per_client": Key(int, 128, check=_positive,
                                          help="open HTTP connections per client address (not for "
                                               "trusted proxies)"),
        "max_streams": Key(int, 448, check=_positive,
                           help="live event streams (wallboards, agent desks) open at once; at least 16 "
                                "of max_connections must be left to pages and log-ins"),
        "max_streams_per_user": Key(int, 8, check=_positive,
                                    help="live event streams one user may have open at once (browser "
                                         "tabs, wall screens); the next is refused with 429"),
        "trusted_proxies": Key(list, [], check=_proxies,
                               help="reverse proxies (addresses or networks) whose X-Forwarded-For / "
                                    "X-Forwarded-Proto are believed"),
        "queues": Key(list, ["consultation", "complaint"], help="queues agents can log in to"),
        "pause_reasons": Key(list, list(_PAUSE_DEFAULT), check=_pause_reasons,
                             help='pause reasons as "code=中文|English" (the code goes to Asterisk)'),
        "staffing_goal": Key(float, 0.8, check=lambda v: None if 0 < v < 1 else "must be between 0 and 1",
                             help="share of calls to answer within the target (Erlang C advice)"),
    },
    "wallboard": {  # colours against [web] staffing_goal (the service-level goal, green at or above it)
        "sl_amber": Key(float, 0.6, check=lambda v: None if 0 < v < 1 else "must be between 0 and 1",
                        help="service level at or above this but under [web] staffing_goal: amber; below: red"),
        "abandon_amber": Key(float, 0.05, check=lambda v: None if 0 < v < 1 else "must be between 0 and 1",
                             help="abandon rate above this: amber"),
        "abandon_red": Key(float, 0.10, check=lambda v: None if 0 < v < 1 else "must be between 0 and 1",
                           help="abandon rate above this: red"),
        "chart_start": Key(str, "08:00", check=_hhmm, help="the half-hour charts start here (or at the "
                           "day's first call, if earlier)"),
    },
    "recordings": {
        "enabled": Key(bool, True, help="start MixMonitor on answered calls per the policies"),
        "directory": Key(str, "", help="where recordings are read from; default <data_dir>/recordings"),
        "spool_dir": Key(str, "", help="the same directory as Asterisk sees it (remote PBX); default = directory"),
        "format": Key(str, "wav", check=lambda v: None if v == "wav" else "only 'wav' is supported"),
        "default_queue_policy": Key(str, "all", check=_recording_rule, help="all | none | N%"),
        "queue_policy": Key(list, [], check=_recording_rules, help='e.g. ["complaint=all", "consultation=20%"]'),
        "default_campaign_policy": Key(str, "none", check=_recording_rule),
        "campaign_policy": Key(list, [], check=_campaign_recording_rules,
                               help='e.g. ["kind:no_show=all", "name:complaint-followup=all", "kind:revisit=10%"]'),
        "complaint_queues": Key(list, ["complaint"], help="queue calls kept with complaint retention"),
        "campaign_variable": Key(str, "CAMPAIGN", help="channel variable the dialer sets on Originate"),
        "mixmonitor_options": Key(str, "b"),
        "retention_queue_days": Key(int, 180, check=_days),
        "retention_complaint_days": Key(int, 1095, check=_days),
        "retention_voice_message_days": Key(int, 365, check=_days),
        "retention_outbound_days": Key(int, 180, check=_days),
        "allowed_roles": Key(list, ["supervisor", "admin"], help="roles that may list and play recordings"),
        "finalize_delay": Key(float, 2.0, check=_non_negative, help="seconds after hang-up before reading the file"),
        "finalize_attempts": Key(int, 5, check=_positive),
        "journal": Key(str, "", help="capture's durable journal on a local disk (MixMonitor never waits "
                       "for the database); default <directory>.journal"),
    },
    "dialer": {  # outbound campaigns (dialer/); times in the hospital's timezone
        "enabled": Key(bool, True, help="run the dialer component in serve/demo"),
        "instance": Key(str, "", help="this dialer's name for claims (default: host name)"),
        "window_start": Key(str, "09:00", check=_hhmm),
        "window_end": Key(str, "20:00", check=_hhmm),
        "call_days": Key(list, ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], check=_weekdays),
        "skip_holidays": Key(bool, True, help="no calls on [hospital] country's public holidays"),
        "max_attempts": Key(int, 3, check=_positive),
        "retry_busy_minutes": Key(float, 15.0, check=_positive),
        "retry_no_answer_minutes": Key(float, 60.0, check=_positive),
        "retry_congestion_minutes": Key(float, 5.0, check=_positive),
        "retry_failed_minutes": Key(float, 120.0, check=_positive),
        "retry_hungup_minutes": Key(float, 30.0, check=_positive),
        "retry_abandoned_minutes": Key(float, 60.0, check=_positive),
        "caller_id": Key(str, '"City Hospital" <02100000000>'),
        "channel_template": Key(str, "PJSIP/{number}@trunk", help="{number} = dial string"),
        "dial_format": Key(str, "national", check=lambda v: None if v in ("national", "e164")
                           else "must be 'national' or 'e164'"),
        "originate_timeout": Key(float, 30.0, check=_positive),
        "survey_context": Key(str, "survey"),
        "agent_context": Key(str, "dialer-agent", help="progressive/predictive calls: runs Queue(${QUEUE})"),
        "default_queue": Key(str, "consultation"),
        "no_show_hours": Key(float, 4.0, check=_positive),
        "followup_hours": Key(float, 24.0, check=_positive),
        "reminder_lead_hours": Key(float, 24.0, check=_positive,
                                   help="appointment reminders are due this long before the appointment "
                                        "(then the next opening of the calling window)"),
        "reminder_stop_minutes": Key(float, 60.0, check=_non_negative,
                                     help="no reminder call (nor retry) later than this before the appointment"),
        "max_rate": Key(float, 5.0, check=_positive, help="originates per second, all campaigns"),
        "max_channels": Key(int, 30, check=_positive, help="calls in flight per survey campaign"),
        "predictive_max_abandon": Key(float, 0.03, check=_positive),
        "predictive_window_days": Key(float, 30.0, check=_positive),
        "predictive_max_ratio": Key(float, 1.5, check=_positive),
        "short_call_seconds": Key(float, 5.0, check=_non_negative),
        "tick_seconds": Key(float, 1.0, check=_positive),
        "phone_gap_minutes": Key(float, 60.0, check=_non_negative,
                                 help="no call to a number another contact dialled this recently"),
        "plans_file": Key(str, "", help="revisit plans YAML (default: the shipped dialer/plans.yaml)"),
        "callback_after_call_seconds": Key(float, 120.0, check=_non_negative,
                                           help="an IVR callback is dialled this long after the caller's call ended"),
        "connect_timeout": Key(float, 20.0, check=_positive,
                               help="seconds an answered patient waits for an agent before the apology"),
        "queue_priority": Key(int, 10, help="QUEUE_PRIO of answered patients (above inbound callers)"),
        "sorry_prompt": Key(str, "dialer-sorry-callback",
                            help="played when no agent took the patient in connect_timeout"),
        "abandon_connect_seconds": Key(float, 2.0, check=_positive,
                                       help="an answered patient not with an agent by then is abandoned"),
        "keep_free_agents": Key(int, 1, check=_non_negative,
                                help="free agents per queue the progressive/predictive dialer leaves to inbound "
                                     "callers (the hotline's 30 s service level comes first; 0 = blend fully)"),
    },
    "hospital": {
        "name": Key(str, "City Hospital"),
        "timezone": Key(str, "Asia/Shanghai", check=_timezone),
        "country": Key(str, "CN", check=_country),
        "region": Key(str, "CN", help="default region for phone numbers"),
        "language": Key(str, "zh", check=_language),
        "answer_target_seconds": Key(float, 30.0, check=_positive),
        "short_abandon_seconds": Key(float, 5.0, check=_non_negative),
    },
}


class Section:
    """Attribute access to one section's validated values."""

    def __init__(self, name: str, values: dict[str, Any]):
        self._name = name
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"<Section {self._name}>"


class Config:
    def __init__(self, values: dict[str, dict[str, Any]], source: str | None,
                 servers: list[dict[str, Any]] | None = None):
        self.values = values
        self.source = source
        # [[ami]] entries; None: the single [ami] is the one server
        self._servers = servers
        for name, vals in values.items():
            setattr(self, name, Section(name, vals))

    @property
    def ami_servers(self) -> list[Section]:
        """Every Asterisk server, in the file's order (``[ami]`` alone: one, named by its
        ``name``, "default" unless set).  ``config.ami`` is the first of them."""
        entries = self._servers if self._servers is not None else [self.values["ami"]]
        return [Section("ami", dict(e)) for e in entries]

    def ami_server(self, name: str) -> Section:
        """The ``[[ami]]`` entry called ``name``; a ConfigError naming the known ones if none."""
        for s in self.ami_servers:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.ami_servers)
        raise ConfigError(f"{self.source or 'defaults'}: no AMI server named {name!r} (known: {known})")

    def with_overrides(self, overrides: dict[str, dict[str, Any]]) -> "Config":
        """A copy with some values replaced (the demo points [ami] at the simulator)."""
        values = {sec: dict(keys) for sec, keys in self.values.items()}
        for sec, keys in overrides.items():
            values[sec].update(keys)
        servers = self._servers
        if servers is not None and "ami" in overrides:
            servers = [{**servers[0], **overrides["ami"]}, *servers[1:]]
        return Config(values, self.source, servers)

    def with_servers(self, servers: list[dict[str, Any]]) -> "Config":
        """A copy with these AMI servers (each: [ami] keys; the rest default), checked like
        ``[[ami]]`` entries: the demo and tests point several at simulators."""
        entries = _ami_entries(servers, "with_servers")
        values = {sec: dict(keys) for sec, keys in self.values.items()}
        values["ami"] = dict(entries[0])
        return Config(values, self.source, entries)

    @property
    def data_dir(self) -> Path:
        return Path(self.values["service"]["data_dir"])

    @property
    def database_url(self) -> str:
        return self.values["database"]["url"]

    def masked(self) -> dict[str, dict[str, Any]]:
        """Effective values with secrets (and passwords inside URLs) hidden."""
        from sqlalchemy.engine import make_url

        out: dict[str, dict[str, Any]] = {}
        for sec, keys in self.values.items():
            out[sec] = {}
            for k, v in keys.items():
                spec = SCHEMA.get(sec, {}).get(k)
                if sec == "database" and k == "url" and v:
                    try:
                        v = make_url(v).render_as_string(hide_password=True)
                    except Exception:
                        v = "***"
                elif spec is not None and spec.secret and v:
                    v = "***"
                out[sec][k] = v
        if self._servers is not None:  # [[ami]] entries: a list, as in the file
            out["ami"] = [{k: ("***" if SCHEMA["ami"][k].secret and v else v) for k, v in e.items()}
                          for e in self._servers]
        return out


# keys that were dropped, with what replaces them (an old config file gets told, not just "unknown")
REMOVED = {("ami", "wrapup_seconds"): "each queue's wrapuptime is read from Asterisk (AMI GetConfig "
                                      "queues.conf); delete the key"}


def _ami_entries(raw: Any, where: str) -> list[dict[str, Any]]:
    """Validate ``[[ami]]`` entries: each a table of [ami] keys with its own ``name``
    (required, unique); errors name the file, the entry and the key."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: [[ami]] must be one or more tables")
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for n, entry in enumerate(raw, 1):
        at = f"{where}: [[ami]] entry {n}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at} must be a table")
        unknown = [k for k in entry if k not in SCHEMA["ami"]]
        if unknown:
            raise ConfigError(f"{at}: unknown key {unknown[0]} (known: {', '.join(SCHEMA['ami'])})")
        if "name" not in entry:
            raise ConfigError(f"{at}: name is required (each Asterisk server has its own)")
        vals = {k: (_coerce("ami", k, spec, entry[k], at) if k in entry else spec.default)
                for k, spec in SCHEMA["ami"].items()}
        if vals["name"] in seen:
            raise ConfigError(f"{at}: name {vals['name']!r} is already used by entry {seen[vals['name']]}")
        seen[vals["name"]] = n
        out.append(vals)
    return out


def _coerce(sec: str, key: str, spec: Key, value: Any, where: str) -> Any:
    name = f"[{sec}] {key}"
    if spec.type is bool:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                value = True
            elif low in ("0", "false", "no", "off"):
                value = False
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {name} must be true or false, got {value!r}")
    elif spec.type is int:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ConfigError(f"{where}: {name} must be a whole number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {name} must be a whole number, got {value!r}")
    elif spec.type is float:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ConfigError(f"{where}: {name} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
        value = float(value)
    elif spec.type is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {name} must be a string, got {value!r}")
    elif spec.type is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {name} must be a list, got {value!r}")
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            shown = "***" if spec.secret else repr(value)
            raise ConfigError(f"{where}: {name} = {shown}: {problem}")
    return value


def load_config(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (or ``$CALLCENTER_CONFIG``), apply env overrides, validate."""
    env = os.environ if env is None else env
    path = path or env.get("CALLCENTER_CONFIG") or None
    raw: dict[str, Any] = {}
    where = "defaults"
    if path:
        where = str(path)
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{where}: no such config file") from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read the config file: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    values: dict[str, dict[str, Any]] = {}
    servers = None
    if isinstance(raw.get("ami"), list):  # [[ami]]: several Asterisk servers
        servers = _ami_entries(raw.pop("ami"), where)
        overridden = sorted(k for k in env if k.startswith("CALLCENTER_AMI_"))
        if overridden:
            raise ConfigError(f"environment {overridden[0]}: overrides the single [ami], but {where} has "
                              "[[ami]] entries: set it in the entry")
    for sec, data in raw.items():
        if sec not in SCHEMA:
            raise ConfigError(f"{where}: unknown section [{sec}] (known: {', '.join(SCHEMA)})")
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: [{sec}] must be a table")
        for key in data:
            if (sec, key) in REMOVED:
                raise ConfigError(f"{where}: [{sec}] {key} is no longer used: {REMOVED[sec, key]}")
            if key not in SCHEMA[sec]:
                raise ConfigError(
                    f"{where}: unknown key [{sec}] {key} (known: {', '.join(SCHEMA[sec])})"
                )
    for sec, keys in SCHEMA.items():
        values[sec] = {}
        for key, spec in keys.items():
            envname = f"CALLCENTER_{sec.upper()}_{key.upper()}"
            if envname in env:
                values[sec][key] = _coerce(sec, key, spec, env[envname], f"environment {envname}")
            elif key in raw.get(sec, {}):
                values[sec][key] = _coerce(sec, key, spec, raw[sec][key], where)
            else:
                values[sec][key] = spec.default
    if env.get("CALLCENTER_DATABASE_URL"):
        values["database"]["url"] = env["CALLCENTER_DATABASE_URL"]
    data_dir = Path(values["service"]["data_dir"]).expanduser()
    if path and not data_dir.is_absolute() and "CALLCENTER_SERVICE_DATA_DIR" not in env:
        data_dir = (Path(path).resolve().parent / data_dir)
    values["service"]["data_dir"] = str(data_dir)
    if not values["database"]["url"]:
        values["database"]["url"] = f"sqlite:///{(data_dir / 'callcenter.sqlite').resolve()}"
    else:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            u = make_url(values["database"]["url"])
        except ArgumentError:
            raise ConfigError(f"{where}: [database] url is not a database URL") from None
        if u.get_backend_name() not in ("sqlite", "postgresql"):
            raise ConfigError(
                f"{where}: [database] url: unsupported database {u.get_backend_name()!r} "
                "(use sqlite or postgresql)"
            )
    if servers is not None:
        values["ami"] = dict(servers[0])
    return Config(values, str(path) if path else None, servers)
