"""IVR flow files: YAML read with line numbers, validated into a :class:`Flow`.

A flow is a graph of named nodes (see ``ivr_flows/README.md`` for the format).
Every problem found is reported as ``file:line: message`` so a hospital's
operator can fix the file without reading code; ``check_file`` returns all of
them at once, ``load_flow`` raises :class:`FlowError` if there is any.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from callcenter.queuecalls.ratings import LEVELS

FLOWS_DIR = Path(__file__).resolve().parent

# node type -> (required fields, optional fields, end node?)
NODE_TYPES: dict[str, tuple[set[str], set[str], bool]] = {
    "play": ({"prompt", "next"}, set(), False),
    "menu": ({"prompt", "options", "default"},
             {"timeout", "retries", "invalid_prompt", "timeout_prompt", "store", "store_digits"}, False),
    "collect": ({"prompt", "var", "next", "default"},
                {"length", "min_length", "max_length", "format", "checksum", "timeout",
                 "retries", "invalid_prompt", "terminator"}, False),
    "branch": ({"cases", "default"}, set(), False),
    "set": ({"next"}, {"vars", "channel"}, False),
    "queue": ({"queue"}, {"priority", "prompt"}, True),
    # failed: where a caller goes whose message could not be recorded or holds under
    # min_seconds of audio (apology, callback offer)
    "voicemail": ({"next", "failed"}, {"prompt", "max_seconds", "min_seconds", "link", "silence_seconds"},
                  False),
    "callback": ({"next"}, {"prompt", "reason", "ask_prompt", "invalid_prompt", "retries", "timeout",
                            "unavailable_prompt", "unavailable"}, False),
    "report": ({"next"}, {"answers", "opted_out"}, False),
    # post-call satisfaction: scale = key -> level; next after a rating, default without one
    "rating": ({"prompt", "scale", "next", "default"},
               {"timeout", "retries", "invalid_prompt", "timeout_prompt"}, False),
    # appointments (reminder calls, the hotline): find one, say it, store the patient's answer
    "lookup_appointment": ({"by", "found", "missing"}, {"var"}, False),
    "say_appointment": ({"next"}, {"prompt"}, False),
    "answer_appointment": ({"answer", "next"}, {"failed"}, False),
    # voice notification: the message the campaign chose (settings.message)
    "play_message": ({"next", "missing"}, set(), False),
    "transfer": (set(), {"target", "prompt"}, True),
    "hangup": (set(), {"prompt", "result"}, True),
}
COMMON_FIELDS = {"type", "note"}
CHECKSUMS = ("luhn", "mod11", "none")
LOOKUP_BY = ("call", "caller", "patient_number")  # the dialled appointment, caller ID, a keyed-in number
ANSWERS = ("confirm", "cancel", "reschedule", "stop_reminders")
CONDITIONS = {"open", "holiday", "queue", "longest_wait_over", "agents_available_below",
              "var", "equals", "in"}
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DTMF = set("0123456789*#")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class LDict(dict):
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LList(list):
    line: int = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> LDict:
    loader.flatten_mapping(node)
    out = LDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for knode, vnode in node.value:
        key = loader.construct_object(knode, deep=True)
        if isinstance(key, bool):
            key = "yes" if key else "no"
        if isinstance(key, int):
            key = knode.value  # keep "0", "1" ... as written
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", knode.start_mark)
        out[key] = loader.construct_object(vnode, deep=True)
        out.key_lines[key] = knode.start_mark.line + 1
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> LList:
    out = LList(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class FlowError(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Hours:
    """Weekly opening hours; ``public_holidays`` closed unless said otherwise."""

    week: dict[int, list[tuple[dt.time, dt.time]]]
    holidays_closed: bool = True

    def is_open(self, local: dt.datetime, is_holiday: bool) -> bool:
        if is_holiday and self.holidays_closed:
            return False
        t = local.time()
        return any(a <= t < b for a, b in self.week.get(local.weekday(), []))


@dataclass
class Flow:
    name: str
    path: Path
    start: str
    languages: list[str]
    default_language: str
    prompts: dict[str, dict[str, str]]
    nodes: dict[str, LDict]
    hours: Hours | None = None
    ends: set[str] = field(default_factory=set)
    # What the engine asks of every session (derived from ``nodes``, which a Flow never changes;
    # a changed file is a new Flow): the node types present, and whether the dialer's calls run it.
    kinds: frozenset[str] = field(init=False, repr=False, compare=False)
    outbound: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.kinds = frozenset(str(n.get("type")) for n in self.nodes.values())
        self.outbound = bool(self.kinds & {"report", "play_message"}) or any(
            n.get("type") == "lookup_appointment" and n.get("by") == "call" for n in self.nodes.values())

    def prompt_file(self, prompt_id: str, language: str, base: str = "callcenter") -> str:
        """Where the PBX finds a prompt (no extension, relative to its sounds dir)."""
        spec = self.prompts.get(prompt_id, {})
        if "file" in spec:
            return spec["file"]
        lang = language if language in spec else self.default_language
        return f"{base}/{lang}/{self.name}/{prompt_id}"


def _parse_hours(raw: Any, path: str, problems: list[Problem]) -> Hours | None:
    if not isinstance(raw, LDict):
        problems.append(Problem(path, getattr(raw, "line", 1), "hours: must be a mapping"))
        return None
    week: dict[int, list[tuple[dt.time, dt.time]]] = {}
    closed = True
    for key, value in raw.items():
        line = raw.line_of(key)
        if key == "public_holidays":
            if value not in ("open", "closed"):
                problems.append(Problem(path, line, "hours: public_holidays must be open or closed"))
            closed = value != "open"
            continue
        days: list[int] = []
        if key == "daily":
            days = list(range(7))
        else:
            for part in str(key).split(","):
                a, _, b = part.strip().partition("-")
                if a not in DAYS or (b and b not in DAYS):
                    problems.append(Problem(path, line, f"hours: unknown day {part!r} (use mon..sun, "
                                            "ranges like mon-fri, or daily)"))
                    continue
                i, j = DAYS.index(a), DAYS.index(b or a)
                days.extend(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
        spans: list[tuple[dt.time, dt.time]] = []
        if str(value).strip() != "closed":
            for span in str(value).split(","):
                m = re.match(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$", span)
                try:
                    if not m:
                        raise ValueError
                    a = dt.time(int(m.group(1)), int(m.group(2)))
                    b = dt.time(23, 59, 59, 999999) if m.group(3) == "24" else \
                        dt.time(int(m.group(3)), int(m.group(4)))
                    if b <= a:
                        raise ValueError
                except ValueError:
                    problems.append(Problem(path, line, f"hours: {span.strip()!r} is not a time "
                                            "span like 08:00-17:30"))
                    continue
                spans.append((a, b))
        for d in days:
            week[d] = spans
    return Hours(week, closed)


def _number(value: Any) -> bool:
    """An int or float written in the file (YAML's yes/no are bools, not numbers)."""
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _targets(node: LDict) -> list[tuple[str, Any, int]]:
    """(label, target, line) for every outgoing edge of a node."""
    out: list[tuple[str, Any, int]] = []
    for key in ("next", "default", "unavailable", "failed", "found", "missing"):
        if key in node:
            out.append((key, node[key], node.line_of(key)))
    if node.get("type") == "menu" and isinstance(node.get("options"), LDict):
        opts = node["options"]
        for digit, target in opts.items():
            if isinstance(target, dict):
                target = target.get("next")
            out.append((f"option {digit}", target, opts.line_of(digit)))
    if node.get("type") == "branch" and isinstance(node.get("cases"), list):
        for i, case in enumerate(node["cases"]):
            if isinstance(case, LDict):
                out.append((f"case {i + 1}", case.get("next"), case.line_of("next")))
    return out


def _prompt_refs(node: LDict) -> list[tuple[str, int]]:
    refs = []
    for key in ("prompt", "invalid_prompt", "timeout_prompt", "ask_prompt", "unavailable_prompt"):
        if key in node:
            val = node[key]
            for p in (val if isinstance(val, list) else [val]):
                refs.append((p, node.line_of(key)))
    return refs


def _check_condition(cond: Any, line: int, path: str, flow_has_hours: bool,
                     problems: list[Problem]) -> None:
    if not isinstance(cond, LDict) or not cond:
        problems.append(Problem(path, line, "when: must be a mapping of conditions"))
        return
    for key in cond:
        if key not in CONDITIONS:
            problems.append(Problem(path, cond.line_of(key), f"unknown condition {key!r} "
                                    f"(known: {', '.join(sorted(CONDITIONS))})"))
    if "open" in cond and not flow_has_hours:
        problems.append(Problem(path, cond.line_of("open"), "condition 'open' needs an hours: section"))
    if ("longest_wait_over" in cond or "agents_available_below" in cond) and not cond.get("queue"):
        problems.append(Problem(path, cond.line, "queue load conditions need 'queue:'"))
    for key in ("longest_wait_over", "agents_available_below"):
        if key in cond and (isinstance(cond[key], bool) or not isinstance(cond[key], (int, float))):
            problems.append(Problem(path, cond.line_of(key), f"{key} must be a number"))
    if ("equals" in cond or "in" in cond) and "var" not in cond:
        problems.append(Problem(path, cond.line, "'equals'/'in' need 'var:'"))


def check_data(data: Any, path: str) -> tuple[list[Problem], Flow | None]:
    problems: list[Problem] = []
    P = lambda line, msg: problems.append(Problem(path, line, msg))  # noqa: E731
    if not isinstance(data, LDict):
        P(1, "a flow file must be a mapping with flow, start, prompts and nodes")
        return problems, None
    known_top = {"flow", "description", "start", "languages", "default_language", "hours",
                 "prompts", "nodes"}
    for key in data:
        if key not in known_top:
            P(data.line_of(key), f"unknown top-level key {key!r} (known: {', '.join(sorted(known_top))})")
    name = data.get("flow") or Path(path).stem
    languages = data.get("languages", ["zh", "en"])
    if not isinstance(languages, list) or not languages or not all(isinstance(x, str) for x in languages):
        P(data.line_of("languages"), "languages: must be a list like [zh, en]")
        languages = ["zh"]
    default_language = data.get("default_language", languages[0])
    if default_language not in languages:
        P(data.line_of("default_language"), f"default_language {default_language!r} is not in languages")
    hours = _parse_hours(data["hours"], path, problems) if "hours" in data else None

    prompts: dict[str, dict[str, str]] = {}
    raw_prompts = data.get("prompts", LDict())
    if not isinstance(raw_prompts, LDict):
        P(data.line_of("prompts"), "prompts: must be a mapping of id -> {zh: text, en: text}")
        raw_prompts = LDict()
    for pid, spec in raw_prompts.items():
        line = raw_prompts.line_of(pid)
        if not isinstance(spec, LDict):
            P(line, f"prompt {pid!r}: must be a mapping of language -> text (or file: name)")
            continue
        if "file" in spec:
            prompts[pid] = {"file": str(spec["file"])}
            continue
        for lang in languages:
            text = spec.get(lang)
            if not isinstance(text, str) or not text.strip():
                P(line, f"prompt {pid!r} has no text for language {lang!r}")
        for lang in spec:
            if lang not in languages:
                P(spec.line_of(lang), f"prompt {pid!r}: language {lang!r} is not in languages")
        prompts[pid] = {k: str(v) for k, v in spec.items()}

    nodes = data.get("nodes")
    if not isinstance(nodes, LDict) or not nodes:
        P(data.line_of("nodes"), "nodes: must be a mapping of node id -> node")
        return problems, None
    start = data.get("start")
    if start not in nodes:
        P(data.line_of("start"), f"start: {start!r} is not a node")
    ends: set[str] = set()
    for nid, node in nodes.items():
        line = nodes.line_of(nid)
        if not isinstance(node, LDict):
            P(line, f"node {nid!r}: must be a mapping with a type")
            continue
        ntype = node.get("type")
        if ntype not in NODE_TYPES:
            P(node.line_of("type"), f"node {nid!r}: unknown node type {ntype!r} "
              f"(known: {', '.join(NODE_TYPES)})")
            continue
        required, optional, is_end = NODE_TYPES[ntype]
        if is_end:
            ends.add(nid)
        for key in required - set(node):
            P(line, f"node {nid!r} ({ntype}): missing {key!r}")
        for key in set(node) - required - optional - COMMON_FIELDS:
            P(node.line_of(key), f"node {nid!r} ({ntype}): unknown field {key!r}")
        for label, target, tline in _targets(node):
            if not isinstance(target, str) or target not in nodes:
                P(tline, f"node {nid!r}: {label} goes to missing node {target!r}")
        for pid, pline in _prompt_refs(node):
            if pid not in prompts and pid not in raw_prompts:
                P(pline, f"node {nid!r}: prompt {pid!r} is not declared under prompts:")
        for key in ("timeout", "retries", "max_seconds", "min_seconds", "priority", "silence_seconds",
                    "length", "min_length", "max_length"):
            if key in node and (not _number(node[key]) or node[key] < 0):
                P(node.line_of(key), f"node {nid!r}: {key} must be a number >= 0")
        if ntype == "menu":
            opts = node.get("options")
            if not isinstance(opts, LDict) or not opts:
                P(node.line_of("options"), f"menu {nid!r} has no options: no way out")
            else:
                for digit, target in opts.items():
                    if str(digit) not in DTMF:
                        P(opts.line_of(digit), f"menu {nid!r}: option {digit!r} is not one DTMF key")
                    if isinstance(target, LDict):
                        for k in set(target) - {"next", "set"}:
                            P(target.line_of(k), f"menu {nid!r}: option {digit}: unknown field {k!r}")
                exits = {t if isinstance(t, str) else (t or {}).get("next") for t in opts.values()}
                exits.add(node.get("default"))
                if exits <= {nid, None}:
                    P(line, f"menu {nid!r} has no way out: every option and default lead back to it")
            if "store" in node and not _VAR.match(str(node["store"])):
                P(node.line_of("store"), f"menu {nid!r}: store must be a variable name")
        if ntype == "collect":
            if "format" in node:
                try:
                    re.compile(str(node["format"]))
                except re.error as exc:
                    P(node.line_of("format"), f"collect {nid!r}: format is not a valid regex: {exc}")
            if node.get("checksum", "none") not in CHECKSUMS:
                P(node.line_of("checksum"), f"collect {nid!r}: checksum must be one of {', '.join(CHECKSUMS)}")
            if not _VAR.match(str(node.get("var", ""))):
                P(node.line_of("var"), f"collect {nid!r}: var must be a variable name")
        if ntype == "branch":
            cases = node.get("cases")
            if not isinstance(cases, list):
                P(node.line_of("cases"), f"branch {nid!r}: cases must be a list of {{when, next}}")
            else:
                for case in cases:
                    cline = getattr(case, "line", node.line)
                    if not isinstance(case, LDict) or "when" not in case or "next" not in case:
                        P(cline, f"branch {nid!r}: each case needs when: and next:")
                        continue
                    _check_condition(case["when"], case.line_of("when"), path, hours is not None, problems)
        if ntype == "set":
            for key in ("vars", "channel"):
                if key not in node:
                    continue
                vals = node[key]
                if not isinstance(vals, LDict):
                    P(node.line_of(key), f"set {nid!r}: {key} must be a mapping")
                    continue
                for var in vals:
                    if not _VAR.match(str(var)):
                        P(vals.line_of(var), f"set {nid!r}: {var!r} is not a variable name")
            if "language" in node.get("vars", {}) and node["vars"]["language"] not in languages:
                P(node["vars"].line_of("language"), f"set {nid!r}: language must be one of {languages}")
        if ntype == "rating":
            scale = node.get("scale")
            if not isinstance(scale, LDict) or not scale:
                P(node.line_of("scale"), f"rating {nid!r}: scale must map keys to levels, e.g. "
                  '{"1": satisfied, "2": neutral, "3": unsatisfied}')
            else:
                for key, level in scale.items():
                    if str(key) not in "0123456789" or len(str(key)) != 1:
                        P(scale.line_of(key), f"rating {nid!r}: scale key {key!r} is not one digit 0-9")
                    if level not in LEVELS:
                        P(scale.line_of(key), f"rating {nid!r}: level {level!r} for key {key} is not one of "
                          f"{', '.join(LEVELS)}")
        if ntype == "queue" and not re.match(r"^[A-Za-z0-9_\-]+$", str(node.get("queue", ""))):
            P(node.line_of("queue"), f"queue {nid!r}: queue must be a queue name")
        if ntype == "lookup_appointment":
            if node.get("by") not in LOOKUP_BY:
                P(node.line_of("by"), f"lookup_appointment {nid!r}: by must be one of {', '.join(LOOKUP_BY)}")
            if node.get("by") == "patient_number" and not _VAR.match(str(node.get("var", ""))):
                P(node.line_of("var") if "var" in node else line,
                  f"lookup_appointment {nid!r}: by patient_number needs var: (the collected number)")
        if ntype == "answer_appointment" and node.get("answer") not in ANSWERS:
            P(node.line_of("answer"), f"answer_appointment {nid!r}: answer must be one of {', '.join(ANSWERS)}")
        if ntype == "voicemail" and node.get("link", "complaint") not in ("complaint", "callback", "none"):
            P(node.line_of("link"), f"voicemail {nid!r}: link must be complaint, callback or none")
        if ntype == "voicemail" and "min_seconds" in node:
            low, high = node["min_seconds"], node.get("max_seconds", 120)
            if _number(low) and _number(high) and low >= high:
                P(node.line_of("min_seconds"), f"voicemail {nid!r}: min_seconds ({low}) must be below "
                  f"max_seconds ({high}): no message could ever be acted on")
    if problems:
        return problems, None
    # Reachability from start, and every node must be able to end the call.
    edges = {nid: [t for _, t, _ in _targets(n)] for nid, n in nodes.items()}
    seen, todo = set(), [start]
    while todo:
        cur = todo.pop()
        if cur in seen:
            continue
        seen.add(cur)
        todo.extend(edges[cur])
    for nid in nodes:
        if nid not in seen:
            P(nodes.line_of(nid), f"node {nid!r} is unreachable from start {start!r}")
    can_end = set(ends)
    changed = True
    while changed:
        changed = False
        for nid, outs in edges.items():
            if nid not in can_end and any(t in can_end for t in outs):
                can_end.add(nid)
                changed = True
    for nid in nodes:
        if nid in seen and nid not in can_end:
            kind = nodes[nid].get("type")
            P(nodes.line_of(nid), f"{kind} {nid!r} has no way out: no path from it ends the call "
              "(queue, transfer or hangup)")
    if problems:
        return problems, None
    return [], Flow(str(name), Path(path), start, list(languages), default_language, prompts,
                    dict(nodes), hours, ends)


def parse_text(text: str, path: str = "<flow>") -> tuple[list[Problem], Flow | None]:
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return [Problem(path, line, f"not valid YAML: {exc.problem or exc}")], None
    except yaml.YAMLError as exc:
        return [Problem(path, 1, f"not valid YAML: {exc}")], None
    return check_data(data, path)


def check_file(path: str | Path) -> list[Problem]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(str(path), 0, f"cannot read: {exc}")]
    return parse_text(text, str(path))[0]


def load_flow(path: str | Path) -> Flow:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError([Problem(str(path), 0, f"cannot read: {exc}")]) from None
    problems, flow = parse_text(text, str(path))
    if problems or flow is None:
        raise FlowError(problems)
    return flow


def flow_file(name: str, directory: Path | None = None) -> tuple[Path, float] | None:
    """``ivr_flows/<name>.yaml`` (or ``.yml``) if it is a file, with its modification time,
    from one ``stat`` (a session's flow look-up: see ``AgiServer.flow``); names are
    already sanitised."""
    d = directory or FLOWS_DIR
    for ext in (".yaml", ".yml"):
        p = d / f"{name}{ext}"
        try:
            st = os.stat(p)
        except (OSError, ValueError):  # as Path.is_file: missing, unreadable, bad name
            continue
        if stat.S_ISREG(st.st_mode):
            return p, st.st_mtime
    return None


def flow_path(name: str, directory: Path | None = None) -> Path | None:
    """``ivr_flows/<name>.yaml`` (or ``.yml``) if it exists; names are already sanitised."""
    found = flow_file(name, directory)
    return found[0] if found is not None else None
