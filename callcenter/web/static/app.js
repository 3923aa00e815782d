// Agent desk: server-sent events, no framework, no CDN (the wallboard: wallboard.js).
// DOM is only filled with textContent (never innerHTML): caller data cannot inject markup.
"use strict";
(function () {
  function $(id) { return document.getElementById(id); }
  function json(id) { var el = $(id); return el ? JSON.parse(el.textContent || "null") : null; }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  var msgs = {};

  // ---- agent desk -------------------------------------------------------------------
  // Own state + timer (status), the call's state (call: ringing / connected / ended; wrap-up
  // from the status's wrapup_ends), the pop.  Server times are the service clock's seconds;
  // "rate" is how fast that clock runs against the wall clock (a time-scaled simulator).
  var desk = { status: null, statusAt: 0, call: null, pop: null };
  function fillList(id, items, fmt) {
    var ul = $(id);
    if (!ul) return;
    clear(ul);
    if (!items || !items.length) { ul.appendChild(el("li", msgs["pop.none"] || "-", "muted")); return; }
    items.forEach(function (it) { ul.appendChild(el("li", fmt(it))); });
  }
  function day(s) { return s ? String(s).slice(0, 16).replace("T", " ") : ""; }
  function serverNow() {
    var st = desk.status;
    if (!st) return Date.now() / 1000;
    return st.now + (Date.now() - desk.statusAt) / 1000 * (st.rate || 1);
  }
  function clockText(seconds) {
    var s = Math.max(0, Math.floor(seconds)), h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(s % 60).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }
  function renderStatus(st) {
    if (!st) return;
    desk.status = st;
    desk.statusAt = Date.now();
    var me = $("me");
    if (me) me.className = "me state-" + st.state;
    $("me-state").textContent = msgs["state." + st.state] || st.state;
    $("me-state").dataset.state = st.state;
    $("me-reason").textContent = st.reason_label ? " · " + st.reason_label : "";
    var rows = {};
    (st.queues || []).forEach(function (q) { rows[q.queue] = q; });
    document.querySelectorAll("#membership form.queue").forEach(function (form) {
      var q = rows[form.dataset.queue], span = form.querySelector(".member");
      if (!q || !span) return;
      var text = label("queue.", q.queue) + ": " + (q.member ? msgs["agent.member"] : msgs["agent.not_member"]);
      if (q.paused) text += " · " + msgs["agent.paused"] + (q.reason_label ? " (" + q.reason_label + ")" : "");
      span.textContent = text;
    });
    var noAmi = $("no-ami");
    if (noAmi) noAmi.hidden = !!st.ami_connected;
    tickDesk();
  }
  function renderCall(c) {
    desk.call = c;
    var p = desk.pop;
    var ended = !!(c && p && c.uniqueid === p.uniqueid && c.state === "ended");
    if (p && c && c.uniqueid === p.uniqueid) {
      $("pop").classList.toggle("ended", ended);
      $("pop-ended").hidden = !ended;
    }
    tickDesk();
  }
  function callShown() {
    // what the call line says now: none | ringing | connected | ended | wrap_up | idle
    var c = desk.call, st = desk.status;
    if (!c) return { state: "none" };
    var now = serverNow();
    if (c.state === "ringing") return { state: "ringing", timer: clockText(now - c.at) };
    if (c.state === "connected") return { state: "connected", timer: clockText(now - (c.connected_at || c.at)) };
    if (c.state === "ended" && st && st.state === "wrap_up" && st.wrapup_ends) {
      var left = Math.ceil(st.wrapup_ends - now);
      if (left > 0) return { state: "wrap_up", timer: fmt("call.left", { s: left }) };
    }
    return { state: c.state };
  }
  function tickDesk() {
    var st = desk.status;
    if (st && $("me-timer")) $("me-timer").textContent = clockText(serverNow() - st.since);
    var shown = callShown();
    var label = shown.state === "none" ? msgs["call.none"] : msgs["call." + shown.state];
    $("call-state").textContent = label || shown.state;
    $("call-timer").textContent = shown.timer || "";
    $("call").className = "call call-" + shown.state;
    document.body.dataset.callState = shown.state;
  }
  function renderPop(p) {
    if (!p) return;
    desk.pop = p;
    var r = p.record || {};
    var outbound = p.direction === "outbound";
    $("pop").hidden = false;
    $("pop-record").hidden = false;
    $("waiting-call").hidden = true;
    $("pop-kind").textContent = msgs[outbound ? "pop.outbound" : "pop.inbound"] || "";
    $("pop-name").textContent = r.name || msgs["pop.unknown"] || "?";
    $("pop-number").textContent = r.number || "";
    $("pop-queue").textContent = p.queue ? label("queue.", p.queue) : "";
    fillList("pop-treatments", r.treatments, function (x) { return day(x.at) + " " + label("treatment.", x.type) + (x.doctor ? " · " + x.doctor : ""); });
    fillList("pop-appointments", r.appointments, function (x) {
      return day(x.at) + " " + (msgs["pop.dept." + x.department] || x.department || "") +
        (x.doctor ? " · " + x.doctor : "") + " · " + (msgs["pop.status." + x.status] || x.status) +
        (x.answer ? " · " + (msgs["pop.answer." + x.answer] || x.answer) + " (" +
          (msgs["pop.answer.via." + x.answered_via] || x.answered_via) + " " + day(x.answered_at) + ")" : "");
    });
    fillList("pop-complaints", r.complaints, function (x) { return x.number + " · " + label("cat.", x.category) + " · " + label("cp.state.", x.status) + (x.summary ? " · " + x.summary : ""); });
    fillList("pop-calls", r.calls, function (x) { return day(x.entered_at) + " " + label("queue.", x.queue) + " · " + label("rep.v.", x.outcome) + (x.agent_name ? " · " + x.agent_name : ""); });
    renderDialer(p.dialer);
    $("outcome-form").hidden = outbound;   // a dialer call has only the dialer's result form
    $("f-uniqueid").value = p.uniqueid || "";
    $("f-queue").value = p.queue || "";
    $("f-number").value = r.number || "";
    $("f-name").value = r.name || "";
    var c = desk.call;   // the newer of the pop's call and the last call event
    if (!c || (p.call && p.call.at > c.at)) c = p.call;
    renderCall(c);
    document.body.dataset.pops = String(parseInt(document.body.dataset.pops || "0", 10) + 1);
  }

  // a stored code in the user's language (i18n.label's messages, sent with the page)
  function label(prefix, code) { return msgs[prefix + code] || code; }
  function fmt(key, vals) {
    return String(msgs[key] || "").replace(/\{(\w+)\}/g, function (_, k) { return vals[k] == null ? "" : vals[k]; });
  }
  function why(d) {
    var w = d.why || {};
    if (w.treatment) return fmt("dial.why.revisit", { type: label("treatment.", w.treatment.type), at: day(w.treatment.at).slice(0, 10), step: label("step.", w.treatment.step) });
    if (w.appointment && d.kind === "reminder") return fmt("dial.why.reminder", { at: day(w.appointment.at),
      department: msgs["pop.dept." + w.appointment.department] || w.appointment.department,
      answer: msgs["pop.answer." + w.appointment.answer] || w.appointment.answer || "" });
    if (w.appointment) return fmt("dial.why.no_show", { at: day(w.appointment.at), department: w.appointment.department });
    if (w.complaint) return fmt("dial.why.complaint_followup", { number: w.complaint.number, summary: w.complaint.summary });
    if (d.kind === "callback") return fmt("dial.why.callback", { reason: w.reason });
    if (msgs["camp.kind." + w.reason]) return msgs["camp.kind." + w.reason];  // a contact with no details
    return fmt("dial.why.other", { reason: w.reason });
  }
  function renderDialer(d) {
    var box = $("pop-dialer");
    if (!box) return;
    box.hidden = !d;
    if (!d) return;
    $("dial-campaign").textContent = d.campaign || "";
    $("dial-why").textContent = why(d);
    $("d-attempt").value = d.attempt_id;
    var sel = $("d-outcome");
    clear(sel);
    (d.outcomes || []).forEach(function (o) {
      var opt = el("option", msgs["dial.outcome." + o] || o);
      opt.value = o;
      sel.appendChild(opt);
    });
    $("d-satisfied").hidden = !d.asks_satisfaction;
    $("d-dnc").checked = false;
  }

  // An error on an open stream: the browser reconnects by itself.  A refused one (CLOSED:
  // 429, this user's tabs at [web] max_streams_per_user; 503, the service full) is started
  // again here every 5 s, and the page says why: EventSource shows no body, so the same
  // address is asked once for the message (in the user's language).
  function listen(url, handlers) {
    var es = new EventSource(url), banner = $("stream-refused");
    Object.keys(handlers).forEach(function (ev) {
      es.addEventListener(ev, function (e) { handlers[ev](JSON.parse(e.data)); });
    });
    es.onopen = function () {
      document.body.dataset.connected = "1";
      if (banner) banner.hidden = true;
    };
    es.onerror = function () {
      document.body.dataset.connected = "0";
      if (es.readyState !== EventSource.CLOSED) return;
      es.close();
      var ctl = new AbortController();
      fetch(url, { signal: ctl.signal, headers: { Accept: "text/event-stream" } })
        .then(function (r) {
          if (r.status !== 429 && r.status !== 503) { ctl.abort(); return; }
          return r.json().then(function (j) {
            if (banner && j && j.error && document.body.dataset.connected !== "1") {
              banner.textContent = j.error;
              banner.hidden = false;
            }
          });
        })
        .catch(function () {});
      setTimeout(function () { listen(url, handlers); }, 5000);
    };
    return es;
  }

  document.addEventListener("DOMContentLoaded", function () {
    msgs = json("messages") || {};
    var page = document.body.dataset.page;
    if (page === "agent") {
      renderStatus(json("initial-status"));
      desk.call = json("initial-call");
      renderPop(json("initial-pop"));
      renderCall(desk.call);
      setInterval(tickDesk, 250);
      listen("/events/agent", { status: renderStatus, call: renderCall, pop: renderPop });
    }
  });
})();
