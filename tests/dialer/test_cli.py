"""callcenter campaign / import / dnc commands."""
from __future__ import annotations

import json

from callcenter.cli import main

PATIENTS = "patient_id,name,phone\nP1,王小明,13800138001\nP2,Li Na,13900139002\n"


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_campaign_life_cycle_and_status(config_env, tmp_path, capsys):
    (tmp_path / "p.csv").write_text(PATIENTS, encoding="utf-8")
    (tmp_path / "t.csv").write_text("treatment_id,patient_id,type,treated_at\nT1,P1,implant,2099-01-10\n"
                                    "T2,P2,cleaning,2099-01-10\n", encoding="utf-8")
    assert run(capsys, "import", "patients", str(tmp_path / "p.csv"))[0] == 0
    code, out, _ = run(capsys, "campaign", "create", "implants", "--kind", "revisit", "--mode", "survey",
                       "--types", "implant")
    assert code == 0 and "draft" in out and "0 contacts" in out
    code, out, _ = run(capsys, "import", "treatments", str(tmp_path / "t.csv"))
    assert code == 0 and "4 contacts created" in out          # implant: day 1/7/30/90; cleaning not in it
    code, out, _ = run(capsys, "campaign", "list")
    assert "implants" in out and "revisit" in out and "draft" in out
    assert run(capsys, "campaign", "start", "implants")[1].strip() == "campaign implants: running"
    assert run(capsys, "campaign", "pause", "1")[1].strip() == "campaign implants: paused"
    assert run(capsys, "campaign", "resume", "implants")[0] == 0
    code, out, _ = run(capsys, "campaign", "status", "implants", "--json")
    st = json.loads(out)
    assert (st["state"], st["contacts"], st["pending"], st["due"], st["dialled"]) == ("running", 4, 4, 0, 0)
    code, out, _ = run(capsys, "campaign", "status")
    assert "implants (revisit, survey, running)" in out and "abandoned rate 0.0%" in out


def test_operator_errors_are_one_line(config_env, capsys):
    code, _, err = run(capsys, "campaign", "create", "x", "--kind", "revisit", "--types", "tattoo")
    assert code == 2 and "unknown treatment type(s) ['tattoo']" in err
    assert run(capsys, "campaign", "create", "x", "--kind", "no_show")[0] == 0
    code, _, err = run(capsys, "campaign", "create", "x", "--kind", "no_show")
    assert code == 2 and "exists already" in err
    code, _, err = run(capsys, "campaign", "start", "nope")
    assert code == 2 and "no campaign 'nope'" in err
    code, _, err = run(capsys, "import", "patients", "/nonexistent.csv")
    assert code == 2 and "no such file" in err


def test_plans_command_reports_file_lines(config_env, tmp_path, monkeypatch, capsys):
    code, out, _ = run(capsys, "campaign", "plans")
    assert code == 0 and "root_canal" in out and "day 30 crown_reminder" in out
    bad = tmp_path / "plans.yaml"
    bad.write_text("filling:\n  steps:\n    - {day: one}\n")
    monkeypatch.setenv("CALLCENTER_DIALER_PLANS_FILE", str(bad))
    code, _, err = run(capsys, "campaign", "plans")
    assert code == 2 and f"{bad}:3: filling: day must be a whole number" in err


def test_dnc_commands_mask_numbers(config_env, capsys):
    code, out, _ = run(capsys, "dnc", "add", "138 0013 8001", "--reason", "asked")
    assert code == 0 and "added" in out
    code, out, _ = run(capsys, "dnc", "list")
    assert "*******8001" in out and "13800138001" not in out
    assert run(capsys, "dnc", "remove", "13800138001")[0] == 0
    code, _, err = run(capsys, "dnc", "remove", "13800138001")
    assert code == 2 and "not on the do-not-call list" in err
    code, _, err = run(capsys, "dnc", "add", "12")
    assert code == 2 and "'12'" in err


def test_reminder_and_notification_campaigns_from_the_command_line(config_env, tmp_path, capsys):
    (tmp_path / "p.csv").write_text(PATIENTS, encoding="utf-8")
    (tmp_path / "a.csv").write_text("appointment_id,patient_id,scheduled_at,status,department,doctor\n"
                                    "A1,P1,2099-01-10 09:30,booked,dental,Dr Wang\n", encoding="utf-8")
    (tmp_path / "list.csv").write_text("patient_id\nP1\nP2\n", encoding="utf-8")
    (tmp_path / "bad.csv").write_text("patient_id\nP1\nP9\n", encoding="utf-8")
    assert run(capsys, "import", "patients", str(tmp_path / "p.csv"))[0] == 0
    code, _, err = run(capsys, "campaign", "create", "r", "--kind", "reminder", "--mode", "progressive")
    assert code != 0 and "mode must be survey" in err
    assert run(capsys, "campaign", "create", "reminders", "--kind", "reminder", "--mode", "survey")[0] == 0
    code, out, _ = run(capsys, "import", "appointments", str(tmp_path / "a.csv"))
    assert code == 0 and "1 contacts created" in out
    code, out, _ = run(capsys, "campaign", "status", "reminders")
    assert "answers: confirm 0, cancel 0, reschedule 0, stop_reminders 0" in out
    code, _, err = run(capsys, "campaign", "create", "n", "--kind", "notification", "--mode", "survey",
                       "--message", "nope")
    assert code != 0 and "needs a message: one of flu_vaccine" in err
    assert run(capsys, "campaign", "create", "flu", "--kind", "notification", "--mode", "survey",
               "--message", "flu_vaccine", "--days", "2")[0] == 0
    code, _, err = run(capsys, "campaign", "add-patients", "flu", str(tmp_path / "bad.csv"))
    assert code != 0 and "unknown patient id(s) P9" in err and "nothing added" in err
    code, out, _ = run(capsys, "campaign", "add-patients", "flu", str(tmp_path / "list.csv"))
    assert code == 0 and out.startswith("2 contacts created, 0 already listed")
