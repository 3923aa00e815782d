"""Render declared prompts to 8 kHz 16-bit mono WAV for Asterisk (espeak-ng + sox).

Output layout matches what the engine asks the PBX to play:
``<out>/<lang>/<flow>/<prompt>.wav`` -> ``STREAM FILE <prompt_base>/<lang>/<flow>/<prompt>``
(copy ``<out>`` to ``/var/lib/asterisk/sounds/<prompt_base>``).  Flows that say an
appointment also need the spoken segments (``<lang>/segments/``: dates, times,
departments, :mod:`.segments`), flows that play a voice notification the messages
(``<lang>/notifications/``).  Missing tools are a warning, not an error.
:func:`missing_files` is the start-up check of ``[agi] sounds_dir``.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import segments as seg
from .flow import Flow

VOICES = {"zh": "cmn", "en": "en"}
# formats Asterisk can play a prompt from (file name without extension in STREAM FILE)
SOUND_FORMATS = ("wav", "gsm", "ulaw", "alaw", "sln", "g722", "wav16", "g729")


def uses(flows: list[Flow], node_type: str) -> bool:
    return any(n.get("type") == node_type for f in flows for n in f.nodes.values())


def extra_texts(flows: list[Flow]) -> list[tuple[str, str, str, str]]:
    """(directory, name, language, text) of the segments and messages the flows play
    besides their own prompts: dates/times/departments (``say_appointment``), voice
    notification messages (``play_message``)."""
    out: list[tuple[str, str, str, str]] = []
    languages = sorted({lang for f in flows for lang in f.languages})
    if uses(flows, "say_appointment"):
        texts = seg.segment_texts(seg.load_departments())
        out += [(seg.SEGMENT_FLOW, name, lang, text) for lang in languages if lang in texts
                for name, text in texts[lang].items()]
    if uses(flows, "play_message"):
        out += [(seg.MESSAGE_FLOW, mid, lang, texts[lang]) for mid, texts in seg.load_notifications().items()
                for lang in languages if lang in texts]
    return out


def missing_files(flows: list[Flow], sounds_dir: Path, base: str) -> list[str]:
    """Every prompt file the flows play (``<base>/<lang>/<flow>/<prompt>`` or a ``file:``, and
    the segments and messages of :func:`extra_texts`) that is in no format under Asterisk's
    ``sounds_dir`` (nor its ``en/``); sorted."""
    names = {flow.prompt_file(pid, lang, base) for flow in flows for pid in flow.prompts for lang in flow.languages}
    names |= {f"{base}/{lang}/{d}/{name}" for d, name, lang, _ in extra_texts(flows)}
    out = set()
    for name in names:
        candidates = [Path(name)] if Path(name).is_absolute() else [sounds_dir / name, sounds_dir / "en" / name]
        if not any(c.with_name(f"{c.name}.{ext}").is_file() for c in candidates for ext in SOUND_FORMATS):
            out.add(name)
    return sorted(out)


@dataclass
class BuildReport:
    built: list[Path]
    skipped: list[Path]
    warnings: list[str]


def tools() -> tuple[str | None, str | None]:
    return shutil.which("espeak-ng"), shutil.which("sox")


def build(flows: list[Flow], out: Path, *, force: bool = False) -> BuildReport:
    espeak, sox = tools()
    report = BuildReport([], [], [])
    if not espeak or not sox:
        missing = [n for n, t in (("espeak-ng", espeak), ("sox", sox)) if not t]
        report.warnings.append(f"{' and '.join(missing)} not installed (apt install espeak-ng sox); "
                               "prompts not rendered")
        return report
    jobs = [(flow.name, pid, lang, spec.get(lang)) for flow in flows for pid, spec in flow.prompts.items()
            if "file" not in spec for lang in flow.languages]
    jobs += extra_texts(flows)
    for where, pid, lang, text in jobs:
        if not text:
            continue
        target = out / lang / where / f"{pid}.wav"
        stamp = target.parent / (target.name + ".sha256")
        digest = hashlib.sha256(f"{VOICES.get(lang, lang)}\n{text}".encode()).hexdigest()
        if not force and target.exists() and stamp.exists() and stamp.read_text() == digest:
            report.skipped.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw.wav"
            r = subprocess.run([espeak, "-v", VOICES.get(lang, lang), "-w", str(raw), text],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                report.warnings.append(f"{where}/{pid} ({lang}): espeak-ng failed: "
                                       f"{r.stderr.strip()[:200]}")
                continue
            r = subprocess.run([sox, str(raw), "-r", "8000", "-c", "1", "-b", "16",
                                "-e", "signed-integer", str(target)],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                report.warnings.append(f"{where}/{pid} ({lang}): sox failed: "
                                       f"{r.stderr.strip()[:200]}")
                continue
        stamp.write_text(digest)
        report.built.append(target)
    return report
