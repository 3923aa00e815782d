"""What a supervisor sees on the wallboard, in headless Chromium, over the whole product:
``callcenter.app.build`` (IVR over FastAGI, AMI gateway, queue-call tracker, web) against
the simulated Asterisk on a time-scaled clock.

One browser session walks it: an agent talking (state, caller, talk timer that counts,
answered today, counted as answered *while* talking), paused agents with their reason
translated (en, then zh), the waiting list in app_queue's order with the IVR's urgent
complaint first, the service level's colour, the half-hour charts, the wall-screen mode,
and the "connection lost / stale since" banner when the web server stops, gone again when
it is back.
"""
from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from callcenter.app import build

from tests.support.product import simulated_product
from tests.support.web import add_users
from tests.web.test_browser import ARGS, CHROMIUM, _login, _require_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()  # a Wednesday


@pytest.mark.timeout(90)
async def test_supervisor_sees_agents_waiting_callers_and_a_lost_link(config, db, tmp_path):
    _require_browser()
    from playwright.async_api import async_playwright, expect

    add_users(db)  # agent1 = Local/1001@sim-agent/n; sup1 supervisor
    clock, pbx, product = await simulated_product(config, db, tmp_path, scale=10, start=OPEN, seed=3)
    try:
        await product.start()
        pbx.agi_port = product.agi.port
        await product.ami.wait_connected(10)
        pbx.set_agent("1001", answer_delay=1, talk_time=3600)
        pbx.pause_member("Local/1002@sim-agent/n", True, "meal")
        for agent in ("2001", "2002"):  # nobody takes complaints: they wait
            pbx.pause_member(f"Local/{agent}@sim-agent/n", True, "training")
        web = product.web
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await (await browser.new_context(viewport={"width": 1366, "height": 768})).new_page()
                errors = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                await _login(page, web.url, "sup1")
                assert page.url.endswith("/wallboard")
                await expect(page.locator("body")).to_have_attribute("data-connected", "1", timeout=10000)
                assert re.fullmatch(r"10:\d\d:\d\d", await page.text_content("#wb-clock"))  # Shanghai, not ISO

                # Chinese, consultation: agent 1001 answers and keeps talking
                pbx.inbound_call("13800138001", "王小明", digits="1w1", digit_delay=1, patience=3600,
                                 stay_when_connected=True)
                # Chinese, complaints: a normal one, then an urgent one (9) that app_queue puts first
                pbx.inbound_call("13900139002", "李娜", digits="1w3w1", digit_delay=1, patience=3600)
                pbx.inbound_call("13700137003", "张伟", digits="1w3w9", digit_delay=1, patience=3600)

                talking = page.locator("#wb-agents tr[data-agent=agent1]")
                await expect(talking.locator(".a-state")).to_have_text("On a call", timeout=20000)
                assert (await talking.locator(".a-caller").text_content()).endswith("8001")
                # answered when answered: counted while the call goes on
                await expect(talking.locator(".a-today")).to_have_text("1", timeout=5000)
                await expect(page.locator("#total-answered")).to_have_text("1")
                await expect(page.locator("#total-offered")).to_have_text("1")
                assert await page.text_content("tr[data-queue=consultation] .answered") == "1"
                await expect(page.locator("#tile-sl")).to_have_class(re.compile(r"\bband-good\b"))
                first = await talking.locator(".a-talk").text_content()
                assert re.fullmatch(r"\d+:\d\d", first), first
                await expect(talking.locator(".a-talk")).not_to_have_text(first, timeout=5000)  # it counts
                assert await talking.locator(".a-timer").text_content() != ""

                paused = page.locator("#wb-agents tr[data-agent='Local/1002@sim-agent/n'] .a-state")
                await expect(paused).to_have_text("Paused · Meal")

                callers = page.locator("#wb-callers tbody tr")
                await expect(callers).to_have_count(2, timeout=20000)
                urgent = callers.nth(0)
                assert await urgent.get_attribute("class") == "urgent"
                assert [await urgent.locator(c).text_content() for c in (".position", ".flag")] == ["1", "Urgent"]
                assert (await urgent.locator(".caller").text_content()).endswith("7003")
                assert await callers.nth(1).locator(".position").text_content() == "2"
                assert (await callers.nth(1).locator(".caller").text_content()).endswith("9002")
                assert await page.text_content("#total-waiting") == "2"
                # charts: 08:00 (chart start) to the 10:00 half hour, one SL point where calls were offered
                await expect(page.locator("#wb-chart-calls")).to_have_attribute("data-slots", "5")
                await expect(page.locator("#wb-chart-sl")).to_have_attribute("data-points", "1")
                assert await page.locator("#wb-chart-calls svg rect.bar-answered").count() >= 5

                # the same in Chinese: pause reasons and states translated
                await page.click("#switch-language")
                await expect(paused).to_have_text("暂停 · 用餐", timeout=10000)
                await expect(talking.locator(".a-state")).to_have_text("通话中")
                await expect(urgent.locator(".flag")).to_have_text("紧急")

                # the wall screen: no navigation, the queues side by side, large type
                await page.set_viewport_size({"width": 1920, "height": 1080})
                await page.goto(f"{web.url}/wallboard?kiosk=1")
                await expect(page.locator("body")).to_have_attribute("data-connected", "1", timeout=10000)
                assert await page.locator("header.top, nav").count() == 0
                boxes = [await page.locator(f"#wb-queues tr[data-queue={q}]").bounding_box()
                         for q in ("complaint", "consultation")]
                assert abs(boxes[0]["y"] - boxes[1]["y"]) < 2 and boxes[0]["x"] < boxes[1]["x"]
                size = await page.evaluate(
                    "parseFloat(getComputedStyle(document.getElementById('total-waiting')).fontSize)")
                assert size >= 48, size  # readable across a room
                assert await page.evaluate("document.documentElement.scrollHeight") <= 1080

                # the web server stops: the banner says since when the figures are stale
                assert await page.is_hidden("#wb-stale")
                await web.stop()
                await expect(page.locator("#wb-stale")).to_be_visible(timeout=10000)
                assert re.fullmatch(r"连接已中断：数据自 10:\d\d:\d\d 起未更新，正在重新连接…",
                                    await page.text_content("#wb-stale"))
                assert await page.get_attribute("body", "data-connected") == "0"
                assert "stale" in await page.get_attribute("body", "class")
                # ... and goes when the live link is back
                await web.start()
                await expect(page.locator("#wb-stale")).to_be_hidden(timeout=15000)
                await expect(page.locator("body")).to_have_attribute("data-connected", "1")
                # the browser logs each refused reconnect as a network error; nothing else
                assert not [e for e in errors if "ERR_CONNECTION_REFUSED" not in e
                            and "events/wallboard" not in e], errors
            finally:
                await browser.close()
    finally:
        await product.stop()
        await pbx.stop()
