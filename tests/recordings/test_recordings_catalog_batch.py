"""The catalogue's batch writes (capture's group commit): one statement for many rows,
the same rows and statuses as one write each, a bad item refused."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from recordings import catalog
from recordings.models import Recording
from recordings.settings import Settings
from recordings.wav import inspect_file, write_wav

T0 = dt.datetime(2026, 1, 10, 8, 0, tzinfo=dt.timezone.utc)


def _settings(tmp_path: Path) -> Settings:
    return Settings(directory=tmp_path / "rec", spool_dir=Path("/var/spool/asterisk/recordings"))


def _start(s: Settings, i: int, uid: str | None = None) -> dict:
    return dict(rel=f"2026/01/10/consultation/c{i}.wav", kind="queue", uniqueid=uid or f"17000.{i}",
                channel=f"SIP/x-{i}", started_at=T0, settings=s, queue="consultation",
                caller_number="13800138000")


@pytest.mark.postgres
def test_start_many_inserts_the_new_rows_and_finds_those_already_there(db, tmp_path):
    s = _settings(tmp_path)
    first = db.call(lambda ses: catalog.start_many(ses, [_start(s, 1)]))
    ids = db.call(lambda ses: catalog.start_many(ses, [_start(s, 0), _start(s, 1), _start(s, 2)]))
    assert ids[1] == first[0] and len(set(ids)) == 3  # the earlier row, found again (a replay)
    with db.session() as ses:
        rows = {r.id: r for r in ses.query(Recording)}
    assert [rows[i].path for i in ids] == [_start(s, i)["rel"] for i in range(3)]
    assert {r.status for r in rows.values()} == {"recording"}
    assert {r.caller_number for r in rows.values()} == {"+8613800138000"}


@pytest.mark.postgres
def test_start_many_sends_one_insert_for_the_batch(db, tmp_path):
    """(Asking SQLAlchemy for the RETURNING rows in parameter order made it one INSERT a row
    on SQLite.)"""
    from sqlalchemy import event

    s = _settings(tmp_path)
    inserts = []

    def seen(conn, cursor, statement, *_):
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement)
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        ids = db.call(lambda ses: catalog.start_many(ses, [_start(s, i) for i in range(40)]))
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert len(inserts) == 1 and len(set(ids)) == 40
    with db.session() as ses:
        assert {r.id: r.path for r in ses.query(Recording)} == {i: _start(s, k)["rel"] for k, i in enumerate(ids)}


@pytest.mark.postgres
def test_start_many_refuses_a_path_of_another_call_or_twice(db, tmp_path):
    s = _settings(tmp_path)
    db.call(lambda ses: catalog.start_many(ses, [_start(s, 1)]))
    with pytest.raises(ValueError, match="catalogued for call"):
        db.call(lambda ses: catalog.start_many(ses, [_start(s, 0), _start(s, 1, uid="other")]))
    with pytest.raises(ValueError, match="twice"):
        db.call(lambda ses: catalog.start_many(ses, [_start(s, 0), _start(s, 0)]))


@pytest.mark.postgres
def test_finalize_many_sets_each_row_as_finalize_would(db, tmp_path):
    s = _settings(tmp_path)
    ids = db.call(lambda ses: catalog.start_many(ses, [_start(s, i) for i in range(3)]))
    write_wav(s.directory / _start(s, 0)["rel"], b"\x01\x00" * 8000)  # 1 s of audio
    info = inspect_file(s.directory / _start(s, 0)["rel"])
    end = T0 + dt.timedelta(seconds=1)
    got = db.call(lambda ses: catalog.finalize_many(ses, [
        catalog.Finalize(ids[0], info, end), catalog.Finalize(ids[1], None, end, "gone"),
        catalog.Finalize(ids[2], info, T0 + dt.timedelta(seconds=60))]))
    assert got == ["ready", "missing", "failed"]  # 1 s of audio for a 60 s call: cut short
    with db.session() as ses:
        rows = {r.id: r for r in ses.query(Recording)}
    assert (rows[ids[0]].status, rows[ids[0]].size, rows[ids[0]].sha256) == ("ready", info.size, info.sha256)
    assert (rows[ids[1]].status, rows[ids[1]].error, rows[ids[1]].size) == ("missing", "gone", None)
    assert rows[ids[2]].status == "failed" and rows[ids[2]].error
    # finalised once: a second finalisation (a reconnect's stale look) changes nothing
    later = T0 + dt.timedelta(seconds=300)
    assert db.call(lambda ses: catalog.finalize_many(ses, [catalog.Finalize(ids[0], None, later, "gone")])) == [
        "ready"]
    with db.session() as ses:
        again = ses.get(Recording, ids[0])
        assert (again.status, again.sha256, catalog.as_utc(again.ended_at)) == ("ready", info.sha256, end)
    with pytest.raises(LookupError):
        db.call(lambda ses: catalog.finalize_many(ses, [catalog.Finalize(ids[0], info, end),
                                                        catalog.Finalize(10**6, info, end)]))
    with pytest.raises(ValueError, match="twice"):
        db.call(lambda ses: catalog.finalize_many(ses, [catalog.Finalize(ids[0], info, end)] * 2))


def test_resolve_inside_refuses_escapes_and_keeps_what_is_inside(tmp_path):
    import os

    from recordings import layout

    root = tmp_path / "rec"
    (root / "2026").mkdir(parents=True)
    (tmp_path / "rec-other").mkdir()
    os.symlink(tmp_path / "rec-other", root / "2026" / "out")  # a sibling sharing the prefix
    os.symlink(root / "2026", root / "in")
    assert layout.resolve_inside(root, "2026/a.wav") == root / "2026" / "a.wav"
    assert layout.resolve_inside(root, "in/a.wav") == root / "2026" / "a.wav"
    for bad in ("2026/out/a.wav", "../rec-other/a.wav", "/etc/passwd"):
        with pytest.raises(layout.UnsafePath):
            layout.resolve_inside(root, bad)
