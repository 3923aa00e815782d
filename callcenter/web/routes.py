"""The one route table: path, method, who may open it, and what it does.

Authorisation is checked centrally from ``roles`` (``None`` = public), so the
tests walk this table to prove every route refuses anonymous users and the
wrong roles, and the OpenAPI document is generated from it.
"""
from __future__ import annotations

from dataclasses import replace

from callcenter.complaints.http import ROUTES as COMPLAINT_ROUTES

from . import (views, views_agent, views_appointments, views_campaigns, views_dialer, views_import,
               views_live, views_reports, views_tokens, views_users)
from .http import ADMINS, AGENTS, ANY, PUBLIC, SUPERVISORS, Route
from .views_reports import REPORTS

_PERIOD = (("from", "string(date)", "first local day (YYYY-MM-DD), default 6 days before `to`"),
           ("to", "string(date)", "last local day (YYYY-MM-DD), default today"),
           ("queue", "string", "only this queue (call reports, agents, outcomes)"),
           ("agent", "string", "only this agent's calls: the queue interface, e.g. PJSIP/1001"))
_PAGED = _PERIOD + (("page", "integer", "abandoned calls: page number, from 1"),
                    ("per_page", "integer", "abandoned calls per page (default 100, at most 1000)"))

_SUMMARY = {"type": "object", "properties": {
    "offered": {"type": "integer"}, "answered": {"type": "integer"}, "abandoned": {"type": "integer"},
    "service_level": {"type": ["number", "null"]}, "asa_seconds": {"type": ["number", "null"]}}}
_SERVER = (("server", "string", "queue-call reports of one Asterisk server ([[ami]] name); default: all"),)
_WALLBOARD = {"type": "object", "properties": {
    "at": {"type": "string"}, "live": {"type": "boolean"}, "target": {"type": "number"},
    "queues": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "waiting": {"type": "integer"}, "longest_wait": {"type": "number"},
        "over_target": {"type": "boolean"}, "service_level": {"type": ["number", "null"]},
        "abandoned": {"type": "integer"}, "asa_seconds": {"type": ["number", "null"]}}}},
    "agents": {"type": "array", "items": {"type": "object", "properties": {
        "interface": {"type": "string"}, "name": {"type": "string"},
        "state": {"type": "string", "enum": ["available", "ringing", "on_call", "wrap_up", "paused",
                                             "logged_out"]}, "reason": {"type": "string"}}}},
    "agent_counts": {"type": "object"}, "totals": _SUMMARY,
    "servers": {"type": "array", "description": "per Asterisk server ([[ami]] name): live figures",
                "items": {"type": "object", "properties": {
                    "server": {"type": "string"}, "waiting": {"type": "integer"},
                    "longest_wait": {"type": "number"}, "talking": {"type": "integer"},
                    "members": {"type": "integer"}}}},
    "complaints": {"type": "object", "description": "complaint tickets approaching/past a deadline",
                   "properties": {"overdue": {"type": "integer"}, "approaching": {"type": "integer"},
                                  "alerts": {"type": "array", "items": {"type": "object", "properties": {
                                      "ticket": {"type": "string"}, "deadline": {"type": "string"},
                                      "state": {"type": "string", "enum": ["approaching", "overdue"]},
                                      "due_at": {"type": "string"}}}}}}}}
_REPORT = {"type": "object", "properties": {
    "report": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
    "available": {"type": "boolean"}, "server": {"type": ["string", "null"]}, "columns": {"type": "array", "items": {"type": "string"}},
    "rows": {"type": "array", "items": {"type": "object"}}}}
_SINCE = (("since", "string(date-time)", "only answers given after this moment (ISO 8601 with offset)"),)
_APPT_ANSWER = {"type": "object", "properties": {k: {"type": "string"} for k in (
    "appointment_id", "patient_id", "scheduled_at", "department", "doctor", "status", "answer", "answered_at",
    "answered_via", "answered_for")}}
_QUEUE_BODY = (("action", "string", "login | logout | pause | unpause", True),
               ("queue", "string", "queue name (login/logout; optional for pause: all queues)", False),
               ("reason", "string", "pause reason: a code of [web] pause_reasons (default break | meal | "
                                    "training | paperwork)", False))
_OUTCOME_BODY = (("uniqueid", "string", "the call (Linkedid of the caller channel)", True),
                 ("outcome", "string", "consultation | appointment | query | complaint | suggestion | "
                                       "callback | other", True),
                 ("note", "string", "free text", False),
                 ("queue", "string", "queue of the call", False),
                 ("caller_number", "string", "caller's number", False),
                 ("caller_name", "string", "caller's name", False),
                 ("open_complaint", "boolean", "also open a complaint ticket", False),
                 ("category", "string", "medical | attitude | environment | fees | communication", False),
                 ("urgent", "boolean", "patient safety / medical quality", False),
                 ("severity", "string", "normal | complex (urgent: see `urgent`)", False),
                 ("department", "string", "department concerned", False))

_DIAL_OUTCOME_BODY = (
    ("attempt_id", "integer", "the dialer call (screen pop `dialer.attempt_id`)", True),
    ("outcome", "string", "completed | rebooked | declined (as the campaign kind allows; optional with "
                          "do_not_call, which then records opted_out)", False),
    ("satisfied", "boolean", "complaint follow-up completed: was the patient satisfied (required then)", False),
    ("do_not_call", "boolean", "the patient asks not to be called again (all campaigns)", False),
    ("note", "string", "free text", False))

_CAMP_BODY = (("name", "string", "unique, 1-64 characters (not only digits)", True),
              ("kind", "string", "revisit | no_show | complaint_followup", True),
              ("mode", "string", "progressive (default) | survey | predictive", False),
              ("queue", "string", "agent queue (default [dialer] default_queue)", False),
              ("types", "array", "revisit: only these treatment types (plan names; or comma-separated text)",
               False),
              ("max_attempts", "integer", "1-20 attempts per contact (default [dialer] max_attempts)", False),
              ("max_channels", "integer", "survey mode: calls in flight, 1-500", False),
              ("start", "boolean", "start dialling at once (default: created as draft)", False))
_CAMP_ACTIONS = ("start", "pause", "resume")
_CAMPAIGN = {"type": "object", "description": "the campaign and `callcenter campaign status` figures",
             "properties": {
                 "id": {"type": "integer"}, "campaign": {"type": "string"}, "kind": {"type": "string"},
                 "mode": {"type": "string"}, "state": {"type": "string", "enum": ["draft", "running", "paused"]},
                 "queue": {"type": "string"}, "contacts": {"type": "integer"}, "due": {"type": "integer"},
                 "pending": {"type": "integer"}, "in_call": {"type": "integer"}, "dialled": {"type": "integer"},
                 "reached": {"type": "integer"}, "completed": {"type": "integer"},
                 "rebooked": {"type": "integer"}, "declined": {"type": "integer"},
                 "opted_out": {"type": "integer"}, "unreachable": {"type": "integer"},
                 "expired": {"type": "integer"}, "attempts": {"type": "integer"},
                 "answered": {"type": "integer"}, "attempts_per_contact": {"type": "number"},
                 "abandon_rate": {"type": "number"}, "dispositions": {"type": "object"},
                 "survey_responses": {"type": "integer"}, "survey_score_avg": {"type": ["number", "null"]},
                 "survey_question_avg": {"type": "object"}}}
_CAMP_ERROR = "400: a field is invalid (named); 404: no such campaign; 409: "

_USER_BODY = (("role", "string", "agent | supervisor | admin", False),
              ("name", "string", "display name", False),
              ("interface", "string", "agent's phone (queue member interface), e.g. PJSIP/1001", False),
              ("language", "string", "zh | en", False))

_IMPORT_RESULT = {"type": "object", "properties": {
    "kind": {"type": "string"}, "rows": {"type": "integer"}, "applied": {"type": "boolean"},
    "inserted": {"type": "integer"}, "updated": {"type": "integer"}, "unchanged": {"type": "integer"},
    "contacts_created": {"type": "integer"}, "contacts_closed": {"type": "integer"},
    "errors": {"type": "array", "items": {"type": "object", "properties": {
        "line": {"type": "integer"}, "field": {"type": "string"}, "reason": {"type": "string"}}}}}}

ROUTES: list[Route] = [
    # public
    Route("GET", "/login", PUBLIC, views.login_form, "page", "Login form"),
    Route("POST", "/login", PUBLIC, views.login_post, "form", "Log in (rate limited)", csrf=False,
          max_body=16 * 1024,
          body=(("username", "string", "", True), ("password", "string", "", True),
                ("login_token", "string", "double-submit token from the form", True))),
    Route("GET", "/static/{name}", PUBLIC, views.static, "static", "Script and style sheet"),
    # any logged-in user
    Route("GET", "/", ANY, views.home, "page", "Home: redirects to the role's start page"),
    Route("POST", "/logout", ANY, views.logout, "form", "Log out (ends the session)"),
    Route("POST", "/language", ANY, views.set_language, "form", "Switch the interface language",
          body=(("lang", "string", "zh | en", True),)),
    Route("GET", "/api/me", ANY, views.me, "api", "The logged-in user and the CSRF token for API POSTs",
          response={"type": "object", "properties": {"username": {"type": "string"},
                                                      "role": {"type": "string"},
                                                      "csrf_token": {"type": "string"}}}),
    Route("GET", "/api/openapi.json", ANY, views.openapi, "api", "This API description (OpenAPI 3)",
          response={"type": "object"}),
    # supervisors
    Route("GET", "/wallboard", SUPERVISORS, views_live.wallboard_page, "page", "Live wallboard"),
    Route("GET", "/events/wallboard", SUPERVISORS, views_live.wallboard_events, "sse",
          "Wallboard updates (server-sent events `wallboard`, and `complaints` for deadline alerts)"),
    Route("GET", "/api/wallboard", SUPERVISORS, views_live.wallboard_api, "api",
          "Per queue: waiting calls, longest wait, today's service level, abandons, ASA; agents by state",
          query=(("server", "string", "one Asterisk server ([[ami]] name) instead of all"),),
          response=_WALLBOARD),
    Route("GET", "/reports", SUPERVISORS, views_reports.reports_page, "page", "Reports", query=_PAGED),
    Route("GET", "/reports/answer-times.svg", SUPERVISORS, views_reports.answer_chart, "page",
          "Answer-time distribution chart (SVG)", query=_PERIOD),
    Route("GET", "/reports/{name}.csv", SUPERVISORS, views_reports.report_csv, "page",
          "A report as CSV (the page's columns and headings, in the user's language)", query=_PERIOD + _SERVER,
          enums={"name": REPORTS}),
    Route("GET", "/reports/{name}.xlsx", SUPERVISORS, views_reports.report_xlsx, "page",
          "A report as an Excel workbook (the page's columns and headings; numbers as numbers, local times)",
          query=_PERIOD + _SERVER, enums={"name": REPORTS}),
    Route("GET", "/api/reports/{name}", SUPERVISORS, views_reports.report_api, "api", "A report as JSON",
          query=_PAGED + _SERVER, enums={"name": REPORTS}, response=_REPORT),
    Route("GET", "/api/patients", frozenset({"agent", "supervisor"}), views_live.patient_api, "api",
          "Patient record by phone number (audited)",
          query=(("number", "string", "caller's phone number"),), response={"type": "object"}),
    # agents
    Route("GET", "/agent", AGENTS, views_agent.agent_page, "page", "Agent desk"),
    Route("GET", "/events/agent", AGENTS, views_agent.agent_events, "sse",
          "This agent's desk (server-sent events `status`: own state, since, pause reason, "
          "wrap-up end; `call`: ringing / connected / ended / idle; `pop`: the caller's record)"),
    Route("GET", "/api/agent/status", AGENTS, views_agent.agent_status_api, "api",
          "This agent's own state (since when, pause reason code and label, wrap-up end), queue "
          "membership, the configured pause reasons", response={"type": "object"}),
    Route("POST", "/agent/queue", AGENTS, views_agent.queue_action_form, "form",
          "Log in/out of a queue, pause/resume (form)", body=_QUEUE_BODY),
    Route("POST", "/api/agent/queue", AGENTS, views_agent.queue_action_api, "api",
          "Log in/out of a queue, pause/resume (QueueAdd/QueueRemove/QueuePause)", body=_QUEUE_BODY,
          response={"type": "object", "properties": {"ok": {"type": "boolean"},
                                                      "message": {"type": "string"}}}),
    Route("POST", "/agent/outcome", AGENTS, views_agent.outcome_form, "form",
          "Record a call's outcome, optionally opening a complaint ticket (form)", body=_OUTCOME_BODY),
    Route("POST", "/api/agent/outcome", AGENTS, views_agent.outcome_api, "api",
          "Record a call's outcome, optionally opening a complaint ticket", body=_OUTCOME_BODY,
          response={"type": "object"}),
    Route("POST", "/agent/dialer-outcome", AGENTS, views_dialer.outcome_form, "form",
          "Record the result of an outbound dialer call (form)", body=_DIAL_OUTCOME_BODY),
    Route("POST", "/api/agent/dialer-outcome", AGENTS, views_dialer.outcome_api, "api",
          "Record the result of an outbound dialer call this agent took (DialerApi.record_outcome; "
          "do_not_call puts the number on the do-not-call list); 403 for another agent's call, "
          "409 once the contact is closed",
          body=_DIAL_OUTCOME_BODY, response={"type": "object", "properties": {
              "attempt_id": {"type": "integer"}, "contact_id": {"type": "integer"},
              "outcome": {"type": "string"}, "do_not_call": {"type": "boolean"}}}),
    *COMPLAINT_ROUTES,  # complaint tickets (callcenter/complaints/http.py)
    # outbound campaigns (dialer)
    Route("GET", "/campaigns", SUPERVISORS, views_campaigns.list_page, "page",
          "Outbound campaigns with their figures, and a form to create one"),
    Route("POST", "/campaigns", SUPERVISORS, views_campaigns.create_form, "form",
          "Create a campaign (form)", body=_CAMP_BODY),
    Route("GET", "/campaigns/{id}", SUPERVISORS, views_campaigns.detail_page, "page",
          "One campaign: status figures, results by disposition, survey averages"),
    Route("POST", "/campaigns/{id}/{action}", SUPERVISORS, views_campaigns.action_form, "form",
          "Start a draft, pause a running or resume a paused campaign (form)", enums={"action": _CAMP_ACTIONS}),
    Route("GET", "/api/campaigns", SUPERVISORS, views_campaigns.list_api, "api",
          "Campaigns with their status figures (as `callcenter campaign status`)",
          response={"type": "object", "properties": {
              "available": {"type": "boolean"}, "campaigns": {"type": "array", "items": _CAMPAIGN},
              "calling_window": {"type": "object", "description": "the dialer's window now (local time)",
                                 "properties": {"open": {"type": "boolean"}, "closes": {"type": "string"},
                                                "opens": {"type": "string"}, "opens_at": {"type": "number"}}}}}),
    Route("POST", "/api/campaigns", SUPERVISORS, views_campaigns.create_api, "api",
          "Create a campaign and its due contacts (201; " + _CAMP_ERROR + "name taken)", body=_CAMP_BODY,
          response=_CAMPAIGN),
    Route("GET", "/api/campaigns/{id}", SUPERVISORS, views_campaigns.detail_api, "api",
          "One campaign by id or name, with its status figures", response=_CAMPAIGN),
    Route("POST", "/api/campaigns/{id}/{action}", SUPERVISORS, views_campaigns.action_api, "api",
          "start (draft) | pause (running) | resume (paused) (" + _CAMP_ERROR + "not in that state)",
          enums={"action": _CAMP_ACTIONS}, response=_CAMPAIGN),
    # data in from the hospital's information system (usually with an API token)
    Route("POST", "/api/import/{kind}", SUPERVISORS, views_import.import_api, "api",
          "Import patients, treatments or appointments: body = JSON list of rows with the CSV columns "
          "(docs/dialer.md), or {\"rows\": [...]}. All or nothing: 201 applied (200: nothing changed); "
          "422 {error, errors: [{line, field, reason}]} (line = item number) and nothing written",
          enums={"kind": views_import.KINDS}, raw_body=True, response=_IMPORT_RESULT,
          max_body=views_import.MAX_BYTES),
    Route("GET", "/imports", SUPERVISORS, views_import.import_page, "page",
          "Import a CSV file of patients, treatments or appointments: upload, preview, confirm",
          query=(("kind", "string", "patients | treatments | appointments (the form's default)"),)),
    Route("POST", "/imports/preview", SUPERVISORS, views_import.preview_form, "form",
          "Upload a CSV file (multipart/form-data; UTF-8 or GBK/GB18030) and see its rows and every "
          "problem by line and field; nothing is written (422 when the file has problems)",
          body=(("kind", "string", "patients | treatments | appointments", True),
                ("file", "string(binary)", "the CSV file, with a header row", True)),
          max_body=views_import.MAX_UPLOAD,
          statuses={200: "the preview page, with the confirm button", 422: "the preview page with the problems"}),
    Route("POST", "/imports/confirm", SUPERVISORS, views_import.confirm_form, "form",
          "Import the previewed file in one transaction (audited); 409 when the preview expired",
          body=(("token", "string", "from the preview page", True),),
          statuses={200: "the result page", 409: "no such preview (expired, or used)",
                    422: "the data changed since the preview: its problems, nothing written"}),
    # appointments: the patients' answers (reminder calls, hotline) back to the booking system
    Route("GET", "/api/appointments/answers", SUPERVISORS, views_appointments.answers_api, "api",
          "Patients' answers to their appointments (confirm | cancel | reschedule | stop_reminders), "
          "from reminder calls and the hotline IVR, oldest answer first; `since` for the new ones (audited)",
          query=_SINCE, response={"type": "object", "properties": {
              "count": {"type": "integer"}, "answers": {"type": "array", "items": _APPT_ANSWER}}}),
    Route("GET", "/api/appointments/answers.csv", SUPERVISORS, views_appointments.answers_csv, "api",
          "The same answers as a CSV download (UTF-8 with BOM; audited)", query=_SINCE),
    Route("GET", "/api/appointments/cancelled-slots", SUPERVISORS, views_appointments.cancelled_slots_api, "api",
          "Appointment slots ahead that patients cancelled with us, for booking to re-use (audited)",
          response={"type": "object", "properties": {
              "count": {"type": "integer"}, "slots": {"type": "array", "items": _APPT_ANSWER}}}),
    Route("POST", "/api/notifications/{id}/patients", SUPERVISORS, views_appointments.notification_patients_api,
          "api", "Voice notification campaign (id or name): call these patients (JSON list of the hospital's "
          "patient ids). 201 contacts created (200: all listed before); 422 unknown patient ids or not a "
          "notification campaign, and nothing written", raw_body=True, response={"type": "object", "properties": {
              "created": {"type": "integer"}, "already": {"type": "integer"},
              "do_not_call": {"type": "integer"}, "unknown": {"type": "array", "items": {"type": "string"}}}}),
    # administrators
    Route("GET", "/api/tokens", ADMINS, views_tokens.list_api, "api",
          "API tokens (names, roles, last use; never the tokens)",
          response={"type": "object", "properties": {"tokens": {"type": "array", "items": {"type": "object"}}}}),
    Route("POST", "/api/tokens/{name}/revoke", ADMINS, views_tokens.revoke_api, "api",
          "Revoke an API token (it stops working at once; audited)", response={"type": "object"}),
    Route("GET", "/admin/users", ADMINS, views_users.page, "page",
          "Users: add, change role/phone/language, disable/enable, set a new password"),
    Route("POST", "/admin/users", ADMINS, views_users.add_form, "form", "Add a user (audited)",
          body=_USER_BODY + (("username", "string", "1-64 characters, no spaces", True),
                             ("password", "string", "at least 8 characters", True),
                             ("password2", "string", "the password again", True))),
    Route("POST", "/admin/users/{username}/{action}", ADMINS, views_users.action_form, "form",
          "edit (role, interface, language, name) | password (password, password2) | disable | enable "
          "(audited; an admin cannot disable or demote themselves, nor remove the last admin)",
          enums={"action": views_users.ACTIONS},
          body=_USER_BODY + (("password", "string", "password: the new password", False),
                             ("password2", "string", "password: the new password again", False))),
    Route("GET", "/api/users", ADMINS, views_users.api, "api", "User list",
          response={"type": "object", "properties": {"users": {"type": "array",
                                                                "items": {"type": "object"}}}}),
]

# Answers beyond each kind's usual ones (the OpenAPI document declares every status a
# route gives; tests/web/test_openapi_conformance.py checks it with schemathesis).
_REFUSED = {409: "the current state refuses it (the message says why)"}
_FORM = {400: "the form again, the field named", 404: "no such item", **_REFUSED}
STATUSES: dict[tuple[str, str], dict[int, str]] = {
    ("GET", "/login"): {303: "already logged in: to the start page (or a same-origin next=)"},
    ("POST", "/login"): {401: "wrong user name or password", 403: "stale login form (login CSRF token)",
                         429: "too many failures for this user/client: slowed down, see Retry-After"},
    ("POST", "/api/agent/queue"): {502: "Asterisk refused or did not answer the action (ok: false)"},
    ("POST", "/agent/outcome"): {404: "no such call taken by this agent", 409: "the call has another outcome"},
    ("POST", "/api/agent/outcome"): {201: "recorded", 200: "already recorded, the same: the stored result",
                                     404: "no such call taken by this agent (not on their screen, not "
                                          "answered by their interface)",
                                     409: "the call already has a different outcome (named)"},
    ("POST", "/agent/dialer-outcome"): {404: "no such dial attempt"},
    ("POST", "/api/agent/dialer-outcome"): {201: "recorded", 404: "no such dial attempt"},
    ("POST", "/complaints"): {**_FORM, 201: "opened"},
    ("POST", "/complaints/{id}/transition"): _FORM, ("POST", "/complaints/{id}/edit"): _FORM,
    ("POST", "/api/complaints"): {201: "opened; Location names the ticket", **_REFUSED},
    ("POST", "/api/complaints/{id}/transition"): _REFUSED, ("POST", "/api/complaints/{id}/edit"): _REFUSED,
    ("POST", "/admin/users"): _FORM, ("POST", "/admin/users/{username}/{action}"): _FORM,
    ("POST", "/campaigns"): _FORM, ("POST", "/campaigns/{id}/{action}"): _FORM,
    ("POST", "/api/campaigns"): {201: "created", **_REFUSED}, ("POST", "/api/campaigns/{id}/{action}"): _REFUSED,
    ("GET", "/api/patients"): {429: "too many look-ups by this user (30 per 10 minutes); see Retry-After"},
    ("POST", "/api/import/{kind}"): {201: "applied", 422: "bad rows: every {line, field, reason}; nothing written"},
    ("POST", "/api/notifications/{id}/patients"): {201: "contacts created", 404: "no such campaign",
                                                   422: "unknown patient ids, or not a notification campaign; "
                                                        "nothing written"},
}
ROUTES = [replace(r, statuses={**STATUSES.get((r.method, r.path), {}), **r.statuses}) for r in ROUTES]
