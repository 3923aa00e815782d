"""``callcenter doctor``'s checks: each one a verdict with the remedy.

Each check is a function of what it looks at (the configuration, the AMI's
replies gathered by :mod:`callcenter.doctor.ami_probe`, a directory, a clock
reading) returning :class:`Result`; only :func:`check_database` and the
directory/file checks touch the system, and only to read or ``os.access``.
``fail`` makes ``callcenter doctor`` exit non-zero; ``warn`` is something an
operator should know but the service runs with; ``skip`` says what was not
checked and why (never a silent pass).
"""
from __future__ import annotations

import datetime as dt
import grp
import os
import pwd
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .ami_probe import AmiFacts

OK, FAIL, WARN, SKIP = "ok", "fail", "warn", "skip"
PROMPT_EXTENSIONS = (".wav", ".WAV", ".gsm", ".ulaw", ".alaw", ".sln", ".sln16", ".g722")
MAX_CLOCK_SKEW = 2.0  # seconds between this host and Asterisk; queue_log times are Asterisk's


@dataclass(frozen=True)
class Result:
    check: str
    status: str
    detail: str
    remedy: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


# Write classes each action the service sends needs (manager.c / app_queue.c /
# app_mixmonitor.c registrations in Asterisk 22; any one of the classes suffices).
ACTION_CLASSES = {
    "QueueStatus": "(none)", "CoreShowChannels": "system,reporting", "Originate": "originate",
    "MixMonitor": "system", "QueuePause": "agent", "QueueAdd": "agent", "QueueRemove": "agent",
    "Setvar": "call", "Getvar": "call,reporting", "ShowDialPlan": "config,reporting",
    "GetConfig": "system,config",
}


def needed_actions(*, dialer: bool, recordings: bool) -> list[str]:
    """The actions the service sends with this configuration."""
    names = ["QueueStatus", "CoreShowChannels", "GetConfig", "QueuePause", "QueueAdd", "QueueRemove", "Setvar",
             "Getvar"]  # GetConfig: the queues' wrapuptime (queuecalls.queueconf)
    if dialer:
        names.append("Originate")
    if recordings:
        names.append("MixMonitor")
    return names


# --------------------------------------------------------------------- database
def check_database(url_for_humans: str, current: list[str] | None, heads: list[str], error: str | None) -> Result:
    if error == "it does not exist":
        return Result("database", FAIL, f"{url_for_humans} does not exist",
                      "check [database] url / [service] data_dir; then: callcenter db upgrade")
    if error is not None:
        return Result("database", FAIL, f"cannot reach {url_for_humans}: {error}",
                      "check [database] url (host, user, password) and that the server runs")
    if not current:
        return Result("database", FAIL, f"{url_for_humans} has no schema", "run: callcenter db upgrade")
    if set(current) != set(heads):
        return Result("database", FAIL, f"{url_for_humans} is at {sorted(current)}, the code needs {sorted(heads)}",
                      "run: callcenter db upgrade")
    return Result("database", OK, f"{url_for_humans} reachable, schema at {', '.join(sorted(heads))}")


# --------------------------------------------------------------------- AMI
def check_ami_login(facts: AmiFacts, username: str) -> Result:
    if facts.error is not None:
        if "refused:" in facts.error:
            remedy = (f"[ami] username/secret must match the [{username}] section of Asterisk's manager.conf "
                      "(and its permit= must allow this host); then: asterisk -rx 'manager reload'")
        else:
            remedy = "check [ami] host/port, that Asterisk runs, and manager.conf [general] enabled/bindaddr/port"
        return Result("ami login", FAIL, facts.error, remedy)
    return Result("ami login", OK, f"logged in to {facts.address} as {username!r} ({facts.banner})")


def check_ami_actions(facts: AmiFacts, needed: Iterable[str], username: str) -> Result:
    if facts.commands is None:
        return Result("ami permissions", SKIP, "not checked: no AMI session")
    missing = [a for a in needed if a not in facts.commands]
    if missing:
        classes = sorted({c for a in missing for c in ACTION_CLASSES.get(a, "").split(",")} - {"(none)"})
        return Result("ami permissions", FAIL,
                      f"Asterisk answers 'Permission denied' to {', '.join(missing)} for {username!r}",
                      f"add {','.join(classes)} to write= of [{username}] in manager.conf; "
                      "then: asterisk -rx 'manager reload'")
    return Result("ami permissions", OK, f"{username!r} may send {', '.join(needed)}")


def check_ami_events(facts: AmiFacts, username: str) -> Result:
    """``system`` (FullyBooted at login) and ``dialplan`` (the probe's global VarSet) are
    observable without a call; ``call`` and ``agent`` events only come with traffic."""
    if facts.commands is None:
        return Result("ami events", SKIP, "not checked: no AMI session")
    missing = [c for c in ("system", "dialplan") if c not in facts.events_seen]
    if missing:
        return Result("ami events", FAIL, f"no {', '.join(missing)} events reach {username!r}",
                      f"read= of [{username}] in manager.conf must include system,call,agent,dialplan; "
                      "then: asterisk -rx 'manager reload'")
    return Result("ami events", OK, "system and dialplan events arrive (call and agent events are only seen "
                                    "with calls: read= must include them too)")


def check_queues(facts: AmiFacts, expected: Iterable[str], answer_target: float) -> Result:
    if facts.commands is None:
        return Result("queues", SKIP, "not checked: no AMI session")
    if facts.queues is None:
        return Result("queues", FAIL, f"QueueStatus refused: {facts.queue_status_error}",
                      "is app_queue loaded? asterisk -rx 'module load app_queue.so'")
    target = int(answer_target) if float(answer_target).is_integer() else answer_target
    problems, remedies = [], []
    for name in expected:
        params = facts.queues.get(name)
        if params is None:
            problems.append(f"queue {name!r} does not exist")
            remedies.append(f"add [{name}] with servicelevel = {target} to queues.conf")
            continue
        sl = params.get("ServiceLevel", "")
        if sl != str(target):
            problems.append(f"queue {name!r} has servicelevel {sl or '?'}, [hospital] answer_target_seconds "
                            f"is {target}")
            remedies.append(f"set servicelevel = {target} in [{name}] of queues.conf")
    if problems:
        return Result("queues", FAIL, "; ".join(problems), "; ".join(remedies) + "; then: asterisk -rx 'queue reload all'")
    return Result("queues", OK, f"{', '.join(expected)} exist with servicelevel = {target}")


def _agi_steps(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(context, agi url) of every AGI() step."""
    return [(r.get("Context", ""), (r.get("AppData") or "").split(",")[0].strip())
            for r in rows if (r.get("Application") or "").lower() == "agi"]


def _ours(url: str, host: str, port: int) -> bool:
    """``url`` is a FastAGI URL naming this service (a local AGI script never is)."""
    if not url.startswith("agi://"):
        return False
    where = url[len("agi://"):].split("/", 1)[0]
    h, _, p = where.partition(":")
    return (int(p) if p.isdigit() else 4573) == port and (host in ("0.0.0.0", "::", "") or h == host)


def check_dialplan(facts: AmiFacts, *, agi_host: str, agi_port: int, flows: Iterable[str],
                   contexts: Iterable[str], dialer_flows: Iterable[str] = ()) -> Result:
    """Every flow is reached by an ``AGI(agi://<this service>/<flow>)`` somewhere, no AGI step
    names a flow of ours on another host/port, and the contexts the dialer originates into exist.
    ``AGI(agi://<this service>/${SURVEY_FLOW})`` reaches ``dialer_flows``: the flows the dialer
    names in that channel variable (docs/asterisk/extensions.conf ``[survey]``)."""
    if facts.commands is None:
        return Result("dialplan", SKIP, "not checked: no AMI session")
    if facts.dialplan is None:
        return Result("dialplan", FAIL, f"ShowDialPlan refused: {facts.dialplan_error}",
                      "add reporting to write= of the AMI user in manager.conf (ShowDialPlan needs config or "
                      "reporting)")
    flows = list(flows)
    steps = _agi_steps(facts.dialplan)
    have = {r.get("Context", "") for r in facts.dialplan}
    ours = f"agi://{agi_host}:{agi_port}"
    problems, remedies = [], []
    for ctx, url in steps:
        flow = url.rsplit("/", 1)[-1] if url.startswith("agi://") else ""
        if flow in flows and not _ours(url, agi_host, agi_port):
            problems.append(f"context {ctx!r} runs AGI({url}), not this service ({ours})")
            remedies.append(f"in extensions.conf [{ctx}]: AGI({ours}/{flow})")
    reached = {url.rsplit("/", 1)[-1] for _, url in steps if _ours(url, agi_host, agi_port)}
    if "${SURVEY_FLOW}" in reached:
        reached |= set(dialer_flows)
    dialer_flows = set(dialer_flows)
    unreached_dialer = False
    for flow in flows:
        if flow not in reached:
            problems.append(f"no context runs AGI({ours}/{flow})")
            if flow in dialer_flows:  # one remedy for all of them: the dialer names the flow
                unreached_dialer = True
            elif flow == "satisfaction":
                remedies.append(f"add AGI({ours}/satisfaction) after Queue() in the inbound context, run when the "
                                "agent hangs up (docs/asterisk/extensions.conf [hotline], label rating)")
            else:
                remedies.append(f"add AGI({ours}/{flow}) to the inbound context (docs/asterisk/extensions.conf)")
    if unreached_dialer:
        remedies.append(f"add AGI({ours}/${{SURVEY_FLOW}}) to the context the dialer originates answered calls "
                        "into (docs/asterisk/extensions.conf [survey]): it runs the flow the dialer names")
    for ctx in contexts:
        if ctx not in have:
            problems.append(f"context {ctx!r} does not exist")
            remedies.append(f"add [{ctx}] from docs/asterisk/extensions.conf")
    if problems:
        return Result("dialplan", FAIL, "; ".join(problems), "; ".join(remedies) + "; then: asterisk -rx "
                      "'dialplan reload'")
    return Result("dialplan", OK, f"{', '.join(f'{f}' for f in flows)} reached at {ours}; contexts "
                                  f"{', '.join(contexts) or '(none needed)'} exist")


def check_clock(facts: AmiFacts) -> Result:
    if facts.ping_timestamp is None or facts.ping_local is None:
        return Result("clock", SKIP, "not checked: no Ping timestamp from Asterisk")
    skew = facts.ping_local - facts.ping_timestamp
    if abs(skew) > MAX_CLOCK_SKEW:
        return Result("clock", FAIL, f"this host's clock is {skew:+.1f} s from Asterisk's",
                      "run NTP (chrony/systemd-timesyncd) on both hosts: answer times and queue_log "
                      "recovery compare the two clocks")
    return Result("clock", OK, f"within {abs(skew):.2f} s of Asterisk's clock")


# --------------------------------------------------------------------- local files
def check_timezone(timezone: str, window: tuple[str, str], now: float) -> Result:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return Result("timezone", FAIL, f"[hospital] timezone {timezone!r} is not in the tz database",
                      "set an IANA name (e.g. Asia/Shanghai) or install tzdata")
    local = dt.datetime.fromtimestamp(now, zone)
    start, end = window
    if not start < end:
        return Result("timezone", FAIL, f"[dialer] window_start {start} is not before window_end {end}",
                      "fix the calling window in [dialer]")
    open_now = start <= local.strftime("%H:%M") < end
    return Result("timezone", OK, f"{timezone}: it is {local:%Y-%m-%d %H:%M %Z} there; calling window "
                                  f"{start}-{end} is {'open' if open_now else 'closed'} now")


def _writable_by(path: Path, user: str | None) -> bool:
    """``user`` may create files in ``path`` by its mode bits (``None``: this process)."""
    if user is None:
        return os.access(path, os.W_OK | os.X_OK)
    pw = pwd.getpwnam(user)
    if pw.pw_uid == 0:
        return True
    st = path.stat()
    groups = {g.gr_gid for g in grp.getgrall() if user in g.gr_mem} | {pw.pw_gid}
    if st.st_uid == pw.pw_uid:
        return bool(st.st_mode & stat.S_IWUSR and st.st_mode & stat.S_IXUSR)
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IWGRP and st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IWOTH and st.st_mode & stat.S_IXOTH)


def check_directory(check: str, path: Path, key: str, run_user: str | None) -> Result:
    """``run_user``: Asterisk's user (CoreSettings CoreRunUser) when known and on this host."""
    if not path.is_dir():
        return Result(check, FAIL, f"{path} ({key}) does not exist",
                      f"mkdir -p {path} && chown {run_user or 'asterisk'} {path}")
    user = run_user if run_user and _known_user(run_user) else None
    if not _writable_by(path, user):
        who = f"user {user!r}" if user else "this user"
        return Result(check, FAIL, f"{path} ({key}) is not writable by {who}",
                      f"chown {user or 'asterisk'} {path} (or chmod g+w with a shared group)")
    who = f"Asterisk's user {user!r}" if user else "this user (Asterisk's run user not known here)"
    return Result(check, OK, f"{path} exists, writable by {who}")


def _known_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def check_queue_log(path: str, now: float) -> Result:
    if not path:
        return Result("queue_log", WARN, "[ami] queue_log is not set: calls during an AMI outage are not "
                                         "recovered", "set [ami] queue_log to Asterisk's queue_log "
                                                      "(/var/log/asterisk/queue_log) and make it readable")
    p = Path(path)
    try:
        with p.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        return Result("queue_log", FAIL, f"{path} ([ami] queue_log) is not readable: {exc.strerror}",
                      f"make it readable by the service's user (e.g. setfacl -m u:callcenter:r {path})")
    age = now - p.stat().st_mtime
    return Result("queue_log", OK, f"{path} readable (last written {age:.0f} s ago)")


def check_prompts(sounds_dir: str, flows: Iterable, base: str) -> Result:
    """Each generated prompt of every flow in every language has a sound file."""
    if not sounds_dir:
        return Result("prompts", SKIP, "not checked: [agi] sounds_dir is not set (Asterisk's sounds "
                                       "directory, when readable from here)")
    root = Path(sounds_dir)
    if not root.is_dir():
        return Result("prompts", FAIL, f"{root} ([agi] sounds_dir) does not exist",
                      "set [agi] sounds_dir to Asterisk's sounds directory (astdatadir/sounds)")
    missing, total = [], 0
    for flow in flows:
        for pid, spec in flow.prompts.items():
            if "file" in spec:
                continue
            for lang in flow.languages:
                if not spec.get(lang):
                    continue
                total += 1
                stem = root / flow.prompt_file(pid, lang, base)
                if not any(stem.with_name(stem.name + ext).exists() for ext in PROMPT_EXTENSIONS):
                    missing.append(f"{flow.prompt_file(pid, lang, base)}")
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        return Result("prompts", FAIL, f"{len(missing)} of {total} prompts missing under {root}: "
                                       f"{', '.join(missing[:5])}{more}",
                      f"callcenter prompts build --out {root / base} (needs espeak-ng and sox)")
    return Result("prompts", OK, f"all {total} prompts present under {root / base}")
