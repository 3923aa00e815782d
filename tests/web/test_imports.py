"""CSV imports in the browser: upload -> preview (rows, every problem by line and column,
nothing written) -> confirm (one transaction, audited).  Real HTTP over TCP; files in
UTF-8 and in GBK, Excel's default "CSV" on Chinese Windows."""
from __future__ import annotations

import datetime as dt
import html
import re

from sqlalchemy import func, select
from twisted.internet.task import Clock

from callcenter.store.models import AuditEntry, User
from dialer.models import Patient, Treatment

from tests.support.web import Client, add_users, running_web

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)  # 11:00 in Shanghai
PATIENTS = "patient_id,name,phone,language\r\nP1,王小明,138 0013 8001,zh\r\nP2,李娜,13900139002,\r\nP3,张三,13700137003,zh\r\n"
BAD = ("patient_id,name,phone\r\nP1,王小明,13800138001\r\nP2,,13900139002\r\nP1,张三,13700137003\r\n"
       "P4,赵六,不是号码\r\n")


def clock() -> Clock:
    c = Clock()
    c.advance(NOW.timestamp())
    return c


def set_language(db, username, lang):
    with db.session() as s:
        s.scalar(select(User).where(User.username == username)).language = lang


def count(db, model):
    return db.call(lambda s: s.scalar(select(func.count()).select_from(model)))


def text_of(page: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*>(.*?)</(p|table|section)>', page, re.S)
    assert m, f"#{element_id} not on the page"
    return html.unescape(re.sub(r"<[^>]+>", " ", m.group(1)))


async def preview(c, kind, name, data):
    return await c.post_file("/imports/preview", {"csrf_token": await c.csrf(), "kind": kind}, "file", name, data)


async def test_gbk_file_previewed_with_its_problems_then_imported_after_confirmation(config, db):
    add_users(db)
    set_language(db, "sup1", "zh")
    async with running_web(config, db, clock=clock()) as web:
        c = Client(web.port)
        await c.login("sup1")
        page = await c.get("/imports")
        assert page.status == 200 and "导入 CSV 文件" in page.text
        # the upload form needs the session's CSRF token too
        r = await c.post_file("/imports/preview", {"kind": "patients"}, "file", "p.csv", PATIENTS.encode())
        assert r.status == 403
        # a GBK file with bad rows: every problem named by line and column, in Chinese, nothing written
        r = await preview(c, "patients", "患者.csv", BAD.encode("gbk"))
        assert r.status == 422, r.text
        problems = re.findall(r'<tr data-line="(\d+)" data-field="([^"]+)">', r.text)
        assert problems == [("3", "name"), ("4", "patient_id"), ("5", "phone")]
        table = text_of(r.text, "import-problems")
        assert "缺少内容" in table and "“P1”重复（首次出现在第 2 行）" in table and "“不是号码”不是可拨打的电话号码" in table
        assert "GBK" in text_of(r.text, "import-summary") and "王小明" in r.text   # read as Chinese, not mojibake
        assert 'id="import-go"' not in r.text                                       # nothing to confirm
        assert count(db, Patient) == 0
        # the clean file: what would happen, then the confirmation imports it
        r = await preview(c, "patients", "患者.csv", PATIENTS.encode("gbk"))
        assert r.status == 200, r.text
        assert "新增 3 条，更新 0 条" in text_of(r.text, "import-would")
        assert count(db, Patient) == 0                                              # a preview writes nothing
        token = re.search(r'name="token" value="([^"]+)"', r.text).group(1)
        # the confirmation needs the session's CSRF token
        assert (await c.post("/imports/confirm", {"token": token})).status == 403
        done = await c.post("/imports/confirm", {"token": token, "csrf_token": await c.csrf()})
        assert done.status == 200, done.text
        assert "已导入：共 3 行，新增 3 条" in text_of(done.text, "import-done")
        names = db.call(lambda s: dict(s.execute(select(Patient.external_id, Patient.name)).all()))
        assert names == {"P1": "王小明", "P2": "李娜", "P3": "张三"}
        # the token is used once
        again = await c.post("/imports/confirm", {"token": token, "csrf_token": await c.csrf()})
        assert again.status == 409 and "已过期或已导入" in again.text
        # treatments in UTF-8 with a BOM: unknown patient and type named; a good file applies
        t_bad = "\ufefftreatment_id,patient_id,type,treated_at\nT1,P9,root_canal,2026-11-20\nT2,P1,brain,2026-11-20\n"
        r = await preview(c, "treatments", "t.csv", t_bad.encode("utf-8"))
        assert re.findall(r'<tr data-line="(\d+)" data-field="([^"]+)">', r.text) == [("2", "patient_id"),
                                                                                    ("3", "type")]
        assert "未知患者 P9" in r.text and "按 UTF-8 读取" in r.text
        r = await preview(c, "treatments", "t.csv", t_bad.replace("P9", "P2").replace("brain", "implant").encode())
        token = re.search(r'name="token" value="([^"]+)"', r.text).group(1)
        assert (await c.post("/imports/confirm", {"token": token, "csrf_token": await c.csrf()})).status == 200
        assert count(db, Treatment) == 2
    with db.session() as s:
        audits = [(a.actor, a.action, a.object_type) for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))
                  if a.action.startswith("import")]
    assert ("sup1", "import", "patients") in audits and ("sup1", "import", "treatments") in audits
    assert audits.count(("sup1", "import_preview", "patients")) == 2


async def test_unknown_encoding_says_how_to_save_as_utf8(config, db):
    add_users(db)
    async with running_web(config, db, clock=clock()) as web:
        c = Client(web.port)
        await c.login("sup1")
        latin1 = "patient_id,name,phone\nP1,Müller,13800138001\nP2,José,13800138002\n".encode("latin-1")
        r = await preview(c, "patients", "export.csv", latin1)
        assert r.status == 422
        msg = text_of(r.text, "import-error")
        assert "cannot be told" in msg and "CSV UTF-8 (Comma delimited)" in msg
        set_language(db, "sup1", "zh")
        r = await preview(c, "patients", "export.csv", latin1)
        assert "无法识别 export.csv 的文字编码" in text_of(r.text, "import-error")
        r = await preview(c, "patients", "u16.csv", "patient_id,name,phone\n".encode("utf-16"))
        assert "UTF-16" in text_of(r.text, "import-error")
        # no file, or only a header
        r = await c.post_file("/imports/preview", {"csrf_token": await c.csrf(), "kind": "patients"}, "file",
                              "e.csv", b"")
        assert r.status == 400 and "请选择" in r.text
        assert (await preview(c, "patients", "h.csv", b"patient_id,name,phone\n")).status == 422
    assert count(db, Patient) == 0


async def test_agents_cannot_import_and_another_users_preview_is_not_theirs(config, db):
    add_users(db, {**__import__("tests.support.web", fromlist=["USERS"]).USERS, "sup2": ("supervisor", "")})
    async with running_web(config, db, clock=clock()) as web:
        agent = Client(web.port)
        await agent.login("agent1")
        assert (await agent.get("/imports")).status == 403
        r = await preview(agent, "patients", "p.csv", PATIENTS.encode())
        assert r.status == 403
        a, b = Client(web.port), Client(web.port)
        await a.login("sup1")
        await b.login("sup2")
        r = await preview(a, "patients", "p.csv", PATIENTS.encode())
        token = re.search(r'name="token" value="([^"]+)"', r.text).group(1)
        assert (await b.post("/imports/confirm", {"token": token, "csrf_token": await b.csrf()})).status == 409
        assert count(db, Patient) == 0
        assert (await a.post("/imports/confirm", {"token": token, "csrf_token": await a.csrf()})).status == 200
        assert count(db, Patient) == 3


def test_held_files_expire_and_each_user_holds_a_few():
    from callcenter.web.import_uploads import PER_USER, TTL, ImportUploads

    c = Clock()
    held = ImportUploads(c)
    tokens = [held.put("sup1", "patients", f"{i}.csv", "x", "utf-8") for i in range(PER_USER + 1)]
    other = held.put("sup2", "patients", "o.csv", "x", "utf-8")
    assert held.take("sup1", tokens[0]) is None                      # the oldest made room
    assert held.take("sup1", tokens[-1]).filename == f"{PER_USER}.csv"
    assert held.take("sup1", tokens[-1]) is None                     # once only
    c.advance(TTL + 1)
    assert held.take("sup1", tokens[1]) is None and held.take("sup2", other) is None
