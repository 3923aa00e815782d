"""The simulator's AMI permissions and ShowDialPlan against what Asterisk 22.10.1 answered
(recorded by hand from the real Asterisk: ListCommands and ShowDialPlan as a user with
read = system,call,agent,dialplan,user,reporting and write = system,call,originate,agent,reporting)."""
from __future__ import annotations

from callcenter.simulator import SimConfig

from .harness import Harness

DOCS_WRITE = "system,call,originate,agent,reporting"
REAL_LISTCOMMANDS = {  # lines of the real answer, for actions the simulator implements
    "Ping": "Keepalive command.  (Priv: <none>)",
    "Getvar": "Gets a channel variable or function value.  (Priv: call,reporting,all)",
    "CoreShowChannels": "List currently active channels.  (Priv: system,reporting,all)",
    "QueueAdd": "Add interface to queue.  (Priv: agent,all)",
    "QueueStatus": "Show queue status.  (Priv: <none>)",
    "ShowDialPlan": "Show dialplan contexts and extensions  (Priv: config,reporting,all)",
    "MixMonitor": "Record a call and mix the audio during the recording.  Use of StopMixMonitor is required to "
                  "guarantee the audio file is available for processing during dialplan execution.  "
                  "(Priv: system,all)",
}


async def _session(tmp_path, **cfg) -> Harness:
    h = await Harness.create(tmp_path, config=SimConfig(**cfg))
    await h.connect()
    await _ask(h, "Login", "l", Username="bridge", Secret="bridge-secret")
    return h


async def _ask(h: Harness, action: str, aid: str, **headers):
    """The messages answering ActionID ``aid``."""
    await h.send([("Action", action), ("ActionID", aid), *headers.items()])
    return [m for m in h.messages() if m.action_id == aid]


async def test_listcommands_lists_what_the_write_classes_allow_in_asterisks_format(tmp_path):
    h = await _session(tmp_path, write_perm=DOCS_WRITE)
    try:
        reply = (await _ask(h, "ListCommands", "lc"))[0]
        got = dict(reply.headers)
        for name, line in REAL_LISTCOMMANDS.items():
            assert got[name] == line
        assert "Command" not in got  # needs the command class: not listed, as on the real Asterisk
    finally:
        await h.close()


async def test_action_without_the_class_is_permission_denied(tmp_path):
    h = await _session(tmp_path, write_perm=DOCS_WRITE)
    try:
        r = (await _ask(h, "Command", "c", Command="core show version"))[0]
        assert (r["Response"], r["Message"]) == ("Error", "Permission denied")
        r = (await _ask(h, "QueueStatus", "q"))[0]
        assert r["Response"] == "Success"
    finally:
        await h.close()


async def test_showdialplan_unknown_context_and_extension(tmp_path):
    h = await _session(tmp_path)
    try:
        r = (await _ask(h, "ShowDialPlan", "d", Context="nosuch"))[0]
        assert r["Message"] == "Did not find context nosuch"
        r = (await _ask(h, "ShowDialPlan", "d2", Context="survey", Extension="99"))[0]
        assert r["Message"] == "Did not find extension 99@survey"
    finally:
        await h.close()
