"""Value labels: every code the configuration, the plans and the enums can produce has
words in both languages (i18n.label, the one home), and the agent reads our own message
after a queue action, never Asterisk's English reply."""
from __future__ import annotations

import re

import pytest
import yaml
from sqlalchemy import select

from callcenter.complaints.lifecycle import STATES as COMPLAINT_STATES
from callcenter.queuecalls import reducer
from callcenter.queuecalls.agentstate import BOARD_STATES
from callcenter.store.models import User
from callcenter.web import campaigns as web_campaigns
from callcenter.web.i18n import LABEL_KINDS, MESSAGES, has_label, label
from callcenter.web.call_outcomes import OUTCOMES
from dialer import campaigns, compliance, importer, tracker
from dialer.plans import load_plans
from ivr_flows.flow import FLOWS_DIR

from tests.support.web import Client, add_users, running_web

CJK = re.compile(r"[\u4e00-\u9fff]")


def _stored_answers(node) -> set[str]:
    if isinstance(node, dict):
        out = {node["store"]} if isinstance(node.get("store"), str) else set()
        return out.union(*(_stored_answers(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_stored_answers(v) for v in node))
    return set()


def codes() -> dict[str, set[str]]:
    plans = load_plans()
    survey = yaml.safe_load((FLOWS_DIR / "revisit_survey.yaml").read_text(encoding="utf-8"))
    return {
        "treatment": set(plans),
        "plan_step": {step.name for plan in plans.values() for step in plan.steps},
        "campaign_kind": set(campaigns.KINDS) | set(web_campaigns.WEB_KINDS),
        "campaign_mode": set(campaigns.MODES) | set(web_campaigns.MODES),
        "campaign_state": set(campaigns.STATES) | {new for _, new in web_campaigns.ACTIONS.values()},
        "disposition": (set(tracker.REASONS.values()) | set(tracker.CAUSES.values()) | compliance.FINAL
                        | set(compliance.RETRYABLE) | {"not_sent", "in_progress"}),
        "contact_outcome": set(campaigns.HANDLED) | compliance.FINAL | {"unreachable", "expired", "superseded"},
        "call_outcome": set(OUTCOMES),
        "survey_question": _stored_answers(survey),
        "import_kind": set(importer.KINDS),
        "appointment_status": set(importer.APPOINTMENT_STATUSES),
        "complaint_state": set(COMPLAINT_STATES),
        "agent_state": set(BOARD_STATES),
        "queue": _sample_queues(),
        "queue_call_outcome": set(reducer.OUTCOMES),
    }


def _sample_queues() -> set[str]:
    """The queues of the sample docs/asterisk/queues.conf (and the demo's simulator)."""
    from pathlib import Path

    from callcenter.demo import AGENTS

    conf = (Path(__file__).parents[2] / "docs" / "asterisk" / "queues.conf").read_text(encoding="utf-8")
    found = set(re.findall(r"^\[([a-z0-9_-]+)\]", conf, re.M)) - {"general"}
    return found | set(AGENTS)


def test_every_code_has_a_label_in_both_languages():
    all_codes = codes()
    assert set(all_codes) == set(LABEL_KINDS)  # no kind without its codes checked here
    missing = [(kind, code) for kind, cs in all_codes.items() for code in sorted(cs) if not has_label(kind, code)]
    assert not missing, missing
    for kind, cs in all_codes.items():
        assert cs, kind
        for code in cs:
            en, zh = MESSAGES[LABEL_KINDS[kind] + code]
            assert en.strip() and CJK.search(zh), (kind, code, en, zh)
            assert label("zh", kind, code) == zh and label("en", kind, code) == en


@pytest.mark.parametrize("reply,expected", [
    ("Interface paused successfully", "已暂停接听（全部队列）。"),
    ("Interface not found", "您未签入任何队列。"),
])
async def test_queue_action_notice_is_ours_not_asterisks(config, db, reply, expected):
    from callcenter.ami.fake import FakeAmi

    add_users(db)
    with db.session() as s:
        s.scalar(select(User).where(User.username == "agent1")).language = "zh"
    ok = "successfully" in reply
    ami = FakeAmi()
    ami.reply = lambda h: {"Response": "Success" if ok else "Error", "Message": reply}
    async with running_web(config, db, gateway=ami) as web:
        c = Client(web.port)
        await c.login("agent1")
        r = await c.post("/agent/queue", {"csrf_token": await c.csrf(), "action": "pause", "reason": "meal"})
        assert r.status == 303 and r.location == "/agent?reason=meal"   # the chosen reason follows
        page = (await c.get(r.location)).text                           # the message is the session's
        assert f'<p class="notice" id="flash" role="status">{expected}</p>' in page and reply not in page
        assert 'class="notice"' not in (await c.get("/agent?notice=Please+call+0900")).text  # no words by link
        # the JSON API still gives Asterisk's own reply, for machines
        r = await c.post("/api/agent/queue", json_body={"action": "pause"}, headers={"X-CSRF-Token": await c.csrf()})
        assert r.json()["message"] == reply


def test_every_queue_refusal_a_real_asterisk_gave_is_reworded():
    """tests/fixtures/asterisk-traces/10-misc-actions.ami: QueueAdd/QueueRemove/QueuePause
    refused by Asterisk 22.10.1 (the QueueRemove of an unknown queue is app_queue.c's
    message, as the simulator gives it, and not in the trace)."""
    from pathlib import Path

    from callcenter.web.views_agent import ASTERISK_REFUSALS

    trace = (Path(__file__).parents[1] / "fixtures" / "asterisk-traces" / "10-misc-actions.ami").read_text(
        encoding="utf-8")
    refusals = {m for m in re.findall(r"^Message: (.+?)\r?$", trace, re.M)
                if m.startswith("Unable to") or m == "Interface not found"}
    assert len(refusals) == 4 and refusals <= set(ASTERISK_REFUSALS), refusals - set(ASTERISK_REFUSALS)
