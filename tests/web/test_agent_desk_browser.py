"""Headless Chromium on the agent desk, over the whole stack on real TCP: simulated Asterisk
(AMI, queues.conf wrapuptime 6 read with GetConfig) -> gateway -> tracker -> web (SSE) ->
browser, time-scaled 4x.

The agent sees their own state with a running timer, then the call ring, connect (the pop),
end and its wrap-up count down, the pop marked as ended; at 1366x768 the outcome form is
above the fold and the extension reads "1001", not the member interface.  Saving the
outcome (with a complaint ticket) twice stores one outcome and one ticket.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from twisted.internet import reactor

from callcenter.ami.gateway import AmiGateway
from callcenter.clock import ScaledClock
from callcenter.complaints.models import ComplaintTicket
from callcenter.queuecalls.tracker import QueueCallsTracker
from callcenter.simulator import SimConfig, SimulatedPBX
from callcenter.web.models import CallOutcome

from tests.support.waiting import until
from tests.support.web import add_users, running_web
from tests.web.test_browser import ARGS, CHROMIUM, _login, _require_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# every change of the call line, as the agent saw it: [state, timer text]
RECORD = """() => {
  window.seen = [];
  const note = () => {
    const s = document.body.dataset.callState, t = document.getElementById("call-timer").textContent;
    const last = window.seen[window.seen.length - 1];
    if (!last || last[0] !== s || last[1] !== t) window.seen.push([s, t]);
  };
  new MutationObserver(note).observe(document.body, {attributes: true, subtree: true, childList: true,
                                                     characterData: true});
  note();
}"""


@pytest.mark.timeout(90)
async def test_agent_sees_the_call_states_wrapup_countdown_and_saves_one_ticket(config, db, tmp_path):
    _require_browser()
    from playwright.async_api import async_playwright, expect

    add_users(db)  # agent1 is Local/1001@sim-agent/n
    clock = ScaledClock(reactor, 4.0)
    pbx = SimulatedPBX(clock, seed=3, spool_dir=tmp_path / "pbx",
                       config=SimConfig(queues={"consultation": [("1001", "Agent 1001")]}, wrapuptime=6))
    await pbx.start(host="127.0.0.1", ami_port=0)
    pbx.set_agent("1001", answer_delay=4, talk_time=5)
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock, ping_interval=60)
    tracker = QueueCallsTracker(db, clock, gateway=gw, flush_interval=0.2)  # wrap-up read from the PBX
    await gw.start()
    await tracker.start()
    await gw.wait_connected(10)
    try:
        async with running_web(config, db, clock=clock, queuecalls=tracker, gateway=gw) as web, \
                async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await (await browser.new_context(viewport={"width": 1366, "height": 768})).new_page()
                errors = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                await _login(page, web.url, "agent1")
                await expect(page.locator("body")).to_have_attribute("data-connected", "1", timeout=10000)
                await expect(page.locator("#me-state")).to_have_text("Available")
                assert await page.text_content("#me-ext") == "1001"
                assert "Local/" not in await page.inner_text("main")
                first = await page.text_content("#me-timer")
                await expect(page.locator("#me-timer")).not_to_have_text(first, timeout=5000)  # it runs
                assert tracker.queue_wrapup == {"consultation": 6.0}
                await page.evaluate(RECORD)

                pbx.inbound_call("13800138001", "Li Na", context="hotline-plain", digits="1", digit_delay=1,
                                 patience=60)
                await page.wait_for_function(
                    "() => window.seen.some(s => s[0] === 'wrap_up') && document.body.dataset.callState === 'ended'",
                    timeout=30000)
                seen = await page.evaluate("window.seen")
                states = [s for s, _ in seen]
                order = [states.index(s) for s in ("none", "ringing", "connected", "wrap_up")]
                assert order == sorted(order), seen
                assert states[-1] == "ended", seen
                left = [int(re.match(r"(\d+) s left", t).group(1)) for s, t in seen if s == "wrap_up"]
                assert left[0] >= 5 and len(left) >= 3 and left == sorted(left, reverse=True), seen
                await expect(page.locator("#pop-ended")).to_be_visible()
                assert await page.text_content("#pop-kind") == "Inbound call"
                assert await page.is_hidden("#pop-dialer")
                await expect(page.locator("#me-state")).to_have_text("Available")
                box = await page.locator("#outcome-save").bounding_box()
                assert box["y"] + box["height"] <= 768, box   # above the fold

                numbers = []
                for _ in range(2):  # the same outcome saved twice
                    await page.select_option("#f-outcome", "complaint")
                    await page.check("#f-complaint")
                    await page.select_option("select[name=category]", "attitude")
                    await page.fill("#outcome-form textarea[name=note]", "waited too long")
                    await page.click("#outcome-save")
                    await page.wait_for_selector("#flash")
                    numbers.append(re.search(r"TS-\d{4}-\d+", await page.text_content("#flash")).group(0))
                assert "already saved" in await page.text_content("#flash")
                assert numbers[0] == numbers[1]
                counts = db.call(lambda s: (s.scalar(select(func.count()).select_from(CallOutcome)),
                                            s.scalar(select(func.count()).select_from(ComplaintTicket))))
                assert counts == (1, 1)
                assert not errors, errors
            finally:
                await browser.close()
    finally:
        await until(lambda: not tracker.buffer, "the finished call written")
        await tracker.stop()
        await gw.stop()
        await pbx.stop()
