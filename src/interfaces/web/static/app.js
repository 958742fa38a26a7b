// Chronicle dashboard: the live stream, the clock, local times. No inline script anywhere
// (the Content-Security-Policy allows scripts from this origin only).
(function () {
  "use strict";

  // -- local times: every <time data-local datetime=...> shows the viewer's zone -------------
  function localise(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.title = el.textContent.trim();
      el.textContent = when.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    });
  }

  // -- the clock: the server's time (ticking from its offset) and the viewer's -----------------
  function startClock() {
    var clock = document.querySelector("[data-clock]");
    if (!clock) return;
    var offset = new Date(clock.dataset.serverTime) - Date.now();
    var server = clock.querySelector("[data-clock-server]");
    var local = clock.querySelector("[data-clock-local]");
    function tick() {
      var now = new Date(Date.now() + offset);
      server.textContent = now.toISOString().replace("T", " ").slice(0, 19) + " UTC";
      local.textContent = new Date().toLocaleString(undefined, {
        weekday: "short", hour: "2-digit", minute: "2-digit", second: "2-digit",
        timeZoneName: "short",
      });
    }
    tick();
    setInterval(tick, 1000);
  }

  // -- live refresh: parts marked data-live-refresh reload after job events --------------------
  // At most every 750 ms, and always once after the last event (a trailing refresh), so the
  // final state of a burst is never missed.
  var refreshTimer = null;
  var refreshPending = false;
  var lastRefresh = 0;
  function refreshLive() {
    if (refreshTimer) { refreshPending = true; return; }
    var wait = Math.max(0, 750 - (Date.now() - lastRefresh));
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      lastRefresh = Date.now();
      document.querySelectorAll("[data-live-refresh]").forEach(function (el) {
        htmx.trigger(el, "live-refresh");
      });
      if (refreshPending) { refreshPending = false; refreshLive(); }
    }, wait);
  }

  // -- the live queue monitor ----------------------------------------------------------------
  var MAX_ROWS = 100;
  var paused = false;
  function monitorRow(item) {
    var row = document.createElement("tr");
    row.dataset.queue = item.queue;
    row.dataset.event = item.event;
    var time = document.createElement("td");
    time.textContent = new Date(item.at).toLocaleTimeString();
    var event = document.createElement("td");
    var badge = document.createElement("span");
    badge.className = "badge event-" + item.event;
    badge.textContent = item.event.replace(/_/g, " ");
    event.appendChild(badge);
    var queue = document.createElement("td");
    queue.textContent = item.queue;
    var command = document.createElement("td");
    command.textContent = item.command;
    var job = document.createElement("td");
    var link = document.createElement("a");
    link.href = "/jobs/" + item.job_id;
    link.textContent = item.job_id.slice(0, 8);
    job.appendChild(link);
    [time, event, queue, command, job].forEach(function (cell) { row.appendChild(cell); });
    return row;
  }
  function showInMonitor(item) {
    var rows = document.getElementById("monitor-rows");
    if (!rows || paused) return;
    var filter = document.getElementById("monitor-queue");
    if (filter && filter.value && filter.value !== item.queue) return;
    var empty = rows.querySelector("tr.empty");
    if (empty) empty.remove();
    rows.insertBefore(monitorRow(item), rows.firstChild);
    while (rows.children.length > MAX_ROWS) rows.removeChild(rows.lastChild);
  }

  function onJobEvent(evt) {
    if (!evt.detail || evt.detail.type !== "job") return;
    var item;
    try { item = JSON.parse(evt.detail.data); } catch (e) { return; }
    showInMonitor(item);
    refreshLive();
    document.dispatchEvent(new CustomEvent("chronicle:job", { detail: item }));
  }

  function liveStatus(state) {
    var dot = document.getElementById("live-status");
    if (dot) { dot.dataset.state = state; dot.title = "Live updates: " + state; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    localise(document);
    startClock();
    var pause = document.getElementById("monitor-pause");
    if (pause) {
      pause.addEventListener("click", function () {
        paused = !paused;
        pause.setAttribute("aria-pressed", String(paused));
        pause.textContent = paused ? "Resume" : "Pause";
      });
    }
    document.body.addEventListener("htmx:sseMessage", onJobEvent);
    document.body.addEventListener("htmx:sseOpen", function () { liveStatus("connected"); });
    document.body.addEventListener("htmx:sseError", function () { liveStatus("reconnecting"); });
    document.body.addEventListener("htmx:afterSwap", function (evt) { localise(evt.target); });
  });
})();
