"""Spoken appointment times from pre-rendered segments, never per-call text-to-speech.

A reminder (or the hotline) says "12月3日 星期四 上午 9点 30分 口腔科" / "Thursday,
December the 3rd, at 9 30 in the morning, in the dental clinic" by playing a list of short
prompt files that ``callcenter prompts build`` renders once: months, days, weekdays,
times of day, hours, minutes and the department names of ``departments.yaml``.
Pure: :func:`appointment_segments` turns a local time into segment names,
:func:`segment_texts` gives every segment's text per language.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

SEGMENT_FLOW = "segments"  # played as <base>/<lang>/segments/<name>, like a flow's prompts
MESSAGE_FLOW = "notifications"  # voice notifications: <base>/<lang>/notifications/<message>
DEPARTMENTS_FILE = Path(__file__).resolve().parent / "spoken" / "departments.yaml"
NOTIFICATIONS_FILE = Path(__file__).resolve().parent / "spoken" / "notifications.yaml"
LANGUAGES = ("zh", "en")

_ZH_WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")
_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December")
_PERIODS = {"morning": ("上午", "in the morning"), "noon": ("中午", "p.m."),
            "afternoon": ("下午", "in the afternoon"), "evening": ("晚上", "in the evening")}


class DepartmentError(ValueError):
    """The departments file cannot be used (message: file:line: what is wrong)."""


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"the {n}{suffix}"


def _load_texts(path: Path, what: str) -> dict[str, dict[str, str]]:
    """``code -> {zh, en}`` from a YAML file; any problem raises :class:`DepartmentError`
    naming the file, the line and the code."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.compose(text)
    except (OSError, yaml.YAMLError) as exc:
        raise DepartmentError(f"{path}: cannot read {what}: {exc}") from None
    if not isinstance(data, yaml.MappingNode) or not data.value:
        raise DepartmentError(f"{path}:1: must map {what} codes to {{zh: text, en: text}}")
    out: dict[str, dict[str, str]] = {}
    for knode, vnode in data.value:
        line, code = knode.start_mark.line + 1, knode.value
        names = yaml.safe_load(yaml.serialize(vnode))
        if not code.replace("_", "").isalnum() or not code.isascii() or len(code) > 64:
            raise DepartmentError(f"{path}:{line}: {what} code {code!r} must be letters, digits or _")
        if code in out:
            raise DepartmentError(f"{path}:{line}: {what} {code!r} is listed twice")
        if not isinstance(names, dict) or any(not str(names.get(lang) or "").strip() for lang in LANGUAGES):
            raise DepartmentError(f"{path}:{line}: {what} {code!r} needs a text in each of {', '.join(LANGUAGES)}")
        out[code] = {lang: str(names[lang]) for lang in LANGUAGES}
    return out


def load_departments(path: Path | None = None) -> dict[str, dict[str, str]]:
    """The department catalogue: ``code -> {zh: name, en: name}``."""
    return _load_texts(path or DEPARTMENTS_FILE, "department")


def load_notifications(path: Path | None = None) -> dict[str, dict[str, str]]:
    """The voice notification messages a campaign can play: ``id -> {zh: text, en: text}``."""
    return _load_texts(path or NOTIFICATIONS_FILE, "message")


def period(hour: int) -> str:
    if hour < 12:
        return "morning"
    if hour < 13:
        return "noon"
    return "afternoon" if hour < 18 else "evening"


def appointment_segments(language: str, local: dt.datetime, department: str) -> list[str]:
    """The segment names that say ``local`` (the hospital's wall-clock time) and ``department``
    (a code, or "" to leave it out) in ``language``."""
    hour12 = local.hour % 12 or 12
    time = [f"hour_{hour12}"] + ([f"minute_{local.minute}"] if local.minute else [])
    when = f"period_{period(local.hour)}"
    dept = [f"dept_{department}"] if department else []
    if language == "zh":
        return [f"month_{local.month}", f"day_{local.day}", f"weekday_{local.weekday()}", when, *time, *dept]
    if language == "en":
        return [f"weekday_{local.weekday()}", f"month_{local.month}", f"day_{local.day}", "word_at", *time,
                when, *(["word_in", *dept] if dept else [])]
    raise ValueError(f"no spoken dates for language {language!r} (known: {', '.join(LANGUAGES)})")


def segment_texts(departments: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """``language -> segment name -> text`` for every segment :func:`appointment_segments` uses."""
    zh: dict[str, str] = {}
    en: dict[str, str] = {}
    for m in range(1, 13):
        zh[f"month_{m}"], en[f"month_{m}"] = f"{m}月", _EN_MONTHS[m - 1]
    for d in range(1, 32):
        zh[f"day_{d}"], en[f"day_{d}"] = f"{d}日", _ordinal(d)
    for w in range(7):
        zh[f"weekday_{w}"], en[f"weekday_{w}"] = _ZH_WEEKDAYS[w], _EN_WEEKDAYS[w]
    for name, (z, e) in _PERIODS.items():
        zh[f"period_{name}"], en[f"period_{name}"] = z, e
    for h in range(1, 13):
        zh[f"hour_{h}"], en[f"hour_{h}"] = f"{h}点", str(h)
    for m in range(1, 60):
        zh[f"minute_{m}"] = f"{m}分" if m >= 10 else f"零{m}分"
        en[f"minute_{m}"] = str(m) if m >= 10 else f"oh {m}"
    zh["word_at"], en["word_at"] = "在", "at"
    zh["word_in"], en["word_in"] = "在", "in"
    for code, names in departments.items():
        zh[f"dept_{code}"], en[f"dept_{code}"] = names["zh"], names["en"]
    return {"zh": zh, "en": en}


def segment_file(name: str, language: str, base: str = "callcenter") -> str:
    """Where the PBX finds a segment (no extension, relative to its sounds dir)."""
    return f"{base}/{language}/{SEGMENT_FLOW}/{name}"


def message_file(message: str, language: str, base: str = "callcenter") -> str:
    """Where the PBX finds a voice notification message."""
    return f"{base}/{language}/{MESSAGE_FLOW}/{message}"
