"""A served flow's file is looked at once a second (injected clock), not on every call.

A ``stat`` per call blocked the loop for every caller (milliseconds on a network share);
an operator's edit is still served within a second, a deleted file stops being served,
and an invalid edit keeps the last good flow."""
import os

from twisted.internet.task import Clock

from ivr_flows.flow import FLOWS_DIR
from ivr_flows.server import FLOW_RECHECK
from tests import support


def server_with(tmp_path):
    clock = Clock()
    clock.advance(1_795_000_000)
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hotline.yaml").write_text((FLOWS_DIR / "hotline.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return clock, flows / "hotline.yaml", support.agi_server(clock=clock, flows_dir=flows,
                                                             recordings_dir=str(tmp_path / "rec"))


def edit(path, old, new, mtime):
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    os.utime(path, (mtime, mtime))  # a visible change whatever the file system's clock granularity


def test_an_edit_is_served_after_the_recheck_interval_not_before(tmp_path):
    clock, path, server = server_with(tmp_path)
    first = server.flow("hotline")
    assert first is not None and first.prompts["welcome"]["en"].startswith("Welcome to the City")
    edit(path, "Welcome to the City", "Welcome again to the City", 1_700_000_000)
    clock.advance(FLOW_RECHECK / 2)
    assert server.flow("hotline") is first  # within the interval: no stat, the flow as it was
    clock.advance(FLOW_RECHECK / 2)
    edited = server.flow("hotline")
    assert edited is not first and edited.prompts["welcome"]["en"].startswith("Welcome again")
    clock.advance(FLOW_RECHECK)
    assert server.flow("hotline") is edited  # unchanged file: not parsed again


def test_invalid_edit_keeps_the_last_good_flow_and_a_deleted_file_is_not_served(tmp_path, caplog):
    clock, path, server = server_with(tmp_path)
    good = server.flow("hotline")
    edit(path, "start: language", "start: no_such_node", 1_700_000_000)
    clock.advance(FLOW_RECHECK)
    assert server.flow("hotline") is good
    assert "is invalid, not served" in caplog.text
    path.unlink()
    clock.advance(FLOW_RECHECK)
    assert server.flow("hotline") is None
