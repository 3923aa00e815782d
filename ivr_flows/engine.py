"""The IVR engine, sans-IO: (flow, state, last AGI reply) -> next step.

``Engine.start()`` and ``Engine.send(value)`` return one step:

* :class:`Command` - an AGI command line to send; feed back the :class:`~ivr_flows.agi.Reply`;
* :class:`Effect` - something only the adapter can do (database hooks, queue
  load, the session id); feed back its result (or ``None``);
* :class:`Done` - the session is over, with its result.

No sockets, threads or clocks here (``now`` is injected), so a whole call is a
plain loop in a unit test.  The node handlers are generators: ``yield`` a step,
receive the answer.  Caller data only reaches a command through
:func:`ivr_flows.agi.quote`.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Generator
from zoneinfo import ZoneInfo

import holidays

from callcenter.phones import DEFAULT_REGION, canonical

from .agi import Env, Reply, command, quote
from .segments import appointment_segments, message_file, segment_file

_CALLABLE = re.compile(r"\+?[0-9]{6,15}")


def callable_number(number: str) -> bool:
    """A number a callback can dial: digits (an optional leading +), 6-15 of them.  A withheld
    caller ID arrives as "", "unknown", "anonymous", "Restricted", "+" or "0": none is."""
    return bool(number) and _CALLABLE.fullmatch(number) is not None
from .flow import Flow

log = logging.getLogger(__name__)
MAX_STEPS = 300
# escape digits of an announcement a caller may cut short: not # (it ends a keyed-in number, and
# a caller who typed the whole number presses it after the entry is complete)
ANY_KEY = "0123456789"
MIN_MESSAGE_SECONDS = 1.0  # a voice message with less audio is nothing said (``min_seconds``)
REJECTED = "!"  # marks a key (or entry) in ``digits`` that the menu or collect node refused
_TEMPLATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Command:
    line: str


@dataclass
class Effect:
    # queue_load | session_id | voicemail_prepare | voicemail | callback | survey_result | rating |
    # appointment | appointment_answer | notification_message
    name: str
    args: dict = field(default_factory=dict)


@dataclass
class Done:
    result: str


Step = Command | Effect | Done


class CallerHungUp(Exception):
    pass


@functools.lru_cache(maxsize=8)
def _holidays(country: str):
    return holidays.country_holidays(country)


def warm_holidays(country: str, day: dt.date) -> None:
    """Build ``country``'s holidays for ``day``'s year now (the server's start-up), not in the
    first caller's session on the event loop (the import and a year's dates took ~100 ms).
    Raises what ``holidays`` raises for an unknown country."""
    _ = day in _holidays(country)


def luhn_ok(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mod11_ok(digits: str) -> bool:
    """Weights 2..n from the right over the body; check digit 10 written as '0' is refused."""
    if len(digits) < 2 or not digits.isdigit():
        return False
    body, check = digits[:-1], int(digits[-1])
    s = sum(int(c) * w for c, w in zip(reversed(body), range(2, len(body) + 2)))
    r = (11 - s % 11) % 11
    return r != 10 and r == check


class Engine:
    def __init__(self, flow: Flow, env: Env, *, now: Callable[[], float],
                 timezone: str = "Asia/Shanghai", country: str = "CN", region: str = DEFAULT_REGION,
                 prompt_base: str = "callcenter",
                 recordings_dir: str = "/var/spool/asterisk/recordings"):
        self.flow = flow
        self.region = region
        self.env = env
        self.now = now
        self.tz = ZoneInfo(timezone)
        self.country = country
        self.prompt_base = prompt_base
        self.recordings_dir = recordings_dir.rstrip("/")
        self.language = flow.default_language
        self.path: list[str] = []
        self.digits: list[str] = []  # every key pressed, in order; rejected ones end in "!"
        self.dialled_number = ""  # outbound: the patient's number (PATIENT_NUMBER), not our CallerID
        self.vars: dict[str, str] = {}
        self.result: str | None = None
        self.warnings: list[str] = []
        self.details: dict[str, Any] = {}
        self.channel_gone = False
        self.reported = False
        self.rated_call: dict[str, str] = {}  # rating flows: the queue call being rated
        self.rating_stored = False
        self.appointment: dict | None = None  # what a lookup_appointment node found
        self.typed_ahead = ""  # a key pressed during an interruptible announcement: the next menu's
        self.started_at = now()
        self._gen = self._run()

    # -- public sans-IO interface -------------------------------------------
    @property
    def caller_number(self) -> str:
        """The other party, in the stored form (callcenter.phones): the caller of an inbound
        call; on an outbound survey the dialled patient, since ``agi_callerid`` is then the
        hospital's own CallerID from the Originate."""
        num = self.dialled_number or self.env.get("agi_callerid")
        return "" if num in ("", "unknown") else canonical(num, self.region)

    @property
    def caller_name(self) -> str:
        name = self.env.get("agi_calleridname")
        return "" if name in ("", "unknown") else name

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid")

    def start(self) -> Step:
        return self._step(None, first=True)

    def send(self, value: Any) -> Step:
        return self._step(value)

    def hangup_seen(self) -> None:
        """Asterisk sent the unsolicited ``HANGUP`` line: the caller is gone."""
        self.channel_gone = True

    def _step(self, value: Any, first: bool = False) -> Step:
        try:
            return next(self._gen) if first else self._gen.send(value)
        except StopIteration as stop:
            return Done(stop.value)

    # -- helpers ------------------------------------------------------------
    def warn(self, text: str) -> None:
        self.warnings.append(text)
        log.warning("ivr %s: %s", self.flow.name, text)

    def _cmd(self, line: str, *, media: bool = False) -> Generator[Step, Any, Reply]:
        if self.channel_gone:
            raise CallerHungUp
        reply = yield Command(line)
        if not isinstance(reply, Reply):
            raise CallerHungUp  # the connection closed
        if reply.code == 511 or (media and reply.code == 200 and reply.result == "-1"
                                 and reply.endpos is None):
            raise CallerHungUp
        if reply.code not in (200, 511):
            self.warn(f"AGI {line.split(' ', 1)[0]} answered {reply.lines[0] if reply.lines else reply.code!r}")
        return reply

    def _file(self, prompt_id: str) -> str:
        return self.flow.prompt_file(prompt_id, self.language, self.prompt_base)

    def _play(self, prompt_id: str, escape: str = "") -> Generator[Step, Any, str | None]:
        reply = yield from self._cmd(command("STREAM FILE", self._file(prompt_id), quote(escape)))
        if reply.code == 200 and reply.result == "-1":
            yield from self._still_there(f"STREAM FILE {self._file(prompt_id)}")
            what = "missing on the PBX" if reply.endpos == 0 else "stopped playing"
            self.warn(f"prompt {self._file(prompt_id)} {what}; carrying on")
            return None
        return reply.digit if reply.code == 200 else None

    def _still_there(self, what: str) -> Generator[Step, Any, None]:
        """``result=-1`` is a hang-up or a failed playback (a missing file answers at once):
        ask the channel (``CHANNEL STATUS``: 511 once the caller is gone)."""
        if self.channel_gone:
            raise CallerHungUp
        status = yield from self._cmd("CHANNEL STATUS")
        if status.code != 200 or status.result in ("", "-1"):
            raise CallerHungUp

    def _play_all(self, prompts: Any) -> Generator[Step, Any, None]:
        for pid in prompts if isinstance(prompts, list) else [prompts]:
            yield from self._play(pid)

    def _get_data(self, prompt_id: str, timeout: float, maxdigits: int) -> Generator[Step, Any, str]:
        reply = yield from self._cmd(
            command("GET DATA", self._file(prompt_id), int(timeout * 1000), int(maxdigits)))
        if reply.code != 200:
            return ""
        if reply.result == "-1":
            yield from self._still_there(f"GET DATA {self._file(prompt_id)}")
            self.warn(f"prompt {self._file(prompt_id)} missing on the PBX (GET DATA answered "
                      "200 result=-1 on a live channel); taken as no input")
            return ""
        return re.sub(r"[^0-9*#A-D]", "", reply.result)

    def _setvar(self, name: str, value: Any) -> Generator[Step, Any, None]:
        yield from self._cmd(command("SET VARIABLE", name, quote(value)))

    def _template(self, value: Any) -> str:
        ctx = {"caller_number": self.caller_number, "caller_name": self.caller_name,
               "uniqueid": self.uniqueid, "language": self.language, "flow": self.flow.name,
               **self.vars}
        return _TEMPLATE.sub(lambda m: str(ctx.get(m.group(1), "")), str(value))

    def local_now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), tz=self.tz)

    # -- the run --------------------------------------------------------------
    def _run(self) -> Generator[Step, Any, str]:
        try:
            yield from self._cmd("ANSWER")
            if self.flow.outbound:  # a flow the dialer's calls run: the attempt and the dialled number
                reply = yield from self._cmd("GET VARIABLE ATTEMPT_ID")
                if reply.code == 200 and reply.result == "1" and reply.data:
                    self.vars["attempt_id"] = reply.data
                reply = yield from self._cmd("GET VARIABLE PATIENT_NUMBER")
                if reply.code == 200 and reply.result == "1" and reply.data:
                    self.dialled_number = reply.data
            if self._rates():
                yield from self._rated_call()
            if "play_message" in self.flow.kinds:
                reply = yield from self._cmd("GET VARIABLE PATIENT_LANGUAGE")  # the patient's, from the import
                if reply.code == 200 and reply.result == "1" and reply.data in self.flow.languages:
                    self.language = reply.data
            node_id: str | None = self.flow.start
            steps = 0
            while node_id is not None:
                steps += 1
                if steps > MAX_STEPS:
                    self.warn(f"more than {MAX_STEPS} nodes visited; hanging up")
                    yield from self._cmd("HANGUP")
                    break
                self.path.append(node_id)
                node = self.flow.nodes[node_id]
                node_id = yield from getattr(self, "_n_" + node["type"])(node_id, node)
        except CallerHungUp:
            self.channel_gone = True
            if self.result is None:
                self.result = "hangup"
            if not self.reported and "report" in self.flow.kinds:
                answers = {k: v for k, v in self.vars.items() if k != "attempt_id"}
                yield Effect("survey_result", {"answers": answers, "opted_out": False,
                                               "completed": False,
                                               "attempt_id": self.vars.get("attempt_id")})
            if self._rates() and not self.rating_stored and self.rated_call.get("queue"):
                yield from self._store_rating("hangup", None, "")  # gone before rating: stored as such
        return self.result or "hangup"

    # -- node types -------------------------------------------------------------
    def _n_play(self, nid, node):
        yield from self._play_all(node["prompt"])
        return node["next"]

    def _n_menu(self, nid, node):
        options = {str(k): v for k, v in node["options"].items()}
        retries = int(node.get("retries", 2))
        timeout = float(node.get("timeout", 5))
        for attempt in range(retries + 1):
            if attempt == 0 and self.typed_ahead:
                got, self.typed_ahead = self.typed_ahead, ""
            else:
                got = yield from self._get_data(node["prompt"], timeout, 1)
            if got and got in options:
                self.digits.append(got)
                if node.get("store") and got in str(node.get("store_digits", got)):
                    self.vars[str(node["store"])] = got
                target = options[got]
                if isinstance(target, dict):
                    for k, v in (target.get("set") or {}).items():
                        self._assign(str(k), v)
                    target = target["next"]
                return target
            if got:
                self.digits.append(got + REJECTED)
            if attempt < retries:
                extra = node.get("invalid_prompt") if got else node.get("timeout_prompt")
                extra = extra or node.get("invalid_prompt")
                if extra:
                    yield from self._play_all(extra)
        return node["default"]

    def _assign(self, name: str, value: Any) -> None:
        if name == "language":
            if str(value) in self.flow.languages:
                self.language = str(value)
            return
        self.vars[name] = self._template(value)

    def _n_collect(self, nid, node):
        length = node.get("length")
        lo = int(node.get("min_length", length or 1))
        hi = int(node.get("max_length", length or 20))
        retries = int(node.get("retries", 2))
        timeout = float(node.get("timeout", 6))
        fmt = node.get("format")
        checksum = node.get("checksum", "none")
        for attempt in range(retries + 1):
            got = (yield from self._get_data(node["prompt"], timeout, hi)).rstrip("#")
            ok = bool(got) and lo <= len(got) <= hi
            ok = ok and (not fmt or re.fullmatch(str(fmt), got) is not None)
            ok = ok and (checksum != "luhn" or luhn_ok(got)) and (checksum != "mod11" or mod11_ok(got))
            if ok:
                self.digits.append(got)
                self.vars[str(node["var"])] = got
                return node["next"]
            if got:
                self.digits.append(got + REJECTED)
            if attempt < retries and node.get("invalid_prompt"):
                yield from self._play_all(node["invalid_prompt"])
        return node["default"]

    def _n_branch(self, nid, node):
        loads: dict[str, Any] = {}
        for case in node["cases"]:
            ok = yield from self._condition(case["when"], loads)
            if ok:
                return case["next"]
        return node["default"]

    def _condition(self, cond: dict, loads: dict) -> Generator[Step, Any, bool]:
        local = self.local_now()
        is_holiday = False
        if "holiday" in cond or "open" in cond:
            try:
                is_holiday = local.date() in _holidays(self.country)
            except Exception:  # unknown country: no holidays, never fatal
                self.warn(f"no public holidays known for {self.country!r}")
        if "holiday" in cond and bool(cond["holiday"]) != is_holiday:
            return False
        if "open" in cond:
            is_open = self.flow.hours.is_open(local, is_holiday) if self.flow.hours else True
            if bool(cond["open"]) != is_open:
                return False
        if "longest_wait_over" in cond or "agents_available_below" in cond:
            q = str(cond["queue"])
            if q not in loads:
                loads[q] = yield Effect("queue_load", {"queue": q})
            load = loads[q]
            if not load:  # no queuecalls component (yet): not worth a log line per call
                self.warnings.append(f"queue load of {q!r} unknown; condition treated as false")
                log.debug("queue load of %r unknown", q)
                return False
            if "longest_wait_over" in cond and not float(load.get("longest_wait", 0)) > float(cond["longest_wait_over"]):
                return False
            if "agents_available_below" in cond and not int(load.get("agents_available", 0)) < int(cond["agents_available_below"]):
                return False
        if "var" in cond:
            name = str(cond["var"])
            value = self.language if name == "language" else self.vars.get(name, "")
            if "equals" in cond and str(value) != str(cond["equals"]):
                return False
            if "in" in cond and str(value) not in [str(x) for x in cond["in"]]:
                return False
        return True

    def _n_set(self, nid, node):
        for k, v in (node.get("vars") or {}).items():
            self._assign(str(k), v)
        for k, v in (node.get("channel") or {}).items():
            yield from self._setvar(str(k), self._template(v))
        return node["next"]

    def _n_queue(self, nid, node):
        if node.get("prompt"):
            yield from self._play_all(node["prompt"])
        sid = yield Effect("session_id")
        if sid is not None:
            yield from self._setvar("IVR_SESSION", sid)
        yield from self._setvar("IVR_LANGUAGE", self.language)
        yield from self._setvar("QUEUE_PRIO", int(node.get("priority", 0)))
        yield from self._setvar("QUEUE", node["queue"])
        self.result = f"queued:{node['queue']}"
        return None

    def _n_transfer(self, nid, node):
        if node.get("prompt"):
            yield from self._play_all(node["prompt"])
        sid = yield Effect("session_id")
        if sid is not None:
            yield from self._setvar("IVR_SESSION", sid)
        yield from self._setvar("TRANSFER", node.get("target", "operator"))
        self.result = "operator"
        return None

    def _n_hangup(self, nid, node):
        if self.result is None:
            self.result = str(node.get("result", "hangup"))
        if node.get("prompt"):
            yield from self._play_all(node["prompt"])
        yield from self._cmd("HANGUP")
        return None

    def _n_voicemail(self, nid, node):
        """Record a message; one that was not recorded, or holds under ``min_seconds`` of
        audio (hung up at the beep), is never acted on: the caller hears the apology of node
        ``failed`` (which offers a callback) instead of the thanks."""
        if node.get("prompt"):
            yield from self._play_all(node["prompt"])
        started = self.now()
        day = dt.datetime.fromtimestamp(started, tz=self.tz).strftime("%Y-%m-%d")
        uid = re.sub(r"[^0-9.]", "", self.uniqueid) or f"t{int(started * 1000)}"
        base = f"{self.recordings_dir}/voicemail/{day}/voicemsg-{uid}"
        max_ms = int(float(node.get("max_seconds", 120)) * 1000)
        silence = int(node.get("silence_seconds", 5))
        problem = yield Effect("voicemail_prepare", {"path": base})
        if problem:
            return self._voicemail_failed(node, f"not recorded: {problem}")
        if self.channel_gone:
            raise CallerHungUp
        reply = yield Command(command("RECORD FILE", quote(base), "wav", quote("#"), max_ms, 0,
                                      f"s={silence}"))
        if not isinstance(reply, Reply) or reply.code == 511:
            raise CallerHungUp
        if reply.code != 200 or reply.data not in ("dtmf", "timeout", "hangup"):
            if reply.code == 200 and reply.data == "randomerror" and reply.result == "-1":
                raise CallerHungUp  # hung up during the beep: nothing recorded, nobody to tell
            line = reply.lines[0] if reply.lines else str(reply.code)
            return self._voicemail_failed(node, f"RECORD FILE {base} answered {line!r}")
        hung = reply.data == "hangup"
        self.result = "voicemail"
        ids = yield Effect("voicemail", {
            "path": base + ".wav", "link": node.get("link", "complaint"), "started_at": started,
            "callback_phone": self.caller_number if callable_number(self.caller_number) else "",
            "duration": max(0.0, self.now() - started), "endpos": reply.endpos or 0,
            "min_seconds": float(node.get("min_seconds", MIN_MESSAGE_SECONDS)),
        })
        ids = dict(ids or {})
        unusable = ids.pop("unusable", None)
        self.details.update(ids)
        target = self._voicemail_failed(node, unusable) if unusable else node["next"]
        if hung:
            raise CallerHungUp
        return target

    def _voicemail_failed(self, node, why: str) -> str:
        self.result = "voicemail_failed"
        self.details["voice_message_error"] = why[:300]
        self.warn(f"voice message {why}")
        return node["failed"]

    def _n_callback(self, nid, node):
        """Store a callback request for a number we can call: the caller ID, or (withheld)
        one the caller keys in when ``ask_prompt`` is given.  Only a stored (or queued)
        request is confirmed; otherwise ``unavailable_prompt`` says a callback is not
        possible and the call goes on at ``unavailable`` (default ``next``)."""
        phone = self.caller_number if callable_number(self.caller_number) else ""
        if not phone and node.get("ask_prompt"):
            retries = int(node.get("retries", 2))
            for attempt in range(retries + 1):
                got = (yield from self._get_data(node["ask_prompt"], float(node.get("timeout", 8)), 15)).rstrip("#")
                if callable_number(got):
                    phone = got
                    self.details["callback_number"] = "entered"
                    break
                if attempt < retries and node.get("invalid_prompt"):
                    yield from self._play_all(node["invalid_prompt"])
        cid = None
        if phone:
            cid = yield Effect("callback", {"reason": node.get("reason", "callback requested in IVR"),
                                            "phone": phone})
        if cid is None:
            self.result = "callback_unavailable" if phone else "callback_no_number"
            if node.get("unavailable_prompt"):
                yield from self._play_all(node["unavailable_prompt"])
            return node.get("unavailable", node["next"])
        if isinstance(cid, int):
            self.details["contact_id"] = cid
        self.result = "callback"
        if node.get("prompt"):
            yield from self._play_all(node["prompt"])
        return node["next"]

    def _n_report(self, nid, node):
        names = node.get("answers") or []
        answers = {str(n): self.vars.get(str(n)) for n in names}
        opted_out = bool(node.get("opted_out", False))
        yield Effect("survey_result", {"answers": answers, "opted_out": opted_out, "completed": True,
                                       "attempt_id": self.vars.get("attempt_id")})
        self.reported = True
        self.result = "optout" if opted_out else "survey_done"
        return node["next"]

    # -- post-call satisfaction (docs/asterisk/extensions.conf: Queue(${QUEUE},c), then this flow) --
    def _rates(self) -> bool:
        return "rating" in self.flow.kinds

    def _rated_call(self) -> Generator[Step, Any, None]:
        """Which queue call is rated: app_queue leaves QUEUENAME (setqueuevar) and the answering
        member's MEMBERINTERFACE (setinterfacevar) on the caller's channel; the hotline left the
        caller's language in IVR_LANGUAGE."""
        for var, key in (("QUEUENAME", "queue"), ("MEMBERINTERFACE", "agent")):
            reply = yield from self._cmd(f"GET VARIABLE {var}")
            if reply.code == 200 and reply.result == "1" and reply.data:
                self.rated_call[key] = reply.data
        reply = yield from self._cmd("GET VARIABLE IVR_LANGUAGE")  # the hotline's language choice
        if reply.code == 200 and reply.result == "1" and reply.data in self.flow.languages:
            self.language = reply.data

    def _store_rating(self, outcome: str, score: int | None, level: str) -> Generator[Step, Any, None]:
        self.rating_stored = True
        self.vars["rating_level"] = level
        self.details["rating"] = {"outcome": outcome, "score": score, "level": level, **self.rated_call}
        yield Effect("rating", {"uniqueid": self.uniqueid, "queue": self.rated_call.get("queue", ""),
                                "agent": self.rated_call.get("agent", ""), "outcome": outcome,
                                "score": score, "level": level})

    def _n_rating(self, nid, node):
        """Ask for the rating on the node's ``scale`` (key -> level).  Stored as what happened:
        rated, no_input (no key at all), invalid (only keys off the scale); a hang-up is stored
        by ``_run``.  Without a queue call to rate (QUEUENAME unset: the flow was not reached
        from ``Queue(...,c)``) nothing is asked."""
        if not self.rated_call.get("queue"):
            self.warn("rating flow run without QUEUENAME on the channel (not after Queue(...,c)?): "
                      "nothing to rate")
            self.result = "rating_no_call"
            return node["default"]
        scale = {str(k): str(v) for k, v in node["scale"].items()}
        retries = int(node.get("retries", 1))
        timeout = float(node.get("timeout", 5))
        pressed = False
        for attempt in range(retries + 1):
            got = yield from self._get_data(node["prompt"], timeout, 1)
            if got and got in scale:
                self.digits.append(got)
                yield from self._store_rating("rated", int(got), scale[got])
                self.result = f"rated:{scale[got]}"
                return node["next"]
            if got:
                pressed = True
                self.digits.append(got + REJECTED)
            if attempt < retries:
                extra = (node.get("invalid_prompt") if got else node.get("timeout_prompt")) or node.get("invalid_prompt")
                if extra:
                    yield from self._play_all(extra)
        outcome = "invalid" if pressed else "no_input"
        yield from self._store_rating(outcome, None, "")
        self.result = f"rating_{outcome}"
        return node["default"]

    # -- appointments and notifications ---------------------------------------------
    def _n_lookup_appointment(self, nid, node):
        """The appointment this call is about: the one the dialer called for (``by: call``),
        the caller's next one (``caller``: caller ID) or that of a keyed-in patient number."""
        by = node["by"]
        number = self.vars.get(str(node.get("var", ""))) if by == "patient_number" else None
        if by == "caller" and not callable_number(self.caller_number):
            return node["missing"]
        found = yield Effect("appointment", {"by": by, "attempt_id": self.vars.get("attempt_id"),
                                             "caller_number": self.caller_number, "patient_number": number})
        if not found:
            self.details["appointment"] = "none"
            return node["missing"]
        self.appointment = dict(found)
        self.vars["appointment_id"] = str(found["appointment_id"])
        self.details["appointment_id"] = found["appointment_id"]
        if by == "call" and found.get("language") in self.flow.languages:
            self.language = found["language"]  # a reminder speaks the patient's language
        return node["found"]

    def _n_say_appointment(self, nid, node):
        """Say the appointment; any key cuts it short and is the next menu's choice (Asterisk
        drops keys pressed during a STREAM FILE without escape digits: a patient who already
        knows the answer would otherwise press it into the void)."""
        for pid in (node["prompt"] if isinstance(node.get("prompt"), list) else [node["prompt"]]
                    if node.get("prompt") else []):
            key = yield from self._play(pid, ANY_KEY)
            if key:
                self.typed_ahead = key
                return node["next"]
        appt = self.appointment
        if appt is None:
            self.warn(f"say_appointment {nid}: no appointment looked up before it; nothing said")
            return node["next"]
        local = dt.datetime.fromtimestamp(float(appt["at"]), tz=self.tz)
        for name in appointment_segments(self.language, local, appt.get("department") or ""):
            key = yield from self._stream(segment_file(name, self.language, self.prompt_base), ANY_KEY)
            if key:
                self.typed_ahead = key
                break
        return node["next"]

    def _stream(self, file: str, escape: str = "") -> Generator[Step, Any, str | None]:
        """Play one sound file (a segment or message, not a flow prompt); the key that
        interrupted it (one of ``escape``), else None."""
        reply = yield from self._cmd(command("STREAM FILE", file, quote(escape)))
        if reply.code == 200 and reply.result == "-1":
            yield from self._still_there(f"STREAM FILE {file}")
            self.warn(f"prompt {file} {'missing on the PBX' if reply.endpos == 0 else 'stopped playing'}; "
                      "carrying on")
            return None
        return reply.digit if reply.code == 200 else None

    def _n_answer_appointment(self, nid, node):
        """Store the patient's answer on the appointment; ``failed`` when it could not be."""
        answer = node["answer"]
        appt = self.appointment
        stored = None
        if appt is not None:
            stored = yield Effect("appointment_answer", {"appointment_id": appt["appointment_id"], "answer": answer,
                                                         "attempt_id": self.vars.get("attempt_id")})
        if not stored:
            self.warn(f"appointment answer {answer!r} not stored")
            return node.get("failed", node["next"])
        self.details["appointment_answer"] = answer
        self.result = f"appointment_{answer}"
        return node["next"]

    def _n_play_message(self, nid, node):
        """The voice notification the dialled campaign chose."""
        message = yield Effect("notification_message", {"attempt_id": self.vars.get("attempt_id")})
        if not message:
            self.warn("no notification message for this call")
            return node["missing"]
        self.details["message"] = message
        key = yield from self._stream(message_file(str(message), self.language, self.prompt_base), ANY_KEY)
        self.typed_ahead = key or ""
        return node["next"]
