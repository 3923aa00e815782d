"""Importing patients, treatments and appointments (CSV from the CLI, JSON from the web).

Two passes: every row is validated first (phone numbers through ``phonenumbers``,
dates in the hospital's timezone, references to known patients, duplicates in the
same file) and *all* problems are reported with line, field and reason; only a
clean file is applied, inside the caller's transaction, so either everything or
nothing lands.  Rows are keyed by the hospital's own ids, so importing the same
file again changes nothing.  New treatments and missed appointments become
contacts of the revisit / no-show campaigns; new booked appointments get their reminder
(reminder campaigns), and a moved or cancelled one loses its pending reminder (a moved one
gets a new one for its new time).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update

from callcenter.errors import InvalidInput
from callcenter.phones import PhoneError, normalise
from callcenter.store.base import utcnow
from callcenter.text import unstorable

from .models import Appointment, Contact, Patient, Treatment

KINDS = ("patients", "treatments", "appointments")
COLUMNS = {
    "patients": (("patient_id", "name", "phone"), ("language",)),
    "treatments": (("treatment_id", "patient_id", "type", "treated_at"), ("doctor",)),
    "appointments": (("appointment_id", "patient_id", "scheduled_at", "status"), ("department", "doctor")),
}
APPOINTMENT_STATUSES = ("booked", "attended", "missed", "cancelled")
CHUNK = 1000


@dataclass(frozen=True)
class RowError:
    """One problem: ``reason`` is the English text (CLI, API); ``code`` and ``params`` let the
    web say it in the user's language (``imp.err.<code>`` in callcenter/web/i18n.py)."""
    line: int
    field: str
    reason: str
    code: str = "other"
    params: tuple = ()

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


@dataclass
class ImportResult:
    kind: str
    source: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    contacts_created: int = 0
    contacts_closed: int = 0   # pending no-show calls for appointments no longer missed, reminders of moved ones
    applied: bool = False
    errors: list[RowError] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["errors"] = [{"line": e.line, "field": e.field, "reason": e.reason} for e in self.errors]
        return d


class ImportFailed(ValueError):
    def __init__(self, result: ImportResult):
        self.result = result
        super().__init__(f"{len(result.errors)} bad row(s); nothing imported")


Progress = Callable[[str, int, int], None]


class CsvEncodingError(InvalidInput):
    """The bytes of a CSV file are neither UTF-8 nor Chinese text in GBK/GB18030.

    ``reason``: ``utf16`` (Excel's "Unicode text") or ``unknown``; the message says how to
    save the file as UTF-8, the web says it in the user's language."""

    def __init__(self, source: str, reason: str):
        self.reason = reason
        what = ("is UTF-16 (Excel's \"Unicode Text\")" if reason == "utf16"
                else "is neither UTF-8 nor Chinese text in GBK/GB18030, so its encoding cannot be told")
        super().__init__(f"{source}: the file {what}; in Excel use File > Save As > "
                         "\"CSV UTF-8 (Comma delimited) (*.csv)\" (WPS: 另存为 > CSV UTF-8) and import that file")


UTF8_BOM = b"\xef\xbb\xbf"


def _looks_chinese(text: str) -> bool:
    """Is this (GB18030-decoded) text Chinese, or bytes of another encoding read as GBK?

    Every non-ASCII character must be a CJK ideograph, CJK/fullwidth punctuation or a
    common symbol, and at least 80 % of the ideographs must be among GB2312's 6,763 common
    characters (a Latin-1 "é" followed by a letter reads as a rare GBK ideograph; real
    names are overwhelmingly common characters, rare ones like 喆 still pass)."""
    ideographs = common = 0
    for ch in text:
        o = ord(ch)
        if o < 0x80:
            continue
        if 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3134F:
            ideographs += 1
            try:
                ch.encode("gb2312")
                common += 1
            except UnicodeEncodeError:
                pass
        elif not (0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF or 0x2000 <= o <= 0x206F
                  or ch in "·×÷°±№"):
            return False
    return ideographs > 0 and common >= 0.8 * ideographs


def decode_csv(raw: bytes, source: str) -> tuple[str, str]:
    """``(text, encoding)`` of a CSV file's bytes: UTF-8 (with or without BOM), or GB18030
    (the superset of GBK: what Excel's plain "CSV" writes on Chinese Windows) when the
    bytes are not UTF-8 and read as Chinese text.  Anything else is a
    :class:`CsvEncodingError` saying how to save the file as UTF-8: guessing would store
    garbled names."""
    if raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM):]
        try:
            return raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            raise CsvEncodingError(source, "unknown") from None
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise CsvEncodingError(source, "utf16")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        raise CsvEncodingError(source, "unknown") from None
    if not _looks_chinese(text):
        raise CsvEncodingError(source, "unknown")
    return text, "gb18030"


def parse_csv(text: str) -> tuple[list[dict], list[int]]:
    """Rows of CSV text with the physical line number of each row; the header first, as
    ``{"__header__": [...]}`` (what :func:`import_rows` checks once)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows, lines = [], []
    start = 2
    for row in reader:
        rows.append(row)
        lines.append(start)
        start = reader.line_num + 1
    if reader.fieldnames is None:
        return [], []
    rows.insert(0, {"__header__": reader.fieldnames})
    lines.insert(0, 1)
    return rows, lines


def read_csv(path) -> tuple[list[dict], list[int]]:
    """Rows of a CSV file (UTF-8, or GBK/GB18030: :func:`decode_csv`) with their line numbers."""
    with open(path, "rb") as fh:
        raw = fh.read()
    return parse_csv(decode_csv(raw, str(path))[0])


def parse_time(value: str, zone: ZoneInfo) -> dt.datetime:
    text = value.strip().replace("/", "-")
    try:
        if len(text) == 10:
            d = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(0))
        else:
            d = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"not a date/time {value!r} (use YYYY-MM-DD or YYYY-MM-DD HH:MM)") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=zone)
    return d.astimezone(dt.timezone.utc)


def _json_kind(v) -> str:
    return {dict: "an object", list: "an array", bool: "true/false"}.get(type(v), type(v).__name__)


def _validate(kind: str, rows: list[dict], lines: list[int], region: str, zone: ZoneInfo,
              plans) -> tuple[list[dict], list[RowError]]:
    required, optional = COLUMNS[kind]
    departments = None
    if kind == "appointments":  # the reminder says the department: it must be one it can say
        from ivr_flows.segments import load_departments

        departments = load_departments()
    errors: list[RowError] = []
    clean: list[dict] = []
    seen: dict[str, int] = {}
    key = required[0]
    for row, line in zip(rows, lines):
        row_errs: list[RowError] = []

        def bad(fieldname, reason, code="other", *params):
            row_errs.append(RowError(line, fieldname, reason, code, tuple(str(p) for p in params)))

        if not isinstance(row, dict):
            errors.append(RowError(line, "*", "row must be an object", "not_object"))
            continue
        unknown = [k for k in row if k not in required + optional and k is not None]
        if None in row:
            bad("*", "more values than columns", "extra_values")
        for k in unknown:
            bad(k, "unknown field", "unknown_field")
        wrong_type = set()
        for k in required + optional:
            v = row.get(k)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                bad(k, f"must be text or a number, not {_json_kind(v)}", "wrong_type")
                wrong_type.add(k)
            elif isinstance(v, str) and unstorable(v):
                bad(k, unstorable(v), "unstorable")
        vals = {k: ("" if row.get(k) is None or not isinstance(row.get(k), (str, int, float))
                    else str(row.get(k)).strip()) for k in required + optional}
        for k in required:
            if not vals[k]:
                bad(k, "missing", "missing")
        out: dict = {}
        ext = vals[key]
        if ext:
            if len(ext) > 64:
                bad(key, "longer than 64 characters", "too_long", 64)
            elif ext in seen:
                bad(key, f"duplicate {ext!r} (first on line {seen[ext]})", "duplicate", ext, seen[ext])
            else:
                seen[ext] = line
        out["external_id"] = ext
        if kind == "patients":
            if vals["phone"]:
                try:
                    out["phone"] = normalise(vals["phone"], region)
                except PhoneError as exc:
                    bad("phone", str(exc), "phone", vals["phone"])
            if len(vals["name"]) > 128:
                bad("name", "longer than 128 characters", "too_long", 128)
            out["name"] = vals["name"]
            lang = vals["language"] or "zh"
            if lang not in ("zh", "en"):
                bad("language", f"must be zh or en, got {lang!r}", "language", lang)
            out["language"] = lang
        else:
            out["patient_ext"] = vals["patient_id"]
        if kind == "treatments":
            t = vals["type"].lower()
            if t and plans is not None and t not in plans:
                bad("type", f"unknown treatment type {t!r} (known: {', '.join(plans)})", "treatment_type", t,
                    ", ".join(plans))
            out["treatment_type"] = t
            if vals["treated_at"]:
                try:
                    out["treated_at"] = parse_time(vals["treated_at"], zone)
                except ValueError as exc:
                    bad("treated_at", str(exc), "date", vals["treated_at"])
            out["doctor"] = vals["doctor"][:128]
        if kind == "appointments":
            st = vals["status"].lower()
            if st and st not in APPOINTMENT_STATUSES:
                bad("status", f"must be one of {', '.join(APPOINTMENT_STATUSES)}, got {st!r}", "status", st,
                    ", ".join(APPOINTMENT_STATUSES))
            out["status"] = st
            if vals["scheduled_at"]:
                try:
                    out["scheduled_at"] = parse_time(vals["scheduled_at"], zone)
                except ValueError as exc:
                    bad("scheduled_at", str(exc), "date", vals["scheduled_at"])
            if vals["department"] and vals["department"] not in departments:
                bad("department", f"unknown department {vals['department']!r} (known: {', '.join(departments)}; "
                                  "see ivr_flows/spoken/departments.yaml)")
            out["department"] = vals["department"]
            if len(vals["doctor"]) > 128:
                bad("doctor", "longer than 128 characters")
            out["doctor"] = vals["doctor"]
        out["_line"] = line
        if wrong_type:  # its type is the problem: not also "missing" or "not a phone number"
            row_errs = [e for e in row_errs if e.field not in wrong_type or e.reason.startswith("must be")]
        if row_errs:
            errors.extend(row_errs)
        else:
            clean.append(out)
    return clean, errors


def import_rows(session, kind: str, rows: Iterable[dict], source: str, *, lines: list[int] | None = None,
                region: str, settings, timezone: str | None = None, plans=None, rules=None,
                now: float | None = None, progress: Progress | None = None,
                preview: bool = False) -> ImportResult:
    """Validate then apply ``rows`` of ``kind`` in the caller's transaction.

    ``rows`` are dicts keyed by column name (a CSV row or a JSON object);
    ``lines`` their line numbers (default 1..n).  On any bad row nothing is written
    and the result has ``applied=False`` and every error.  ``region`` and ``settings``
    are the dialer's configured ones; ``timezone`` defaults to the settings'.
    ``preview``: validate and count what would be inserted/updated/unchanged, reading
    only (the web's preview before the user confirms); ``applied`` stays False.
    """
    from .appointments import close_reminders
    from .campaigns import close_appointment_work, materialize_all

    if kind not in KINDS:
        raise ValueError(f"unknown import kind {kind!r} (known: {', '.join(KINDS)})")
    zone = ZoneInfo(timezone or settings.timezone)
    if plans is None and kind == "treatments":
        from .plans import load_plans

        plans = load_plans()
    rows = list(rows)
    lines = list(lines) if lines is not None else list(range(1, len(rows) + 1))
    result = ImportResult(kind=kind, source=source)
    if rows and isinstance(rows[0], dict) and "__header__" in rows[0]:  # CSV: check the header once
        header = rows.pop(0)["__header__"]
        hline = lines.pop(0)
        required, optional = COLUMNS[kind]
        missing = [c for c in required if c not in header]
        extra = [c for c in header if c not in required + optional]
        if missing or extra:
            for c in missing:
                result.errors.append(RowError(hline, c, "required column missing from the header", "header_missing"))
            for c in extra:
                result.errors.append(RowError(hline, c, f"unknown column (known: {', '.join(required + optional)})",
                                              "header_unknown", (", ".join(required + optional),)))
            return result
    result.rows = len(rows)
    clean, errors = _validate(kind, rows, lines, region, zone, plans)
    if progress:
        progress("validated", len(rows), len(rows))
    if kind != "patients":
        errors.extend(_resolve_patients(session, clean))
    if errors:
        result.errors = sorted(errors, key=lambda e: e.line)
        return result
    model = {"patients": Patient, "treatments": Treatment, "appointments": Appointment}[kind]
    fields = {"patients": ("name", "phone", "language"),
              "treatments": ("patient_id", "treatment_type", "treated_at", "doctor"),
              "appointments": ("patient_id", "scheduled_at", "status", "department", "doctor")}[kind]
    touched: list[int] = []
    settled: list[int] = []
    rebooked: list[int] = []   # booked appointments that are new or moved: a reminder is owed
    unbooked: list[int] = []   # moved, cancelled or no longer booked: their pending reminder ends
    stamp = utcnow()
    for i in range(0, len(clean), CHUNK):
        chunk = clean[i:i + CHUNK]
        existing = {o.external_id: o for o in session.scalars(
            select(model).where(model.external_id.in_([r["external_id"] for r in chunk])))}
        new_rows = []
        for r in chunk:
            obj = existing.get(r["external_id"])
            if obj is None and preview:
                result.inserted += 1
                continue
            if obj is None:
                new = {f: r[f] for f in fields}
                new.update(external_id=r["external_id"], source=source[:128], created_at=stamp)
                if kind == "patients":
                    new["updated_at"] = stamp
                new_rows.append(new)
                continue
            changed = [f for f in fields if _differs(getattr(obj, f), r[f])]
            if not changed:
                result.unchanged += 1
                continue
            if preview:
                result.updated += 1
                continue
            if kind == "appointments" and obj.status == "missed" and r["status"] != "missed":
                settled.append(obj.id)   # rebooked, attended or cancelled at the hospital
            if kind == "appointments" and ("scheduled_at" in changed or "status" in changed):
                unbooked.append(obj.id)
                if r["status"] == "booked":
                    rebooked.append(obj.id)
            for f in changed:
                setattr(obj, f, r[f])
            obj.source = source[:128]
            result.updated += 1
            if kind == "patients":
                obj.updated_at = stamp
                if "phone" in changed:  # open work follows the patient's new number
                    session.execute(update(Contact).where(Contact.patient_id == obj.id,
                                                          Contact.state == "pending")
                                    .values(phone=r["phone"]).execution_options(synchronize_session=False))
            elif kind == "treatments" or (kind == "appointments" and r["status"] == "missed"
                                          and "status" in changed):
                touched.append(obj.id)
        if new_rows:
            ids = session.execute(insert(model).returning(model.id, sort_by_parameter_order=True), new_rows).scalars().all()
            result.inserted += len(new_rows)
            if kind == "treatments":
                touched.extend(ids)
            elif kind == "appointments":
                touched.extend(i for i, r in zip(ids, new_rows) if r["status"] == "missed")
                rebooked.extend(i for i, r in zip(ids, new_rows) if r["status"] == "booked")
        if preview:
            continue
        session.flush()
        if progress:
            progress("applied", min(i + CHUNK, len(clean)), len(clean))
    if preview:
        return result
    now = now if now is not None else stamp.timestamp()
    if settled:
        result.contacts_closed = close_appointment_work(session, settled, dt.datetime.fromtimestamp(
            now, dt.timezone.utc))
    if unbooked:
        result.contacts_closed += close_reminders(session, unbooked, dt.datetime.fromtimestamp(now, dt.timezone.utc))
    if (touched or rebooked) and kind != "patients":
        result.contacts_created = materialize_all(
            session, now=now, plans=plans, settings=settings, rules=rules,
            treatment_ids=touched if kind == "treatments" else [],
            appointment_ids=touched if kind == "appointments" else [],
            reminder_ids=rebooked if kind == "appointments" else [])
    result.applied = True
    return result


def _differs(old, new) -> bool:
    if isinstance(new, dt.datetime) and isinstance(old, dt.datetime):
        if old.tzinfo is None:
            old = old.replace(tzinfo=dt.timezone.utc)
        return old != new
    return old != new


def _resolve_patients(session, clean: list[dict]) -> list[RowError]:
    """Map the rows' hospital patient ids to ours; unknown ones are row errors."""
    exts = sorted({r["patient_ext"] for r in clean})
    known: dict[str, int] = {}
    for i in range(0, len(exts), 500):
        known.update(session.execute(select(Patient.external_id, Patient.id)
                                     .where(Patient.external_id.in_(exts[i:i + 500]))).all())
    errors = []
    for r in clean:
        pid = known.get(r["patient_ext"])
        if pid is None:
            errors.append(RowError(r["_line"], "patient_id", f"unknown patient {r['patient_ext']!r} "
                                   "(import patients first)", "unknown_patient", (r["patient_ext"],)))
        r["patient_id"] = pid
    return errors
