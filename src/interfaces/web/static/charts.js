// Queue charts (uPlot): throughput and wait time per queue, for the last hour and 24 hours.
// The series come from the page's <script type="application/json" id="queue-charts"> block
// (never executed); the charts are drawn again whenever htmx swaps the live block in.
(function () {
  "use strict";

  var COLORS = { throughput: "#3553d6", avg: "#17803d", p95: "#a35b00" };
  var charts = [];

  function readData(root) {
    var block = (root && root.querySelector && root.querySelector("#queue-charts")) ||
      document.getElementById("queue-charts");
    if (!block) return null;
    try { return JSON.parse(block.textContent); } catch (e) { return null; }
  }

  function width(el) {
    return Math.max(260, Math.floor(el.clientWidth || el.parentNode.clientWidth || 320));
  }

  function msText(v) {
    if (v == null) return "—";
    if (v < 1000) return Math.round(v) + " ms";
    if (v < 60000) return (v / 1000).toFixed(1) + " s";
    return (v / 60000).toFixed(1) + " min";
  }

  function options(kind, el, series) {
    var step = series.step_minutes || 1;
    var common = {
      width: width(el),
      height: 180,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
    };
    if (kind === "throughput") {
      common.series = [
        {},
        {
          label: step === 1 ? "finished / min" : "finished / min (" + step + " min avg)",
          stroke: COLORS.throughput,
          fill: "rgba(53, 83, 214, 0.12)",
          value: function (u, v) { return v == null ? "—" : (+v).toFixed(2); },
        },
      ];
      common.axes = [{}, { size: 50 }];
      common.scales.y = { range: function (u, min, max) { return [0, Math.max(1, max)]; } };
    } else {
      common.series = [
        {},
        { label: "avg wait", stroke: COLORS.avg, spanGaps: false,
          value: function (u, v) { return msText(v); } },
        { label: "p95 wait", stroke: COLORS.p95, dash: [4, 4], spanGaps: false,
          value: function (u, v) { return msText(v); } },
      ];
      common.axes = [{}, { size: 60, values: function (u, vals) { return vals.map(msText); } }];
      common.scales.y = { range: function (u, min, max) { return [0, Math.max(1, max || 1)]; } };
    }
    return common;
  }

  function columns(kind, series) {
    if (kind === "throughput") return [series.t, series.per_minute];
    return [series.t, series.wait_avg_ms, series.wait_p95_ms];
  }

  function draw(root) {
    if (typeof uPlot === "undefined") return;
    var data = readData(root);
    if (!data) return;
    // Charts whose element left the page (swapped out) are destroyed.
    charts = charts.filter(function (entry) {
      if (document.body.contains(entry.el)) return true;
      entry.plot.destroy();
      return false;
    });
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var queue = data[el.dataset.queue] || {};
      var series = queue[el.dataset.span];
      if (!series || !series.t || !series.t.length) {
        el.textContent = "No data.";
        el.classList.add("chart-empty");
        return;
      }
      var kind = el.dataset.chart;
      var plot = new uPlot(options(kind, el, series), columns(kind, series), el);
      el.dataset.drawn = "1";
      charts.push({ el: el, plot: plot });
    });
  }

  var resizeTimer = null;
  function resize() {
    if (resizeTimer) clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      charts.forEach(function (entry) {
        entry.plot.setSize({ width: width(entry.el), height: 180 });
      });
    }, 150);
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
    window.addEventListener("resize", resize);
    document.body.addEventListener("htmx:afterSettle", function (evt) { draw(evt.target); });
  });
})();
