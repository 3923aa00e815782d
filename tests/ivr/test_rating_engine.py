"""The rating node, sans-IO: what the caller did is what is reported, never a guess."""
from __future__ import annotations

from ivr_flows.agi import Env, parse_reply_line
from ivr_flows.engine import Done, Effect, Engine
from ivr_flows.flow import FLOWS_DIR, load_flow

ENV = Env({"agi_callerid": "13800138002", "agi_calleridname": "王小明", "agi_uniqueid": "1795400000.7"})
CHANNEL = {"GET VARIABLE QUEUENAME": "200 result=1 (complaint)",
           "GET VARIABLE MEMBERINTERFACE": "200 result=1 (Local/2001@sim-agent/n)",
           "GET VARIABLE IVR_LANGUAGE": "200 result=1 (en)"}


def rate(keys, channel=CHANNEL):
    """Run the satisfaction flow; GET DATA answers ``keys`` in turn ("" = timeout, None = hang-up)."""
    engine = Engine(load_flow(FLOWS_DIR / "satisfaction.yaml"), ENV, now=lambda: 1795400000.0)
    keys, sent, effects, step = list(keys), [], [], engine.start()
    while not isinstance(step, Done):
        if isinstance(step, Effect):
            effects.append((step.name, step.args))
            step = engine.send(None)
            continue
        sent.append(step.line)
        line = next((r for p, r in channel.items() if step.line.startswith(p)), "200 result=0")  # unset: result=0
        if step.line.startswith("GET DATA"):
            k = keys.pop(0)
            line = "200 result=-1" if k is None else ("200 result= (timeout)" if k == "" else f"200 result={k}")
        if step.line == "CHANNEL STATUS":
            line = "511 Command Not Permitted on a dead channel or intercept routine"
        step = engine.send(parse_reply_line(line))
    ratings = [a for n, a in effects if n == "rating"]
    return engine, sent, ratings, step.result


def test_a_key_on_the_scale_is_a_rating_of_the_agent_who_answered():
    engine, sent, ratings, result = rate(["3"])
    assert ratings == [{"uniqueid": "1795400000.7", "queue": "complaint", "agent": "Local/2001@sim-agent/n",
                        "outcome": "rated", "score": 3, "level": "unsatisfied"}]
    assert result == "rated:unsatisfied" and engine.path[-1] == "sorry" and engine.language == "en"
    assert any("/en/satisfaction/rate" in line for line in sent)


def test_no_key_wrong_keys_and_a_hang_up_are_stored_as_such():
    assert rate(["", ""])[2][0]["outcome"] == "no_input"
    engine, _, ratings, result = rate(["7", "9"])
    assert (ratings[0]["outcome"], ratings[0]["score"], ratings[0]["level"]) == ("invalid", None, "")
    assert engine.digits == ["7!", "9!"] and result == "rating_invalid"
    engine, _, ratings, result = rate(["7", None])  # a wrong key, then gone
    assert [r["outcome"] for r in ratings] == ["hangup"] and result == "hangup"


def test_without_a_queue_call_nothing_is_asked():
    engine, sent, ratings, result = rate([], channel={})
    assert ratings == [] and result == "rating_no_call"
    assert not any(line.startswith("GET DATA") for line in sent)
