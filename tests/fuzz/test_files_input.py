"""Bad files: IVR flow files and CSV imports.

* ``callcenter ivr check`` on a mutated ``hotline.yaml`` (lines deleted, duplicated,
  swapped, re-indented, truncated, random text or bytes inserted) answers with
  ``file:line: message`` problems or ``ok``, never a traceback; a problem's line
  lies inside the file;
* a CSV import with a random mix of good rows and rows with known faults (bad phone,
  missing field, unknown column value, duplicates, quoted multi-line cells that shift
  the physical line numbers) reports exactly the bad rows' starting lines and applies
  nothing; a clean file is applied whole.
"""
from __future__ import annotations

from dialer.campaigns import Settings as DialerSettings

import csv
import io
import logging
import re

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from callcenter.cli import main
from dialer.importer import CsvEncodingError, import_rows, read_csv
from dialer.models import Patient
from ivr_flows.flow import FLOWS_DIR, check_file, parse_text

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
HOTLINE = (FLOWS_DIR / "hotline.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
SURVEY = (FLOWS_DIR / "revisit_survey.yaml").read_text(encoding="utf-8").splitlines(keepends=True)

snippets = st.sampled_from(["  ", "\t", ":", "- ", "{", "[", "]", "}", "&a ", "*a", "!!python/object:os.system",
                            "type: nosuch", "next: nowhere", '"1": ', "prompt: undefined_prompt", "\n",
                            "nodes:", "  x:\n    type: menu\n", "---\n", "%YAML 1.1\n", "? ", "|", ">",
                            "\x00", "\ufeff", "'", '"', "#", "1e999", "~"])
mutation = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10_000)),
    st.tuples(st.just("dup"), st.integers(0, 10_000)),
    st.tuples(st.just("swap"), st.integers(0, 10_000), st.integers(0, 10_000)),
    st.tuples(st.just("indent"), st.integers(0, 10_000), st.sampled_from([" ", "   ", "\t"])),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.one_of(snippets, st.text(max_size=20))),
    st.tuples(st.just("truncate"), st.integers(0, 10_000)),
)


def mutate(lines: list[str], muts) -> str:
    lines = list(lines)
    for m in muts:
        if not lines:
            break
        i = m[1] % len(lines)
        if m[0] == "delete":
            del lines[i]
        elif m[0] == "dup":
            lines.insert(i, lines[i])
        elif m[0] == "swap":
            j = m[2] % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif m[0] == "indent":
            lines[i] = m[2] + lines[i]
        elif m[0] == "insert":
            pos = len(lines[i]) // 2
            lines[i] = lines[i][:pos] + m[2] + lines[i][pos:]
        elif m[0] == "truncate":
            lines = lines[:i]
    return "".join(lines)


PROBLEM = re.compile(r"^(?P<file>[^:]+\.yaml):(?P<line>\d+): \S")


@FUZZ
@given(base=st.sampled_from([HOTLINE, SURVEY]), muts=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_flow_gives_file_line_problems(base, muts):
    text = mutate(base, muts)
    problems, flow = parse_text(text, "flow.yaml")
    nlines = text.count("\n") + 1
    for p in problems:
        assert p.path == "flow.yaml" and 0 <= p.line <= nlines + 1, str(p)
        assert p.message and "Traceback" not in p.message
    assert problems or flow is not None


@pytest.fixture
def cli_logging():
    """The CLI installs a stderr log handler bound to capsys's stream; drop it afterwards."""
    yield
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_callcenter", False)]:
        root.removeHandler(h)


def test_ivr_check_cli_never_tracebacks(tmp_path, capsys, config_env, cli_logging):
    """The CLI on a mutated flow, random text, a non-UTF-8 file and a missing file."""
    import random

    rng = random.Random(4)
    files = []
    for i in range(25):
        muts = [("delete", rng.randrange(999)), ("insert", rng.randrange(999), rng.choice(["{", ": x", "\t", "- "])),
                ("swap", rng.randrange(999), rng.randrange(999))][: rng.randrange(1, 4)]
        p = tmp_path / f"m{i}.yaml"
        p.write_text(mutate(HOTLINE, muts), encoding="utf-8")
        files.append(p)
    (tmp_path / "bin.yaml").write_bytes(b"flow: x\n\xff\xfe\x00")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n", encoding="utf-8")
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    files += [tmp_path / "bin.yaml", tmp_path / "list.yaml", tmp_path / "empty.yaml", tmp_path / "missing.yaml"]
    rc = main(["ivr", "check", *map(str, files)])
    out, err = capsys.readouterr()
    assert rc == 1 and "Traceback" not in out + err
    for f in files:
        mine = [ln for ln in out.splitlines() if ln.startswith(str(f) + ":")]
        assert mine, f"nothing said about {f}"
        for ln in mine:
            assert ln == f"{f}: ok" or re.match(re.escape(str(f)) + r":\d+: \S", ln), ln
    for f in files[-4:]:
        assert any(re.match(re.escape(str(f)) + r":\d+: ", ln) for ln in out.splitlines()), f


# -- CSV imports ------------------------------------------------------------------------------
GOOD_PHONES = ["13800138001", "+86 139-0013-9002", "138 0013 8003", "021 6437 0045", "+8613700137004"]
BAD_CELLS = {  # fault -> (column, value)
    "phone": ("phone", st.sampled_from(["12345", "not-a-number", "+1", "", "86-", "☎", "1" * 30])),
    "name": ("name", st.sampled_from(["", "   ", "x" * 129])),
    "language": ("language", st.sampled_from(["fr", "ZH ", "中文"])),
    "id": ("patient_id", st.sampled_from(["", "y" * 65])),
}
name = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20).filter(
    lambda s: s.strip())
row = st.tuples(name, st.sampled_from(GOOD_PHONES), st.sampled_from(["zh", "en", ""]),
                st.one_of(st.none(), st.sampled_from(list(BAD_CELLS))), st.booleans(), st.data())


def build_csv(rows, draw_bad) -> tuple[str, set[int], int]:
    """CSV text, the physical start lines of the bad rows, and the number of rows."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["patient_id", "name", "phone", "language"])
    line = 2
    bad: set[int] = set()
    for i, (nm, phone, lang, fault, multiline, data) in enumerate(rows):
        cells = {"patient_id": f"F{i}", "name": nm.strip() + ("\nsecond line" if multiline else ""),
                 "phone": phone, "language": lang}
        if fault is not None:
            col, strat = BAD_CELLS[fault]
            cells[col] = data.draw(strat)
            bad.add(line)
        w.writerow([cells["patient_id"], cells["name"], cells["phone"], cells["language"]])
        line += 1 + cells["name"].count("\n") + cells["phone"].count("\n")
    return out.getvalue(), bad, len(rows)


@FUZZ
@given(rows=st.lists(row, min_size=1, max_size=12), dup=st.booleans())
def test_csv_import_reports_bad_rows_by_line_and_applies_nothing(db, tmp_path, rows, dup):
    text, bad, n = build_csv(rows, None)
    if dup and n > 1:  # the first row again at the end: a duplicate key
        first = text.split("\n", 1)[1]
        reader = csv.reader(io.StringIO(first))
        rec = next(reader)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(rec)
        dup_line = text.count("\n") + 1
        text += buf.getvalue()
        bad.add(dup_line)  # a duplicate key, or the first row's own fault again
    path = tmp_path / "patients.csv"
    path.write_text(text, encoding="utf-8")
    before = db.call(lambda s: s.scalar(select(func.count()).select_from(Patient)))
    rows_, lines = read_csv(path)
    result = db.call(lambda s: import_rows(s, "patients", rows_, str(path), lines=lines, region="CN",
                                           settings=DialerSettings(), timezone="Asia/Shanghai"))
    after = db.call(lambda s: s.scalar(select(func.count()).select_from(Patient)))
    if bad:
        assert not result.applied and after == before
        assert {e.line for e in result.errors} == bad, (text, result.errors)
        assert all(e.field and e.reason for e in result.errors)
    else:
        assert result.applied and not result.errors, result.errors
        assert result.inserted + result.updated + result.unchanged == result.rows


@settings(parent=FUZZ, max_examples=40)
@given(blob=st.binary(max_size=400))
def test_csv_import_of_random_bytes_never_raises(db, tmp_path, blob):
    path = tmp_path / "junk.csv"
    path.write_bytes(blob)
    before = db.call(lambda s: s.scalar(select(func.count()).select_from(Patient)))
    try:
        rows_, lines = read_csv(path)
    except (CsvEncodingError, csv.Error):
        return  # the CLI turns these into one-line errors (tested below)
    result = db.call(lambda s: import_rows(s, "patients", rows_, str(path), lines=lines, region="CN",
                                           settings=DialerSettings(), timezone="Asia/Shanghai"))
    after = db.call(lambda s: s.scalar(select(func.count()).select_from(Patient)))
    assert result.applied or after == before


def test_cli_import_of_unreadable_files_is_a_one_line_error(tmp_path, capsys, config_env, cli_logging):
    from callcenter.store import Database, migrate

    db = Database(config_env["CALLCENTER_DATABASE_URL"])
    migrate.upgrade(db.engine)
    db.close()
    (tmp_path / "bin.csv").write_bytes(b"patient_id,name,phone\n\xff\xfe,x,1\n")
    (tmp_path / "nul.csv").write_bytes(b'patient_id,name,phone\n"P1\x00,"x,1\n')
    for f in ("bin.csv", "nul.csv", "missing.csv"):
        rc = main(["import", "patients", str(tmp_path / f)])
        out, err = capsys.readouterr()
        assert rc != 0, f
        assert "Traceback" not in out + err and err.strip(), (f, err)
