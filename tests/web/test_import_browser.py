"""Headless Chromium: a supervisor imports patients from an Excel (GBK) CSV in Chinese —
the preview names the bad rows and columns, nothing is written; the corrected file is
imported after the confirmation.  The real web app over TCP; Debian's chromium."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from callcenter.store.models import User
from dialer.models import Patient

from tests.support.web import add_users, running_web
from tests.web.test_browser import ARGS, CHROMIUM, _login, _require_browser
from tests.web.test_imports import BAD, PATIENTS, clock

pytestmark = [pytest.mark.browser]


@pytest.mark.timeout(60)
async def test_import_preview_and_confirm_in_chinese(config, db, tmp_path):
    _require_browser()
    from playwright.async_api import async_playwright, expect

    add_users(db)
    with db.session() as s:
        s.scalar(select(User).where(User.username == "sup1")).language = "zh"
    bad, good = tmp_path / "患者-有错.csv", tmp_path / "患者.csv"
    bad.write_bytes(BAD.encode("gbk"))
    good.write_bytes(PATIENTS.encode("gbk"))
    async with running_web(config, db, clock=clock()) as web, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (await browser.new_context(viewport={"width": 1366, "height": 768})).new_page()
            errors = []
            # the preview of a bad file is answered 422 on purpose; anything else is a fault
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "422" not in m.text
                    else None)
            await _login(page, web.url, "sup1")
            await page.goto(f"{web.url}/campaigns")
            await page.click("#import-link")
            await expect(page.locator("h1")).to_have_text("导入 CSV 文件")
            await page.select_option("#import-kind", "patients")
            await page.set_input_files("#import-file", str(bad))
            await page.click("#import-check")
            await expect(page.locator("#import-bad")).to_contain_text("3 个问题")
            rows = page.locator("#import-problems tbody tr")
            assert [await rows.nth(i).get_attribute("data-line") for i in range(await rows.count())] == ["3", "4", "5"]
            assert "缺少内容" in await rows.nth(0).inner_text()
            assert "不是可拨打的电话号码" in await rows.nth(2).inner_text()
            # the bad cells are marked in the rows as the file has them, read as Chinese
            assert await page.locator("#import-rows tr[data-line='5'] td.cell-bad").inner_text() == "不是号码"
            assert "王小明" in await page.locator("#import-rows tr[data-line='2']").inner_text()
            assert "GBK" in await page.locator("#import-summary").inner_text()
            assert await page.locator("#import-go").count() == 0
            with db.session() as s:
                assert s.scalar(select(func.count()).select_from(Patient)) == 0
            # the corrected file: preview, then import
            await page.set_input_files("#import-file", str(good))
            await page.click("#import-check")
            await expect(page.locator("#import-would")).to_contain_text("新增 3 条")
            await page.click("#import-go")
            await expect(page.locator("#import-done")).to_contain_text("已导入：共 3 行，新增 3 条")
            with db.session() as s:
                assert sorted(s.scalars(select(Patient.name))) == sorted(["王小明", "李娜", "张三"])
            assert not errors, errors
        finally:
            await browser.close()
