// Wallboard and agent desk: server-sent events, no framework, no CDN.
// DOM is only filled with textContent (never innerHTML): caller data cannot inject markup.
"use strict";
(function () {
  function $(id) { return document.getElementById(id); }
  function json(id) { var el = $(id); return el ? JSON.parse(el.textContent || "null") : null; }
  function pct(v) { return v === null || v === undefined ? "—" : Math.round(v * 100) + "%"; }
  function secs(v) { return v === null || v === undefined ? "—" : Math.round(v) + " s"; }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  var msgs = {};

  // ---- wallboard -------------------------------------------------------------------
  var receivedAt = 0;
  function tickWaits() {
    // waits keep counting between server pushes
    var target = parseFloat(($("wb-queues") || {dataset: {}}).dataset.target || "30");
    var dt = (Date.now() - receivedAt) / 1000;
    document.querySelectorAll(".wait[data-wait]").forEach(function (node) {
      var base = parseFloat(node.dataset.wait);
      var w = base > 0 ? base + dt : 0;
      node.textContent = Math.round(w) + " s";
      node.classList.toggle("over", w > target);
    });
  }
  function renderWallboard(b) {
    receivedAt = Date.now();
    $("wb-at").textContent = b.at;
    $("wb-unavailable").hidden = !!b.live;
    $("total-waiting").textContent = b.totals.waiting;
    $("total-longest").dataset.wait = b.totals.longest_wait;
    $("total-sl").textContent = pct(b.totals.service_level);
    $("total-abandoned").textContent = b.totals.abandoned;
    $("total-asa").textContent = secs(b.totals.asa_seconds);
    var body = $("wb-queues").tBodies[0];
    clear(body);
    b.queues.forEach(function (q) {
      var tr = el("tr");
      tr.dataset.queue = q.name;
      tr.appendChild(el("td", q.name));
      tr.appendChild(el("td", String(q.waiting), "waiting"));
      var w = el("td", Math.round(q.longest_wait) + " s", "longest wait" + (q.over_target ? " over" : ""));
      w.dataset.wait = q.longest_wait;
      tr.appendChild(w);
      tr.appendChild(el("td", pct(q.service_level), "sl"));
      tr.appendChild(el("td", String(q.offered), "offered"));
      tr.appendChild(el("td", String(q.answered), "answered"));
      tr.appendChild(el("td", String(q.abandoned), "abandoned"));
      tr.appendChild(el("td", secs(q.asa_seconds), "asa"));
      body.appendChild(tr);
    });
    var ob = $("wb-outbound") && $("wb-outbound").tBodies[0];
    if (ob) {
      clear(ob);
      (b.outbound || []).forEach(function (o) {
        var tr = el("tr");
        tr.dataset.campaign = o.campaign;
        tr.appendChild(el("td", o.campaign));
        tr.appendChild(el("td", o.queue));
        tr.appendChild(el("td", String(o.answered), "answered"));
        tr.appendChild(el("td", String(o.connected), "connected"));
        tr.appendChild(el("td", secs(o.connect_p90), "connect"));
        tr.appendChild(el("td", String(o.abandoned), "abandoned"));
        tr.appendChild(el("td", pct(o.abandon_rate_window), "rate"));
        ob.appendChild(tr);
      });
    }
    document.querySelectorAll("#wb-counts b[data-state]").forEach(function (node) {
      node.textContent = b.agent_counts[node.dataset.state] || 0;
    });
    var agents = $("wb-agents").tBodies[0];
    clear(agents);
    b.agents.forEach(function (a) {
      var tr = el("tr", undefined, "state-" + a.state);
      tr.appendChild(el("td", a.name));
      tr.appendChild(el("td", (msgs["state." + a.state] || a.state) + (a.reason ? " (" + a.reason + ")" : "")));
      tr.appendChild(el("td", a.queues.join(", ")));
      agents.appendChild(tr);
    });
    tickWaits();
    document.body.dataset.updates = String(parseInt(document.body.dataset.updates || "0", 10) + 1);
  }

  function renderComplaints(c) {
    var body = $("wb-complaints") && $("wb-complaints").tBodies[0];
    if (!body) return;
    clear(body);
    (c.alerts || []).forEach(function (a) {
      var tr = el("tr", undefined, "alert-" + a.state);
      tr.dataset.ticket = a.ticket;
      tr.dataset.state = a.state;
      var td = el("td");
      var link = el("a", a.ticket);
      link.href = "/complaints/" + encodeURIComponent(a.ticket_id);
      td.appendChild(link);
      tr.appendChild(td);
      tr.appendChild(el("td", msgs["cp.dl." + a.deadline] || a.deadline));
      tr.appendChild(el("td", msgs["wb.alert." + a.state] || a.state));
      tr.appendChild(el("td", a.due_local));
      tr.appendChild(el("td", a.severity ? (msgs["cp.sev." + a.severity] || a.severity) : ""));
      tr.appendChild(el("td", a.category ? (msgs["cat." + a.category] || a.category) : "—"));
      tr.appendChild(el("td", a.department || ""));
      body.appendChild(tr);
    });
    $("wb-complaints-none").hidden = (c.alerts || []).length > 0;
    $("wb-complaints-overdue").textContent = c.overdue || 0;
    $("wb-complaints-approaching").textContent = c.approaching || 0;
    document.body.dataset.alerts = String((c.alerts || []).length);
  }

  // ---- agent desk -------------------------------------------------------------------
  function fillList(id, items, fmt) {
    var ul = $(id);
    if (!ul) return;
    clear(ul);
    if (!items || !items.length) { ul.appendChild(el("li", msgs["pop.none"] || "-", "muted")); return; }
    items.forEach(function (it) { ul.appendChild(el("li", fmt(it))); });
  }
  function day(s) { return s ? String(s).slice(0, 16).replace("T", " ") : ""; }
  function renderPop(p) {
    if (!p) return;
    var r = p.record || {};
    $("pop").hidden = false;
    $("waiting-call").hidden = true;
    $("pop-name").textContent = r.name || msgs["pop.unknown"] || "?";
    $("pop-number").textContent = r.number || "";
    $("pop-queue").textContent = p.queue || "";
    fillList("pop-treatments", r.treatments, function (x) { return day(x.at) + " " + x.type + (x.doctor ? " · " + x.doctor : ""); });
    fillList("pop-appointments", r.appointments, function (x) {
      return day(x.at) + " " + (msgs["pop.dept." + x.department] || x.department || "") +
        (x.doctor ? " · " + x.doctor : "") + " · " + (msgs["pop.status." + x.status] || x.status) +
        (x.answer ? " · " + (msgs["pop.answer." + x.answer] || x.answer) + " (" +
          (msgs["pop.answer.via." + x.answered_via] || x.answered_via) + " " + day(x.answered_at) + ")" : "");
    });
    fillList("pop-complaints", r.complaints, function (x) { return x.number + " · " + x.category + " · " + x.status + (x.summary ? " · " + x.summary : ""); });
    fillList("pop-calls", r.calls, function (x) { return day(x.entered_at) + " " + x.queue + " · " + x.outcome + (x.agent_name ? " · " + x.agent_name : ""); });
    renderDialer(p.dialer);
    $("f-uniqueid").value = p.uniqueid || "";
    $("f-queue").value = p.queue || "";
    $("f-number").value = r.number || "";
    $("f-name").value = r.name || "";
    document.body.dataset.pops = String(parseInt(document.body.dataset.pops || "0", 10) + 1);
  }

  function fmt(key, vals) {
    return String(msgs[key] || "").replace(/\{(\w+)\}/g, function (_, k) { return vals[k] == null ? "" : vals[k]; });
  }
  function why(d) {
    var w = d.why || {};
    if (w.treatment) return fmt("dial.why.revisit", { type: w.treatment.type, at: day(w.treatment.at).slice(0, 10), step: w.treatment.step });
    if (w.appointment && d.kind === "reminder") return fmt("dial.why.reminder", { at: day(w.appointment.at),
      department: msgs["pop.dept." + w.appointment.department] || w.appointment.department,
      answer: msgs["pop.answer." + w.appointment.answer] || w.appointment.answer || "" });
    if (w.appointment) return fmt("dial.why.no_show", { at: day(w.appointment.at), department: w.appointment.department });
    if (w.complaint) return fmt("dial.why.complaint_followup", { number: w.complaint.number, summary: w.complaint.summary });
    if (d.kind === "callback") return fmt("dial.why.callback", { reason: w.reason });
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

  function listen(url, handlers) {
    var es = new EventSource(url);
    Object.keys(handlers).forEach(function (ev) {
      es.addEventListener(ev, function (e) { handlers[ev](JSON.parse(e.data)); });
    });
    es.onopen = function () { document.body.dataset.connected = "1"; };
    es.onerror = function () { document.body.dataset.connected = "0"; };
    return es;
  }

  document.addEventListener("DOMContentLoaded", function () {
    msgs = json("messages") || {};
    var page = document.body.dataset.page;
    if (page === "wallboard") {
      receivedAt = Date.now();
      setInterval(tickWaits, 1000);
      listen("/events/wallboard", { wallboard: renderWallboard, complaints: renderComplaints });
    } else if (page === "agent") {
      renderPop(json("initial-pop"));
      listen("/events/agent", { pop: renderPop, status: function () {}, complete: function () {} });
    }
  });
})();
