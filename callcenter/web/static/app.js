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
    fillList("pop-appointments", r.appointments, function (x) { return day(x.at) + " " + (x.department || "") + " · " + x.status; });
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
    if (page === "agent") {
      renderPop(json("initial-pop"));
      listen("/events/agent", { pop: renderPop, status: function () {}, complete: function () {} });
    }
  });
})();
