// The wallboard: live figures over server-sent events, timers between pushes, SVG charts.
// No framework, no CDN. The DOM is only filled with textContent (never innerHTML): caller
// data cannot inject markup. Colours (bands) are decided by the server, never here.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var QUIET = 45000;  // ms without any event (pushes, 15 s pings) before the link counts as lost
  var msgs = {}, board = null, receivedAt = 0, lastHeard = null, clockFmt = null;
  var es = null, watchdog = null, retry = null;

  function $(id) { return document.getElementById(id); }
  function json(id) { var e = $(id); return e ? JSON.parse(e.textContent || "null") : null; }
  function pct(v, digits) { return v === null || v === undefined ? "—" : (v * 100).toFixed(digits || 0) + "%"; }
  function secs(v) { return v === null || v === undefined ? "—" : Math.round(v) + " s"; }
  function fmt(key, vals) {
    return String(msgs[key] || key).replace(/\{(\w+)\}/g, function (_, k) { return vals[k] == null ? "" : vals[k]; });
  }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function td(text, cls, label) {
    var e = el("td", text, cls);
    if (label) e.dataset.label = msgs[label] || "";
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function band(node, b) {
    ["band-good", "band-warn", "band-bad"].forEach(function (c) { node.classList.remove(c); });
    if (b) node.classList.add("band-" + b);
  }

  // ---- time: the server's clock (hospital timezone), advanced at its rate between pushes ----
  function serverNow() {
    if (!board) return Date.now() / 1000;
    return board.now + (performance.now() - receivedAt) / 1000 * (board.rate || 1);
  }
  function hms(t) {
    if (!clockFmt) {
      clockFmt = new Intl.DateTimeFormat("en-GB", { timeZone: board.timezone, hour: "2-digit", minute: "2-digit",
                                                    second: "2-digit", hour12: false });
    }
    return clockFmt.format(new Date(t * 1000));
  }
  function duration(s) {
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }
  function tick() {
    if (!board) return;
    var now = serverNow(), elapsed = now - board.now;
    $("wb-clock").textContent = hms(now);
    document.querySelectorAll(".timer[data-since]").forEach(function (node) {
      node.textContent = duration(now - parseFloat(node.dataset.since));
    });
    document.querySelectorAll(".wait[data-wait]").forEach(function (node) {
      var base = parseFloat(node.dataset.wait);
      var w = base > 0 ? base + elapsed : 0;
      node.textContent = Math.round(w) + " s";
      node.classList.toggle("over", w > board.target);
    });
  }

  // ---- rendering -----------------------------------------------------------------------------
  function render(b) {
    board = b;
    receivedAt = performance.now();
    lastHeard = b.now;
    $("wb-at").textContent = b.clock;
    $("wb-unavailable").hidden = !!b.live;
    var t = b.totals;
    $("total-waiting").textContent = t.waiting;
    $("total-longest").dataset.wait = t.longest_wait;
    $("total-sl").textContent = pct(t.service_level);
    band($("tile-sl"), t.sl_band);
    $("total-abandon-rate").textContent = pct(t.abandon_rate, 1);
    band($("tile-abandon"), t.abandon_band);
    $("total-answered").textContent = t.answered;
    $("total-offered").textContent = t.offered;
    $("total-abandoned").textContent = t.abandoned;
    $("total-asa").textContent = secs(t.asa_seconds);
    renderQueues(b);
    renderServers(b);
    renderCallers(b);
    renderAgents(b);
    renderOutbound(b);
    renderCharts(b);
    tick();
    document.body.dataset.updates = String(parseInt(document.body.dataset.updates || "0", 10) + 1);
  }

  function renderQueues(b) {
    var body = $("wb-queues").tBodies[0];
    clear(body);
    b.queues.forEach(function (q) {
      var tr = el("tr");
      tr.dataset.queue = q.name;
      tr.appendChild(td(queueLabel(q.name), "name"));
      tr.appendChild(td(String(q.waiting), "waiting", "wb.waiting"));
      var w = td(Math.round(q.longest_wait) + " s", "longest wait" + (q.over_target ? " over" : ""), "wb.longest");
      w.dataset.wait = q.longest_wait;
      tr.appendChild(w);
      tr.appendChild(td(pct(q.service_level), "sl" + (q.sl_band ? " band-" + q.sl_band : ""), "wb.sl"));
      tr.appendChild(td(pct(q.abandon_rate, 1), "abandon-rate" + (q.abandon_band ? " band-" + q.abandon_band : ""),
                        "wb.abandon_rate"));
      tr.appendChild(td(String(q.offered), "offered", "wb.offered"));
      tr.appendChild(td(String(q.answered), "answered", "wb.answered"));
      tr.appendChild(td(String(q.abandoned), "abandoned", "wb.abandoned"));
      tr.appendChild(td(secs(q.asa_seconds), "asa", "wb.asa"));
      tr.appendChild(td(pct(q.satisfaction_rate) + " (" + (q.rated || 0) + ")", "satisfaction", "wb.satisfaction"));
      tr.appendChild(td((q.agents.available || 0) + " " + msgs["wb.available_short"] + " · " +
                        (q.agents.on_call || 0) + " " + msgs["wb.on_call_short"], "q-agents", "wb.agents"));
      body.appendChild(tr);
    });
  }

  function renderServers(b) {  // several Asterisk servers ([[ami]]): each one's live figures
    var servers = b.servers || [];
    $("wb-servers-panel").hidden = servers.length < 2;
    var body = $("wb-servers").tBodies[0];
    clear(body);
    servers.forEach(function (r) {
      var tr = el("tr");
      tr.dataset.server = r.server;
      tr.appendChild(td(r.server, "name"));
      tr.appendChild(td(String(r.waiting), "waiting"));
      var w = td(Math.round(r.longest_wait) + " s", "longest wait");
      w.dataset.wait = r.longest_wait;
      tr.appendChild(w);
      tr.appendChild(td(String(r.talking), "talking"));
      tr.appendChild(td(String(r.members), "members"));
      body.appendChild(tr);
    });
  }

  function renderCallers(b) {
    var body = $("wb-callers").tBodies[0];
    clear(body);
    b.callers.forEach(function (c) {
      var tr = el("tr", null, c.urgent ? "urgent" : "");
      tr.dataset.queue = c.queue;
      tr.appendChild(td(queueLabel(c.queue)));
      tr.appendChild(td(String(c.position), "position"));
      tr.appendChild(td(c.caller, "caller"));
      var w = td(Math.round(c.wait) + " s", "wait");
      w.dataset.wait = c.wait;
      tr.appendChild(w);
      var flag = td("", "flag");
      if (c.urgent) flag.appendChild(el("span", msgs["wb.urgent"], "urgent-flag"));
      tr.appendChild(flag);
      body.appendChild(tr);
    });
    $("wb-callers-none").hidden = b.callers.length > 0;
  }

  function queueLabel(q) { return msgs["queue." + q] || q; }  // the sample queues' names (i18n.label)

  function reasonLabel(r) {  // labels of [web] pause_reasons; the dialer's hold is "dialer:<attempt>"
    return msgs["agent.reason." + (r.indexOf("dialer:") === 0 ? "dialer" : r)] || r;
  }

  function renderAgents(b) {
    document.querySelectorAll("#wb-counts b[data-state]").forEach(function (node) {
      node.textContent = b.agent_counts[node.dataset.state] || 0;
    });
    var body = $("wb-agents").tBodies[0];
    clear(body);
    b.agents.forEach(function (a) {
      var tr = el("tr", null, "state-" + a.state);
      tr.dataset.agent = a.username || a.interface;
      tr.appendChild(td(a.name, "a-name"));
      tr.appendChild(td((msgs["state." + a.state] || a.state) + (a.reason ? " · " + reasonLabel(a.reason) : ""), "a-state"));
      var timer = td("", "a-timer timer");
      timer.dataset.since = a.since;
      tr.appendChild(timer);
      var call = a.call;
      var caller = td(call ? call.caller : "", "a-caller");
      if (call && call.outbound) caller.appendChild(el("span", " (" + msgs["wb.outbound_call"] + ")", "ob-tag"));
      tr.appendChild(caller);
      var talk = td("", "a-talk timer");
      if (call) talk.dataset.since = call.since;
      tr.appendChild(talk);
      tr.appendChild(td(String(a.answered_today), "a-today"));
      tr.appendChild(td(a.queues.map(queueLabel).join(", "), "a-queues"));
      body.appendChild(tr);
    });
  }

  function renderOutbound(b) {
    var ob = $("wb-outbound").tBodies[0];
    clear(ob);
    (b.outbound || []).forEach(function (o) {
      var tr = el("tr");
      tr.dataset.campaign = o.campaign;
      tr.appendChild(td(o.campaign));
      tr.appendChild(td(o.queue));
      tr.appendChild(td(String(o.answered), "answered"));
      tr.appendChild(td(String(o.connected), "connected"));
      tr.appendChild(td(secs(o.connect_p90), "connect"));
      tr.appendChild(td(String(o.abandoned), "abandoned"));
      tr.appendChild(td(pct(o.abandon_rate_window), "rate"));
      ob.appendChild(tr);
    });
  }

  function renderComplaints(c) {
    var body = $("wb-complaints").tBodies[0];
    clear(body);
    (c.alerts || []).forEach(function (a) {
      var tr = el("tr", null, "alert-" + a.state);
      tr.dataset.ticket = a.ticket;
      tr.dataset.state = a.state;
      var cell = el("td");
      var link = el("a", a.ticket);
      link.href = "/complaints/" + encodeURIComponent(a.ticket_id);
      cell.appendChild(link);
      tr.appendChild(cell);
      tr.appendChild(td(msgs["cp.dl." + a.deadline] || a.deadline));
      tr.appendChild(td(msgs["wb.alert." + a.state] || a.state));
      tr.appendChild(td(a.due_local));
      tr.appendChild(td(a.severity ? (msgs["cp.sev." + a.severity] || a.severity) : ""));
      tr.appendChild(td(a.category ? (msgs["cat." + a.category] || a.category) : "—"));
      tr.appendChild(td(a.department || ""));
      body.appendChild(tr);
    });
    $("wb-complaints-none").hidden = (c.alerts || []).length > 0;
    $("wb-complaints-overdue").textContent = c.overdue || 0;
    $("wb-complaints-approaching").textContent = c.approaching || 0;
    document.body.dataset.alerts = String((c.alerts || []).length);
  }

  // ---- charts: inline SVG, one bar group / point per half hour -------------------------------
  var W = 640, H = 220, L = 48, R = 8, T = 26, B = 22;
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function frame(box, series) {
    clear(box);
    var s = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "wb-svg" });
    box.appendChild(s);
    var step = (W - L - R) / Math.max(1, series.length);
    var every = Math.max(1, Math.ceil(series.length / 12));
    series.forEach(function (p, i) {
      if (i % every === 0) {
        s.appendChild(svg("text", { x: L + i * step, y: H - 8, class: "axis" }, p.slot.split("–")[0]));
      }
    });
    s.appendChild(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "baseline" }));
    return { s: s, step: step };
  }
  function renderCharts(b) {
    var series = b.series || [];
    var calls = $("wb-chart-calls"), sl = $("wb-chart-sl");
    var f = frame(calls, series), s = f.s, step = f.step;
    var max = Math.max(1, Math.max.apply(null, series.map(function (p) { return p.offered + p.abandoned; }).concat([0])));
    var scale = (H - T - B) / max;
    s.appendChild(svg("text", { x: L - 4, y: T + 8, class: "axis end" }, String(max)));
    s.appendChild(svg("text", { x: L - 4, y: H - B, class: "axis end" }, "0"));
    series.forEach(function (p, i) {
      var x = L + i * step, w = Math.max(1, step * 0.42);
      var off = svg("rect", { x: x + step * 0.06, y: H - B - p.offered * scale, width: w,
                              height: p.offered * scale, class: "bar-offered" });
      off.appendChild(svg("title", {}, p.slot + " " + msgs["wb.offered"] + " " + p.offered));
      s.appendChild(off);
      var ans = svg("rect", { x: x + step * 0.06 + w, y: H - B - p.answered * scale, width: w,
                              height: p.answered * scale, class: "bar-answered" });
      ans.appendChild(svg("title", {}, p.slot + " " + msgs["wb.answered"] + " " + p.answered));
      s.appendChild(ans);
    });
    var legend = svg("g", { class: "legend" });
    legend.appendChild(svg("rect", { x: W - 200, y: 6, width: 12, height: 12, class: "bar-offered" }));
    legend.appendChild(svg("text", { x: W - 184, y: 17, class: "axis" }, msgs["wb.offered"]));
    legend.appendChild(svg("rect", { x: W - 100, y: 6, width: 12, height: 12, class: "bar-answered" }));
    legend.appendChild(svg("text", { x: W - 84, y: 17, class: "axis" }, msgs["wb.answered"]));
    s.appendChild(legend);
    calls.dataset.slots = String(series.length);

    f = frame(sl, series); s = f.s; step = f.step;
    var y = function (v) { return H - B - v * (H - T - B); };
    [[b.thresholds.sl_goal, "goal"], [b.thresholds.sl_amber, "amber"]].forEach(function (g) {
      s.appendChild(svg("line", { x1: L, y1: y(g[0]), x2: W - R, y2: y(g[0]), class: "line-" + g[1] }));
      s.appendChild(svg("text", { x: L - 4, y: y(g[0]) + 4, class: "axis end" }, pct(g[0])));
    });
    s.appendChild(svg("text", { x: L - 4, y: T + 8, class: "axis end" }, "100%"));
    var pts = [];
    series.forEach(function (p, i) {
      if (p.service_level === null) return;
      var cx = L + i * step + step / 2, cy = y(p.service_level);
      pts.push(cx + "," + cy);
      var dot = svg("circle", { cx: cx, cy: cy, r: 4, class: "dot band-" + bandOf(p.service_level, b.thresholds) });
      dot.appendChild(svg("title", {}, p.slot + " " + pct(p.service_level)));
      s.appendChild(dot);
    });
    if (pts.length > 1) s.insertBefore(svg("polyline", { points: pts.join(" "), class: "sl-line" }), s.firstChild.nextSibling);
    sl.dataset.points = String(pts.length);
  }
  // the same rule as the server's Thresholds.service_level, for the chart's points only
  function bandOf(v, th) { return v >= th.sl_goal ? "good" : v >= th.sl_amber ? "warn" : "bad"; }

  // ---- the live connection, and the banner when it is lost ----------------------------------
  function heard() {
    clearTimeout(watchdog);
    watchdog = setTimeout(function () { lost(true); }, QUIET);
    if (document.body.dataset.connected !== "1") {
      document.body.dataset.connected = "1";
      document.body.classList.remove("stale");
      $("wb-stale").hidden = true;
    }
  }
  function lost(silent) {
    clearTimeout(watchdog);
    document.body.dataset.connected = "0";
    document.body.classList.add("stale");
    var banner = $("wb-stale");
    if (banner.hidden) {
      banner.textContent = fmt("wb.stale", { time: hms(lastHeard || serverNow()) });
      banner.hidden = false;
    }
    // an error on an open stream: the browser reconnects by itself (retry: 2000); a silent
    // stream (no ping) or a refused one (CLOSED): start again here
    if (silent || es.readyState === EventSource.CLOSED) {
      if (!silent) why();
      es.close();
      reconnectLater();
    }
  }
  // a refused stream (429: this user's tabs at [web] max_streams_per_user; 503: the service
  // full): EventSource shows no body, so ask the same address once and put its message (in
  // the user's language) in the banner; a place free after all is let go at once
  function why() {
    var ctl = new AbortController();
    fetch("/events/wallboard", { signal: ctl.signal, headers: { Accept: "text/event-stream" } })
      .then(function (r) {
        if (r.status !== 429 && r.status !== 503) { ctl.abort(); return; }
        return r.json().then(function (j) {
          if (j && j.error && document.body.dataset.connected !== "1") $("wb-stale").textContent = j.error;
        });
      })
      .catch(function () {});
  }
  function reconnectLater() {
    if (retry) return;
    retry = setTimeout(function () { retry = null; connect(); }, 5000);
  }
  function connect() {
    if (es) es.close();
    es = new EventSource("/events/wallboard");
    es.addEventListener("wallboard", function (e) { heard(); render(JSON.parse(e.data)); });
    es.addEventListener("patch", function (e) {
      heard();
      var p = JSON.parse(e.data);
      if (!board || board.v !== p.base) { connect(); return; }  // missed one: start from the full document
      render(Object.assign({}, board, p.set, { v: p.v }));
    });
    es.addEventListener("complaints", function (e) { heard(); renderComplaints(JSON.parse(e.data)); });
    es.addEventListener("ping", function () { heard(); lastHeard = serverNow(); });
    es.onopen = heard;
    es.onerror = function () { lost(false); };
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.body.dataset.page !== "wallboard") return;
    msgs = json("messages") || {};
    render(json("wb-initial"));
    setInterval(tick, 1000);
    connect();
    if (document.body.classList.contains("kiosk")) {
      // browsers enter full screen only on a gesture: the first click on the wall screen
      document.addEventListener("click", function () {
        if (!document.fullscreenElement && document.documentElement.requestFullscreen) {
          document.documentElement.requestFullscreen().catch(function () {});
        }
      });
    }
  });
})();
