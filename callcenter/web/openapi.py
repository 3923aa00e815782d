"""OpenAPI 3 document generated from the route table (so it cannot drift from the code)."""
from __future__ import annotations

import re

import callcenter

_TYPES = {"string": {"type": "string"}, "boolean": {"type": "boolean"}, "integer": {"type": "integer"},
          "number": {"type": "number"}, "array": {"type": "array", "items": {"type": "string"}},
          "string(date)": {"type": "string", "format": "date"},
          "string(binary)": {"type": "string", "format": "binary"}}


def document(routes) -> dict:
    paths: dict[str, dict] = {}
    for r in routes:
        if r.kind == "static":
            continue
        op: dict = {"summary": r.summary, "operationId": f"{r.method.lower()}_{_op_name(r.path)}",
                    "tags": [r.kind]}
        params = []
        for name in re.findall(r"\{(\w+)\}", r.path):
            schema = {"type": "string"}
            if name in r.enums:
                schema["enum"] = list(r.enums[name])
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
        for name, typ, desc in r.query:
            params.append({"name": name, "in": "query", "required": False, "description": desc,
                           "schema": _TYPES.get(typ, {"type": "string"})})
        if params:
            op["parameters"] = params
        if r.body:
            props = {n: {**_TYPES.get(typ, {"type": "string"}), "description": d} for n, typ, d, _ in r.body}
            required = [n for n, _, _, req in r.body if req]
            schema = {"type": "object", "properties": props, "required": required}
            if any(typ == "string(binary)" for _, typ, _, _ in r.body):  # a file upload form
                content = {"multipart/form-data": {"schema": schema}}
            else:
                content = {"application/json": {"schema": schema},
                           "application/x-www-form-urlencoded": {"schema": schema}}
            op["requestBody"] = {"required": True, "content": content}
        if r.raw_body:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
                "type": "array", "items": {"type": "object"}}}}}
        responses: dict = {}
        if r.kind == "api":
            responses["200"] = {"description": "OK", "content": {
                "application/json": {"schema": r.response or {"type": "object"}}}}
        elif r.kind == "sse":
            responses["200"] = {"description": "event stream", "content": {"text/event-stream": {}}}
            responses["429"] = {"description": "this user has [web] max_streams_per_user streams open already "
                                               "(message in the user's language); see Retry-After"}
        elif r.kind == "stream":
            responses["200"] = {"description": "JSON, or the file", "content": {
                "application/json": {"schema": {"type": "object"}}, "audio/wav": {}}}
            if "{id}" in r.path:
                responses["404"] = {"description": "no such recording, or its file is missing"}
            else:  # the list: a browser (Accept: text/html) gets the search page
                responses["200"] = {"description": "the JSON list, or the search page for a browser", "content": {
                    "application/json": {"schema": {"type": "object"}}, "text/html": {}}}
            if r.path.endswith(("/audio", "/download")):
                responses["206"] = {"description": "the requested byte range (Range: bytes=)"}
                responses["416"] = {"description": "range not satisfiable"}
        elif r.method == "POST":
            responses["303"] = {"description": "done; redirect"}
        else:
            responses["200"] = {"description": "HTML page (or file)"}
        if r.roles is not None:
            op["security"] = [{"session": []}, {"bearer": []}] if r.kind == "api" else [{"session": []}]
            op["x-roles"] = sorted(r.roles)
            responses["401" if r.kind != "page" else "303"] = {"description": "not logged in"}
            responses["403"] = {"description": "wrong role, or missing/invalid CSRF token on POST"}
        if r.method == "POST" and r.csrf and r.roles is not None:
            op.setdefault("parameters", []).append(
                {"name": "X-CSRF-Token", "in": "header", "required": False,
                 "description": "the session's CSRF token (or form field csrf_token); from GET /api/me; "
                                "not needed with an API token",
                 "schema": {"type": "string"}})
        responses["400"] = {"description": "invalid input (the message names the field)"}
        if "{" in r.path:
            responses["404"] = {"description": "no such item (or a path value not known)"}
        if r.method == "POST":
            responses["413"] = {"description": "request body over the route's limit (by Content-Length)"}
        responses["503"] = {"description": "the database is not answering; retry after Retry-After seconds"
                                           + ("; or the service has [web] max_streams streams open"
                                              if r.kind == "sse" else "")}
        for code, desc in r.statuses.items():
            responses[str(code)] = {"description": desc}
        op["responses"] = dict(sorted(responses.items()))
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Patient hotline web API", "version": callcenter.__version__,
                 "description": "Wallboard, agent desk and reports. Log in with POST /login "
                                "(session cookie); POSTs need the CSRF token from GET /api/me. "
                                "Machine clients use an API token instead (`callcenter tokens add NAME "
                                "--role supervisor|admin`): `Authorization: Bearer <token>` on /api/ "
                                "routes, no CSRF token; every use is audited."},
        "paths": paths,
        "components": {"securitySchemes": {"session": {"type": "apiKey", "in": "cookie",
                                                       "name": "cc_session"},
                                           "bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _op_name(path: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "_", path).strip("_") or "root"
