"""The reports page in headless Chromium at 1366 px, in Chinese and English: the page never
scrolls sideways (a wide table scrolls inside its own box) and no heading is squeezed to
one character per line; the XLSX link downloads a workbook openpyxl opens."""
from __future__ import annotations

import io

import pytest

from tests.reports.test_reports import DAY, _store
from tests.support.web import FakeQueueCalls, add_users, running_web
from tests.web.test_browser import ARGS, CHROMIUM, _login, _require_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SQUEEZED = """() => [...document.querySelectorAll('table.report-table th')].filter(th => {
    const fs = parseFloat(getComputedStyle(th).fontSize);
    const chars = Math.min(2, th.textContent.trim().length);
    return th.getBoundingClientRect().width < chars * fs + 8;   // + padding
}).map(th => th.textContent)"""


@pytest.mark.timeout(90)
async def test_reports_page_fits_1366_in_both_languages(config, db):
    _require_browser()
    from openpyxl import load_workbook
    from playwright.async_api import async_playwright

    add_users(db)
    _store(db)
    async with running_web(config, db, queuecalls=FakeQueueCalls()) as web, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = await browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
            page = await ctx.new_page()
            await _login(page, web.url, "sup1")
            for lang in ("en", "zh"):
                if lang == "zh":
                    await page.click("#switch-language")
                await page.goto(f"{web.url}/reports?from={DAY}&to={DAY}")
                assert await page.get_attribute("html", "lang") == ("zh-CN" if lang == "zh" else "en")
                assert "08:00–08:30" in await page.text_content("#table-intervals")
                heads = await page.text_content("#table-agents thead")
                assert ("暂停：用餐" if lang == "zh" else "Paused: Meal") in heads
                width, viewport = await page.evaluate(
                    "[document.documentElement.scrollWidth, window.innerWidth]")
                assert width <= viewport, (lang, width, viewport)
                assert await page.evaluate(SQUEEZED) == [], lang
            async with page.expect_download() as dl:
                await page.click("#report-agents a[href^='/reports/agents.xlsx']")
            download = await dl.value
            assert download.suggested_filename == f"agents_{DAY}_{DAY}.xlsx"
            with open(await download.path(), "rb") as f:
                ws = load_workbook(io.BytesIO(f.read())).active
            assert [c.value for c in ws[1]][:3] == ["姓名", "坐席", "接通"]
        finally:
            await browser.close()
