"""Headless Chromium on the recordings, users and complaint ticket pages of the web app as
``callcenter serve`` builds it (``app.build``), over real TCP.

A supervisor finds a recording by its ticket and plays it in the page (the ``<audio>``
element plays, its media request is answered 206) and the audit log holds that one play;
an administrator adds a user who then logs in; a ticket offers only the steps its state
allows and shows a confirmation once.  ``CALLCENTER_SHOTS=<dir>`` also saves screenshots
of the three pages in zh and en at 1366x768 and 1920x1080.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.app import build
from callcenter.store.models import AuditEntry, User

from tests.support.web import PASSWORD, add_users
from tests.web.test_browser import ARGS, CHROMIUM, _require_browser
from tests.web.test_recordings_page import seed

pytestmark = [pytest.mark.browser]
SIZES = ((1366, 768), (1920, 1080))


async def _login(page, base, username, password=PASSWORD):
    await page.goto(f"{base}/login?lang=en")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#login-submit")
    await page.wait_for_load_state()


async def _shots(page, name: str) -> None:
    folder = os.environ.get("CALLCENTER_SHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    url = page.url
    for lang in ("en", "zh"):
        current = await page.get_attribute("html", "lang")
        if (current == "zh-CN") != (lang == "zh"):
            await page.click("#switch-language")
            await page.wait_for_load_state()
            await page.goto(url)
        for w, h in SIZES:
            await page.set_viewport_size({"width": w, "height": h})
            await page.screenshot(path=f"{folder}/{name}-{lang}-{w}x{h}.png", full_page=True)
    await page.click("#switch-language")  # back to English
    await page.wait_for_load_state()
    await page.set_viewport_size({"width": 1366, "height": 768})


@pytest.mark.timeout(90)
async def test_recordings_users_and_ticket_pages_in_chromium(config, db):
    _require_browser()
    from playwright.async_api import async_playwright, expect

    add_users(db)
    ids = seed(config, db)
    web = build(config.with_overrides({"web": {"port": 0}}), db=db).web
    await web.start()
    base = f"http://127.0.0.1:{web.port}"
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                               args=ARGS + ["--autoplay-policy=no-user-gesture-required"])
            try:
                errors: list[str] = []
                sup = await (await browser.new_context(viewport={"width": 1366, "height": 768})).new_page()
                sup.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                await _login(sup, base, "sup1")
                # find the recording of the complaint ticket and play it
                await sup.click("text=Recordings")
                await sup.fill("#rec-ticket", ids["ticket"])
                await sup.click("#rec-find")
                await expect(sup.locator("#rec-list tbody tr")).to_have_count(1)
                row = sup.locator(f'tr[data-recording="{ids["c"]}"]')
                assert "王芳" in await row.text_content() and "13700137003" in await row.text_content()
                audio = sup.locator(f"#audio-{ids['c']}")
                async with sup.expect_response(lambda r: f"/recordings/{ids['c']}/audio" in r.url) as media:
                    await audio.evaluate("a => { window.played = false; a.addEventListener('playing', "
                                         "() => { window.played = true; }); return a.play(); }")
                assert (await media.value).status == 206
                await sup.wait_for_function(
                    f"window.played || document.getElementById('audio-{ids['c']}').currentTime > 0", timeout=10000)
                await _shots(sup, "recordings")

                # the ticket: only its state's steps, a confirmation shown once
                await sup.goto(f"{base}/complaints/{ids['ticket']}")
                assert await sup.locator("#cp-step button").all_text_contents() == [  # a phone complaint:
                    "Start investigating", "Record progress"]                         # acknowledged at once
                await sup.select_option("#cp-handler", "sup1")
                await sup.click("#cp-save")
                await expect(sup.locator("#flash")).to_have_text("Saved.")
                await expect(sup.locator("#cp-assigned")).to_have_text("Sup1")
                await sup.click("#do-investigate")
                await expect(sup.locator("#flash")).to_have_text("Saved.")
                assert await sup.locator("#cp-step button").all_text_contents() == [
                    "Answered", "Resolve", "Record progress"]
                await sup.reload()
                await expect(sup.locator("#flash")).to_have_count(0)
                await expect(sup.locator("#cp-events")).to_contain_text("Status: acknowledged → investigating")
                await _shots(sup, "complaint")

                # the admin adds a user, who logs in
                admin = await (await browser.new_context(viewport={"width": 1366, "height": 768})).new_page()
                admin.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                await _login(admin, base, "admin1")
                await admin.click("text=Users")
                await admin.fill("#new-username", "zhou.min")
                await admin.fill("#new-name", "周敏")
                await admin.select_option("#new-role", "agent")
                await admin.fill("#new-interface", "PJSIP/1009")
                await admin.select_option("#new-language", "zh")
                await admin.fill("#new-password", "zhou min 2026!")
                await admin.fill("#new-password2", "zhou min 2026!")
                await admin.click("#user-add-submit")
                await expect(admin.locator("#flash")).to_have_text("User zhou.min added.")
                await expect(admin.locator('tr[data-user="zhou.min"]')).to_have_count(1)
                await _shots(admin, "users")
                newbie = await (await browser.new_context()).new_page()
                await _login(newbie, base, "zhou.min", "zhou min 2026!")
                assert newbie.url.endswith("/agent")
                await expect(newbie).to_have_title(re.compile("^坐席工作台"))   # in Chinese, as the admin set her
                await expect(newbie.locator("#me-state")).to_be_visible()
                assert not errors, errors  # no CSP violations or script errors
            finally:
                await browser.close()
    finally:
        await web.stop()

    def audit(s):
        return [(e.actor, e.action, e.object_id) for e in s.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(("recording.play", "user_add"))).order_by(AuditEntry.id))]
    assert db.call(audit) == [("sup1", "recording.play", str(ids["c"])), ("admin1", "user_add", "zhou.min")]
    assert db.call(lambda s: s.scalar(select(User.interface).where(User.username == "zhou.min"))) == "PJSIP/1009"
