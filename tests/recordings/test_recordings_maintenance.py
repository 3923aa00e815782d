"""Policy, catalogue hooks, verify and purge (real database, real files, injected 'now')."""
from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.ami.tracefile import traces_dir
from callcenter.cli import main as cli_main
from callcenter.config import ConfigError, load_config
from callcenter.store.models import AuditEntry
from recordings import catalog, maintenance, policy
from recordings.models import Recording
from recordings.settings import Settings, from_config
from recordings.wav import inspect_file, write_wav

PART1 = traces_dir() / "06-mixmonitor-part1.wav"
T0 = dt.datetime(2026, 1, 10, 8, 0, tzinfo=dt.timezone.utc)


def settings_for(tmp_path: Path, **kw) -> Settings:
    return Settings(directory=tmp_path / "rec", spool_dir=Path("/var/spool/asterisk/recordings"), **kw)


def add_ready(db, s: Settings, uid: str, *, kind="queue", queue="consultation", started=T0, pcm=b"\x01\x00" * 800):
    rel = f"{started:%Y/%m/%d}/{queue}/{uid}.wav"
    write_wav(s.directory / rel, pcm)
    info = inspect_file(s.directory / rel)

    def fn(ses):
        rid = catalog.start(ses, rel=rel, kind=kind, uniqueid=uid, started_at=started, settings=s, queue=queue)
        catalog.finalize(ses, rid, info, started + dt.timedelta(seconds=1))
        return rid

    return db.call(fn), rel


# -- policy -------------------------------------------------------------------------------
def test_rules_parse_and_sampling_is_deterministic():
    assert policy.parse_rule("all").percent == 100 and policy.parse_rule("none").percent == 0
    assert policy.parse_rule("20%").percent == 20 == policy.parse_rule("sample:20").percent
    assert policy.parse_rule("sample 12.5%").percent == 12.5
    for bad in ("half", "120%", "sample:", "-5%"):
        with pytest.raises(ValueError):
            policy.parse_rule(bad)
    with pytest.raises(ValueError, match="twice"):
        policy.parse_rules(["a=all", "a=none"])
    rule = policy.Rule(25)
    uids = [f"1795346754.{i}" for i in range(4000)]
    picked = [u for u in uids if policy.selected(rule, u)]
    assert picked == [u for u in uids if policy.selected(rule, u)]  # same answer every time
    assert 0.22 < len(picked) / len(uids) < 0.28
    p = policy.Policy(queues={"complaint": policy.ALL}, default_queue=policy.NONE)
    assert p.record_queue_call("complaint", "1.1") and not p.record_queue_call("consultation", "1.1")


def test_config_section_validates_and_resolves(tmp_path):
    cfg = tmp_path / "cc.toml"
    cfg.write_text('[service]\ndata_dir = "data"\n[recordings]\nqueue_policy = ["consultation=20%"]\n'
                   'spool_dir = "/var/spool/asterisk/recordings"\nretention_complaint_days = 3650\n')
    s = from_config(load_config(cfg, env={}))
    assert s.directory == (tmp_path / "data" / "recordings").absolute()
    assert s.asterisk_path("2026/01/01/q/1.2.wav") == "/var/spool/asterisk/recordings/2026/01/01/q/1.2.wav"
    assert s.policy.queue_rule("consultation").percent == 20
    assert s.retention_days["complaint"] == 3650
    cfg.write_text('[recordings]\nqueue_policy = ["consultation=most"]\n')
    with pytest.raises(ConfigError, match=r"\[recordings\] queue_policy.*consultation=most"):
        load_config(cfg, env={})
    with pytest.raises(ConfigError, match="retention_queue_days"):
        load_config(None, env={"CALLCENTER_RECORDINGS_RETENTION_QUEUE_DAYS": "-1"})


# -- hooks for other packages ---------------------------------------------------------------
def test_add_voice_message_from_asterisk_path(db, tmp_path):
    s = settings_for(tmp_path)
    rel = "2026/01/10/voicemail/1795346800.7.wav"
    write_wav(s.directory / rel, b"\x00\x10" * 8000)  # 1 s
    rid = db.call(lambda ses: catalog.add_voice_message(
        ses, path=f"{s.spool_dir}/2026/01/10/voicemail/1795346800.7", uniqueid="1795346800.7",
        caller_number="13400134007", started_at=T0.timestamp(), duration=1.0, settings=s))
    rec = db.call(lambda ses: ses.get(Recording, rid))
    assert (rec.path, rec.kind, rec.status) == (rel, "voice_message", "ready")
    assert rec.duration == pytest.approx(1.0) and rec.size == 16044
    assert rec.sha256 == hashlib.sha256((s.directory / rel).read_bytes()).hexdigest()
    assert catalog.as_utc(rec.purge_after) == T0 + dt.timedelta(days=365)
    with pytest.raises(ValueError):  # outside both directories
        db.call(lambda ses: catalog.add_voice_message(ses, path="/etc/passwd", uniqueid="x",
                                                      started_at=T0, settings=s))


def test_prepare_voice_message_makes_the_day_directory_like_its_parent(tmp_path):
    import os
    import stat

    s = settings_for(tmp_path)
    s.directory.mkdir()
    os.chmod(s.directory, 0o2770)  # setgid, group-writable: Asterisk's group writes here
    made = catalog.prepare_voice_message(f"{s.spool_dir}/voicemail/2026-11-25/voicemsg-1.2", settings=s)
    assert made == s.directory / "voicemail" / "2026-11-25" and made.is_dir()
    for d in (made, made.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o2770 and d.stat().st_gid == s.directory.stat().st_gid
    assert catalog.prepare_voice_message(f"{s.spool_dir}/voicemail/2026-11-25/voicemsg-1.3", settings=s) == made
    (s.directory / "voicemail" / "2026-11-26").write_text("")  # a file where the directory goes
    with pytest.raises(catalog.VoiceMessageUnavailable, match="2026-11-26: a file of that name"):
        catalog.prepare_voice_message(f"{s.spool_dir}/voicemail/2026-11-26/voicemsg-1.4", settings=s)
    with pytest.raises(catalog.VoiceMessageUnavailable, match="not under"):
        catalog.prepare_voice_message("/tmp/elsewhere/voicemsg-1.5", settings=s)


def test_link_ticket_extends_retention(db, tmp_path):
    s = settings_for(tmp_path)
    rid, _ = add_ready(db, s, "200.1")
    ids = db.call(lambda ses: catalog.link_ticket(ses, ticket_id=42, uniqueid="200.1", settings=s))
    assert ids == [rid]
    rec = db.call(lambda ses: ses.get(Recording, rid))
    assert rec.ticket_id == 42
    assert catalog.as_utc(rec.purge_after) == T0 + dt.timedelta(days=1095)


# -- verify ---------------------------------------------------------------------------------
@pytest.mark.postgres
def test_verify_finds_deleted_orphan_and_tampered_files(db, tmp_path, capsys):
    s = settings_for(tmp_path)
    ok_id, _ = add_ready(db, s, "300.1")
    gone_id, gone_rel = add_ready(db, s, "300.2")
    bad_id, bad_rel = add_ready(db, s, "300.3")
    report = maintenance.verify(db, s, now=T0 + dt.timedelta(days=1))
    assert report.ok and report.checked == 3 and report.files_on_disk == 3

    (s.directory / gone_rel).unlink()
    orphan = s.directory / "2026/01/10/consultation/999.9.wav"
    orphan.write_bytes(PART1.read_bytes())
    data = bytearray((s.directory / bad_rel).read_bytes())
    data[100] ^= 0xFF  # same size, different content
    (s.directory / bad_rel).write_bytes(bytes(data))
    report = maintenance.verify(db, s, now=T0 + dt.timedelta(days=1))
    got = {(p.kind, p.recording_id, p.path) for p in report.problems}
    assert got == {("missing", gone_id, gone_rel), ("checksum_mismatch", bad_id, bad_rel),
                   ("orphan", None, "2026/01/10/consultation/999.9.wav")}
    quick = maintenance.verify(db, s, now=T0 + dt.timedelta(days=1), check_hash=False)
    assert {p.kind for p in quick.problems} == {"missing", "orphan"}


def test_verify_flags_rows_stuck_recording_and_unsafe_paths(db, tmp_path):
    s = settings_for(tmp_path)
    db.call(lambda ses: catalog.start(ses, rel="2026/01/10/q/1.1.wav", kind="queue", uniqueid="1.1",
                                      started_at=T0, settings=s))
    db.call(lambda ses: ses.add(Recording(path="../../etc/passwd", kind="queue", uniqueid="evil",
                                          started_at=T0, status="ready", legal_hold=False, error="")))
    report = maintenance.verify(db, s, now=T0 + dt.timedelta(hours=1))
    assert [p.kind for p in report.problems] == ["unsafe_path"]
    report = maintenance.verify(db, s, now=T0 + dt.timedelta(days=2))
    assert sorted(p.kind for p in report.problems) == ["stale", "unsafe_path"]
    # a voice message left 'recording' (as RECORD FILE failures left them) is reported at once
    vm = db.call(lambda ses: catalog.start(ses, rel="voicemail/2026-01-10/voicemsg-2.2.wav", kind="voice_message",
                                           uniqueid="2.2", started_at=T0, settings=s))
    report = maintenance.verify(db, s, now=T0 + dt.timedelta(minutes=5))
    assert sorted((p.kind, p.recording_id) for p in report.problems if p.kind != "unsafe_path") == [("stale", vm)]


# -- purge ----------------------------------------------------------------------------------
@pytest.mark.postgres
def test_purge_respects_retention_and_legal_hold(db, tmp_path):
    s = settings_for(tmp_path)
    old_id, old_rel = add_ready(db, s, "400.1", started=T0)                      # queue: 180 days
    held_id, held_rel = add_ready(db, s, "400.2", started=T0)
    compl_id, compl_rel = add_ready(db, s, "400.3", started=T0, kind="complaint", queue="complaint")
    new_id, new_rel = add_ready(db, s, "400.4", started=T0 + dt.timedelta(days=100))
    db.call(lambda ses: catalog.set_hold(ses, held_id, True, actor="admin", reason="lawsuit 17"))

    now = T0 + dt.timedelta(days=181)
    dry = maintenance.purge(db, s, now=now, actor="test", dry_run=True)
    assert [i.recording_id for i in dry] == [old_id]
    assert (s.directory / old_rel).exists()
    assert db.call(lambda ses: ses.get(Recording, old_id).status) == "ready"

    done = maintenance.purge(db, s, now=now, actor="test")
    assert [(i.recording_id, i.removed_file) for i in done] == [(old_id, True)]
    assert not (s.directory / old_rel).exists()
    for rel in (held_rel, compl_rel, new_rel):
        assert (s.directory / rel).exists()
    rec = db.call(lambda ses: ses.get(Recording, old_id))
    assert rec.status == "purged" and catalog.as_utc(rec.purged_at) == now
    entries = db.call(lambda ses: [(e.actor, e.action, e.object_id, e.detail) for e in ses.scalars(
        select(AuditEntry).where(AuditEntry.action == "recording.purge"))])
    assert [(a, act, oid) for a, act, oid, _ in entries] == [("test", "recording.purge", str(old_id))]
    assert entries[0][3]["path"] == old_rel and entries[0][3]["sha256"] == rec.sha256
    assert maintenance.verify(db, s, now=now).ok  # a purged row is not "missing"

    # years later: the complaint call expires too, the held one never does until released
    later = T0 + dt.timedelta(days=4000)
    assert {i.recording_id for i in maintenance.purge(db, s, now=later, actor="t")} == {compl_id, new_id}
    assert (s.directory / held_rel).exists()
    db.call(lambda ses: catalog.set_hold(ses, held_id, False, actor="admin"))
    assert [i.recording_id for i in maintenance.purge(db, s, now=later, actor="t")] == [held_id]
    assert maintenance.purge(db, s, now=later, actor="t") == []


def test_cli_verify_purge_hold(db, db_url, tmp_path, config_env, monkeypatch, capsys):
    s = settings_for(tmp_path)
    monkeypatch.setenv("CALLCENTER_RECORDINGS_DIRECTORY", str(s.directory))
    rid, rel = add_ready(db, s, "500.1", started=T0 - dt.timedelta(days=3650))
    assert cli_main(["recordings", "verify"]) == 0
    assert cli_main(["recordings", "hold", str(rid), "--reason", "audit"]) == 0
    assert "under legal hold" in capsys.readouterr().out
    assert cli_main(["recordings", "purge"]) == 0
    assert (s.directory / rel).exists()
    assert cli_main(["recordings", "release", str(rid)]) == 0
    assert cli_main(["recordings", "purge", "--dry-run"]) == 0
    assert "would delete" in capsys.readouterr().out and (s.directory / rel).exists()
    assert cli_main(["recordings", "purge"]) == 0
    assert not (s.directory / rel).exists()
    (s.directory / "stray.wav").write_bytes(b"x")
    assert cli_main(["recordings", "verify"]) == 1
    out = capsys.readouterr().out
    assert "orphan" in out and "stray.wav" in out
    assert cli_main(["recordings", "hold", "9999"]) == 2
    assert cli_main(["recordings", "list", "--status", "purged"]) == 0
    assert "500.1.wav" in capsys.readouterr().out
