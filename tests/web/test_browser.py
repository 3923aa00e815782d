"""Headless Chromium against the whole stack over real TCP: simulated Asterisk (AMI) ->
gateway -> queuecalls tracker -> web (SSE) -> browser.  Time-scaled (5x).

A supervisor watches the wallboard while a call waits, is answered and ends: the waiting
count goes 0 -> 1 -> 0 and today's service level goes from "—" to 100%.  An agent whose
interface gets the call sees the screen pop with the patient's record from the dialer's
tables.  Without Chromium the test is skipped locally but FAILS when ``CI`` is set.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil

import pytest
from twisted.internet import reactor

from callcenter.ami.gateway import AmiGateway
from callcenter.clock import ScaledClock
from callcenter.queuecalls.tracker import QueueCallsTracker
from callcenter.simulator import SimulatedPBX

from tests.support.web import PASSWORD, add_users, running_web

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _require_browser():
    problem = None
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        problem = f"{CHROMIUM} not found (apt-get install chromium chromium-driver; scripts/bootstrap.sh --test)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        problem = "the playwright Python package is missing (pip install -e .[test])"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {problem}")
        pytest.skip(problem)


async def _login(page, base, username):
    await page.goto(f"{base}/login?lang=en")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")


@pytest.mark.timeout(90)
async def test_wallboard_and_screen_pop_in_chromium(config, db, tmp_path):
    _require_browser()
    from playwright.async_api import async_playwright, expect

    from dialer.models import Patient, Treatment

    add_users(db)  # agent1 is Local/1001@sim-agent/n, a member of "consultation" in the simulator
    with db.session() as s:
        p = Patient(external_id="P-1", name="李娜", phone="+8613800138001", language="zh")
        s.add(p)
        s.flush()
        s.add(Treatment(external_id="T-1", patient_id=p.id, treatment_type="implant",
                        treated_at=dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.timezone.utc), doctor="Dr Wu"))

    clock = ScaledClock(reactor, 5.0)
    pbx = SimulatedPBX(clock, seed=1, spool_dir=tmp_path / "pbx")
    await pbx.start(host="127.0.0.1", ami_port=0)
    pbx.set_agent("1001", answer_delay=6, talk_time=4)
    pbx.set_agent("1002", answer_delay=60, talk_time=4)  # never first: 1001 gets the call
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock, ping_interval=60)
    tracker = QueueCallsTracker(db, clock, gateway=gw, flush_interval=0.2)
    await gw.start()
    await tracker.start()
    await gw.wait_connected(10)
    try:
        async with running_web(config, db, clock=clock, queuecalls=tracker, gateway=gw) as web, \
                async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                sup = await (await browser.new_context()).new_page()
                errors = []
                sup.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                await _login(sup, web.url, "sup1")
                assert sup.url.endswith("/wallboard")
                await expect(sup.locator("body")).to_have_attribute("data-connected", "1", timeout=10000)
                assert await sup.text_content("#total-waiting") == "0"
                assert await sup.text_content("#total-sl") == "—"

                agent = await (await browser.new_context()).new_page()
                await _login(agent, web.url, "agent1")
                assert agent.url.endswith("/agent")
                await expect(agent.locator("body")).to_have_attribute("data-connected", "1", timeout=10000)
                assert await agent.is_hidden("#pop")

                pbx.inbound_call("13800138001", "Li Na", context="hotline-plain", digits="1", digit_delay=1,
                                 patience=60)
                # waiting while agent 1001 lets it ring
                await expect(sup.locator("#total-waiting")).to_have_text("1", timeout=15000)
                assert await sup.text_content("tr[data-queue=consultation] .waiting") == "1"
                # answered -> screen pop on the agent's desk, with the dialer's patient record
                await agent.wait_for_selector("#pop:not([hidden])", timeout=15000)
                assert await agent.text_content("#pop-name") == "李娜"
                assert "Implant" in await agent.text_content("#pop-treatments")  # the label, not the code
                assert await agent.input_value("#f-number") == "13800138001"
                assert await agent.input_value("#f-uniqueid") != ""
                # ... and the wallboard: nobody waiting, the finished call counts for the service level
                await expect(sup.locator("#total-waiting")).to_have_text("0", timeout=15000)
                await expect(sup.locator("#total-sl")).to_have_text("100%", timeout=15000)
                assert await sup.text_content("tr[data-queue=consultation] .answered") == "1"

                # the agent records the outcome with the pop's form (CSRF token included by the page)
                await agent.select_option("#f-outcome", "appointment")
                await agent.click("#outcome-save")
                await agent.wait_for_selector("#flash")
                assert "Outcome saved" in await agent.text_content("#flash")
                assert not errors, errors  # no CSP violations or script errors
            finally:
                await browser.close()
    finally:
        await tracker.stop()
        await gw.stop()
        await pbx.stop()
