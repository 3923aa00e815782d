"""Handlers: API tokens for administrators (list, revoke); created with ``callcenter tokens add``."""
from __future__ import annotations

from . import tokens
from .http import Req, Response, as_json


async def list_api(app, req: Req) -> Response:
    return as_json({"tokens": await app.db.run(tokens.listing)})


async def revoke_api(app, req: Req) -> Response:
    name = req.params["name"]
    try:
        await app.db.run(tokens.revoke, name, actor=req.user.username, now=app.clock.seconds())
    except tokens.TokenError:
        return app.error(req, 404, "error.notfound")
    return as_json({"name": name, "revoked": True})
