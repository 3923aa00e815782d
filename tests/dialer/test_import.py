"""Imports: validation with line/field/reason, all-or-nothing, idempotent, contacts generated."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from callcenter.cli import main
from dialer.campaigns import create_campaign, materialize
from dialer.importer import import_rows, read_csv
from dialer.models import Appointment, Campaign, Contact, Patient, Treatment

from tests.support.dialer import ts

from dialer.campaigns import Settings as DialerSettings

DIALER = {"region": "CN", "settings": DialerSettings()}  # what the dialer is configured with

PATIENTS = """patient_id,name,phone,language
P1,王小明,138 0013 8001,zh
P2,Li Na,+86 139-0013-9002,en
P3,张三,13700137003,
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def imp(db, kind, path, **kw):
    rows, lines = read_csv(path)
    return db.call(lambda s: import_rows(s, kind, rows, str(path), lines=lines, **{**DIALER, **kw}))


def count(db, model):
    return db.call(lambda s: s.scalar(select(func.count()).select_from(model)))


@pytest.mark.postgres
def test_patients_import_normalises_and_is_idempotent(db, tmp_path):
    f = write(tmp_path, "p.csv", PATIENTS)
    r = imp(db, "patients", f)
    assert r.applied and (r.inserted, r.updated, r.unchanged) == (3, 0, 0)
    phones = db.call(lambda s: dict(s.execute(select(Patient.external_id, Patient.phone)).all()))
    assert phones == {"P1": "+8613800138001", "P2": "+8613900139002", "P3": "+8613700137003"}
    again = imp(db, "patients", f)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    changed = write(tmp_path, "p2.csv", PATIENTS.replace("Li Na", "Li Na2"))
    r3 = imp(db, "patients", changed)
    assert (r3.inserted, r3.updated, r3.unchanged) == (0, 1, 2)


@pytest.mark.postgres
def test_bad_rows_are_all_reported_and_nothing_is_written(db, tmp_path):
    f = write(tmp_path, "bad.csv", "patient_id,name,phone\nP1,A,13800138001\nP2,,12345\nP1,C,13800138003\n"
              "P4,D,not-a-number\nP5,E,13800138005\n")
    r = imp(db, "patients", f)
    assert not r.applied
    got = [(e.line, e.field) for e in r.errors]
    assert got == [(3, "name"), (3, "phone"), (4, "patient_id"), (5, "phone")]
    assert "first on line 2" in r.errors[2].reason
    assert count(db, Patient) == 0


def test_header_problems_name_the_column(db, tmp_path):
    f = write(tmp_path, "h.csv", "patient_id,name,telephone\nP1,A,13800138001\n")
    r = imp(db, "patients", f)
    assert {(e.line, e.field) for e in r.errors} == {(1, "phone"), (1, "telephone")}


@pytest.mark.postgres
def test_treatments_make_revisit_contacts_once(db, tmp_path):
    imp(db, "patients", write(tmp_path, "p.csv", PATIENTS))
    db.call(lambda s: create_campaign(s, name="revisits", kind="revisit", mode="survey"))
    tf = write(tmp_path, "t.csv", "treatment_id,patient_id,type,treated_at,doctor\n"
               "T1,P1,root_canal,2026-11-20 10:00,Dr Wu\nT2,P2,cleaning,2026-11-20,\n")
    now = ts(2026, 11, 20, 18)
    r = imp(db, "treatments", tf, now=now)
    assert r.applied and r.inserted == 2
    assert r.contacts_created == 3 + 1  # root canal day 1/7/30, cleaning day 7
    keys = db.call(lambda s: sorted(s.scalars(select(Contact.reason))))
    assert keys == ["revisit:cleaning:satisfaction", "revisit:root_canal:crown_reminder",
                    "revisit:root_canal:pain", "revisit:root_canal:recovery"]
    c = db.call(lambda s: s.scalar(select(Contact).where(Contact.reason == "revisit:root_canal:recovery")))
    from dialer.timeutil import to_ts

    assert to_ts(c.due_after) == ts(2026, 11, 27, 0, 0) and to_ts(c.next_attempt_at) == ts(2026, 11, 27)
    assert to_ts(c.due_before) == ts(2026, 11, 30)
    again = imp(db, "treatments", tf, now=now)
    assert (again.inserted, again.updated, again.contacts_created) == (0, 0, 0)
    assert db.call(lambda s: materialize(s, s.scalar(select(Campaign)), now=now)) == 0
    assert count(db, Contact) == 4


def test_treatment_rows_must_reference_known_patients_and_types(db, tmp_path):
    imp(db, "patients", write(tmp_path, "p.csv", PATIENTS))
    tf = write(tmp_path, "t.csv", "treatment_id,patient_id,type,treated_at\nT1,P9,filling,2026-11-20\n"
               "T2,P1,tattoo,2026-11-20\nT3,P1,filling,yesterday\n")
    r = imp(db, "treatments", tf)
    assert [(e.line, e.field) for e in r.errors] == [(2, "patient_id"), (3, "type"), (4, "treated_at")]
    assert "unknown patient 'P9'" in r.errors[0].reason
    assert count(db, Treatment) == 0


def test_missed_appointment_becomes_a_no_show_contact(db, tmp_path):
    imp(db, "patients", write(tmp_path, "p.csv", PATIENTS))
    db.call(lambda s: create_campaign(s, name="no-shows", kind="no_show"))
    af = write(tmp_path, "a.csv", "appointment_id,patient_id,scheduled_at,status\n"
               "A1,P1,2026-11-24 09:30,booked\nA2,P2,2026-11-24 10:00,missed\n")
    now = ts(2026, 11, 24, 11)
    r = imp(db, "appointments", af, now=now)
    assert r.applied and r.contacts_created == 1
    # A1 is missed later: re-import with the new status adds its contact, once.
    af2 = write(tmp_path, "a2.csv", "appointment_id,patient_id,scheduled_at,status\n"
                "A1,P1,2026-11-24 09:30,missed\nA2,P2,2026-11-24 10:00,missed\n")
    r2 = imp(db, "appointments", af2, now=now + 60)
    assert (r2.updated, r2.unchanged, r2.contacts_created) == (1, 1, 1)
    assert imp(db, "appointments", af2, now=now + 120).contacts_created == 0
    from dialer.timeutil import to_ts

    c = db.call(lambda s: s.scalar(select(Contact).where(Contact.ref_id == str(
        s.scalar(select(Appointment.id).where(Appointment.external_id == "A2"))))))
    assert to_ts(c.due_before) == now + 4 * 3600  # [dialer] no_show_hours


def test_json_rows_report_item_numbers(db):
    rows = [{"patient_id": "P1", "name": "A", "phone": "13800138001"},
            {"patient_id": "P2", "name": "B", "phone": "12345"}]
    r = db.call(lambda s: import_rows(s, "patients", rows, "api", **DIALER))
    assert not r.applied and r.to_dict()["errors"] == [{"line": 2, "field": "phone",
                                                        "reason": "not a valid phone number for region CN"}]


def test_cli_import_prints_errors_and_progress(config_env, tmp_path, capsys):
    ok = write(tmp_path, "p.csv", PATIENTS)
    assert main(["import", "patients", str(ok)]) == 0
    out = capsys.readouterr()
    assert "3 inserted" in out.out and "applied" in out.err
    bad = write(tmp_path, "b.csv", "patient_id,name,phone\nP9,Z,12\n")
    assert main(["import", "patients", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: phone:" in err and "nothing imported" in err


def test_failure_while_applying_rolls_back_everything(db, tmp_path, monkeypatch):
    """Rows are valid but the store fails part-way (after the first chunk): nothing stays."""
    import dialer.importer as importer

    monkeypatch.setattr(importer, "CHUNK", 2)
    f = write(tmp_path, "p.csv", PATIENTS)
    calls = {"n": 0}
    real = importer.insert

    def flaky(model):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(model)

    monkeypatch.setattr(importer, "insert", flaky)
    with pytest.raises(RuntimeError):
        imp(db, "patients", f)
    assert calls["n"] == 2 and count(db, Patient) == 0
    monkeypatch.setattr(importer, "insert", real)
    assert imp(db, "patients", f).inserted == 3


@pytest.mark.postgres
def test_large_import_reports_progress_per_chunk(db):
    rows = [{"patient_id": f"P{i}", "name": f"N{i}", "phone": f"138{i:08d}"} for i in range(2500)]
    seen = []
    r = db.call(lambda s: import_rows(s, "patients", rows, "api", **DIALER, progress=lambda *a: seen.append(a)))
    assert r.inserted == 2500
    assert seen[0] == ("validated", 2500, 2500)
    assert [a[1] for a in seen if a[0] == "applied"] == [1000, 2000, 2500]


def test_cli_reads_excel_gbk_files_and_explains_unknown_encodings(db_url, tmp_path, capsys, monkeypatch):
    """The CLI decodes like the web (dialer.importer.decode_csv): GBK bytes become the right
    names; bytes that are neither UTF-8 nor Chinese are refused with how to save as UTF-8."""
    from callcenter.store import Database

    monkeypatch.setenv("CALLCENTER_DATABASE_URL", db_url)
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(PATIENTS.encode("gbk"))
    assert main(["import", "patients", str(gbk)]) == 0
    out = capsys.readouterr()
    assert "read as Chinese GBK/GB18030" in out.err and "3 inserted" in out.out
    db = Database(db_url)
    try:
        names = db.call(lambda s: sorted(s.scalars(select(Patient.name))))
    finally:
        db.close()
    assert names == sorted(["王小明", "Li Na", "张三"])
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("patient_id,name,phone\nP9,Müller,13800138009\n".encode("latin-1"))
    assert main(["import", "patients", str(latin1)]) != 0
    err = capsys.readouterr().err
    assert "cannot be told" in err and "CSV UTF-8" in err and "Traceback" not in err


def test_decode_csv_tells_utf8_gbk_and_the_rest_apart():
    from dialer.importer import CsvEncodingError, decode_csv

    text = "patient_id,name\nP1,王小明\nP2,李喆\nP3,“刘”·陈\n"   # 喆: GBK, not GB2312
    assert decode_csv(text.encode("utf-8"), "f") == (text, "utf-8")
    assert decode_csv(b"\xef\xbb\xbf" + text.encode("utf-8"), "f") == (text, "utf-8")
    assert decode_csv(text.encode("gbk"), "f") == (text, "gb18030")
    rare = "P1,王小明\nP2,林𠀾\nP3,张三丰\n"   # 𠀾 (CJK Ext. B) is a 4-byte GB18030 sequence
    assert decode_csv(rare.encode("gb18030"), "f") == (rare, "gb18030")
    for raw, reason in (("P1,Müller,José\n".encode("latin-1"), "unknown"),
                        ("P1,Mühlé\n".encode("latin-1"), "unknown"),
                        ("P1,王小明,陳大文,張三\n".encode("big5"), "unknown"),
                        ("P1,王小明\n".encode("utf-16"), "utf16")):
        with pytest.raises(CsvEncodingError) as e:
            decode_csv(raw, "x.csv")
        assert e.value.reason == reason, raw
        assert "CSV UTF-8" in str(e.value) and str(e.value).startswith("x.csv:")
