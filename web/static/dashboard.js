// Draws the dashboard's charts with ECharts from the figures the page carries, and redraws them every
// few minutes from the JSON endpoint.
// The page shows the same figures as tables, so nothing is lost without JavaScript.
(function () {
  "use strict";
  var REFRESH_MS = 5 * 60 * 1000;
  var CLASS_COLOURS = {
    normal: "#2e7d32", special_mention: "#f9a825", substandard: "#ef6c00", doubtful: "#c62828", loss: "#4a0d0d"
  };

  function number(text) { return Number(text); }  // two-decimal strings; precise enough to draw

  function pie(name, rows, value, colours) {
    return {
      tooltip: { trigger: "item", formatter: "{b}: {c} ({d}%)" },
      legend: { bottom: 0, type: "scroll" },
      series: [{
        name: name, type: "pie", radius: ["40%", "68%"], center: ["50%", "45%"],
        label: { formatter: "{b}\n{d}%" },
        data: rows.map(function (row) {
          var item = { name: row.label, value: value(row) };
          if (colours && colours[row.key]) { item.itemStyle = { color: colours[row.key] }; }
          return item;
        })
      }]
    };
  }

  function options(data) {
    var s = data.series;
    return {
      creditGrades: pie(s.customers, data.creditGrades, function (r) { return r.count; }),
      classes: pie(s.outstanding, data.classes, function (r) { return number(r.amount); }, CLASS_COLOURS),
      trend: {
        tooltip: { trigger: "axis" },
        legend: { bottom: 0 },
        grid: { left: 80, right: 24, top: 24, bottom: 48 },
        xAxis: { type: "category", data: data.trend.map(function (p) { return p.month; }) },
        yAxis: { type: "value" },
        series: [
          { name: s.disbursed, type: "bar", barMaxWidth: 28, itemStyle: { color: "#0b5cad" },
            data: data.trend.map(function (p) { return number(p.disbursed); }) },
          { name: s.overdue, type: "line", itemStyle: { color: "#c62828" },
            data: data.trend.map(function (p) { return number(p.overdue); }) }
        ]
      },
      regions: {
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        grid: { left: 120, right: 24, top: 16, bottom: 32 },
        xAxis: { type: "value" },
        yAxis: { type: "category", inverse: true, data: data.regions.slice(0, 12).map(function (r) { return r.label; }) },
        series: [{ name: s.outstanding, type: "bar", itemStyle: { color: "#0b5cad" },
          data: data.regions.slice(0, 12).map(function (r) { return number(r.amount); }) }]
      }
    };
  }

  // Readers who asked their system for less motion get the charts drawn at once.
  var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function render(root, data) {
    var all = options(data);
    root.querySelectorAll("[data-chart]").forEach(function (element) {
      var chart = window.echarts.getInstanceByDom(element) ||
        window.echarts.init(element, null, { locale: root.dataset.locale, renderer: "canvas" });
      chart.setOption(Object.assign({ animation: !still }, all[element.dataset.chart]), true);
      element.dataset.drawn = "true";
    });
    root.dataset.drawnAt = data.asOf;
  }

  function refresh(root) {
    fetch(root.dataset.source, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("dashboard data: HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) { render(root, data); })
      .catch(function (error) { root.dataset.error = String(error); });
  }

  function start() {
    var root = document.getElementById("dashboard");
    if (!root || root.dataset.started) { return; }
    root.dataset.started = "true";
    // The page carries the figures it shows; the endpoint is asked only for later refreshes.
    var embedded = document.getElementById("dashboard-data");
    if (embedded) { render(root, JSON.parse(embedded.textContent)); } else { refresh(root); }
    var timer = window.setInterval(function () {
      if (!document.body.contains(root)) { window.clearInterval(timer); return; }
      refresh(root);
    }, REFRESH_MS);
    window.addEventListener("resize", function () {
      root.querySelectorAll("[data-chart]").forEach(function (element) {
        var chart = window.echarts.getInstanceByDom(element);
        if (chart) { chart.resize(); }
      });
    });
  }

  // After an htmx-boosted navigation the two scripts load in no fixed order: wait for ECharts.
  function whenReady() {
    if (window.echarts) { start(); return; }
    var tag = document.querySelector('script[src$="echarts.min.js"]');
    if (tag) { tag.addEventListener("load", start, { once: true }); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", whenReady, { once: true });
  } else {
    whenReady();
  }
})();
